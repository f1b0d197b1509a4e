package miniredistest

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/redis"
)

// The Redis driver's Example, on miniredis: a program configured with
// "redis://host:6379/0" uses the backend under a typed Dict.
func Example() {
	srv, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	be, err := backend.Open(ctx, "redis://"+srv.Addr()+"/0")
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()

	d, err := memdict.New[int](be, "visits")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Put("home", 41); err != nil {
		log.Fatal(err)
	}
	n, _ := d.Get("home")
	fmt.Println("home:", n)
	_, ok := d.Get("about")
	fmt.Println("about found:", ok)
	// Output:
	// home: 41
	// about found: false
}

// The Redis driver's Example_backend, on miniredis: compare-and-swap and
// a memcached-style counter.
func Example_backend() {
	srv, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	be, err := backend.Open(ctx, "redis://"+srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()

	_ = be.Set(ctx, backend.Item{Key: "k", Value: []byte("v1")})
	it, _ := be.Get(ctx, "k")
	fmt.Println(be.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v2"), CAS: it.CAS}))
	err = be.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v3"), CAS: it.CAS})
	fmt.Println(errors.Is(err, backend.ErrCASConflict))

	_ = be.Set(ctx, backend.Item{Key: "hits", Value: []byte("10")})
	n, _ := be.Increment(ctx, "hits", -15)
	fmt.Println(n)
	// Output:
	// <nil>
	// true
	// 0
}
