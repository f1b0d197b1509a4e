package memcached

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestCloseClosesRetiredConns: a connection retired (its server's name
// resolved to another address) while busy, replaced in its slot by a new
// one, and left open, is closed by Close: Close returns instead of
// waiting forever for its goroutines.
func TestCloseClosesRetiredConns(t *testing.T) {
	srv := testserver.Memcached(t)
	c, err := New([]string{srv.Addr}, WithConns(1), WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	p := c.nodes[0].pool
	old := p.slots[0].cn.Load()
	if old == nil {
		t.Fatal("no connection after a call")
	}
	// A write in progress: the retired connection cannot close at once.
	old.mu.Lock()
	old.writing = true
	old.mu.Unlock()
	p.retireUnless(nil)
	if old.dead.Load() {
		t.Fatal("a busy connection was closed when retired")
	}
	// The next call dials a new connection in the slot.
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if p.slots[0].cn.Load() == old {
		t.Fatal("the retired connection is still in its slot")
	}
	// The write ends without the connection's own check (as if a path
	// that leaves it idle missed closeIfIdle): it is idle, open, and in
	// no slot.
	old.mu.Lock()
	old.writing = false
	old.mu.Unlock()
	closed := make(chan struct{})
	go func() {
		_ = c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s: the retired connection was left open")
	}
	if !old.dead.Load() {
		t.Error("the retired connection is not closed after Close")
	}
}
