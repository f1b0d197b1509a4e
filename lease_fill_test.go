package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
)

// A fill or refresh made under the key's lock
// never overwrites a value written while the loader ran, and a Remove
// issued while a refresh loads wins over it.

// rvDicts returns two Dicts of one prefix over be, as two processes have,
// with a default TTL of a minute.
func rvDicts(t *testing.T, be backend.Backend, opts ...memdict.Option) (*memdict.Dict[string], *memdict.Dict[string]) {
	t.Helper()
	return dicts(t, be, append([]memdict.Option{memdict.WithDefaultTTL(time.Minute)}, opts...)...)
}

// rvWaitUnlocked polls until key's fill lock on be is gone.
func rvWaitUnlocked(t *testing.T, be backend.Backend, d *memdict.Dict[string], key string) {
	t.Helper()
	lk := d.LockKey(key)
	waitFor(t, "the lock "+lk+" to be released", func() bool {
		_, err := be.Get(context.Background(), lk)
		return errors.Is(err, backend.ErrNotFound)
	})
}

func rvGet(t *testing.T, ctx context.Context, d *memdict.Dict[string], key string) (string, bool) {
	t.Helper()
	v, ok, err := d.Lookup(ctx, key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v, ok
}

func TestLockFillKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	fillKeepsStore(t, ctx, d1, d2)
}

// fillKeepsStore has d1's GetOrLoad of "k" load "old" while d2 stores
// "new" (the source of truth changed meanwhile), and checks that the newer
// "new" stands after the fill.
func fillKeepsStore(t *testing.T, ctx context.Context, d1, d2 *memdict.Dict[string]) {
	t.Helper()
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		// The source of truth changes and its writer stores the new
		// value while this (older) load is in flight.
		if err := d2.Store(ctx, key, "new"); err != nil {
			t.Error(err)
		}
		return "old", nil
	})
	if err != nil || v != "old" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "new" {
		t.Fatalf("after the fill the key holds %q, %v; want the newer Store's \"new\"", v, ok)
	}
}

func TestNegativeFillKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	_, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		if err := d2.Store(ctx, key, "real"); err != nil {
			t.Error(err)
		}
		return "", memdict.ErrNoValue
	})
	if !errors.Is(err, memdict.ErrNoValue) {
		t.Fatalf("GetOrLoad: %v, want ErrNoValue", err)
	}
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "real" {
		t.Fatalf("after the negative fill the key holds %q, %v; want the real value stored meanwhile", v, ok)
	}
}

// refreshWith stores v1 under "k" with d1, marks it stale, and has
// d1's GetOrLoad refresh it with a loader that first runs meanwhile (as
// another process writing during the load) and then loads v2. It checks
// that the stale v1 is served at once and returns once the refresh has
// ended and released the key's lock.
func refreshWith(t *testing.T, ctx context.Context, be backend.Backend, d1 *memdict.Dict[string], meanwhile func(ctx context.Context, key string) error) {
	t.Helper()
	if err := d1.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan struct{})
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		defer close(loaded)
		if err := meanwhile(ctx, key); err != nil {
			t.Error(err)
		}
		return "v2", nil
	})
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v; want v1", v, err)
	}
	<-loaded
	rvWaitUnlocked(t, be, d1, "k")
}

func TestRefreshKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	refreshWith(t, ctx, be, d1, func(ctx context.Context, key string) error { return d2.Store(ctx, key, "v3") })
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "v3" {
		t.Fatalf("after the refresh the key holds %q, %v; want the newer Store's v3", v, ok)
	}
}

func TestRemoveDuringRefreshWins(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	refreshWith(t, ctx, be, d1, d2.Remove)
	if v, ok := rvGet(t, ctx, d2, "k"); ok {
		t.Fatalf("a Remove issued during the refresh was undone: the key holds %q", v)
	}
}

// TestRemoveDuringMissLoadWins guards the fill of a missing key under the
// key's lock (the backends without leases): a Store and then a Remove
// issued while the loader runs (the usual "update the database, then
// delete the cache entry") are newer than the loaded value, which must not
// be written over the removed key. An Add of the loaded value would find
// the key free and bring the out-of-date value back until its TTL; the
// fill swaps the placeholder that holds the key instead, which the Remove
// deleted.
func TestRemoveDuringMissLoadWins(t *testing.T) {
	forEachLockPath(t, func(t *testing.T, ctx context.Context, be backend.Backend) {
		d1, d2 := rvDicts(t, be)
		v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
			if err := d2.Store(ctx, key, "new"); err != nil {
				t.Error(err)
			}
			if err := d2.Remove(ctx, key); err != nil {
				t.Error(err)
			}
			return "old", nil
		})
		if err != nil || v != "old" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
		if v, ok := rvGet(t, ctx, d2, "k"); ok {
			t.Fatalf("a Store+Remove issued during the load was undone: the key holds %q", v)
		}
		// Nothing is cached: the next GetOrLoad loads the current value.
		c := &counter{value: "current"}
		if v, err := d2.GetOrLoad(ctx, "k", c.load); err != nil || v != "current" || c.calls.Load() != 1 {
			t.Fatalf("GetOrLoad after the Remove = %q, %v after %d loads; want a load of current", v, err, c.calls.Load())
		}
	})
}

// An Add made while a miss loads under the key's lock stores its value
// over the load's placeholder, which reads as no value, and wins over the
// load's fill, as a Store does.
func TestAddDuringMissLoadWins(t *testing.T) {
	forEachLockPath(t, func(t *testing.T, ctx context.Context, be backend.Backend) {
		d1, d2 := rvDicts(t, be)
		v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
			if stored, err := d2.Add(ctx, key, "added"); !stored || err != nil {
				t.Errorf("Add during the load = %v, %v; want it stored", stored, err)
			}
			return "old", nil
		})
		if err != nil || v != "old" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
		if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "added" {
			t.Fatalf("after an Add during the load the key holds %q, %v; want added", v, ok)
		}
	})
}

// TestRemoveDuringNegativeLoadWins is TestRemoveDuringMissLoadWins for a
// loader that reports no value: the absence it found is out of date once
// a Store and a Remove were made meanwhile, and must not be cached (the
// next GetOrLoad would not call its loader until the negative TTL ran
// out).
func TestRemoveDuringNegativeLoadWins(t *testing.T) {
	forEachLockPath(t, func(t *testing.T, ctx context.Context, be backend.Backend) {
		d1, d2 := rvDicts(t, be)
		_, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
			if err := d2.Store(ctx, key, "real"); err != nil {
				t.Error(err)
			}
			if err := d2.Remove(ctx, key); err != nil {
				t.Error(err)
			}
			return "", memdict.ErrNoValue
		})
		if !errors.Is(err, memdict.ErrNoValue) {
			t.Fatalf("GetOrLoad: %v, want ErrNoValue", err)
		}
		c := &counter{value: "real"}
		if v, err := d2.GetOrLoad(ctx, "k", c.load); err != nil || v != "real" || c.calls.Load() != 1 {
			t.Fatalf("GetOrLoad after the Remove = %q, %v after %d loads; want a load (no cached absence)", v, err, c.calls.Load())
		}
	})
}

// TestMissLoadPlaceholderAcrossDicts: while a load holds a missing key
// with its placeholder, a GetOrLoad of another Dict (another process)
// waits for it rather than loading too, and gets its value; plain reads
// see a miss, not an error.
func TestMissLoadPlaceholderAcrossDicts(t *testing.T) {
	forEachLockPath(t, func(t *testing.T, ctx context.Context, be backend.Backend) {
		var locks atomic.Int64 // the key's lock tried: each wait of a GetOrLoad tries again
		be = backend.Wrap(be, func(next backend.CallFunc) backend.CallFunc {
			return func(ctx context.Context, c backend.Call) backend.Result {
				if c.Op == backend.OpTryLock {
					locks.Add(1)
				}
				return next(ctx, c)
			}
		})
		d1, d2 := rvDicts(t, be)
		c := &counter{gate: make(chan struct{}), value: "v"}
		var wg sync.WaitGroup
		results := make([]string, 2)
		errs := make([]error, 2)
		wg.Go(func() { results[0], errs[0] = d1.GetOrLoad(ctx, "k", c.load) })
		waitFor(t, "the first load", func() bool { return c.calls.Load() == 1 })
		before := locks.Load()
		wg.Go(func() { results[1], errs[1] = d2.GetOrLoad(ctx, "k", c.load) })
		waitFor(t, "the other Dict's GetOrLoad to wait for the lock", func() bool { return locks.Load() >= before+2 })

		if v, ok, err := d2.Lookup(ctx, "k"); ok || err != nil {
			t.Errorf("Lookup during the load = %q, %v, %v; want a miss", v, ok, err)
		}
		if v, ok := d1.Get("k"); ok {
			t.Errorf("Get during the load = %q; want a miss", v)
		}
		if m, err := d2.GetMulti(ctx, []string{"k"}); len(m) != 0 || err != nil {
			t.Errorf("GetMulti during the load = %v, %v; want none", m, err)
		}
		for k, err := range d2.Keys(ctx) {
			if errors.Is(err, backend.ErrNotSupported) {
				break
			}
			t.Errorf("Keys during the load yields %q, %v; want nothing", k, err)
		}

		close(c.gate)
		wg.Wait()
		for i, err := range errs {
			if err != nil || results[i] != "v" {
				t.Errorf("GetOrLoad %d = %q, %v; want v", i+1, results[i], err)
			}
		}
		if n := c.calls.Load(); n != 1 {
			t.Fatalf("%d loads, want 1", n)
		}
		if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "v" {
			t.Fatalf("after the load the key holds %q, %v; want v", v, ok)
		}
	})
}

// lockPathBackends are backends over which GetOrLoad coordinates the fills
// of a fleet with the key's lock (backend.TryLock) rather than a lease:
// the memory Store and Redis (backend.Lockers), and memcached when its
// leases are not to be had (a server without meta commands, a wrapper
// without the ability), here hidden by a middleware.
var lockPathBackends = []struct {
	name string
	open func(t *testing.T) backend.Backend
}{
	{"memory", func(*testing.T) backend.Backend { return memory.New() }},
	{"redis", func(t *testing.T) backend.Backend { return openURL(t, "redis://"+testserver.Redis(t).Addr) }},
	{"memcached", func(t *testing.T) backend.Backend {
		return backend.Wrap(openURL(t, "memcached://"+testserver.Memcached(t).Addr), noLeases)
	}},
}

// forEachLockPath runs test in a subtest over each of lockPathBackends.
func forEachLockPath(t *testing.T, test func(t *testing.T, ctx context.Context, be backend.Backend)) {
	for _, lb := range lockPathBackends {
		t.Run(lb.name, func(t *testing.T) { test(t, testCtx(t), lb.open(t)) })
	}
}

// noLeases is a middleware that says the backend under it cannot lease.
func noLeases(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, c backend.Call) backend.Result {
		switch c.Op {
		case backend.OpGetLease, backend.OpReleaseLease, backend.OpMarkStale:
			return backend.Result{Err: fmt.Errorf("no leases here: %w", backend.ErrNotSupported)}
		}
		return next(ctx, c)
	}
}

// TestDirectFillKeepsConcurrentStore: when the key's lock cannot be had
// (TryLock fails, so GetOrLoad loads without coordinating), a value stored
// while the loader ran still stands over the (older) loaded value, whether
// the key was missing or held an expired entry; the loaded value is
// stored when nothing was written meanwhile.
func TestDirectFillKeepsConcurrentStore(t *testing.T) {
	for _, expired := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired=%v", expired), func(t *testing.T) {
			ctx := testCtx(t)
			clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			be := backend.Wrap(memory.New(memory.WithClock(clock)), func(next backend.CallFunc) backend.CallFunc {
				return func(ctx context.Context, c backend.Call) backend.Result {
					if c.Op == backend.OpTryLock {
						return backend.Result{Err: errors.New("lock refused")}
					}
					return next(ctx, c)
				}
			})
			d1, d2 := rvDicts(t, be, memdict.WithClock(clock.Now))
			if expired {
				// An entry whose envelope has expired while the store
				// still holds it (as memcached's whole seconds keep it).
				if err := d1.Store(ctx, "k", "gone", memdict.TTL(time.Second)); err != nil {
					t.Fatal(err)
				}
				clock.Advance(999 * time.Millisecond)
				if err := be.Touch(ctx, d1.BackendKey("k"), time.Hour); err != nil {
					t.Fatal(err)
				}
				clock.Advance(2 * time.Millisecond)
			}
			fillKeepsStore(t, ctx, d1, d2)
			c := &counter{value: "loaded"}
			if v, err := d1.GetOrLoad(ctx, "other", c.load); err != nil || v != "loaded" {
				t.Fatalf("GetOrLoad of another key = %q, %v", v, err)
			}
			if v, ok := rvGet(t, ctx, d2, "other"); !ok || v != "loaded" {
				t.Fatalf("after a fill with no write meanwhile the key holds %q, %v; want loaded", v, ok)
			}
		})
	}
}
