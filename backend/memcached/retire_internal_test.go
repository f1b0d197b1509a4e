package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
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

// TestMultiRetiredConnRedialHangs: a connection retired (its server's
// name now resolves elsewhere: resolve_interval) just as a multi-key call
// queues a request on it is redialled apart, in a goroutine of its own,
// as a slot without connection is: when that connect hangs, the other
// servers' requests still go. It was redialled inline (startOn, on
// errRetired), holding the call until the caller's deadline (300ms), after
// which the other server was sent nothing: 0 of 3 of its keys read or
// written. The retired server's keys are named with ctx's error.
func TestMultiRetiredConnRedialHangs(t *testing.T) {
	const callerWait = 500 * time.Millisecond
	a, b := testserver.Memcached(t), testserver.Memcached(t)
	var hang, armed atomic.Bool
	var c *Client
	var watch atomic.Bool
	var wrote atomic.Int64 // when the first request was written, while watch
	hook := func(where string) {
		if where == "write" && watch.Load() {
			wrote.CompareAndSwap(0, time.Now().UnixNano())
		}
		if where == "enqueue" && armed.CompareAndSwap(true, false) {
			// The server's name now resolves elsewhere, where a connect
			// hangs.
			hang.Store(true)
			c.nodes[0].pool.retireUnless(nil)
		}
	}
	var hung atomic.Pointer[chan struct{}] // closed: the hung connects end
	release := make(chan struct{})
	hung.Store(&release)
	t.Cleanup(func() { close(*hung.Load()) })
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == a.Addr && hang.Load() {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-*hung.Load():
				return nil, errors.New("hung connect ended by the test")
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	var err error
	c, err = New([]string{a.Addr, b.Addr}, WithConns(1), WithTimeout(2*time.Second), WithFailureLimit(0),
		WithDialer(dial), WithTestHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.nodes[0].addr != a.Addr {
		t.Fatalf("nodes[0] is %s, not %s", c.nodes[0].addr, a.Addr)
	}
	var keysA, keysB []string
	for i := 0; len(keysA) < 3 || len(keysB) < 3; i++ {
		k := fmt.Sprintf("key-%d", i)
		if c.ServerFor(k) == a.Addr {
			keysA = append(keysA, k)
		} else {
			keysB = append(keysB, k)
		}
	}
	keysA, keysB = keysA[:3], keysB[:3]
	all := append(append([]string{}, keysA...), keysB...) // A's first: started first
	items := func(keys []string) []backend.Item {
		var its []backend.Item
		for _, k := range keys {
			its = append(its, backend.Item{Key: k, Value: []byte(k)})
		}
		return its
	}
	ctx := context.Background()
	for _, op := range []string{"GetMulti", "SetMulti", "DeleteMulti"} {
		hang.Store(false)
		if op != "GetMulti" {
			// End the last op's hung connect, and wait for its slot to
			// be free of it.
			ch := make(chan struct{})
			close(*hung.Swap(&ch))
			s := &c.nodes[0].pool.slots[0]
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				s.mu.Lock()
				d := s.dial
				s.mu.Unlock()
				if d == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the hung connect did not end within 5s")
				}
			}
		}
		// Connected to both, B's keys absent before SetMulti, present
		// otherwise.
		if err := c.SetMulti(ctx, items(all)); err != nil {
			t.Fatal(err)
		}
		if op == "SetMulti" {
			for _, k := range keysB {
				if err := c.Delete(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		armed.Store(true)
		wrote.Store(0)
		watch.Store(true)
		cctx, cancel := context.WithTimeout(ctx, callerWait)
		start := time.Now()
		var got map[string]backend.Item
		switch op {
		case "GetMulti":
			got, err = c.GetMulti(cctx, all)
		case "SetMulti":
			err = c.SetMulti(cctx, items(all))
		default:
			err = c.DeleteMulti(cctx, all)
		}
		d := time.Since(start)
		watch.Store(false)
		cancel()
		if armed.Load() {
			t.Fatalf("%s: no request queued on a connected slot", op)
		}
		named := map[string]bool{}
		if kes, ok := backend.KeyErrors(err); ok {
			for _, ke := range kes {
				named[ke.Key] = true
				if !errors.Is(ke.Err, context.DeadlineExceeded) || !strings.Contains(ke.Err.Error(), a.Addr) {
					t.Errorf("%s: key %s: %v; want context.DeadlineExceeded naming %s", op, ke.Key, ke.Err, a.Addr)
				}
			}
		}
		// The other server's request was written before the caller's
		// deadline, not held up by the connect until then.
		if w := wrote.Load(); w == 0 || time.Unix(0, w).Sub(start) >= callerWait {
			t.Errorf("%s: the other server's request not written before the caller's deadline (%v after the call's start)",
				op, time.Duration(max(w-start.UnixNano(), 0)))
		} else {
			t.Logf("%s: the other server's request written %v after the call's start", op, time.Unix(0, w).Sub(start).Round(time.Microsecond))
		}
		if op != "GetMulti" {
			var rerr error
			if got, rerr = c.GetMulti(ctx, keysB); rerr != nil {
				t.Fatal(rerr)
			}
		}
		n := 0
		for _, k := range keysB {
			if !named[k] && (op == "DeleteMulti") == (got[k].Value == nil) {
				n++
			}
		}
		t.Logf("%s: %v: %d of %d of the other server's keys done, %v", op, d.Round(time.Millisecond), n, len(keysB), err)
		if n != len(keysB) {
			t.Errorf("%s with a retired connection whose redial hangs: %d of %d of the other server's keys done; want all", op, n, len(keysB))
		}
		for _, k := range keysA {
			if !named[k] {
				t.Errorf("%s: key %s of the retired server not named (%v)", op, k, err)
			}
		}
		if d > 2*callerWait {
			t.Errorf("%s took %v; caller's deadline %v", op, d, callerWait)
		}
	}
}

// TestRetiredCallNotServerFault: a call that ends on connections retired
// one after the other (its server's name moving during the call) fails
// as unavailable, not as the server's protocol error, and does not count
// as the server's failure: it read "protocol error" and marked a server
// down (failure_limit=1), which auto-eject then flushes on its return.
func TestRetiredCallNotServerFault(t *testing.T) {
	c := &Client{}
	n := &node{addr: "a.test:11211", limit: 1, interval: time.Minute}
	err := c.result(n, "get", "k", errRetired)
	if !errors.Is(err, backend.ErrUnavailable) || errors.Is(err, ErrProtocol) {
		t.Errorf("error %v: want it to wrap ErrUnavailable, not ErrProtocol", err)
	}
	if n.down() {
		t.Error("the server is marked down for a call retired by an address change")
	}
}
