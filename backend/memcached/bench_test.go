package memcached_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// Benchmarks of the driver against raw gomemcache on one local memcached.
// The side-by-side program with targets is examples/memcachedbench.

func benchSetup(b *testing.B) (*memcache.Client, *memcached.Client, []string) {
	b.Helper()
	p := testserver.Memcached(b)
	raw := memcache.New(p.Addr)
	b.Cleanup(func() { raw.Close() })
	c, err := memcached.New([]string{p.Addr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	v := []byte(strings.Repeat("v", 100))
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "bench:" + strconv.Itoa(i)
		if err := raw.Set(&memcache.Item{Key: keys[i], Value: v}); err != nil {
			b.Fatal(err)
		}
	}
	return raw, c, keys
}

func BenchmarkGet(b *testing.B) {
	raw, c, keys := benchSetup(b)
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := raw.Get(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memdict", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := c.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetCancellableContext: reads with a context that can be
// cancelled (a request's) stay in the caller's goroutine too.
func BenchmarkGetCancellableContext(b *testing.B) {
	_, c, keys := benchSetup(b)
	b.ReportAllocs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Get(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMulti100(b *testing.B) {
	raw, c, keys := benchSetup(b)
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m, err := raw.GetMulti(keys); err != nil || len(m) != len(keys) {
				b.Fatal(err)
			}
		}
	})
	b.Run("memdict", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if m, err := c.GetMulti(ctx, keys); err != nil || len(m) != len(keys) {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParallelGet(b *testing.B) {
	raw, c, keys := benchSetup(b)
	parallelGets(b, raw, c, keys)
}

// parallelGets reads keys from 32 goroutines, with gomemcache and with
// the driver, one sub-benchmark each.
func parallelGets(b *testing.B, raw *memcache.Client, c *memcached.Client, keys []string) {
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				raw.Get(keys[i%len(keys)])
			}
		})
	})
	b.Run("memdict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := c.Get(ctx, keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSet(b *testing.B) {
	raw, c, keys := benchSetup(b)
	v := []byte(strings.Repeat("v", 100))
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := raw.Set(&memcache.Item{Key: keys[i%len(keys)], Value: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memdict", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if err := c.Set(ctx, backend.Item{Key: keys[i%len(keys)], Value: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParallelSet: 32 goroutines writing, pipelined.
func BenchmarkParallelSet(b *testing.B) {
	_, c, keys := benchSetup(b)
	v := []byte(strings.Repeat("v", 100))
	b.ReportAllocs()
	b.SetParallelism(32)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := c.Set(ctx, backend.Item{Key: keys[i%len(keys)], Value: v}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkParallelGetBig: 64 goroutines reading 16 KiB values.
func BenchmarkParallelGetBig(b *testing.B) {
	raw, c, keys := benchSetup(b)
	big := []byte(strings.Repeat("b", 16<<10))
	for _, k := range keys {
		if err := raw.Set(&memcache.Item{Key: k, Value: big}); err != nil {
			b.Fatal(err)
		}
	}
	parallelGets(b, raw, c, keys)
}

// BenchmarkSetMulti100: one SetMulti of 100 keys (one write and one read)
// against a loop of 100 gomemcache Sets.
func BenchmarkSetMulti100(b *testing.B) {
	raw, c, keys := benchSetup(b)
	v := []byte(strings.Repeat("v", 100))
	items := make([]backend.Item, len(keys))
	for i, k := range keys {
		items[i] = backend.Item{Key: k, Value: v}
	}
	b.Run("gomemcache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, k := range keys {
				if err := raw.Set(&memcache.Item{Key: k, Value: v}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("memdict", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if err := c.SetMulti(ctx, items); err != nil {
				b.Fatal(err)
			}
		}
	})
}
