package memory_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

func benchStore(b *testing.B, opts ...memory.Option) (*memory.Store, []string) {
	s := memory.New(opts...)
	b.Cleanup(func() { s.Close() })
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("site/users/1/key-%d", i)
		if err := s.Set(context.Background(), backend.Item{Key: keys[i], Value: make([]byte, 64)}); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// benchStoreCase is a Store configuration a benchmark runs on.
type benchStoreCase struct {
	name string
	opts []memory.Option
}

// benchStores are the configurations the read benchmarks run on.
var benchStores = []benchStoreCase{
	{"unbounded", nil},
	{"bounded", []memory.Option{memory.WithMaxBytes(64 << 20)}},
}

func BenchmarkGetHit(b *testing.B) {
	for _, bc := range append(benchStores, benchStoreCase{"ttl", nil}) {
		b.Run(bc.name, func(b *testing.B) {
			s, keys := benchStore(b, bc.opts...)
			ctx := context.Background()
			if bc.name == "ttl" {
				for _, k := range keys {
					_ = s.Set(ctx, backend.Item{Key: k, Value: make([]byte, 64), TTL: time.Hour})
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Get(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkGetMiss(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "site/users/1/absent"); err != backend.ErrNotFound {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetOverwrite(b *testing.B) {
	s, keys := benchStore(b)
	ctx := context.Background()
	value := make([]byte, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, backend.Item{Key: keys[i&1023], Value: value}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	for _, bc := range benchStores {
		b.Run(bc.name, func(b *testing.B) {
			s, keys := benchStore(b, bc.opts...)
			ctx := context.Background()
			b.ReportAllocs()
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 4099 // goroutines start apart, not in lockstep
				for pb.Next() {
					if _, err := s.Get(ctx, keys[i&1023]); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	}
}

func BenchmarkIncrement(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	_ = s.Set(ctx, backend.Item{Key: "n", Value: []byte("0")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Increment(ctx, "n", 1); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGetHitAllocatesNothing guards the zero-allocation read path.
func TestGetHitAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, opts := range [][]memory.Option{nil, {memory.WithMaxBytes(1 << 20)}} {
		s := memory.New(opts...)
		ctx := context.Background()
		_ = s.Set(ctx, backend.Item{Key: "k", Value: []byte("v")})
		_ = s.Set(ctx, backend.Item{Key: "ttl", Value: []byte("v"), TTL: 1 << 40})
		value := []byte("w")
		if n := testing.AllocsPerRun(100, func() {
			_, _ = s.Get(ctx, "k")
			_, _ = s.Get(ctx, "ttl")
			_, _ = s.Get(ctx, "absent")
			_ = s.Set(ctx, backend.Item{Key: "k", Value: value})
		}); n != 0 {
			t.Errorf("Get hit, Get miss and Set overwrite allocate %v times, want 0", n)
		}
		s.Close()
	}
}
