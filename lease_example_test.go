package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// waitForValue polls d until key holds want (a background refresh is
// writing it), for at most ten seconds.
func waitForValue[V comparable](d *memdict.Dict[V], key string, want V) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if v, _ := d.Get(key); v == want {
			return
		}
	}
}

// With stale-while-revalidate, an entry past its fresh time is returned at
// once while one caller, fleet-wide, reloads it in the background.
func ExampleDict_GetOrLoad_staleWhileRevalidate() {
	ctx := context.Background()
	clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	be := memory.New(memory.WithClock(clock)) // or backend.Open(ctx, "memcached://127.0.0.1:11211")
	prices, err := memdict.New[int](be, "prices",
		memdict.WithDefaultTTL(time.Minute),              // fresh for a minute,
		memdict.WithStaleWhileRevalidate(10*time.Minute), // then stale, and reloaded, for ten more
		memdict.WithClock(clock.Now))                     // (a fake clock, for the example)
	if err != nil {
		panic(err)
	}
	var loads atomic.Int32
	price := 350
	load := func(ctx context.Context, key string) (int, error) {
		loads.Add(1)
		return price, nil // the database's price
	}
	p, _ := prices.GetOrLoad(ctx, "tea", load) // a miss: loads
	fmt.Println(p, loads.Load())

	price = 360
	clock.Advance(time.Minute)                // the entry is now stale
	p, _ = prices.GetOrLoad(ctx, "tea", load) // at once, while one caller reloads
	fmt.Println(p)
	waitForValue(prices, "tea", 360)
	p, _ = prices.GetOrLoad(ctx, "tea", load)
	fmt.Println(p, loads.Load())
	// Output:
	// 350 1
	// 350
	// 360 2
}

// Invalidate marks an entry stale rather than deleting it: after a change
// to the source of truth, the next GetOrLoad calls get the old value at
// once while one caller reloads it, instead of all calling the loader.
func ExampleDict_Invalidate() {
	ctx := context.Background()
	users, err := memdict.New[string](memory.New(), "users", memdict.WithDefaultTTL(time.Hour))
	if err != nil {
		panic(err)
	}
	name := "Ada Lovelace"
	load := func(ctx context.Context, key string) (string, error) { return name, nil }
	v, _ := users.GetOrLoad(ctx, "ada", load)
	fmt.Println(v)

	name = "Ada King, Countess of Lovelace" // the database changed
	if err := users.Invalidate(ctx, "ada"); err != nil {
		panic(err)
	}
	v, _ = users.Get("ada") // Get still serves the stale value
	fmt.Println(v)
	v, _ = users.GetOrLoad(ctx, "ada", load) // so does GetOrLoad, and it reloads
	fmt.Println(v)
	waitForValue(users, "ada", name)
	v, _ = users.GetOrLoad(ctx, "ada", load)
	fmt.Println(v)
	// Output:
	// Ada Lovelace
	// Ada Lovelace
	// Ada Lovelace
	// Ada King, Countess of Lovelace
}

// A loader reports that a key has no value with an error wrapping
// ErrNoValue; GetOrLoad caches the absence for the negative TTL.
func ExampleErrNoValue() {
	ctx := context.Background()
	users, err := memdict.New[string](memory.New(), "users", memdict.WithNegativeTTL(time.Minute))
	if err != nil {
		panic(err)
	}
	load := func(ctx context.Context, key string) (string, error) {
		fmt.Println("querying", key)
		return "", fmt.Errorf("no user %q: %w", key, memdict.ErrNoValue)
	}
	for range 2 {
		_, err := users.GetOrLoad(ctx, "nobody", load)
		fmt.Println(errors.Is(err, memdict.ErrNoValue))
	}
	_, found := users.Get("nobody")
	fmt.Println(found)
	// Output:
	// querying nobody
	// true
	// true
	// false
}
