package redis

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// The benchmarks run against a local redis-server (skipped without one);
// they measure the client's cost per call, round trip included. The
// comparison with go-redis and rueidis is the program examples/redisbench
// (its own module: cd examples/redisbench && go run .).

func benchServer(b *testing.B, rawURL string) (*Backend, *goredis.Client) {
	p := testserver.Redis(b)
	be, err := backend.Open(context.Background(), "redis://"+p.Addr+rawURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	rc := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	b.Cleanup(func() { rc.Close() })
	return be.(*Backend), rc
}

func BenchmarkGetHit(b *testing.B) { benchGetHit(b, "") }

func BenchmarkGetHitUnbatched(b *testing.B) { benchGetHit(b, "?batch=false") }

// benchGetHit reads one 100-byte value in a loop, on a Backend opened with
// the URL parameters rawURL.
func benchGetHit(b *testing.B, rawURL string) {
	be, _ := benchServer(b, rawURL)
	ctx := context.Background()
	if err := be.Set(ctx, backend.Item{Key: "k", Value: make([]byte, 100)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := be.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoRedisGet(b *testing.B) {
	_, rc := benchServer(b, "")
	ctx := context.Background()
	rc.Set(ctx, "k", make([]byte, 100), 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rc.Get(ctx, "k").Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	be, _ := benchServer(b, "")
	ctx := context.Background()
	v := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := be.Set(ctx, backend.Item{Key: "k", Value: v}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) { benchGetParallel(b, "", true) }

// benchGetParallel reads 1000 100-byte values from 32 goroutines, on a
// Backend opened with the URL parameters rawURL, reporting the CPU time
// per read if cpu.
func benchGetParallel(b *testing.B, rawURL string, cpu bool) {
	be, _ := benchServer(b, rawURL)
	ctx := context.Background()
	for i := range 1000 {
		if err := be.Set(ctx, backend.Item{Key: "k" + strconv.Itoa(i), Value: make([]byte, 100)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	if cpu {
		defer reportCPU(b)()
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := be.Get(ctx, "k"+strconv.Itoa(i%1000)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// reportCPU starts measuring the process's CPU time (user and system: the
// client's, not the server's) and returns the function that reports it per
// operation, as "cpu-ns/op": a figure that a loaded machine disturbs less
// than ns/op.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

func BenchmarkGetParallelInflight1(b *testing.B) { benchGetParallel(b, "?batch_inflight=1", false) }

// BenchmarkGetBig reads a 16 KiB value, alone and from 32 goroutines: the
// bytes allocated per read show how often the value is copied (once: from
// the socket's buffer into the reply that the returned Value shares).
func BenchmarkGetBig(b *testing.B) {
	be, _ := benchServer(b, "")
	ctx := context.Background()
	const size = 16 << 10
	for i := range 64 {
		if err := be.Set(ctx, backend.Item{Key: "big" + strconv.Itoa(i), Value: make([]byte, size)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("seq", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			if it, err := be.Get(ctx, "big1"); err != nil || len(it.Value) != size {
				b.Fatal(len(it.Value), err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if it, err := be.Get(ctx, "big"+strconv.Itoa(i%64)); err != nil || len(it.Value) != size {
					b.Error(len(it.Value), err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkSetParallel(b *testing.B) {
	be, _ := benchServer(b, "")
	ctx := context.Background()
	v := make([]byte, 100)
	b.ReportAllocs()
	b.SetParallelism(32)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := be.Set(ctx, backend.Item{Key: "k" + strconv.Itoa(i%1000), Value: v, TTL: time.Hour}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkGetMultiCluster100 reads 100 keys, spread over the three
// masters of a local cluster, with one GetMulti: the allocations per call
// show the cost of grouping the keys by slot and master.
func BenchmarkGetMultiCluster100(b *testing.B) {
	c := testserver.RedisCluster(b, 3)
	be, err := backend.Open(context.Background(), "redis://"+c.Addrs[0]+"?cluster=true")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	ctx := context.Background()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		if err := be.Set(ctx, backend.Item{Key: keys[i], Value: make([]byte, 100)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if m, err := be.GetMulti(ctx, keys); err != nil || len(m) != len(keys) {
			b.Fatal(len(m), err)
		}
	}
}

// ringBench opens a Backend (NewFromClient) on a Ring of two local
// servers and stores 100 100-byte values, k0 to k99, on it.
func ringBench(b *testing.B) *Backend {
	p1, p2 := testserver.Redis(b), testserver.Redis(b)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p1.Addr, "b": p2.Addr},
		ContextTimeoutEnabled: true,
	})
	b.Cleanup(func() { ring.Close() })
	be, err := NewFromClient(ring)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	for i := range 100 {
		if err := be.Set(context.Background(), backend.Item{Key: "k" + strconv.Itoa(i), Value: make([]byte, 100)}); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

// BenchmarkGetHitRing reads one 100-byte value in a loop on a Ring of two
// servers: the cost of finding the key's shard and its lane.
func BenchmarkGetHitRing(b *testing.B) {
	be := ringBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := be.Get(ctx, "k0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallelRing reads 100 values from 32 goroutines on a Ring
// of two servers, the calls batched per shard.
func BenchmarkGetParallelRing(b *testing.B) {
	be := ringBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := be.Get(ctx, "k"+strconv.Itoa(i%100)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
