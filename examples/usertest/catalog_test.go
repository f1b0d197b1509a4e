package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/testing/memdicttest"
)

func newSource(calls *int) func(context.Context, string) (Product, error) {
	return func(_ context.Context, sku string) (Product, error) {
		*calls++
		return Product{SKU: sku, Name: "Tea " + sku, Cents: 450}, nil
	}
}

// A unit test: the cache is the in-memory fake, and its clock is ours.
func TestCachesForTenMinutes(t *testing.T) {
	cache, clock := memdicttest.NewDict[Product](t, "products")
	var calls int
	c := &Catalog{Cache: cache, Source: newSource(&calls)}
	ctx := context.Background()

	for range 3 {
		if p, err := c.Product(ctx, "T1"); err != nil || p.Cents != 450 {
			t.Fatalf("Product = %+v, %v", p, err)
		}
	}
	if calls != 1 {
		t.Fatalf("source read %d times, want 1", calls)
	}
	clock.Advance(11 * time.Minute)
	if _, err := c.Product(ctx, "T1"); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("after expiry source read %d times, want 2", calls)
	}
}

// The fault injector plays a dead cache server: the catalog still serves.
func TestServesWhenCacheIsDown(t *testing.T) {
	be, _ := memdicttest.NewBackend(t)
	faulty := memdicttest.NewFaulty(be)
	cache, err := memdict.New[Product](faulty, "products")
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	c := &Catalog{Cache: cache, Source: newSource(&calls)}
	ctx := context.Background()

	faulty.SetDown(true)
	for range 2 {
		if p, err := c.Product(ctx, "T2"); err != nil || p.Name != "Tea T2" {
			t.Fatalf("Product with cache down = %+v, %v", p, err)
		}
	}
	if calls != 2 || c.CacheErrors.Load() != 4 {
		t.Fatalf("calls = %d, cache errors = %d; want 2 and 4", calls, c.CacheErrors.Load())
	}

	faulty.SetDown(false)
	faulty.FailOp(memdicttest.OpSet, nil) // reads work, writes fail
	if _, err := c.Product(ctx, "T2"); err != nil {
		t.Fatal(err)
	}
	faulty.ClearFaults()
	if _, err := c.Product(ctx, "T2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Product(ctx, "T2"); err != nil {
		t.Fatal(err)
	}
	if calls != 4 {
		t.Fatalf("calls = %d, want 4 (the last read is a cache hit)", calls)
	}
}
