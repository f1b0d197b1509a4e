package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/keyspace"
)

var leaseT0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// counter is a loader that counts its calls and, while gate is not nil,
// blocks each call until the gate is closed.
type counter struct {
	calls atomic.Int64
	gate  chan struct{}
	value string
	err   error
}

func (c *counter) load(ctx context.Context, key string) (string, error) {
	c.calls.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if c.err != nil {
		return "", c.err
	}
	return c.value, nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLeaseOptionsValidated(t *testing.T) {
	for _, opt := range []memdict.Option{
		memdict.WithStaleWhileRevalidate(-1), memdict.WithLeaseTTL(-1), memdict.WithNegativeTTL(-1), memdict.WithClock(nil),
	} {
		if _, err := memdict.New[string](memory.New(), "p", opt); err == nil {
			t.Error("New accepted an invalid option")
		}
	}
}

// Values written without a TTL carry no times: their envelope is as before
// and reading them does not read the clock. (Reading the namespace
// generation does, to time the renewal of its key's TTL: once per
// refresh, not per call.)
func TestNoTTLNoClock(t *testing.T) {
	var reads atomic.Int64
	clock := func() time.Time { reads.Add(1); return leaseT0 }
	be := memory.New()
	d := newDict[string](t, be, "p", memdict.WithClock(clock), memdict.WithGenerationRefresh(time.Hour))
	if _, err := d.Generation(t.Context()); err != nil {
		t.Fatal(err)
	}
	reads.Store(0)
	if err := d.Put("k", "v"); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); !ok || v != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if n := reads.Load(); n != 0 {
		t.Fatalf("the clock was read %d times", n)
	}
	it, _ := be.Get(t.Context(), d.BackendKey("k"))
	if it.Value[2] != 0 {
		t.Fatalf("flags of a value without TTL = %#x, want 0", it.Value[2])
	}
}

// On a store that ignores TTLs, the envelope's expiry makes every read
// path miss an expired value.
func TestLogicalExpiryOnPersistentStore(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(leaseT0)
	be := persistent{memory.New(memory.WithClock(clock))}
	d := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute))
	near := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute),
		memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	if err := d.PutMulti(ctx, map[string]string{"a": "1", "b": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, "forever", "f", memdict.TTL(0)); err != nil {
		t.Fatal(err)
	}
	if v, ok := near.Get("a"); !ok || v != "1" {
		t.Fatalf("near Get = %q, %v", v, ok)
	}
	clock.Advance(time.Minute - time.Millisecond)
	if v, ok := near.Get("a"); !ok || v != "1" {
		t.Fatalf("near Get before expiry = %q, %v", v, ok)
	}
	clock.Advance(time.Millisecond)

	if _, ok, err := d.Lookup(ctx, "a"); ok || err != nil {
		t.Fatalf("Lookup after expiry = %v, %v", ok, err)
	}
	misses := near.Stats().NearCache.Misses
	if _, ok := near.Get("a"); ok {
		t.Fatal("the near cache served an expired value")
	}
	if near.Stats().NearCache.Misses != misses+1 {
		t.Fatal("the near cache did not miss the expired value")
	}
	if m, err := d.GetMulti(ctx, []string{"a", "b", "forever"}); err != nil || len(m) != 1 || m["forever"] != "f" {
		t.Fatalf("GetMulti = %v, %v", m, err)
	}
	var keys []string
	for k, err := range d.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"forever"}) {
		t.Fatalf("Keys = %q", keys)
	}
	for e, err := range d.All(ctx) {
		if err != nil || e.Key != "forever" {
			t.Fatalf("All yields %+v, %v", e, err)
		}
	}
	if _, ok, _ := d.Begin().Lookup(ctx, "a"); ok {
		t.Fatal("Tx.Lookup served an expired value")
	}
	// Update sees no value, and writes over the expired one.
	v, err := d.Update(ctx, "a", func(old string, ok bool) (string, error) {
		if ok {
			return "", fmt.Errorf("update saw %q", old)
		}
		return "new", nil
	})
	if err != nil || v != "new" {
		t.Fatalf("Update = %q, %v", v, err)
	}
	if v, ok := d.Get("a"); !ok || v != "new" {
		t.Fatalf("after Update Get = %q, %v", v, ok)
	}
	c := &counter{value: "loaded"}
	if v, err := d.GetOrLoad(ctx, "b", c.load); err != nil || v != "loaded" || c.calls.Load() != 1 {
		t.Fatalf("GetOrLoad = %q, %v after %d loads", v, err, c.calls.Load())
	}
	// Touch gives the envelope the new expiry.
	if err := d.Touch(ctx, "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if v, ok := d.Get("b"); !ok || v != "loaded" {
		t.Fatalf("after Touch Get = %q, %v", v, ok)
	}
	if err := d.Touch(ctx, "b", 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(100 * time.Hour)
	if v, ok := d.Get("b"); !ok || v != "loaded" {
		t.Fatalf("after Touch(0) Get = %q, %v", v, ok)
	}
	if err := d.Touch(ctx, "a", time.Hour); !errors.Is(err, memdict.ErrNotFound) {
		t.Fatalf("Touch of an expired value: %v", err)
	}
}

// dicts returns two Dicts on one backend, as two processes would have.
func dicts(t *testing.T, be backend.Backend, opts ...memdict.Option) (*memdict.Dict[string], *memdict.Dict[string]) {
	return newDict[string](t, be, "p", opts...), newDict[string](t, be, "p", opts...)
}

// Both ways a backend coordinates fills: leases (a backend.Leaser) and
// locks (backend.TryLock on the memory Store's Locker).
var fillPaths = []struct {
	name string
	make func(*memory.FakeClock) (backend.Backend, func(key string) int)
}{
	{"Lock", func(c *memory.FakeClock) (backend.Backend, func(string) int) {
		s := newSpy(memory.New(memory.WithClock(c)))
		return s, s.readsOf
	}},
	{"Leaser", func(c *memory.FakeClock) (backend.Backend, func(string) int) {
		f := newFakeLeaser(c)
		return f, func(string) int { return int(f.leasesN.Load()) }
	}},
}

// forEachFillPath runs test once on each of fillPaths, in a subtest with
// a fake clock at leaseT0 and the backend that fill path makes on it.
func forEachFillPath(t *testing.T, test func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, reads func(key string) int)) {
	for _, fp := range fillPaths {
		t.Run(fp.name, func(t *testing.T) {
			clock := memory.NewFakeClock(leaseT0)
			be, reads := fp.make(clock)
			test(t, testCtx(t), clock, be, reads)
		})
	}
}

// getOrLoadAcross calls GetOrLoad n times, alternately on each of ds,
// and fails the test unless every call answers want at once.
func getOrLoadAcross(t *testing.T, ctx context.Context, ds []*memdict.Dict[string], n int, load func(context.Context, string) (string, error), want, what string) {
	t.Helper()
	for i := range n {
		if v, err := ds[i%len(ds)].GetOrLoad(ctx, "k", load); err != nil || v != want {
			t.Fatalf("GetOrLoad %s = %q, %v; want %s at once", what, v, err, want)
		}
	}
}

func TestGetOrLoadOneLoadAcrossDicts(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, reads func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute))
		c := &counter{gate: make(chan struct{}), value: "v"}
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			d := d1
			if i%2 == 1 {
				d = d2
			}
			wg.Go(func() {
				if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v" {
					t.Errorf("GetOrLoad = %q, %v", v, err)
				}
			})
		}
		bk := d1.BackendKey("k")
		waitFor(t, "every caller to read", func() bool { return reads(bk) >= n })
		waitFor(t, "the load", func() bool { return c.calls.Load() == 1 })
		close(c.gate)
		wg.Wait()
		if got := c.calls.Load(); got != 1 {
			t.Fatalf("%d loads, want 1", got)
		}
		if st := d1.Stats().Loads + d2.Stats().Loads; st != 1 {
			t.Fatalf("Stats.Loads sum to %d", st)
		}
	})
}

func TestStaleWhileRevalidate(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute),
			memdict.WithStaleWhileRevalidate(time.Minute))
		v1 := &counter{value: "v1"}
		if v, err := d1.GetOrLoad(ctx, "k", v1.load); err != nil || v != "v1" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
		// Stale, for one more minute. (A Leaser's server counts the
		// refresh window from its own TTL, in whole seconds on
		// memcached: give it one.)
		clock.Advance(time.Minute + time.Second)
		v2 := &counter{gate: make(chan struct{}), value: "v2"}
		getOrLoadAcross(t, ctx, []*memdict.Dict[string]{d1, d2}, 10, v2.load, "v1", "of a stale entry")
		waitFor(t, "the background reload", func() bool { return v2.calls.Load() >= 1 })
		if v, ok := d2.Get("k"); !ok || v != "v1" {
			t.Fatalf("Get during the reload = %q, %v", v, ok)
		}
		close(v2.gate)
		waitFor(t, "the reloaded value", func() bool { v, _ := d2.Get("k"); return v == "v2" })
		if n := v2.calls.Load(); n != 1 {
			t.Fatalf("%d reloads, want 1", n)
		}
		// Fresh again: no reload.
		if v, err := d2.GetOrLoad(ctx, "k", v2.load); err != nil || v != "v2" || v2.calls.Load() != 1 {
			t.Fatalf("GetOrLoad after the reload = %q, %v (%d loads)", v, err, v2.calls.Load())
		}
		// Past the window, a miss: a load in the foreground.
		clock.Advance(2*time.Minute + time.Millisecond)
		v3 := &counter{value: "v3"}
		if v, err := d1.GetOrLoad(ctx, "k", v3.load); err != nil || v != "v3" || v3.calls.Load() != 1 {
			t.Fatalf("GetOrLoad past the window = %q, %v (%d loads)", v, err, v3.calls.Load())
		}
	})
}

func TestInvalidate(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithLeaseTTL(5*time.Second))
		if err := d1.Invalidate(ctx, "absent"); err != nil {
			t.Fatalf("Invalidate of an absent key: %v", err)
		}
		if err := d1.Put("k", "v1"); err != nil { // no TTL
			t.Fatal(err)
		}
		if err := d2.Invalidate(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if v, ok := d1.Get("k"); !ok || v != "v1" {
			t.Fatalf("Get after Invalidate = %q, %v; want the old value", v, ok)
		}
		v2 := &counter{gate: make(chan struct{}), value: "v2"}
		getOrLoadAcross(t, ctx, []*memdict.Dict[string]{d1, d2}, 10, v2.load, "v1", "after Invalidate")
		waitFor(t, "the reload", func() bool { return v2.calls.Load() >= 1 })
		close(v2.gate)
		waitFor(t, "the reloaded value", func() bool { v, _ := d1.Get("k"); return v == "v2" })
		if n := v2.calls.Load(); n != 1 {
			t.Fatalf("%d reloads, want 1", n)
		}
		// Invalidated and never revalidated, an entry lives the lease
		// TTL at most.
		if err := d1.Invalidate(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(5 * time.Second)
		if v, ok := d1.Get("k"); ok {
			t.Fatalf("an invalidated entry outlived the lease TTL: %q", v)
		}
	})
}

func TestNegativeCaching(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Hour))
		c := &counter{err: fmt.Errorf("user 7: %w", memdict.ErrNoValue)}
		for i := range 4 {
			d := []*memdict.Dict[string]{d1, d2}[i%2]
			_, err := d.GetOrLoad(ctx, "k", c.load)
			var oe *memdict.OpError
			if !errors.Is(err, memdict.ErrNoValue) || !errors.As(err, &oe) || oe.Op != "load" || oe.Key != "k" {
				t.Fatalf("GetOrLoad = %v, want an *OpError of load wrapping ErrNoValue", err)
			}
		}
		if n := c.calls.Load(); n != 1 {
			t.Fatalf("%d loads within the negative TTL, want 1", n)
		}
		if _, ok, err := d1.Lookup(ctx, "k"); ok || err != nil {
			t.Fatalf("Lookup of a cached absence = %v, %v; want a miss", ok, err)
		}
		if m, err := d1.GetMulti(ctx, []string{"k"}); len(m) != 0 || err != nil {
			t.Fatalf("GetMulti of a cached absence = %v, %v", m, err)
		}
		for k := range d1.Keys(ctx) {
			t.Fatalf("Keys lists the cached absence %q", k)
		}
		clock.Advance(memdict.DefaultNegativeTTL)
		c.err, c.value = nil, "now it exists"
		if v, err := d2.GetOrLoad(ctx, "k", c.load); err != nil || v != "now it exists" || c.calls.Load() != 2 {
			t.Fatalf("after the negative TTL GetOrLoad = %q, %v (%d loads)", v, err, c.calls.Load())
		}
	})
}

// Add stores over a cached absence, which every read reports as a miss:
// it took the backend's "not stored" for a value and returned false, nil,
// storing nothing for as long as the negative TTL lasted. A real value
// still makes Add return false, and a cached absence it replaced is gone
// for GetOrLoad too.
func TestAddOverCachedAbsence(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Hour))
		c := &counter{err: memdict.ErrNoValue}
		if _, err := d1.GetOrLoad(ctx, "k", c.load); !errors.Is(err, memdict.ErrNoValue) {
			t.Fatalf("GetOrLoad = %v, want ErrNoValue", err)
		}
		if _, ok, err := d2.Lookup(ctx, "k"); ok || err != nil {
			t.Fatalf("Lookup of a cached absence = %v, %v; want a miss", ok, err)
		}
		if stored, err := d2.Add(ctx, "k", "v"); !stored || err != nil {
			t.Fatalf("Add over a cached absence = %v, %v; want it stored", stored, err)
		}
		if v, ok, err := d1.Lookup(ctx, "k"); !ok || err != nil || v != "v" {
			t.Fatalf("Lookup after the Add = %q, %v, %v", v, ok, err)
		}
		if stored, err := d1.Add(ctx, "k", "w"); stored || err != nil {
			t.Fatalf("Add over a value = %v, %v; want false, nil", stored, err)
		}
		if v, err := d1.GetOrLoad(ctx, "k", c.load); err != nil || v != "v" || c.calls.Load() != 1 {
			t.Fatalf("GetOrLoad after the Add = %q, %v (%d loads)", v, err, c.calls.Load())
		}
	})
}

func TestNegativeTTLCappedAndOff(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(leaseT0)
	be := memory.New(memory.WithClock(clock))
	capped := newDict[string](t, be, "capped", memdict.WithClock(clock.Now), memdict.WithDefaultTTL(2*time.Second))
	off := newDict[string](t, be, "off", memdict.WithClock(clock.Now), memdict.WithNegativeTTL(0))
	c := &counter{err: memdict.ErrNoValue}
	for range 2 {
		if _, err := capped.GetOrLoad(ctx, "k", c.load); !errors.Is(err, memdict.ErrNoValue) {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	if _, err := capped.GetOrLoad(ctx, "k", c.load); !errors.Is(err, memdict.ErrNoValue) || c.calls.Load() != 2 {
		t.Fatalf("%v after %d loads: the absence outlived the Dict's TTL", err, c.calls.Load())
	}
	c.calls.Store(0)
	for range 3 {
		if _, err := off.GetOrLoad(ctx, "k", c.load); !errors.Is(err, memdict.ErrNoValue) {
			t.Fatal(err)
		}
	}
	if n := c.calls.Load(); n != 3 {
		t.Fatalf("WithNegativeTTL(0): %d loads for 3 calls", n)
	}
}

// A loader error other than ErrNoValue caches nothing and releases the
// lease at once: the next call loads without waiting for it to expire
// (the fake clock never moves here).
func TestLoadErrorReleasesLease(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d := newDict[string](t, be, "p", memdict.WithClock(clock.Now))
		boom := errors.New("database down")
		c := &counter{err: boom}
		if _, err := d.GetOrLoad(ctx, "k", c.load); !errors.Is(err, boom) {
			t.Fatalf("GetOrLoad = %v", err)
		}
		c.err, c.value = nil, "v"
		if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v" || c.calls.Load() != 2 {
			t.Fatalf("GetOrLoad after a failed load = %q, %v (%d loads)", v, err, c.calls.Load())
		}
	})
}

// A winner that never fills holds the lease until its TTL: then another
// caller takes over.
func TestLeaseTakeover(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, reads func(string) int) {
		d := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithLeaseTTL(3*time.Second))
		bk := d.BackendKey("k")
		if l, ok := be.(backend.Leaser); ok {
			lease, err := l.GetLease(ctx, bk, backend.LeaseOptions{TTL: 3 * time.Second})
			if err != nil || !lease.Won {
				t.Fatalf("GetLease = %+v, %v", lease, err)
			}
		} else if won, err := backend.TryLock(ctx, be, keyspace.LeaseKey(bk, memdict.DefaultMaxKeyLen), backend.NewLockToken(), 3*time.Second); !won || err != nil {
			t.Fatalf("TryLock = %v, %v", won, err)
		}
		c := &counter{value: "v"}
		done := make(chan error, 1)
		go func() {
			v, err := d.GetOrLoad(ctx, "k", c.load)
			if err == nil && v != "v" {
				err = fmt.Errorf("GetOrLoad = %q", v)
			}
			done <- err
		}()
		before := reads(bk)
		waitFor(t, "the caller to wait and read again", func() bool { return reads(bk) >= before+3 })
		if n := c.calls.Load(); n != 0 {
			t.Fatalf("the loader ran while another held the lease (%d)", n)
		}
		clock.Advance(3 * time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := c.calls.Load(); n != 1 {
			t.Fatalf("%d loads, want 1", n)
		}
	})
}

// A caller waiting for another's fill stops with its context.
func TestLeaseWaiterContext(t *testing.T) {
	clock := memory.NewFakeClock(leaseT0)
	be := memory.New(memory.WithClock(clock))
	d := newDict[string](t, be, "p", memdict.WithClock(clock.Now))
	if won, _ := backend.TryLock(t.Context(), be, keyspace.LeaseKey(d.BackendKey("k"), memdict.DefaultMaxKeyLen), "other", time.Minute); !won {
		t.Fatal("TryLock lost")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	c := &counter{value: "v"}
	if _, err := d.GetOrLoad(ctx, "k", c.load); !errors.Is(err, context.DeadlineExceeded) || c.calls.Load() != 0 {
		t.Fatalf("GetOrLoad = %v after %d loads, want the deadline", err, c.calls.Load())
	}
}

// A Leaser whose server has no meta protocol: the Dict falls back to locks.
func TestLeaserNotSupportedFallsBack(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(leaseT0)
	f := newFakeLeaser(clock)
	f.noMeta.Store(true)
	d := newDict[string](t, f, "p", memdict.WithClock(clock.Now))
	c := &counter{value: "v"}
	for range 2 {
		if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
	}
	if err := d.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	c.value = "v2"
	if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v" {
		t.Fatalf("GetOrLoad after Invalidate = %q, %v", v, err)
	}
	waitFor(t, "the reload", func() bool { v, _ := d.Get("k"); return v == "v2" })
	if n := c.calls.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
}

// A background refresh that fails or panics keeps the stale value and
// reports the failure to the error handler.
func TestBackgroundRefreshFailure(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(leaseT0)
	be := memory.New(memory.WithClock(clock))
	var mu sync.Mutex
	var errs []error
	d := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute),
		memdict.WithStaleWhileRevalidate(time.Hour), memdict.WithErrorHandler(func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}))
	if err := d.Put("k", "old"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	boom := errors.New("boom")
	for i, load := range []func(context.Context, string) (string, error){
		func(context.Context, string) (string, error) { return "", boom },
		func(context.Context, string) (string, error) { panic("loader bug") },
	} {
		if v, err := d.GetOrLoad(ctx, "k", load); err != nil || v != "old" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
		waitFor(t, "the failure to be reported", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(errs) == i+1
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(errs[0], boom) || !errors.Is(errs[1], memdict.ErrLoaderPanicked) {
		t.Fatalf("reported %v", errs)
	}
	// The lock was released: a refresh can run again.
	waitFor(t, "the refresh to end", func() bool {
		v, _ := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { return "new", nil })
		return v == "new"
	})
}

// The near cache answers GetOrLoad only with fresh entries.
func TestNearCacheStaleGoesToBackend(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(leaseT0)
	be := memory.New(memory.WithClock(clock))
	d := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute),
		memdict.WithStaleWhileRevalidate(time.Minute), memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	c := &counter{value: "v1"}
	if _, err := d.GetOrLoad(ctx, "k", c.load); err != nil {
		t.Fatal(err)
	}
	d.Get("k") // near-cached
	hits := d.Stats().NearCache.Hits
	if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v1" || d.Stats().NearCache.Hits != hits+1 {
		t.Fatalf("fresh GetOrLoad = %q, %v, near hits %d", v, err, d.Stats().NearCache.Hits-hits)
	}
	clock.Advance(time.Minute)
	c.value = "v2"
	if v, _ := d.Get("k"); v != "v1" {
		t.Fatalf("Get of a stale near entry = %q", v)
	}
	if v, err := d.GetOrLoad(ctx, "k", c.load); err != nil || v != "v1" {
		t.Fatalf("stale GetOrLoad = %q, %v", v, err)
	}
	waitFor(t, "the refresh", func() bool { v, _ := d.Get("k"); return v == "v2" })
}

// An invalidated absence is loaded again at once.
func TestInvalidateAbsence(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now))
		c := &counter{err: memdict.ErrNoValue}
		if _, err := d1.GetOrLoad(ctx, "k", c.load); !errors.Is(err, memdict.ErrNoValue) {
			t.Fatal(err)
		}
		if err := d2.Invalidate(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := d1.Lookup(ctx, "k"); ok || err != nil {
			t.Fatalf("Lookup of an invalidated absence = %v, %v", ok, err)
		}
		c.err, c.value = nil, "created"
		if v, err := d1.GetOrLoad(ctx, "k", c.load); err != nil || v != "created" || c.calls.Load() != 2 {
			t.Fatalf("GetOrLoad after invalidating the absence = %q, %v (%d loads)", v, err, c.calls.Load())
		}
		if v, ok := d2.Get("k"); !ok || v != "created" {
			t.Fatalf("Get = %q, %v", v, ok)
		}
	})
}
