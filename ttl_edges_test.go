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
