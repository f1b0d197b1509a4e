package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// panicOn is a middleware that panics at the nth call of op once armed,
// as a faulty user middleware (or backend) does, and passes every other
// call on.
type panicOn struct {
	op    backend.Op
	nth   int64
	armed atomic.Bool
	seen  atomic.Int64
}

func (p *panicOn) mw(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, c backend.Call) backend.Result {
		if c.Op == p.op && p.armed.Load() && p.seen.Add(1) == p.nth {
			panic(fmt.Sprintf("middleware bug at %s", c.Op))
		}
		return next(ctx, c)
	}
}

// A GetOrLoad whose fill panics in a backend call made while it holds the
// key's lock or fill lease (a middleware's bug: the re-read under the
// lock, the placeholder, the fill's write) gives the lock or lease up
// before the panic goes on: the next GetOrLoad of the key loads at once,
// instead of waiting for the lock to expire with the lease TTL (10s by
// default) as every caller of the fleet did.
func TestGetOrLoadPanicInFillReleasesLock(t *testing.T) {
	tests := []struct {
		name  string
		lease bool // a Leaser backend (memcached's leases), else a Locker (lock keys)
		op    backend.Op
		nth   int64
	}{
		// The Gets: the miss, the read under the lock, the
		// placeholder's read back (the Dict's first read of the
		// generation is a GetTTL, for the key's TTL).
		{"lock/reread", false, backend.OpGet, 2},
		{"lock/hold", false, backend.OpAdd, 1}, // the placeholder
		{"lock/holdread", false, backend.OpGet, 3},
		{"lock/fill", false, backend.OpCompareAndSwap, 1},
		{"lease/fill", true, backend.OpCompareAndSwap, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := memory.NewFakeClock(leaseT0) // never advances: a lock held stays held
			var inner backend.Backend = memory.New(memory.WithClock(clock))
			if tt.lease {
				inner = newFakeLeaser(clock)
			}
			p := &panicOn{op: tt.op, nth: tt.nth}
			d := newDict[string](t, backend.Wrap(inner, p.mw), "p", memdict.WithClock(clock.Now), memdict.WithLeaseTTL(10*time.Second))
			p.armed.Store(true)
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatalf("GetOrLoad did not panic at call %d of %s", tt.nth, tt.op)
					}
				}()
				_, _ = d.GetOrLoad(context.Background(), "k", func(context.Context, string) (string, error) { return "v1", nil })
			}()
			p.armed.Store(false)
			if !tt.lease {
				if _, err := inner.Get(context.Background(), d.LockKey("k")); !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("the lock key is still there after the panic (%v): every GetOrLoad of the key waits for it to expire", err)
				}
			}
			// Far less than the lease TTL, far more than a load takes.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			v, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { return "v2", nil })
			if err != nil || v != "v2" {
				t.Fatalf("GetOrLoad after the panic = %q, %v; want v2 at once", v, err)
			}
		})
	}
}

// A background refresh whose backend call panics before the load (a
// middleware's bug at the key's lock or the read under it) is reported
// to the error handler, as a loader's panic there is, instead of ending
// the program; the key's refresh is not left claimed: once the bug is
// gone, the next stale read refreshes it.
func TestBackgroundRefreshBackendPanic(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   backend.Op
		nth  int64
	}{
		{"trylock", backend.OpTryLock, 1},
		// The Gets: GetOrLoad's stale read, then the refresh's read
		// under the lock.
		{"reread", backend.OpGet, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			clock := memory.NewFakeClock(leaseT0)
			p := &panicOn{op: tt.op, nth: tt.nth}
			errs := make(chan error, 10)
			d := newDict[string](t, backend.Wrap(memory.New(memory.WithClock(clock)), p.mw), "p", memdict.WithClock(clock.Now),
				memdict.WithDefaultTTL(time.Minute), memdict.WithStaleWhileRevalidate(time.Hour),
				memdict.WithErrorHandler(func(err error) { errs <- err }))
			if err := d.Put("k", "old"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			p.armed.Store(true)
			v, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { return "new", nil })
			if err != nil || v != "old" {
				t.Fatalf("GetOrLoad = %q, %v; want the stale value", v, err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, memdict.ErrLoaderPanicked) {
					t.Fatalf("reported %v, want ErrLoaderPanicked", err)
				}
			case <-ctx.Done():
				t.Fatal("the refresh's panic was not reported")
			}
			p.armed.Store(false)
			waitFor(t, "a refresh once the bug is gone", func() bool {
				v, _ := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { return "new", nil })
				return v == "new"
			})
		})
	}
}

// A release of a lock that ran out of the call's time is tried again in
// the background; a panic there (a middleware's bug) is reported to the
// error handler instead of ending the program.
func TestBackgroundReleasePanic(t *testing.T) {
	var unlocks atomic.Int64
	mw := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpUnlock {
				if unlocks.Add(1) == 1 {
					<-ctx.Done() // the call's time runs out
					return backend.Result{Err: ctx.Err()}
				}
				panic("middleware bug at unlock")
			}
			return next(ctx, c)
		}
	}
	errs := make(chan error, 10)
	d := newDict[string](t, backend.Wrap(memory.New(), mw), "p", memdict.WithTimeout(300*time.Millisecond),
		memdict.WithErrorHandler(func(err error) { errs <- err }))
	if v, err := d.GetOrLoad(context.Background(), "k", func(context.Context, string) (string, error) { return "v", nil }); err != nil || v != "v" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, memdict.ErrLoaderPanicked) {
			t.Fatalf("reported %v, want ErrLoaderPanicked", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the background release's panic was not reported")
	}
}

// refreshPanicker is an Observer whose end of a "refresh" panics once
// armed, as a faulty user Observer's does.
type refreshPanicker struct{ armed atomic.Bool }

func (o *refreshPanicker) Start(ctx context.Context, op memdict.Operation) (context.Context, func(memdict.Outcome)) {
	return ctx, func(memdict.Outcome) {
		if op.Name == "refresh" && o.armed.CompareAndSwap(true, false) {
			panic("observer bug at the end of a refresh")
		}
	}
}

// A user callback that panics in GetOrLoad's background refresh, which
// no caller waits for and none can recover: the error handler, given the
// refresh's failure, or the Observer's end of the "refresh". Either
// ended the program. The panic is now recovered, counted in Stats and
// reported with ErrLoaderPanicked; the key's refresh is not left claimed.
func TestBackgroundRefreshCallbackPanic(t *testing.T) {
	for _, name := range []string{"errorhandler", "observer", "lockerror"} {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			clock := memory.NewFakeClock(leaseT0)
			// Armed, the error handler panics at each of its next two
			// calls: the report of the refresh's failure, and the
			// report of that panic.
			var handlerPanics atomic.Int64
			errs := make(chan error, 10)
			obs := &refreshPanicker{}
			// lockerror: the refresh's lock cannot be taken (once), and
			// the error handler panics at its report.
			var lockFails atomic.Int64
			be := backend.Wrap(memory.New(memory.WithClock(clock)), func(next backend.CallFunc) backend.CallFunc {
				return func(ctx context.Context, c backend.Call) backend.Result {
					if c.Op == backend.OpTryLock && lockFails.Add(-1) >= 0 {
						return backend.Result{Err: fmt.Errorf("trylock: %w", backend.ErrUnavailable)}
					}
					return next(ctx, c)
				}
			})
			d := newDict[string](t, be, "p", memdict.WithClock(clock.Now),
				memdict.WithDefaultTTL(time.Minute), memdict.WithStaleWhileRevalidate(time.Hour), memdict.WithObserver(obs),
				memdict.WithErrorHandler(func(err error) {
					if handlerPanics.Add(-1) >= 0 {
						panic("error handler bug")
					}
					errs <- err
				}))
			if err := d.Put("k", "old"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			load := func(context.Context, string) (string, error) { return "new", nil }
			switch name {
			case "errorhandler":
				handlerPanics.Store(2)
				load = func(context.Context, string) (string, error) { return "", errors.New("the source is down") }
			case "observer":
				obs.armed.Store(true)
			case "lockerror":
				lockFails.Store(1)
				handlerPanics.Store(1)
			}
			errors0 := d.Stats().Errors
			if v, err := d.GetOrLoad(ctx, "k", load); err != nil || v != "old" {
				t.Fatalf("GetOrLoad = %q, %v; want the stale value", v, err)
			}
			want := map[string]string{"observer": "observer bug", "errorhandler": "error handler bug", "lockerror": "error handler bug"}[name]
			select {
			case err := <-errs:
				if !errors.Is(err, memdict.ErrLoaderPanicked) || !strings.Contains(err.Error(), want) {
					t.Fatalf("reported %v, want ErrLoaderPanicked with the panic %q", err, want)
				}
			case <-ctx.Done():
				t.Fatal("the callback's panic was not reported")
			}
			if n := d.Stats().Errors - errors0; n == 0 {
				t.Errorf("the callback's panic was not counted in Stats")
			}
			waitFor(t, "a refresh after the panic", func() bool {
				v, _ := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { return "new", nil })
				return v == "new"
			})
		})
	}
}
