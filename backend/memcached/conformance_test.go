package memcached_test

import (
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// TestConformance runs the backend conformance suite against real
// memcached: one server, three servers (ketama), and one server over a
// single pipelined connection. The driver timeout is long (the timeout is
// not what the suite tests), so that a loaded machine cannot fail it.
func TestConformance(t *testing.T) {
	t.Parallel()
	one := testserver.Memcached(t)
	_, three := startMemcacheds(t, 3)
	for _, tc := range []struct{ name, url string }{
		{"OneServer", "memcached://" + one.Addr + "?timeout=5s"},
		{"ThreeServers", "memcached://" + three[0] + "," + three[1] + "," + three[2] + "?timeout=5s"},
		{"OneConn", "memcached://" + one.Addr + "?timeout=5s&conns=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				be, err := backend.Open(t.Context(), tc.url)
				if err != nil {
					t.Fatal(err)
				}
				return be
			}, backendtest.Options{TTLGranularity: time.Second})
		})
	}
}
