package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// The how-to's counter: a miss is 0, and the new value is stored
// explicitly.
func Example() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "mem://") // or "memcached://127.0.0.1:11211"
	if err != nil {
		panic(err)
	}
	defer be.Close()

	counts, err := memdict.New[int](be, "my_first_test")
	if err != nil {
		panic(err)
	}
	for range 3 {
		value, _ := counts.Get("some_key") // a miss gives 0
		_ = counts.Put("some_key", value+1)
	}
	value, _ := counts.Get("some_key")
	fmt.Println(value)
	// Output: 3
}

// Struct values are encoded with MessagePack unless another codec is
// chosen. Changing a value you read does not store it: Put it back.
func ExampleDict_Put() {
	type Basket struct {
		Owner string   `json:"owner"`
		Items []string `json:"items"`
	}
	baskets, _ := memdict.New[Basket](memory.New(), "baskets")

	_ = baskets.Put("b1", Basket{Owner: "ada"})
	b, _ := baskets.Get("b1")
	b.Items = append(b.Items, "tea")

	before, _ := baskets.Get("b1")
	fmt.Println(len(before.Items))

	_ = baskets.Put("b1", b)
	after, _ := baskets.Get("b1")
	fmt.Println(after.Items)
	// Output:
	// 0
	// [tea]
}

// Lookup tells a miss (ok false, nil error) from an outage (an error).
func ExampleDict_Lookup() {
	ctx := context.Background()
	d, _ := memdict.New[string](memory.New(), "p")
	_ = d.Store(ctx, "present", "yes")

	for _, key := range []string{"present", "absent"} {
		v, ok, err := d.Lookup(ctx, key)
		switch {
		case err != nil:
			fmt.Println("cache is out:", err)
		case !ok:
			fmt.Println(key, "missing")
		default:
			fmt.Println(key, "=", v)
		}
	}
	// Output:
	// present = yes
	// absent missing
}

// Per-item TTLs override the Dict's default.
func ExampleTTL() {
	ctx := context.Background()
	clock := memory.NewFakeClock(time.Unix(0, 0))
	sessions, _ := memdict.New[string](memory.New(memory.WithClock(clock)), "sessions",
		memdict.WithDefaultTTL(time.Hour))

	_ = sessions.Store(ctx, "short", "token", memdict.TTL(time.Minute))
	_ = sessions.Store(ctx, "long", "token")

	clock.Advance(2 * time.Minute)
	_, shortOK := sessions.Get("short")
	_, longOK := sessions.Get("long")
	fmt.Println(shortOK, longOK)
	// Output: false true
}

// Add stores only when the key is absent, which makes a simple lock or a
// "first writer wins" record.
func ExampleDict_Add() {
	ctx := context.Background()
	locks, _ := memdict.New[string](memory.New(), "locks")
	first, _ := locks.Add(ctx, "report-42", "worker-1", memdict.TTL(30*time.Second))
	second, _ := locks.Add(ctx, "report-42", "worker-2", memdict.TTL(30*time.Second))
	holder, _ := locks.Get("report-42")
	fmt.Println(first, second, holder)
	// Output: true false worker-1
}

// Remove returns ErrNotFound for an absent key; Delete does not.
func ExampleDict_Remove() {
	d, _ := memdict.New[int](memory.New(), "p")
	err := d.Remove(context.Background(), "nothing")
	fmt.Println(errors.Is(err, memdict.ErrNotFound), d.Delete("nothing"))
	// Output: true <nil>
}

// A multi-key operation whose keys partly fail returns a *MultiError that
// names every failed key with its cause; the other keys succeeded.
func ExampleMultiError() {
	ctx := context.Background()
	d, _ := memdict.New[string](memory.New(), "p", memdict.WithMaxValueLen(16))
	err := d.PutMulti(ctx, map[string]string{"a": "short", "b": "far too long for the limit", "c": "ok"})
	var me *memdict.MultiError
	if errors.As(err, &me) {
		fmt.Println(me.Op, me.Keys(), len(me.Failed), "of", me.Total)
		fmt.Println(errors.Is(me.Err("b"), memdict.ErrValueTooLarge))
	}
	got, _ := d.GetMulti(ctx, []string{"a", "b", "c"})
	fmt.Println(len(got))
	// Output:
	// putmulti [b] 1 of 3
	// true
	// 2
}
