package memcached_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// TestServerOfNamesTheServer: an error of a call to a server that is not
// there names that server through backend.ServerOf, so that the Dict's
// errors can lead with it.
func TestServerOfNamesTheServer(t *testing.T) {
	// A loopback port nobody listens on: listen, note the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := memcached.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(context.Background(), "k")
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Get on a dead server: %v, want ErrUnavailable", err)
	}
	if got := backend.ServerOf(err); got != addr {
		t.Fatalf("backend.ServerOf(%v) = %q, want %q", err, got, addr)
	}
}
