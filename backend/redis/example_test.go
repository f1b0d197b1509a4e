package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"net/url"
	"slices"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/redis"
)

// Example opens a Redis backend from a URL, as a program configured with
// "redis://host:6379/0" does, and uses it under a typed Dict. (It needs a
// Redis on 127.0.0.1:6379, so it has no Output here; the module
// internal/miniredistest runs it on miniredis and checks its output.)
func Example() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "redis://127.0.0.1:6379/0?timeout=200ms")
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
	fmt.Println("home:", n) // home: 41
	_, ok := d.Get("about")
	fmt.Println("about found:", ok) // about found: false
}

// Example_backend uses the Backend directly: compare-and-swap and a
// memcached-style counter. (A Redis on 127.0.0.1:6379, as for Example.)
func Example_backend() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "redis://127.0.0.1:6379?timeout=200ms")
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()

	_ = be.Set(ctx, backend.Item{Key: "k", Value: []byte("v1")})
	it, _ := be.Get(ctx, "k")
	fmt.Println(be.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v2"), CAS: it.CAS})) // <nil>
	err = be.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v3"), CAS: it.CAS})
	fmt.Println(errors.Is(err, backend.ErrCASConflict)) // true

	_ = be.Set(ctx, backend.Item{Key: "hits", Value: []byte("10")})
	n, _ := be.Increment(ctx, "hits", -15)
	fmt.Println(n) // 0: a counter stops at 0, as memcached's does
}

// Example_unknownOption shows the error for a misspelt URL option: it names
// the option, lists the known ones and hides the password.
func Example_unknownOption() {
	_, err := backend.Open(context.Background(), "redis://app:secret@localhost:6379/0?dial_timeot=1s")
	fmt.Println(err)
	// Output:
	// backend: open "redis://app:xxxxx@localhost:6379/0?dial_timeot=1s": redis: unknown parameter(s) dial_timeot (known: allow_flush, batch, batch_inflight, batch_size, client_name, cluster, dial_timeout, failure_limit, max_retries, max_value_length, min_idle_conns, pool_size, pool_timeout, protocol, read_timeout, retry_interval, ring, sentinel_master, sentinel_password, sentinel_username, timeout, tls_ca, tls_cert, tls_insecure_skip_verify, tls_key, tls_server_name, write_timeout)
}

// ExampleParseRingURL shows the Ring a ring=true URL makes (backend.Open
// gives it to NewRing): one shard per host, named by its address, so that
// URLs listing the same hosts in any order put each key on the same shard.
func ExampleParseRingURL() {
	u, err := url.Parse("redis://cache-b:6379,cache-a:6379/2?ring=true&timeout=200ms")
	if err != nil {
		log.Fatal(err)
	}
	opt, _, err := redis.ParseRingURL(u)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(opt.Addrs)) {
		fmt.Println("shard", name, "at", opt.Addrs[name])
	}
	fmt.Println("database", opt.DB)

	_, _, err = redis.ParseRingURL(&url.URL{Scheme: "redis", Host: "cache-a:6379,cache-a:6379", RawQuery: "ring=true"})
	fmt.Println(err != nil)
	// Output:
	// shard cache-a:6379 at cache-a:6379
	// shard cache-b:6379 at cache-b:6379
	// database 2
	// true
}
