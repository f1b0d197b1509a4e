package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// panicConn is a connection whose Read panics while armed, as go-redis's
// reader did on a reply it could not handle (makeslice: len out of
// range).
type panicConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c *panicConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		panic("test: a reply the reader cannot handle")
	}
	return c.Conn.Read(p)
}

// panicBackend returns a Backend on a real server whose connections (the
// tracking ones too) panic on Read while armed is set.
func panicBackend(t *testing.T, armed *atomic.Bool, options ...Option) *Backend {
	t.Helper()
	srv := testserver.Redis(t)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &panicConn{Conn: nc, armed: armed}, nil
	}
	b, err := New(&goredis.Options{Addr: srv.Addr, Dialer: dial}, options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestPanicsRecovered makes the reader panic under every kind of call,
// run in the caller's goroutine or in one of the driver's: before, a
// panic in a driver goroutine killed the process. Each call must fail
// with an error wrapping ErrProtocol, and the Backend must keep working.
func TestPanicsRecovered(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	b := panicBackend(t, &armed, WithTimeout(5*time.Second), WithFailureLimit(0))
	ctx := context.Background()
	cancellable, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"get (flushed in the caller's goroutine)": func() error { _, err := b.Get(ctx, "k"); return err },
		"get (flushed in a driver goroutine)":     func() error { _, err := b.Get(cancellable, "k"); return err },
		"set":                                     func() error { return b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}) },
		"increment":                               func() error { _, err := b.Increment(ctx, "n", 1); return err },
		"batched gets": func() error {
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = b.Get(cancellable, fmt.Sprint("k", i)) })
			}
			wg.Wait()
			for _, err := range errs {
				if !errors.Is(err, ErrProtocol) {
					return err
				}
			}
			return errs[0]
		},
		"getmulti (caller's goroutine)": func() error { _, err := b.GetMulti(ctx, []string{"k", "j"}); return err },
		"getmulti (driver goroutine)":   func() error { _, err := b.GetMulti(cancellable, []string{"k", "j"}); return err },
		"setmulti":                      func() error { return b.SetMulti(ctx, []backend.Item{{Key: "a", Value: []byte("1")}}) },
		"ping":                          func() error { return b.Ping(ctx) },
		"stats": func() error {
			st, err := b.ServerStats(ctx)
			if err != nil {
				return err
			}
			return st[0].Err
		},
		"keys": func() error {
			for _, err := range b.Keys(ctx, "") {
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, call := range calls {
		armed.Store(true)
		err := call()
		armed.Store(false)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s with a panicking reader: %v, want ErrProtocol", name, err)
		}
		if it, err := b.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
			t.Fatalf("get after %s: %q, %v", name, it.Value, err)
		}
	}
}

// TestPanicInProbe marks the server down while the reader panics: the
// probe's PINGs panic too, and the probe goes on until the server
// answers.
func TestPanicInProbe(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	b := panicBackend(t, &armed, WithTimeout(time.Second), WithFailureLimit(1), WithRetryInterval(50*time.Millisecond))
	ctx := context.Background()
	armed.Store(true)
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("get: %v, want ErrProtocol", err)
	}
	if !b.lane0.down.Load() {
		t.Fatal("not marked down")
	}
	time.Sleep(200 * time.Millisecond) // a few probes panic
	armed.Store(false)
	waitServing(t, "after the probes' panics", 5*time.Second, func() error {
		_, err := b.Get(ctx, "k")
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		return err
	})
}

// TestPanicInTracking makes the tracking connection's reader panic: the
// registrations are reset, and tracking comes back once reads no longer
// panic.
func TestPanicInTracking(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	b := panicBackend(t, &armed, WithTimeout(5*time.Second), WithFailureLimit(0))
	r := newReports()
	tr, err := b.Track(context.Background(), "p:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitFor(t, "tracking to be live", tr.Live)
	armed.Store(true)
	// The reader reads a PONG every second: its next read panics.
	waitFor(t, "the reset", func() bool { _, alls := r.snapshot(); return alls > 0 && !tr.Live() })
	time.Sleep(time.Second) // a reconnect or two panic in the handshake
	armed.Store(false)
	waitFor(t, "tracking to be live again", tr.Live)
}
