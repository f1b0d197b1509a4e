package memdict_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// hookedTracking is a trackingBackend that runs a hook after each Get or
// GetTTL (a Dict's first read of its generation, with the key's TTL) has
// read its value.
type hookedTracking struct {
	*trackingBackend
	mu   sync.Mutex
	hook func(key string)
}

func (h *hookedTracking) Get(ctx context.Context, key string) (backend.Item, error) {
	it, err := h.trackingBackend.Get(ctx, key)
	h.after(key)
	return it, err
}

func (h *hookedTracking) GetTTL(ctx context.Context, key string) (backend.Item, error) {
	it, err := h.trackingBackend.GetTTL(ctx, key)
	h.after(key)
	return it, err
}

// after runs the hook, if any, for a read of key.
func (h *hookedTracking) after(key string) {
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f != nil {
		f(key)
	}
}

// TestNearCacheGenerationReportDuringRead: a Clear elsewhere that the
// server reports while the Dict is reading the generation (the report
// overtakes the read's answer, which holds the old generation) is seen
// at the next call. The report marked stale the view that the read was
// replacing, and the read then installed a fresh view of the old
// generation: the Dict went on with it, its near cache too, until the
// next GenerationRefresh (an hour here; never with a negative one).
func TestNearCacheGenerationReportDuringRead(t *testing.T) {
	for _, first := range []bool{false, true} {
		name := "refresh"
		if first {
			name = "first read"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tb := &trackingBackend{Store: memory.New(), fns: map[string]func(backend.Invalidation){}}
			tb.live.Store(true)
			be := &hookedTracking{trackingBackend: tb}
			d := newDict[string](t, be, "g", memdict.WithNearCache(memdict.NearCache{}), memdict.WithGenerationRefresh(time.Hour))
			writer := newDict[string](t, tb.Store, "g") // another process
			if err := writer.Put("k", "v1"); err != nil {
				t.Fatal(err)
			}
			if !first {
				d.Get("k")
				if v, _ := d.Get("k"); v != "v1" || d.Stats().NearCache.Hits != 1 {
					t.Fatalf("Get = %q, near %+v; want a near hit of v1", v, d.Stats().NearCache)
				}
				memdict.MarkGenerationDue(d)
			}
			var once sync.Once
			be.mu.Lock()
			be.hook = func(key string) {
				if key != d.GenerationKey() {
					return
				}
				// The generation read has its answer; now another
				// process clears and writes, and the server reports it.
				once.Do(func() {
					if err := writer.Clear(ctx); err != nil {
						t.Error(err)
					}
					if err := writer.Put("k", "v2"); err != nil {
						t.Error(err)
					}
					tb.report(backend.Invalidation{Keys: []string{d.GenerationKey(), writer.BackendKey("k")}})
				})
			}
			be.mu.Unlock()
			if v, _ := d.Get("k"); v != "v1" {
				t.Fatalf("the Get that read the generation = %q, want v1 (the old generation's)", v)
			}
			for range 2 {
				if v, _ := d.Get("k"); v != "v2" {
					t.Fatalf("after the reported Clear and Put elsewhere, Get = %q, want v2", v)
				}
			}
		})
	}
}
