package backend_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memory" // registers mem://
)

// A backend is opened from a URL and moves bytes under keys; a miss is
// backend.ErrNotFound.
func Example() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "mem://?max_bytes=67108864")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer be.Close()

	if err := be.Set(ctx, backend.Item{Key: "greeting", Value: []byte("hello")}); err != nil {
		fmt.Println(err)
		return
	}
	it, err := be.Get(ctx, "greeting")
	fmt.Printf("%s %v\n", it.Value, err)
	_, err = be.Get(ctx, "absent")
	fmt.Println(errors.Is(err, backend.ErrNotFound))
	// Output:
	// hello <nil>
	// true
}

// Validate checks a URL as Open would, parameters included, without
// connecting: a typo is caught when the configuration is read.
func ExampleValidate() {
	fmt.Println(backend.Validate("mem://?max_bytes=67108864"))
	fmt.Println(backend.Validate("mem://?max_byte=67108864"))
	// Output:
	// <nil>
	// backend: URL "mem://?max_byte=67108864": memory: unknown parameter(s) max_byte (known: max_bytes, max_key_length, max_value_length)
}
