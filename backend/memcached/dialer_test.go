package memcached_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
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

// A dial that hangs until the Client's timeout ends fails with an error
// of its own context (context.DeadlineExceeded, as net.Dialer's timeout
// error is too, to a black-holed address). Calls that joined that dial
// in progress, whose own contexts had no deadline, got it as theirs: Get
// failed with "context deadline exceeded" and GetMulti as a whole, not
// unavailable, and the failure was not counted, so that a server whose
// connects hang was never marked down by such calls. They fail as
// unavailable now, naming the server, and count: three calls with a
// failure limit of 3 mark it down.
func TestDialTimeoutIsNotCallersContext(t *testing.T) {
	const timeout = 400 * time.Millisecond
	dialing := make(chan struct{}, 16)
	hung := "127.0.0.1:1" // never dialled: the dialer below hangs for it
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialing <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c, err := memcached.New([]string{hung}, memcached.WithTimeout(timeout), memcached.WithConns(1),
		memcached.WithFailureLimit(3), memcached.WithRetryInterval(time.Minute), memcached.WithDialer(dial))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "k")
		first <- err
	}()
	<-dialing
	// The calls below start well after the dial, so that it ends (at
	// its timeout) well before theirs would.
	time.Sleep(timeout / 4)
	joined := make(chan error, 2)
	go func() {
		_, err := c.Get(ctx, "k")
		joined <- err
	}()
	go func() {
		_, err := c.GetMulti(ctx, []string{"k", "l"})
		joined <- err
	}()
	for _, ch := range []chan error{first, joined, joined} {
		err := <-ch
		if !errors.Is(err, backend.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), hung) {
			t.Errorf("a call on a server whose dial hangs: %v; want unavailable naming %s, not the caller's context", err, hung)
		}
	}
	// Three failures in a row: the server is marked down.
	start := time.Now()
	_, err = c.Get(ctx, "k")
	if d := time.Since(start); !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "marked down") {
		t.Errorf("Get after three calls failed on the hung dial: %v after %v; want the server marked down", err, d)
	}
}
