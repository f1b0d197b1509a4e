package memdict_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// A background refresh whose loader hangs (until its context ends) ends
// within the lease TTL, and leaves no goroutine behind: the refresh, the
// lock's hold-off timer and the caller's return are all bounded.
func TestHangingRefreshEndsWithinLeaseTTL(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	// The stale entry outlives the refresh (after Invalidate it lives
	// max(SWR window, lease TTL)), so that the key still holds it after
	// the refresh fails.
	d1, _ := rvDicts(t, be, memdict.WithLeaseTTL(200*time.Millisecond), memdict.WithStaleWhileRevalidate(time.Hour))
	if err := d1.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	ended := make(chan error, 1)
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		<-ctx.Done() // hangs until the refresh's time is up
		ended <- ctx.Err()
		return "", ctx.Err()
	})
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v", v, err)
	}
	select {
	case err := <-ended:
		if err != context.DeadlineExceeded {
			t.Fatalf("the refresh's context ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a hanging background refresh was never cancelled")
	}
	waitFor(t, "the refresh's goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	if v, ok := rvGet(t, ctx, d1, "k"); !ok || v != "v1" {
		t.Fatalf("after a failed refresh the key holds %q, %v; want the stale v1", v, ok)
	}
}
