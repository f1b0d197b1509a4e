package memcached_test

import (
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// proxied is a Client seen through nutcracker: the abilities built on
// admin commands the proxy does not forward (Keys: lru_crawler metadump;
// ServerStats: stats; Flush: flush_all) are hidden, so that the suite
// checks everything else. Ping ("version") does go through.
type proxied struct {
	backend.Backend
	backend.MultiWriter
	backend.Pinger
}

// TestConformanceThroughNutcracker runs the conformance suite through a
// real nutcracker in front of two memcached. nutcracker has no meta
// commands (it closes the connection on "mn" and answers "version"), so
// the Client serves it with the text protocol. The gaps, stated in the
// package documentation: no Keys, ServerStats or Flush through the proxy,
// and the servers' item_size_max cannot be read, hence item_size_max in
// the URL (the servers run with -I 2m).
func TestConformanceThroughNutcracker(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 2)
	nc := testserver.Nutcracker(t, addrs, "    hash: md5")
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		be, err := backend.Open(t.Context(), "memcached://"+nc.Listen+"?timeout=5s&item_size_max=2097152")
		if err != nil {
			t.Fatal(err)
		}
		c := be.(*memcached.Client)
		return proxied{c, c, c}
	}, backendtest.Options{TTLGranularity: time.Second})
}
