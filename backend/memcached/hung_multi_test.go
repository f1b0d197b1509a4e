//go:build unix

package memcached_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// TestGetMultiCallerDeadlineServerHung: a GetMulti over three servers, one
// of which hangs (SIGSTOP: it accepts, never answers), with a caller's
// context that ends (a deadline, or a cancellation) before the driver's
// timeout, returns when ctx ends the items of the servers that answered
// and a *backend.MultiError naming each key of the hung server with an
// error wrapping ctx's and naming the server, as backend.Backend.GetMulti
// promises; GetMultiOrdered too. A client of the hung server alone fails
// as a whole: nothing was read.
//
// The caller's context ends after callerWait, by which the live servers
// must have answered, and the timeout is far beyond it, so that it is ctx
// that ends the call: on a loaded machine (load 16 on 2 cores) a goroutine
// woken by a timer may run hundreds of milliseconds late (a 5ms sleep
// overslept by up to 285ms), and with 150ms and 300ms the live servers'
// keys were named with ctx's error (their replies not read by then, 1 run
// of 60), or the hung server's with the timeout's (the call took 785ms,
// 1 of 60). Each case has a Client of its own, connected to every server
// before it hangs, and the cases run in parallel: no case waits for the
// requests another abandoned on the hung server to time out.
func TestGetMultiCallerDeadlineServerHung(t *testing.T) {
	const timeout = 10 * time.Second
	const callerWait = time.Second
	procs, addrs := startMemcacheds(t, 3)
	newC := func(addrs []string) *memcached.Client {
		c, err := memcached.New(addrs, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := newC(addrs)
	victim := procs[2].Addr
	frozen := keysOn(c, victim, 5)
	live := append(keysOn(c, procs[0].Addr, 5), keysOn(c, procs[1].Addr, 5)...)
	// The hung server's keys first, so that it is the first waited for.
	all := append(append([]string{}, frozen...), live...)
	ctx := context.Background()
	for _, k := range all {
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	type tcase struct {
		ordered, cancelled bool
		c                  *memcached.Client
	}
	var cases []tcase
	for _, ordered := range []bool{false, true} {
		for _, cancelled := range []bool{false, true} {
			cases = append(cases, tcase{ordered, cancelled, newC(addrs)})
		}
	}
	// A client of the hung server alone.
	alone := newC([]string{victim})
	// Every client connected to every server before it hangs.
	for _, tc := range cases {
		if got, err := tc.c.GetMulti(ctx, all); err != nil || len(got) != len(all) {
			t.Fatalf("GetMulti before the server hangs: %d of %d items, %v", len(got), len(all), err)
		}
	}
	if _, err := alone.GetMulti(ctx, frozen); err != nil {
		t.Fatal(err)
	}
	if err := procs[2].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { procs[2].Signal(syscall.SIGCONT) })
	waitStopped(t, procs[2].Pid())

	// callerCtx returns a context that ends callerWait from now, by its
	// deadline or by a cancellation, and the error it ends with.
	callerCtx := func(cancelled bool) (context.Context, context.CancelFunc, error) {
		if !cancelled {
			ctx, cancel := context.WithTimeout(ctx, callerWait)
			return ctx, cancel, context.DeadlineExceeded
		}
		ctx, cancel := context.WithCancel(ctx)
		stop := time.AfterFunc(callerWait, cancel)
		return ctx, func() { stop.Stop(); cancel() }, context.Canceled
	}
	for _, tc := range cases {
		what := map[bool]string{false: "GetMulti", true: "GetMultiOrdered"}[tc.ordered]
		if tc.cancelled {
			what += " (cancelled)"
		}
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			cctx, cancel, want := callerCtx(tc.cancelled)
			start := time.Now()
			got := map[string]backend.Item{}
			var err error
			if tc.ordered {
				found := make([]backend.Item, len(all))
				err = tc.c.GetMultiOrdered(cctx, all, found)
				for _, it := range found {
					if it.Key != "" {
						got[it.Key] = it
					}
				}
			} else {
				got, err = tc.c.GetMulti(cctx, all)
			}
			d := time.Since(start)
			cancel()
			me, named := hungKeysNamed(t, what+" with a server hung", err, d, want, victim, frozen)
			if me == nil {
				t.FailNow()
			}
			for _, k := range live {
				if named[k] || string(got[k].Value) != k {
					t.Errorf("%s: live key %s: %q, named %v", what, k, got[k].Value, named[k])
				}
			}
			if len(got) != len(live) || len(me.Errors) != len(frozen) {
				t.Errorf("%s: %d items, %d keys named; want %d and %d", what, len(got), len(me.Errors), len(live), len(frozen))
			}
			if d > callerWait+3*time.Second {
				t.Errorf("%s took %v; caller's context %v, timeout %v", what, d, callerWait, timeout)
			}
			t.Logf("%s: %v: %d found, %d named", what, d.Round(time.Millisecond), len(got), len(me.Errors))
		})
	}

	// One server: nothing was read, the call fails as a whole.
	t.Run("alone", func(t *testing.T) {
		t.Parallel()
		cctx, cancel := context.WithTimeout(ctx, callerWait)
		got, err := alone.GetMulti(cctx, frozen)
		cancel()
		var me *backend.MultiError
		if errors.As(err, &me) || !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
			t.Errorf("GetMulti of the hung server alone: %d items, %v; want a whole failure wrapping context.DeadlineExceeded", len(got), err)
		}
	})
}

// TestGetMultiServerConnectHangs: a GetMulti over three servers, one of
// which the Client never connected to and whose connect hangs (a listener
// that never accepts, so the handshake gets no answer; or a dial that
// never returns, as to a black-holed address), sends the other servers'
// requests at once: their items come back, and the hung server's keys are
// named with its address, with the caller's error if its context ended
// first (a 150ms deadline), else unavailable (the 500ms timeout). The
// connects were awaited one server at a time, the hung server's first
// (its keys come first): with the caller's deadline the call failed whole
// with nothing read (0 of 10 items); without, the other servers' requests
// were started once the timeout was over, so that they failed too and the
// healthy servers were counted failures. Each case runs twice, on a new
// Client (no server connected) and then connected to the others; the
// second call ends before the first one's dial does (at the timeout).
func TestGetMultiServerConnectHangs(t *testing.T) {
	const timeout = 500 * time.Millisecond
	const callerWait = 150 * time.Millisecond
	_, addrs := startMemcacheds(t, 2)
	neverAccepts, blackHoled, dial := hungConnects(t)
	ctx := context.Background()
	for _, hung := range []string{neverAccepts, blackHoled} {
		what := map[string]string{neverAccepts: "never accepts", blackHoled: "connect hangs"}[hung]
		t.Run(what, func(t *testing.T) {
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
			writer := newC()
			frozen := keysOn(writer, hung, 5)
			live := append(keysOn(writer, addrs[0], 5), keysOn(writer, addrs[1], 5)...)
			for _, k := range live {
				if err := writer.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
					t.Fatal(err)
				}
			}
			// The hung server's keys first, so that it is the first
			// server of the call.
			all := append(append([]string{}, frozen...), live...)
			for _, deadline := range []bool{true, false} {
				c := newC()
				for _, connected := range []bool{false, true} {
					cctx, cancel := ctx, context.CancelFunc(func() {})
					want := backend.ErrUnavailable
					if deadline {
						cctx, cancel = context.WithTimeout(ctx, callerWait)
						want = context.DeadlineExceeded
					}
					start := time.Now()
					got, err := c.GetMulti(cctx, all)
					d := time.Since(start)
					cancel()
					name := fmt.Sprintf("caller's deadline %v, connected to the others %v", deadline, connected)
					t.Logf("%s: %v: %d items, %v", name, d.Round(time.Millisecond), len(got), err)
					me, named := hungKeysNamed(t, fmt.Sprintf("%s (%d items)", name, len(got)), err, d, want, hung, frozen)
					if me == nil {
						t.FailNow()
					}
					for _, k := range live {
						if named[k] || string(got[k].Value) != k {
							t.Errorf("%s: live key %s: %q, named %v", name, k, got[k].Value, named[k])
						}
					}
					if d > timeout+300*time.Millisecond {
						t.Errorf("%s took %v; caller's context %v, timeout %v", name, d, callerWait, timeout)
					}
				}
			}
		})
	}
}

// TestGetMultiEmptyAfterContextEnds: a value found empty by GetMulti's
// "gets" is read again with mg (an empty value and a lease placeholder
// look alike to gets). When the caller's context had ended by the time
// that server's reply was taken (another server hung, waited for first),
// the mg was still sent: a request the caller would never wait for, one
// write after ctx's end. Nothing is sent once ctx has ended now; the empty
// value's key is named with ctx's error, as the hung server's keys are.
func TestGetMultiEmptyAfterContextEnds(t *testing.T) {
	const callerWait = 200 * time.Millisecond
	procs, addrs := startMemcacheds(t, 2)
	var ended atomic.Pointer[context.Context]
	var late atomic.Int64
	hook := func(where string) {
		if ctx := ended.Load(); where == "write" && ctx != nil && (*ctx).Err() != nil {
			late.Add(1)
		}
	}
	c, err := memcached.New(addrs, memcached.WithTimeout(2*time.Second), memcached.WithFailureLimit(0),
		memcached.WithTestHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	victim, other := procs[0], addrs[1]
	frozen := keysOn(c, victim.Addr, 3)
	live := keysOn(c, other, 3)
	ctx := context.Background()
	for _, k := range append(append([]string{}, frozen...), live...) {
		v := []byte(k)
		if k == live[0] {
			v = []byte{}
		}
		if err := c.Set(ctx, backend.Item{Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Signal(syscall.SIGCONT) })
	waitStopped(t, victim.Pid())

	cctx, cancel := context.WithTimeout(ctx, callerWait)
	defer cancel()
	ended.Store(&cctx)
	// The hung server's keys first: it is waited for first, until ctx ends.
	got, err := c.GetMulti(cctx, append(append([]string{}, frozen...), live...))
	var me *backend.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("GetMulti: %d items, %v; want a *backend.MultiError", len(got), err)
	}
	named := map[string]error{}
	for _, ke := range me.Errors {
		named[ke.Key] = ke.Err
	}
	for _, k := range append(append([]string{}, frozen...), live[0]) {
		if !errors.Is(named[k], context.DeadlineExceeded) {
			t.Errorf("key %s: %v; want it named with context.DeadlineExceeded", k, named[k])
		}
	}
	for _, k := range live[1:] {
		if named[k] != nil || string(got[k].Value) != k {
			t.Errorf("key %s of the live server: %q, %v", k, got[k].Value, named[k])
		}
	}
	if n := late.Load(); n != 0 {
		t.Errorf("%d writes after the caller's context ended; want none", n)
	}
}

// hungKeysNamed checks that err, the error of a multi-key call that took
// d (what names it), is a *backend.MultiError naming each key of frozen,
// the keys of the hung server, and that every key it names failed with
// want and names server. It returns the MultiError (nil if err is none,
// after reporting it) and the keys it names.
func hungKeysNamed(t *testing.T, what string, err error, d time.Duration, want error, server string, frozen []string) (*backend.MultiError, map[string]bool) {
	t.Helper()
	var me *backend.MultiError
	if !errors.As(err, &me) {
		t.Errorf("%s: %v after %v; want a *backend.MultiError", what, err, d)
		return nil, nil
	}
	named := map[string]bool{}
	for _, ke := range me.Errors {
		named[ke.Key] = true
		if !errors.Is(ke.Err, want) || !strings.Contains(ke.Err.Error(), server) {
			t.Errorf("%s: key %s: %v; want %v naming %s", what, ke.Key, ke.Err, want, server)
		}
	}
	for _, k := range frozen {
		if !named[k] {
			t.Errorf("%s: key %s of the hung server not named", what, k)
		}
	}
	return me, named
}
