package catalog

import (
	"context"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/all"
	"github.com/memdict/memdict/testing/containers"
)

// An integration test: the same catalog against a real memcached and a real
// Redis, each started in a container for this test (and removed after it).
// Without a container engine the test is skipped.
func TestCatalogOnRealServers(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...containers.Option) *containers.Container{
		"memcached": containers.Memcached,
		"redis":     containers.Redis,
	} {
		t.Run(name, func(t *testing.T) {
			c := start(t)
			ctx := context.Background()
			be, err := backend.Open(ctx, c.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			cache, err := memdict.New[Product](be, "products")
			if err != nil {
				t.Fatal(err)
			}
			var calls int
			cat := &Catalog{Cache: cache, Source: newSource(&calls)}
			for range 3 {
				p, err := cat.Product(ctx, "T3")
				if err != nil || p.Name != "Tea T3" {
					t.Fatalf("Product = %+v, %v", p, err)
				}
			}
			if calls != 1 || cat.CacheErrors.Load() != 0 {
				t.Fatalf("source calls = %d, cache errors = %d; want 1 and 0", calls, cat.CacheErrors.Load())
			}
		})
	}
}
