package containers_test

import (
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached" // memcached:// URLs
	_ "github.com/memdict/memdict/backend/redis"     // redis:// URLs
	"github.com/memdict/memdict/testing/backendtest"
	"github.com/memdict/memdict/testing/containers"
)

// opener returns a backendtest constructor that opens rawURL afresh for
// each subtest.
func opener(rawURL string) func(t *testing.T) backend.Backend {
	return func(t *testing.T) backend.Backend {
		be, err := backend.Open(t.Context(), rawURL)
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
}

// TestConformanceMemcachedContainer runs the backend conformance suite
// against the memcached driver and a memcached server in a container.
func TestConformanceMemcachedContainer(t *testing.T) {
	t.Parallel()
	// -I 2m: a 1 MiB value (the driver's default max_value_size) plus its
	// key and item header does not fit memcached's default 1 MiB items.
	c := containers.Memcached(t, containers.WithArgs("-I", "2m"))
	// timeout=5s: the suite checks semantics, not latency, and a container's
	// forwarded port on a loaded 2-core CI machine (race detector, other
	// packages' tests in parallel) can stall past the 500ms default.
	backendtest.Run(t, opener(c.URL()+"?timeout=5s"), backendtest.Options{
		TTLGranularity: time.Second,
		MaxValueSize:   1 << 20,
	})
}

// TestConformanceRedisContainer runs the backend conformance suite against
// the Redis driver and a Redis server in a container.
func TestConformanceRedisContainer(t *testing.T) {
	t.Parallel()
	c := containers.Redis(t)
	backendtest.Run(t, opener(c.URL()+"/0?max_value_size=1048576"), backendtest.Options{
		TTLGranularity: time.Millisecond,
		MaxValueSize:   1 << 20,
		AnyKeyBytes:    true,
		NoFlags:        true,
		Concurrency:    16,
	})
}
