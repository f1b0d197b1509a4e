package memdict_test

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// The multi-key writes (PutMulti, Tx.Commit) and Update drop every key
// they wrote from the near caches of this process: of the Dict that wrote
// and of another near-cached Dict on the same backend and prefix. MaxStale
// is an hour, so only the invalidation can make the new values seen.
func TestNearCacheMultiWritesInvalidateEveryKey(t *testing.T) {
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d"}
	writes := []struct {
		name  string
		write func(d *memdict.Dict[string]) error
		want  map[string]string // "" : absent
	}{
		{"PutMulti", func(d *memdict.Dict[string]) error {
			return d.PutMulti(ctx, map[string]string{"a": "a2", "b": "b2", "c": "c2", "d": "d2"})
		}, map[string]string{"a": "a2", "b": "b2", "c": "c2", "d": "d2"}},
		{"TxCommit", func(d *memdict.Dict[string]) error {
			tx := d.Begin()
			_ = tx.Put("a", "a3")
			_ = tx.Put("b", "b3")
			_ = tx.Delete("c")
			_ = tx.Put("d", "d3")
			return tx.Commit(ctx)
		}, map[string]string{"a": "a3", "b": "b3", "c": "", "d": "d3"}},
		{"Update", func(d *memdict.Dict[string]) error {
			for _, k := range keys {
				if _, err := d.Update(ctx, k, func(old string, ok bool) (string, error) { return old + "+", nil }); err != nil {
					return err
				}
			}
			return nil
		}, map[string]string{"a": "a1+", "b": "b1+", "c": "c1+", "d": "d1+"}},
	}
	for _, w := range writes {
		for _, who := range []string{"same Dict", "other Dict"} {
			t.Run(w.name+"/"+who, func(t *testing.T) {
				var be backend.Backend = memory.New()
				reader := newDict[string](t, be, "p", nearOpts(time.Hour))
				writer := reader
				if who == "other Dict" {
					writer = newDict[string](t, be, "p", nearOpts(time.Hour))
				}
				for _, k := range keys {
					if err := reader.Store(ctx, k, k+"1"); err != nil {
						t.Fatal(err)
					}
				}
				// Fill the reader's near cache, and make sure it serves.
				for range 2 {
					for _, k := range keys {
						if v, ok := reader.Get(k); !ok || v != k+"1" {
							t.Fatalf("Get(%q) = %q, %v; want %q", k, v, ok, k+"1")
						}
					}
				}
				if h := reader.Stats().NearCache.Hits; h < uint64(len(keys)) {
					t.Fatalf("near-cache hits = %d after reading %d keys twice; the test needs them cached", h, len(keys))
				}
				if err := w.write(writer); err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					v, ok := reader.Get(k)
					if want := w.want[k]; v != want || ok != (want != "") {
						t.Errorf("after %s by the %s, Get(%q) = %q, %v; want %q", w.name, who, k, v, ok, want)
					}
				}
			})
		}
	}
}
