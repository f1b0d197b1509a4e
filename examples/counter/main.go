// Command counter is the ERP5 Memcached Tool how-to's example in Go: it
// reads a counter under the prefix "my_first_test", treats a miss as 0,
// stores the value plus one and prints it.
//
// It runs on the embedded in-memory backend with no set-up:
//
//	go run ./examples/counter
//
// MEMDICT_URL selects another backend, for example a local memcached, where
// the count survives from one run to the next:
//
//	MEMDICT_URL=memcached://127.0.0.1:11211 go run ./examples/counter
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/all" // register mem://, memcached://, redis://
)

func main() {
	log.SetFlags(0)
	url := os.Getenv("MEMDICT_URL")
	if url == "" {
		url = "mem://"
	}
	ctx := context.Background()
	be, err := backend.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()

	counts, err := memdict.New[int](be, "my_first_test")
	if err != nil {
		log.Fatal(err)
	}
	value, ok := counts.Get("some_key")
	if !ok {
		value = 0 // a miss: the cache may have lost it, or it was never set
	}
	if err := counts.Put("some_key", value+1); err != nil {
		log.Fatal(err)
	}
	fmt.Println(value + 1)
}
