package memcached_test

import (
	"context"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// A key held by two servers (a copy left on another server by an
// ejection, or by a client with other servers) is listed once, from the
// server Get reads it from, as backend.Lister requires: Keys listed it
// once per server, and Dict.Keys and All yielded it twice.
func TestKeysListsAKeyOnServersOnce(t *testing.T) {
	_, addrs := startMemcacheds(t, 2)
	c, err := memcached.New(addrs, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const key = "twice"
	item := backend.Item{Key: key, Value: []byte("v")}
	for _, a := range addrs {
		one, err := memcached.New([]string{a}, memcached.WithTimeout(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		err = one.Set(ctx, item)
		one.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for k, err := range c.Keys(ctx, "tw") {
		if err != nil {
			t.Fatal(err)
		}
		if k != key {
			t.Errorf("Keys yielded %q", k)
		}
		n++
	}
	if n != 1 {
		t.Errorf("Keys yielded %q %d times, want once", key, n)
	}
}
