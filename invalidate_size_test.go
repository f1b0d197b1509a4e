package memdict_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// A value without a TTL that fills the store's value limit has no room
// for the expiry Invalidate would add to its envelope: Invalidate still
// marks it stale (the stale flag takes no room), and the value is kept.
func TestInvalidateValueAtSizeLimit(t *testing.T) {
	ctx := testCtx(t)
	const limit = 4096
	be := memory.New(memory.WithMaxValueLen(limit))
	d1, d2 := rvDicts(t, be, memdict.WithDefaultTTL(0), memdict.WithMaxValueLen(limit))
	// Find the longest string that fits.
	n := limit
	for ; n > 0; n-- {
		if err := d1.Store(ctx, "k", strings.Repeat("x", n)); err == nil {
			break
		}
	}
	big := strings.Repeat("x", n)
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatalf("Invalidate of a value at the size limit: %v", err)
	}
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != big {
		t.Fatalf("after Invalidate the value is gone or changed (%d bytes, %v)", len(v), ok)
	}
	loaded := make(chan struct{})
	v, err := d2.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) {
		defer close(loaded)
		return "small", nil
	})
	if err != nil || v != big {
		t.Fatalf("GetOrLoad after Invalidate = %d bytes, %v; want the stale value", len(v), err)
	}
	select {
	case <-loaded:
	case <-time.After(20 * time.Second):
		t.Fatal("the invalidated value was never reloaded")
	}
	rvWaitUnlocked(t, be, d2, "k")
	if v, ok := rvGet(t, ctx, d1, "k"); !ok || v != "small" {
		t.Fatalf("after the reload the key holds %d bytes, %v", len(v), ok)
	}
}
