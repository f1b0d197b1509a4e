package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// roundTrips is a go-redis hook that counts what reaches the server: plain
// commands and pipelines (with their sizes).
type roundTrips struct {
	single, pipes, piped, largest atomic.Int64
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.single.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.pipes.Add(1)
		n := int64(len(cmds))
		h.piped.Add(n)
		for {
			m := h.largest.Load()
			if n <= m || h.largest.CompareAndSwap(m, n) {
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestPipelinedWrites runs every kind of single-key call from 64
// goroutines at once, each on keys of its own: every caller gets its own
// result (values, counters, conditional failures) although the calls
// share pipelines, and they take far fewer round trips than calls.
func TestPipelinedWrites(t *testing.T) {
	p := testserver.Redis(t)
	pipelinedWrites(t, mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout))
}

func pipelinedWrites(t *testing.T, b *Backend) {
	ctx := context.Background()
	h := &roundTrips{}
	b.client.AddHook(h)
	const goroutines, rounds = 64, 20
	var calls atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			fail := func(format string, args ...any) {
				t.Errorf("goroutine %d: "+format, append([]any{g}, args...)...)
			}
			k := func(s string) string { return fmt.Sprintf("pw/%d/%s", g, s) }
			for r := range rounds {
				v := fmt.Sprintf("v%d.%d", g, r)
				if err := b.Set(ctx, backend.Item{Key: k("v"), Value: []byte(v), TTL: time.Hour}); err != nil {
					fail("set: %v", err)
					return
				}
				it, err := b.Get(ctx, k("v"))
				if err != nil || string(it.Value) != v {
					fail("get after set %q: %q, %v", v, it.Value, err)
					return
				}
				if err := b.CompareAndSwap(ctx, backend.Item{Key: k("v"), Value: []byte(v + "!"), CAS: it.CAS}); err != nil {
					fail("cas: %v", err)
				}
				if err := b.CompareAndSwap(ctx, backend.Item{Key: k("v"), Value: []byte("x"), CAS: it.CAS}); !errors.Is(err, backend.ErrCASConflict) {
					fail("stale cas: %v", err)
				}
				if r == 0 {
					if err := b.Set(ctx, backend.Item{Key: k("n"), Value: []byte("0")}); err != nil {
						fail("set counter: %v", err)
					}
				}
				if n, err := b.Increment(ctx, k("n"), int64(g)); err != nil || n != uint64(g*(r+1)) {
					fail("increment round %d: %d, %v, want %d", r, n, err, g*(r+1))
				}
				if err := b.Add(ctx, backend.Item{Key: k("a"), Value: []byte("a")}); err != nil {
					fail("add: %v", err)
				}
				if err := b.Add(ctx, backend.Item{Key: k("a"), Value: []byte("b")}); !errors.Is(err, backend.ErrNotStored) {
					fail("second add: %v", err)
				}
				if err := b.Touch(ctx, k("a"), time.Hour); err != nil {
					fail("touch: %v", err)
				}
				if err := b.Delete(ctx, k("a")); err != nil {
					fail("delete: %v", err)
				}
				if err := b.Delete(ctx, k("a")); !errors.Is(err, backend.ErrNotFound) {
					fail("second delete: %v", err)
				}
				if _, err := b.Get(ctx, k("a")); !errors.Is(err, backend.ErrNotFound) {
					fail("get after delete: %v", err)
				}
				calls.Add(12)
			}
		})
	}
	wg.Wait()
	n := calls.Load()
	trips := h.single.Load() + h.pipes.Load()
	t.Logf("%d calls: %d plain commands, %d pipelines of %d commands (largest %d): %d round trips",
		n, h.single.Load(), h.pipes.Load(), h.piped.Load(), h.largest.Load(), trips)
	if trips > n/2 {
		t.Errorf("%d calls took %d round trips: not pipelined", n, trips)
	}
	if h.largest.Load() < 8 {
		t.Errorf("largest pipeline: %d commands", h.largest.Load())
	}
}

// TestPrivateReads: every Get's Value is its own memory, also when
// concurrent Gets of one key share an MGET, so that a Dict[[]byte] may hand
// it to its caller without a copy (backend.PrivateReader): writing into one
// changes no other read, stored value or later read.
func TestPrivateReads(t *testing.T) {
	p := testserver.Redis(t)
	privateReads(t, mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout))
}

func privateReads(t *testing.T, b *Backend) {
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "pr", Value: []byte("shared?"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, private, err := backend.GetPrivate(ctx, b, "pr"); err != nil || !private {
		t.Fatalf("GetPrivate = private %v, %v; want a private value", private, err)
	}
	const goroutines = 32
	values := make([][]byte, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			it, err := b.Get(ctx, "pr")
			if err != nil {
				t.Errorf("Get: %v", err)
				return
			}
			values[g] = it.Value
		})
	}
	wg.Wait()
	for g, v := range values {
		if string(v) != "shared?" {
			t.Fatalf("Get %d = %q, want %q: another caller wrote into it", g, v, "shared?")
		}
		v[len(v)-1] = '!' // the caller's own: write into it
	}
	if it, err := b.Get(ctx, "pr"); err != nil || string(it.Value) != "shared?" {
		t.Fatalf("Get after the callers wrote into their values = %q, %v", it.Value, err)
	}
}
