package memcached_test

import (
	"context"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// Describe names the system and each server with the connections open to
// it, without I/O, also through a wrapper.
func TestDescribe(t *testing.T) {
	c, p := newClient(t, memcached.WithConns(2))
	check := func(what string, d backend.Description, minOpen, maxOpen int) {
		t.Helper()
		if d.System != "memcached" || len(d.Servers) != 1 || d.Servers[0].Addr != p.Addr || d.Servers[0].Idle != -1 ||
			d.Servers[0].Open < minOpen || d.Servers[0].Open > maxOpen {
			t.Fatalf("%s: Describe = %+v, want %s with %d to %d connections", what, d, p.Addr, minOpen, maxOpen)
		}
	}
	check("before any call", c.Describe(), 0, 0)
	for range 4 {
		_, _ = c.Get(context.Background(), "k")
	}
	check("after calls", c.Describe(), 1, 2)
	check("through a wrapper", backend.Describe(backend.Wrap(c)), 1, 2)
	c.Close()
	check("after Close", c.Describe(), 0, 0)
}
