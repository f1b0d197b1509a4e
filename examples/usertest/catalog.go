// Package catalog is a small piece of user code, to show how memdict users
// test theirs: catalog_test.go is a fast unit test on the in-memory fake
// with a fault injector, integration_test.go an integration test against a
// real memcached and Redis started in containers.
package catalog

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict"
)

// Product is what the catalog serves.
type Product struct {
	SKU   string `json:"sku"`
	Name  string `json:"name"`
	Cents int    `json:"cents"`
}

// Catalog reads products through a cache. A cache that is out of order
// must never make it fail: it then reads the source directly. A Catalog is
// safe for concurrent use if Source is.
type Catalog struct {
	// Cache holds products by SKU.
	Cache *memdict.Dict[Product]
	// Source reads a product when the cache does not have it.
	Source func(ctx context.Context, sku string) (Product, error)
	// CacheErrors counts cache failures seen (for tests and metrics).
	CacheErrors atomic.Int64
}

// Product returns the product sku, from the cache when it has it.
func (c *Catalog) Product(ctx context.Context, sku string) (Product, error) {
	p, ok, err := c.Cache.Lookup(ctx, sku)
	if err != nil {
		c.CacheErrors.Add(1)
	}
	if ok {
		return p, nil
	}
	p, err = c.Source(ctx, sku)
	if err != nil {
		return Product{}, fmt.Errorf("catalog: product %q: %w", sku, err)
	}
	if err := c.Cache.Store(ctx, sku, p, memdict.TTL(10*time.Minute)); err != nil {
		c.CacheErrors.Add(1)
	}
	return p, nil
}
