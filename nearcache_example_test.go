package memdict_test

import (
	"fmt"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// A near cache answers repeated reads of a key in the process. Over
// memcached or the memory backend, MaxStale bounds how long a write made
// by another process can go unseen; the Dict's own writes are seen at
// once. Over Redis, the server reports writes (CLIENT TRACKING) and
// MaxStale may be left 0.
func ExampleWithNearCache() {
	be := memory.New() // or backend.Open(ctx, "redis://127.0.0.1:6379/0")
	type Price struct {
		Cents    int
		Currency string
	}
	prices, err := memdict.New[Price](be, "prices", memdict.WithNearCache(memdict.NearCache{
		MaxEntries: 10_000,
		MaxBytes:   8 << 20,
		MaxStale:   2 * time.Second,
	}))
	if err != nil {
		panic(err)
	}
	_ = prices.Put("tea", Price{Cents: 350, Currency: "EUR"})
	for range 3 {
		p, _ := prices.Get("tea") // the first read fills the near cache
		fmt.Println(p.Cents, p.Currency)
	}
	_ = prices.Put("tea", Price{Cents: 400, Currency: "EUR"}) // drops the entry
	p, _ := prices.Get("tea")
	fmt.Println(p.Cents, p.Currency)

	st := prices.Stats().NearCache
	fmt.Printf("near cache: %d hits, %d misses, %d invalidation\n", st.Hits, st.Misses, st.Invalidations)
	// Output:
	// 350 EUR
	// 350 EUR
	// 350 EUR
	// 400 EUR
	// near cache: 2 hits, 2 misses, 1 invalidation
}
