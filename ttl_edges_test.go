package memdict_test

import (
	"math"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// A TTL of the largest Duration, "as good as never", is a valid TTL also
// with a stale-while-revalidate window: the backend's TTL (the TTL and the
// window) saturates instead of overflowing to a negative TTL, which the
// backend refused.
func TestHugeTTLWithStaleWhileRevalidate(t *testing.T) {
	ctx := testCtx(t)
	const huge = time.Duration(math.MaxInt64)
	d := newDict[string](t, memory.New(), "huge", memdict.WithStaleWhileRevalidate(time.Minute))
	if err := d.Store(ctx, "k", "v", memdict.TTL(huge)); err != nil {
		t.Fatalf("Store with TTL %v: %v", huge, err)
	}
	if err := d.Touch(ctx, "k", huge); err != nil {
		t.Fatalf("Touch with TTL %v: %v", huge, err)
	}
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("Get = %q, %v, %v; want \"v\"", v, ok, err)
	}
}

// A near-cached value is a miss from its envelope's expiry on, also when
// the clock reads a fraction of a millisecond: the near cache measured the
// time left from the clock's whole milliseconds, rounded down, and kept
// the entry up to a millisecond past the expiry.
func TestNearCacheEndsAtSubMillisecondExpiry(t *testing.T) {
	ctx := testCtx(t)
	clock := memory.NewFakeClock(time.Unix(1_000_000, 900_000)) // 0.9 ms past a millisecond
	d := newDict[string](t, memory.New(memory.WithClock(clock)), "subms",
		memdict.WithClock(clock.Now), memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	if err := d.Store(ctx, "k", "v", memdict.TTL(10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("Lookup before the TTL = %q, %v, %v; want \"v\"", v, ok, err)
	}
	// The envelope's expiry is the write's time and the TTL, rounded up to
	// a millisecond: 10.1 ms from the write. Past it, the value is gone.
	clock.Advance(10*time.Millisecond + 500*time.Microsecond)
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("Lookup %v after a write with TTL 10ms = %q, %v, %v; want a miss", 10*time.Millisecond+500*time.Microsecond, v, ok, err)
	}
}
