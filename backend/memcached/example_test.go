package memcached_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// Open a memcached backend from a URL and use it through a typed Dict.
// (It needs a memcached on 127.0.0.1:11211, so it has no Output.)
func Example() {
	ctx := context.Background()
	be, err := backend.Open(ctx, "memcached://127.0.0.1:11211?timeout=200ms")
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()

	d, err := memdict.New[string](be, "greetings")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Store(ctx, "en", "hello"); err != nil {
		log.Fatal(err) // for example: server unavailable
	}
	v, ok := d.Get("en")
	fmt.Println(v, ok)
}

// New takes the server list and options; several servers share the keys
// by ketama consistent hashing, compatible with nutcracker.
func ExampleNew() {
	c, err := memcached.New([]string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"},
		memcached.WithTimeout(200*time.Millisecond),
		memcached.WithMaxIdleConns(32),
		memcached.WithRetryInterval(5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.ServerFor("user:42"))
	// Output: 10.0.0.1:11211
}

// Keys lists what the servers hold, with "lru_crawler metadump all".
func ExampleClient_Keys() {
	c, err := memcached.New([]string{"127.0.0.1:11211"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for key, err := range c.Keys(context.Background(), "greetings") {
		if err != nil {
			log.Print(err)
			break
		}
		fmt.Println(key)
	}
}
