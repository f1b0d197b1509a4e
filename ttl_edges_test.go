package memdict_test

import (
	"math"
	"strings"
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

// Touch gives a value without a TTL that fills the store's value limit a
// TTL, though its envelope has no room for the expiry.
func TestTouchValueAtSizeLimit(t *testing.T) {
	ctx := testCtx(t)
	const limit = 4096
	clock := memory.NewFakeClock(time.Unix(1_000_000, 0))
	d := newDict[string](t, memory.New(memory.WithClock(clock), memory.WithMaxValueLen(limit)), "touchbig",
		memdict.WithClock(clock.Now), memdict.WithMaxValueLen(limit))
	n := limit
	for ; n > 0; n-- {
		if err := d.Store(ctx, "k", strings.Repeat("x", n)); err == nil {
			break
		}
	}
	if err := d.Touch(ctx, "k", time.Minute); err != nil {
		t.Fatalf("Touch of a value at the size limit: %v", err)
	}
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || len(v) != n {
		t.Fatalf("Lookup after Touch = %d bytes, %v, %v; want the value", len(v), ok, err)
	}
	clock.Advance(time.Minute)
	if _, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("Lookup a minute after Touch with a minute = %v, %v; want a miss", ok, err)
	}
}
