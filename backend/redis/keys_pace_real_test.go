package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestKeysScanRealServerPace: a real redis-server holding 50,000 keys is
// listed whole, at a pace far above the minimum a listing must keep, as
// is a prefix that matches none of them (pages without keys).
func TestKeysScanRealServerPace(t *testing.T) {
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	ctx := context.Background()
	const n = 50_000
	items := make([]backend.Item, 0, 5000)
	for i := range n {
		items = append(items, backend.Item{Key: fmt.Sprintf("pace:%d", i), Value: []byte("v")})
		if len(items) == cap(items) {
			if err := b.SetMulti(ctx, items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	start := time.Now()
	seen := make(map[string]bool, n)
	for k, err := range b.Keys(ctx, "pace:") {
		if err != nil {
			t.Fatalf("after %d keys: %v", len(seen), err)
		}
		seen[k] = true
	}
	took := time.Since(start)
	if len(seen) != n {
		t.Fatalf("listed %d keys of %d", len(seen), n)
	}
	start = time.Now()
	for k, err := range b.Keys(ctx, "none:") {
		if err != nil {
			t.Fatalf("listing a prefix that matches nothing: %v", err)
		}
		t.Fatalf("listed %q, which does not match", k)
	}
	empty := time.Since(start)
	t.Logf("%d keys in %v (%.0f keys/s); a prefix matching none in %v (%.0f keys scanned/s)",
		n, took, n/took.Seconds(), empty, n/empty.Seconds())
}
