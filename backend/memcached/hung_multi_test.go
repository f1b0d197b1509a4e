//go:build unix

package memcached_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// TestGetMultiCallerDeadlineServerHung: a GetMulti over three servers, one
// of which hangs (SIGSTOP: it accepts, never answers), with a caller's
// context that ends (a 150ms deadline, or a cancellation at 150ms) before
// the driver's 300ms timeout, returns when ctx ends the items of the
// servers that answered and a *backend.MultiError naming each key of the
// hung server with an error wrapping ctx's and naming the server, as
// backend.Backend.GetMulti promises; GetMultiOrdered too. A client of the
// hung server alone fails as a whole: nothing was read.
func TestGetMultiCallerDeadlineServerHung(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const callerWait = 150 * time.Millisecond
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
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
	// A client of the hung server alone, connected before it hangs.
	alone, err := memcached.New([]string{victim}, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alone.Close() })
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
	first := true
	for _, ordered := range []bool{false, true} {
		for _, cancelled := range []bool{false, true} {
			if !first {
				// The request the last call abandoned on the hung server
				// times out (the watchdog closes its connection, failing
				// what is queued behind it) before this call starts.
				time.Sleep(timeout)
			}
			first = false
			cctx, cancel, want := callerCtx(cancelled)
			start := time.Now()
			got := map[string]backend.Item{}
			if ordered {
				found := make([]backend.Item, len(all))
				err = c.GetMultiOrdered(cctx, all, found)
				for _, it := range found {
					if it.Key != "" {
						got[it.Key] = it
					}
				}
			} else {
				got, err = c.GetMulti(cctx, all)
			}
			d := time.Since(start)
			cancel()
			what := map[bool]string{false: "GetMulti", true: "GetMultiOrdered"}[ordered]
			if cancelled {
				what += " (cancelled)"
			}
			var me *backend.MultiError
			if !errors.As(err, &me) {
				t.Fatalf("%s with a server hung: %v after %v, want a *backend.MultiError", what, err, d)
			}
			named := map[string]bool{}
			for _, ke := range me.Errors {
				named[ke.Key] = true
				if !errors.Is(ke.Err, want) || !strings.Contains(ke.Err.Error(), victim) {
					t.Errorf("%s: key %s: %v; want %v naming %s", what, ke.Key, ke.Err, want, victim)
				}
			}
			for _, k := range frozen {
				if !named[k] {
					t.Errorf("%s: key %s of the hung server not named", what, k)
				}
			}
			for _, k := range live {
				if named[k] || string(got[k].Value) != k {
					t.Errorf("%s: live key %s: %q, named %v", what, k, got[k].Value, named[k])
				}
			}
			if len(got) != len(live) || len(me.Errors) != len(frozen) {
				t.Errorf("%s: %d items, %d keys named; want %d and %d", what, len(got), len(me.Errors), len(live), len(frozen))
			}
			if d > timeout+300*time.Millisecond {
				t.Errorf("%s took %v; caller's context %v, timeout %v", what, d, callerWait, timeout)
			}
			t.Logf("%s: %v: %d found, %d named", what, d.Round(time.Millisecond), len(got), len(me.Errors))
		}
	}

	// One server: nothing was read, the call fails as a whole.
	cctx, cancel := context.WithTimeout(ctx, callerWait)
	got, err := alone.GetMulti(cctx, frozen)
	cancel()
	var me *backend.MultiError
	if errors.As(err, &me) || !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
		t.Errorf("GetMulti of the hung server alone: %d items, %v; want a whole failure wrapping context.DeadlineExceeded", len(got), err)
	}
}
