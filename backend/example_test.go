package backend_test

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Wrap builds a backend from middleware: each sees every call, of the
// Backend methods and of the optional abilities alike, as a Call value,
// and its Result. Here one logs the operation, its key and its outcome,
// and the wrapper keeps the abilities of the backend under it (the memory
// backend's lock; it has no leases, which the wrapper says at the call).
func ExampleWrap() {
	ctx := context.Background()
	logCalls := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			r := next(ctx, c)
			key := c.Key
			if c.Op == backend.OpSet {
				key = c.Item.Key
			}
			fmt.Printf("%s %q: %v\n", c.Op, key, r.Err)
			return r
		}
	}
	be, _ := backend.Open(ctx, "mem://")
	w := backend.Wrap(be, logCalls)
	defer w.Close()

	_ = w.Set(ctx, backend.Item{Key: "greeting", Value: []byte("hello")})
	_, _ = w.Get(ctx, "absent")
	_, _ = backend.TryLock(ctx, w, "lock", backend.NewLockToken(), time.Minute)
	_, err := backend.GetLease(ctx, w, "greeting", backend.LeaseOptions{TTL: time.Second})
	fmt.Println(backend.NotSupported(err))
	// Output:
	// set "greeting": <nil>
	// get "absent": backend: not found
	// trylock "lock": <nil>
	// getlease "greeting": leases: backend: not supported
	// true
	// close "": <nil>
}
