package memcached_test

import (
	"context"
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

// TestNutcrackerRestartIdle: over the text protocol too, a Get, a Touch
// or a Set made on a connection kept idle that the server (here
// nutcracker) closed when it restarted is sent again on a new connection,
// as the package documents for a connection the server closed while idle.
// Such calls failed once with EOF after every restart of the proxy.
func TestNutcrackerRestartIdle(t *testing.T) {
	m := testserver.Memcached(t)
	nc := testserver.Nutcracker(t, []string{m.Addr})
	c, err := memcached.New([]string{nc.Listen}, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := c.Get(ctx, "k"); return err }},
		{"Touch", func() error { return c.Touch(ctx, "k", time.Hour) }},
		{"Set", func() error { return c.Set(ctx, backend.Item{Key: "k", Value: []byte("w")}) }},
	}
	for _, cl := range calls {
		// A call that leaves its connection idle, then the restart.
		if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		nc.Restart(t)
		if err := cl.call(); err != nil {
			t.Errorf("%s after a restart of the proxy: %v", cl.name, err)
		}
	}
}
