package backendtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
	"github.com/memdict/memdict/testing/memdicttest"
	"github.com/memdict/memdict/tool"
)

// opener returns a newBackend that opens url.
func opener(url string) func(t *testing.T) backend.Backend {
	return func(t *testing.T) backend.Backend {
		be, err := backend.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
}

// counter is a middleware that counts the calls of each operation, and
// passes them on unchanged.
type counter struct {
	mu sync.Mutex
	n  map[backend.Op]int
}

func (c *counter) middleware(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, call backend.Call) backend.Result {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[backend.Op]int{}
		}
		c.n[call.Op]++
		c.mu.Unlock()
		return next(ctx, call)
	}
}

func (c *counter) count(op backend.Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// passOn is a middleware that does nothing but pass each call on.
func passOn(next backend.CallFunc) backend.CallFunc { return next }

// wrappers are the wrappers the parity suite checks: middleware (three of
// them), a Tool's plugin, and a Faulty with no fault set.
var wrappers = []struct {
	name string
	wrap func(t *testing.T, inner backend.Backend) backend.Backend
}{
	{"Wrap", func(t *testing.T, inner backend.Backend) backend.Backend {
		var c counter
		return backend.Wrap(inner, c.middleware, passOn, func(next backend.CallFunc) backend.CallFunc {
			return func(ctx context.Context, call backend.Call) backend.Result { return next(ctx, call) }
		})
	}},
	{"Tool", func(t *testing.T, inner backend.Backend) backend.Backend {
		tl, err := tool.New(tool.Config{}, tool.WithBackend("p", inner))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tl.Close() })
		be, err := tl.Backend(context.Background(), "p")
		if err != nil {
			t.Fatal(err)
		}
		return be
	}},
	{"Faulty", func(t *testing.T, inner backend.Backend) backend.Backend {
		return memdicttest.NewFaulty(inner)
	}},
}

// Every wrapper keeps every ability of the backend under it, and each
// behaves the same through it: over the memory backend, two memcached
// servers and a Redis server.
func TestParity(t *testing.T) {
	mc1, mc2 := testserver.Memcached(t), testserver.Memcached(t)
	rd := testserver.Redis(t)
	backends := []struct {
		name string
		new  func(t *testing.T) backend.Backend
	}{
		{"memory", func(*testing.T) backend.Backend { return memory.New() }},
		{"memcached", opener("memcached://" + mc1.Addr + "," + mc2.Addr)},
		{"redis", opener("redis://" + rd.Addr + "/0")},
	}
	for _, w := range wrappers {
		for _, b := range backends {
			t.Run(w.name+"/"+b.name, func(t *testing.T) {
				backendtest.RunParity(t, b.new, w.wrap, backendtest.Options{})
			})
		}
	}
}

// The conformance suite through a chain of three middleware, over the
// memory backend and a Redis server: a backend built with
// backend.Wrap keeps the contract of the backend under it. The counting
// middleware saw the optional abilities the suite used.
func TestConformanceThroughMiddleware(t *testing.T) {
	var c counter
	wrap := func(newBackend func(t *testing.T) backend.Backend) func(t *testing.T) backend.Backend {
		return func(t *testing.T) backend.Backend { return backend.Wrap(newBackend(t), c.middleware, passOn, passOn) }
	}
	t.Run("memory", func(t *testing.T) {
		clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		backendtest.Run(t, wrap(func(*testing.T) backend.Backend { return memory.New(memory.WithClock(clock)) }),
			backendtest.Options{Advance: clock.Advance})
	})
	t.Run("redis", func(t *testing.T) {
		rd := testserver.Redis(t)
		backendtest.Run(t, wrap(opener("redis://"+rd.Addr+"/0?max_value_size=1048576&timeout=5s")),
			backendtest.Options{TTLGranularity: 500 * time.Millisecond, MaxValueSize: 1 << 20, AnyKeyBytes: true, NoFlags: true, Concurrency: 16})
	})
	for _, op := range []backend.Op{backend.OpKeys, backend.OpSetMulti, backend.OpTryLock, backend.OpTrack} {
		if c.count(op) == 0 {
			t.Errorf("the middleware saw no %v call", op)
		}
	}
}
