package memcached_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend/memcached"
)

// WithDialer: the Client opens its connections (the meta engine's and
// those of listing and statistics) with the dial function given, which
// gets the timeout as its context's deadline.
func TestWithDialer(t *testing.T) {
	var dials atomic.Int64
	var noDeadline atomic.Bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			noDeadline.Store(true)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c, _ := newClient(t, memcached.WithDialer(dial))
	setValue(t, c, "k", "v", 0)
	wantValue(t, c, "k", "v", "a value written through the custom dialer")
	if _, err := c.ServerStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dials.Load() == 0 {
		t.Fatal("the Client did not use the dialer")
	}
	if noDeadline.Load() {
		t.Error("a dial had no deadline")
	}

	// A dial that fails fails the calls, naming the server.
	failing, err := memcached.New([]string{"127.0.0.1:1"}, memcached.WithTimeout(time.Second),
		memcached.WithDialer(func(context.Context, string, string) (net.Conn, error) { return nil, net.ErrClosed }))
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	if _, err := failing.Get(context.Background(), "k"); err == nil {
		t.Fatal("Get through a dialer that fails succeeded")
	}
}
