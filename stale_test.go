package memdict_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
)

// memcachedLeasers returns the memcached backends of the stale-mark
// tests, on one server: the driver itself, and the driver under a
// wrapper (as a Tool's plugin is), whose abilities the Dict asks for at
// each call.
func memcachedLeasers(t *testing.T) []struct {
	name string
	be   backend.Backend
} {
	be := openURL(t, "memcached://"+testserver.Memcached(t).Addr+"?timeout=5s")
	pass := func(next backend.CallFunc) backend.CallFunc { return next }
	return []struct {
		name string
		be   backend.Backend
	}{{"Driver", be}, {"Wrapped", backend.Wrap(be, pass)}}
}

// reloadsOnce calls GetOrLoad on d until one call reloads key, and checks
// that every call answers old at once, that the reload stores newer, and
// that it is the only one.
func reloadsOnce(t *testing.T, ctx context.Context, d *memdict.Dict[string], key, old, newer string) {
	t.Helper()
	c := &counter{value: newer}
	waitFor(t, "GetOrLoad to reload the invalidated entry", func() bool {
		if v, err := d.GetOrLoad(ctx, key, c.load); err != nil || (v != old && v != newer) {
			t.Fatalf("GetOrLoad of the invalidated entry = %q, %v; want %q", v, err, old)
		}
		return c.calls.Load() >= 1
	})
	waitFor(t, "the reloaded value", func() bool {
		v, _, err := d.Lookup(ctx, key)
		return err == nil && v == newer
	})
	if v, err := d.GetOrLoad(ctx, key, c.load); err != nil || v != newer || c.calls.Load() != 1 {
		t.Fatalf("GetOrLoad after the reload = %q, %v (%d loads, want 1)", v, err, c.calls.Load())
	}
}

// A Get after Invalidate over memcached, whose server keeps the stale
// mark (md with I) out of the value, fills the near cache with an entry
// that is stale: GetOrLoad does not take it for a fresh one, and reloads.
func TestNearCacheKeepsServerStaleMark(t *testing.T) {
	for _, tc := range memcachedLeasers(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newDict[string](t, tc.be, "near-stale-"+tc.name, memdict.WithDefaultTTL(time.Hour),
				memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
			if err := d.Put("k", "v1"); err != nil {
				t.Fatal(err)
			}
			if err := d.Invalidate(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if v, ok := d.Get("k"); !ok || v != "v1" {
				t.Fatalf("Get after Invalidate = %q, %v; want the old value", v, ok)
			}
			reloadsOnce(t, ctx, d, "k", "v1", "v2")
		})
	}
}

// Invalidate of a hashed key (longer than the backend's keys) marks its
// envelope, not the memcached item: GetOrLoad still reloads it once, in
// the background, rather than serve it unreloaded until it expires (the
// lease TTL after Invalidate, an hour here).
func TestInvalidateHashedKeyOverLeases(t *testing.T) {
	for _, tc := range memcachedLeasers(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newDict[string](t, tc.be, "hashed-stale-"+tc.name, memdict.WithDefaultTTL(time.Hour),
				memdict.WithLeaseTTL(time.Hour))
			key := strings.Repeat("k", 300)
			if err := d.Put(key, "v1"); err != nil {
				t.Fatal(err)
			}
			if err := d.Invalidate(ctx, key); err != nil {
				t.Fatal(err)
			}
			reloadsOnce(t, ctx, d, key, "v1", "v2")
		})
	}
}

// Touch after Invalidate gives the entry a new TTL and leaves it stale,
// on both fill paths: the next GetOrLoad reloads it once. (With a
// Leaser, Invalidate marks the server's item, which Touch's rewrite of
// the value would clear.)
func TestTouchKeepsInvalidate(t *testing.T) {
	forEachFillPath(t, func(t *testing.T, ctx context.Context, clock *memory.FakeClock, be backend.Backend, _ func(string) int) {
		d1, d2 := dicts(t, be, memdict.WithClock(clock.Now), memdict.WithDefaultTTL(time.Minute))
		if err := d1.Put("k", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := d2.Invalidate(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if err := d1.Touch(ctx, "k", time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, ok := d2.Get("k"); !ok || v != "v1" {
			t.Fatalf("Get after Invalidate and Touch = %q, %v; want the old value", v, ok)
		}
		clock.Advance(30 * time.Minute) // past the lease TTL: Touch's TTL holds
		reloadsOnce(t, ctx, d1, "k", "v1", "v2")
	})
}
