package memcached_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// A multi-key write on a ring where one server cannot be connected to
// (nothing is sent to it) names that server's keys, as GetMulti does, and
// stores the others: it failed as a whole with the dial's error, so that
// a Dict's PutMulti reported every key as not stored, those stored on the
// live servers too.
func TestMultiWritesServerRefusingConnections(t *testing.T) {
	_, addrs := startMemcacheds(t, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c, err := memcached.New(append(addrs, dead), memcached.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("dial:%d", i)
	}
	check := func(what string, err error) {
		t.Helper()
		failed := failedKeys(t, err)
		for _, k := range keys {
			onDead := c.ServerFor(k) == dead
			switch {
			case onDead && (!errors.Is(failed[k], backend.ErrUnavailable) || !strings.Contains(failed[k].Error(), dead)):
				t.Errorf("%s: key %q on the dead server: %v, want unavailable naming %s", what, k, failed[k], dead)
			case !onDead && failed[k] != nil:
				t.Errorf("%s: key %q on a live server named as failed: %v", what, k, failed[k])
			}
		}
	}
	check("SetMulti", c.SetMulti(ctx, itemsOf(keys)))
	var live []string
	for _, k := range keys {
		if c.ServerFor(k) != dead {
			live = append(live, k)
		}
	}
	got, _ := c.GetMulti(ctx, live)
	if len(got) != len(live) {
		t.Errorf("GetMulti of the live servers' keys: %d of %d found", len(got), len(live))
	}
	check("DeleteMulti", c.DeleteMulti(ctx, keys))
}

// TestMultiWritesServerConnectHangs: a SetMulti or DeleteMulti over three
// servers, one of which the Client never connected to and whose connect
// hangs (a listener that never accepts, so the handshake gets no answer;
// or a dial that never returns, as to a black-holed address), sends the
// other servers' writes at once: they are done, and the hung server's
// keys are named with its address (nothing was sent to it), with the
// caller's error if its context ended first (a 250ms deadline), else
// unavailable (the 500ms timeout). The connects were awaited one server
// at a time, the hung server's first (its keys come first; SetMulti also
// connected to each server in turn to learn its item size limit first).
// Measured with a 400ms timeout: on a new Client, SetMulti named all 15
// keys unavailable and wrote none of the 10 healthy items; connected to
// the others, the writes started once the timeout was over and the whole
// call failed (outcome unknown) after a healthy connection was closed by
// the watchdog; with a caller's deadline (150ms), the whole call failed.
// DeleteMulti alike. Without a caller's deadline each case runs on a new
// Client and then on one connected to the others; with one, on a Client
// connected to the others only.
func TestMultiWritesServerConnectHangs(t *testing.T) {
	const timeout = 500 * time.Millisecond
	const callerWait = 250 * time.Millisecond
	_, addrs := startMemcacheds(t, 2)
	neverAccepts, blackHoled, dial := hungConnects(t)
	ctx := context.Background()
	for _, hung := range []string{neverAccepts, blackHoled} {
		what := map[string]string{neverAccepts: "never accepts", blackHoled: "connect hangs"}[hung]
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			var err error
			servers := append(append([]string{}, addrs...), hung)
			newC := func() *memcached.Client {
				c, err := memcached.New(servers, memcached.WithTimeout(timeout),
					memcached.WithFailureLimit(0), memcached.WithDialer(dial))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			checker := newC() // reads and prepares the live keys only
			// Keys of their own: the two subtests share the servers.
			var frozen, live []string
			for _, k := range keysOn(checker, hung, 200) {
				if strings.HasSuffix(k, map[string]string{neverAccepts: "0", blackHoled: "1"}[hung]) {
					frozen = append(frozen, k)
				}
			}
			frozen = frozen[:5]
			for _, a := range addrs {
				for _, k := range keysOn(checker, a, 200) {
					if strings.HasSuffix(k, map[string]string{neverAccepts: "0", blackHoled: "1"}[hung]) && len(live) < 5*(1+slices.Index(addrs, a)) {
						live = append(live, k)
					}
				}
			}
			// The hung server's keys first, so that it is the first
			// server of the call.
			all := append(append([]string{}, frozen...), live...)
			for _, op := range []string{"SetMulti", "DeleteMulti"} {
				for _, deadline := range []bool{true, false} {
					c := newC()
					cases := []bool{false, true} // connected to the others
					if deadline {
						// Not on a new Client: the healthy servers'
						// handshakes could take longer than the caller's
						// deadline on a loaded machine.
						cases = cases[1:]
					}
					for _, connected := range cases {
						// The live keys: absent before SetMulti, present
						// before DeleteMulti.
						if op == "SetMulti" {
							err = checker.DeleteMulti(ctx, live)
							if kes, ok := backend.KeyErrors(err); ok {
								err = nil
								for _, ke := range kes {
									if !errors.Is(ke.Err, backend.ErrNotFound) {
										err = ke.Err
									}
								}
							}
						} else {
							err = checker.SetMulti(ctx, itemsOf(live))
						}
						if err != nil {
							t.Fatal(err)
						}
						if connected {
							// Connected to the healthy servers.
							if _, err := c.GetMulti(ctx, live); err != nil {
								t.Fatal(err)
							}
						}
						cctx, cancel := ctx, context.CancelFunc(func() {})
						want := backend.ErrUnavailable
						if deadline {
							cctx, cancel = context.WithTimeout(ctx, callerWait)
							want = context.DeadlineExceeded
						}
						start := time.Now()
						if op == "SetMulti" {
							err = c.SetMulti(cctx, itemsOf(all))
						} else {
							err = c.DeleteMulti(cctx, all)
						}
						d := time.Since(start)
						cancel()
						name := fmt.Sprintf("%s, caller's deadline %v, connected to the others %v", op, deadline, connected)
						t.Logf("%s: %v: %v", name, d.Round(time.Millisecond), err)
						me, named := hungKeysNamed(t, name, err, d, want, hung, frozen)
						if me == nil {
							continue
						}
						got, err := checker.GetMulti(ctx, live)
						if err != nil {
							t.Fatal(err)
						}
						for _, k := range live {
							done := string(got[k].Value) == k
							if op == "DeleteMulti" {
								done = got[k].Value == nil
							}
							if named[k] || !done {
								t.Errorf("%s: live key %s not done (now %q), named %v", name, k, got[k].Value, named[k])
							}
						}
						if d > timeout+300*time.Millisecond {
							t.Errorf("%s took %v; caller's context %v, timeout %v", name, d, callerWait, timeout)
						}
					}
				}
			}
		})
	}
}

// hungConnects returns two addresses whose connects hang, in the two ways
// a server can: neverAccepts, a listener that never accepts (the kernel
// completes the handshake, and the hello goes unanswered), and
// blackHoled, whose dial through dial never returns before its context
// ends (a host that drops SYNs); dial dials any other address.
func hungConnects(t *testing.T) (neverAccepts, blackHoled string, dial func(context.Context, string, string) (net.Conn, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	blackHoled = ln2.Addr().String()
	ln2.Close()
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == blackHoled {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return ln.Addr().String(), blackHoled, dial
}

// TestGetMultiNothingSentOnceContextEnds: a GetMulti connects to a
// server it has no connection to in a goroutine of its own, so that the
// other servers' requests go meanwhile. When the caller's context ended
// while that goroutine waited for the connect (here for the lock of a
// connect that another call started, ending as ctx does), the goroutine
// took the new connection and queued the read without looking at ctx,
// unlike the multi-key writes': a request sent after ctx's end, whose
// reply nobody waits for (1 late write in 1 GetMulti). Nothing is sent
// now once ctx has ended.
func TestGetMultiNothingSentOnceContextEnds(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 2)
	var armed atomic.Bool
	var ended atomic.Pointer[context.Context]
	var late atomic.Int64
	inHook, proceed := make(chan struct{}), make(chan struct{})
	hook := func(where string) {
		switch where {
		case "dialed": // with the slot's lock held
			if armed.CompareAndSwap(true, false) {
				close(inHook)
				<-proceed
			}
		case "write":
			if ctx := ended.Load(); ctx != nil && (*ctx).Err() != nil {
				late.Add(1)
			}
		}
	}
	c, err := memcached.New(addrs, memcached.WithTimeout(2*time.Second), memcached.WithFailureLimit(0),
		memcached.WithConns(1), memcached.WithTestHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	keysA, keysB := keysOn(c, addrs[0], 2), keysOn(c, addrs[1], 2)
	bg := context.Background()
	if _, err := c.GetMulti(bg, keysB); err != nil { // connected to B only
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	ended.Store(&ctx)
	armed.Store(true)
	// A Get starts the connect to A, which stops at "dialed".
	getDone := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, keysA[0])
		getDone <- err
	}()
	<-inHook
	type result struct {
		got map[string]backend.Item
		err error
	}
	multiDone := make(chan result, 1)
	go func() {
		got, err := c.GetMulti(ctx, append(append([]string{}, keysA...), keysB...))
		multiDone <- result{got, err}
	}()
	// Let the GetMulti's goroutine for A reach the lock of the connect.
	time.Sleep(50 * time.Millisecond)
	cancel()
	close(proceed)
	if err := <-getDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v; want an error wrapping context.Canceled", err)
	}
	// Whether B answered before ctx ended or not, A's keys fail with
	// ctx's error: nothing was sent to A.
	if res := <-multiDone; !errors.Is(res.err, context.Canceled) {
		t.Errorf("GetMulti: %d items, %v; want an error wrapping context.Canceled", len(res.got), res.err)
	}
	c.Close() // what was queued is written, or dropped, by then
	if n := late.Load(); n != 0 {
		t.Errorf("%d requests written after the caller's context ended; want none", n)
	}
}
