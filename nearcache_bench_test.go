package memdict_test

import (
	"context"
	"fmt"
	"math/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
)

// The near-cache benchmarks run each case with and without a near cache,
// over the memory backend and over real memcached and Redis servers
// (skipped when their binaries are missing):
//
//	go test -run '^$' -bench 'NearCache' -benchmem .
//
// HotGet reads one key over and over; Zipf reads 100k keys drawn from a
// zipf(1.1) distribution on 64 goroutines (b.SetParallelism).

// benchItem is a typical small record: flat, so hits share it.
type benchItem struct {
	ID    int
	Name  string
	Score float64
}

// benchBackends are the backends the near-cache benchmarks run over.
func benchBackends(b *testing.B) []struct {
	name string
	open func(b *testing.B) backend.Backend
} {
	open := func(url func(b *testing.B) string) func(b *testing.B) backend.Backend {
		return func(b *testing.B) backend.Backend {
			be, err := backend.Open(context.Background(), url(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { be.Close() })
			return be
		}
	}
	return []struct {
		name string
		open func(b *testing.B) backend.Backend
	}{
		{"memory", func(*testing.B) backend.Backend { return memory.New() }},
		{"memcached", open(func(b *testing.B) string { return "memcached://" + testserver.Memcached(b).Addr })},
		{"redis", open(func(b *testing.B) string { return "redis://" + testserver.Redis(b).Addr + "/0" })},
	}
}

// benchNear returns the near cache of the benchmarks: over memcached and
// memory a MaxStale is needed; over Redis, server invalidation alone
// keeps it coherent.
func benchNear(backendName string) memdict.NearCache {
	nc := memdict.NearCache{MaxEntries: 10_000}
	if backendName != "redis" {
		nc.MaxStale = time.Minute
	}
	return nc
}

func BenchmarkNearCacheHotGet(b *testing.B) {
	for _, bb := range benchBackends(b) {
		for _, near := range []bool{false, true} {
			name := bb.name
			if near {
				name += "/near"
			} else {
				name += "/plain"
			}
			b.Run(name, func(b *testing.B) {
				be := bb.open(b)
				var opts []memdict.Option
				if near {
					opts = append(opts, memdict.WithNearCache(benchNear(bb.name)))
				}
				d := newDict[benchItem](b, be, "nearbench", opts...)
				if err := d.Put("hot", benchItem{ID: 1, Name: "hot key", Score: 0.5}); err != nil {
					b.Fatal(err)
				}
				warm(b, d, "hot")
				b.ReportAllocs()
				for b.Loop() {
					if _, ok := d.Get("hot"); !ok {
						b.Fatal("miss")
					}
				}
			})
		}
	}
}

// BenchmarkNearCacheHotGetParallel: near-cache hits on 8 hot keys from
// many goroutines at once (32 per CPU), over the memory backend: what the
// counters every call writes cost when all CPUs write them.
func BenchmarkNearCacheHotGetParallel(b *testing.B) {
	d := newDict[benchItem](b, memory.New(), "nearbench", memdict.WithNearCache(benchNear("memory")))
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		if err := d.Put(k, benchItem{ID: 1, Name: "hot key", Score: 0.5}); err != nil {
			b.Fatal(err)
		}
		warm(b, d, k)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, ok := d.Get(keys[i&7]); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// zipfKeys is the number of keys of BenchmarkNearCacheZipf.
const zipfKeys = 100_000

func BenchmarkNearCacheZipf(b *testing.B) {
	keys := make([]string, zipfKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%06d", i)
	}
	for _, bb := range benchBackends(b) {
		b.Run(bb.name, func(b *testing.B) {
			be := bb.open(b)
			loader := newDict[benchItem](b, be, "zipf")
			ctx := context.Background()
			for i := 0; i < zipfKeys; i += 1000 {
				tx := loader.Begin()
				for j := i; j < i+1000; j++ {
					_ = tx.Put(keys[j], benchItem{ID: j, Name: keys[j]})
				}
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			for _, near := range []bool{false, true} {
				name := "plain"
				var opts []memdict.Option
				if near {
					name = "near"
					opts = append(opts, memdict.WithNearCache(benchNear(bb.name)))
				}
				b.Run(name, func(b *testing.B) {
					d := newDict[benchItem](b, be, "zipf", opts...)
					if near {
						warm(b, d, keys[0])
					}
					var seed atomic.Int64
					b.ReportAllocs()
					b.SetParallelism(32) // 64 goroutines on 2 cores
					b.RunParallel(func(pb *testing.PB) {
						z := rand.NewZipf(rand.New(rand.NewSource(seed.Add(1))), 1.1, 1, zipfKeys-1)
						for pb.Next() {
							k := keys[z.Uint64()]
							if _, ok := d.Get(k); !ok {
								b.Error("miss of", k)
								return
							}
						}
					})
					if near {
						st := d.Stats().NearCache
						b.ReportMetric(float64(st.Hits)/float64(st.Hits+st.Misses), "near-hit-ratio")
					}
				})
			}
		})
	}
}

// warm reads key until the near cache (if any) answers it: over Redis,
// values are kept once tracking is live.
func warm(b *testing.B, d *memdict.Dict[benchItem], key string) {
	deadline := time.Now().Add(10 * time.Second)
	for d.Get(key); time.Now().Before(deadline); d.Get(key) {
		if st := d.Stats(); !st.NearCache.Enabled || st.NearCache.Hits > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatal("the near cache never answered: tracking not live?")
}
