package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// A Store with a FakeClock expires items exactly when the test says so.
func Example() {
	ctx := context.Background()
	clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memory.New(memory.WithClock(clock), memory.WithMaxBytes(64<<20))
	defer store.Close()

	_ = store.Set(ctx, backend.Item{Key: "visits", Value: []byte("41"), TTL: time.Minute})
	n, _ := store.Increment(ctx, "visits", 1)
	fmt.Println("visits:", n)

	err := store.Add(ctx, backend.Item{Key: "visits", Value: []byte("0")})
	fmt.Println("add existing:", errors.Is(err, backend.ErrNotStored))

	clock.Advance(time.Minute)
	_, err = store.Get(ctx, "visits")
	fmt.Println("after a minute:", errors.Is(err, backend.ErrNotFound))
	// Output:
	// visits: 42
	// add existing: true
	// after a minute: true
}

// Opening a Store from a URL, as a program configured by a string does.
func Example_url() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "mem://?max_bytes=1048576&max_value_length=4096")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer be.Close()

	err = be.Set(ctx, backend.Item{Key: "big", Value: make([]byte, 5000)})
	fmt.Println(errors.Is(err, backend.ErrValueTooLarge))

	// Misspelt parameters are rejected, not ignored.
	_, err = backend.Open(ctx, "mem://?max_byte=1")
	fmt.Println(err != nil)
	// Output:
	// true
	// true
}
