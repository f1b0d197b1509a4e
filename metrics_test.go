package memdict_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

func TestStatsPerOperation(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(1))
	_ = d.Put("a", 1)
	d.Get("a")
	d.Get("b")
	_, _ = d.Add(ctx, "a", 2)
	_ = d.Remove(ctx, "zz")
	_ = d.Touch(ctx, "zz", time.Second)
	_, _ = d.GetMulti(ctx, []string{"a", "b", "c"})
	st := d.Stats()
	if st.Hits != 2 || st.Misses != 3 || st.Sets != 1 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	byOp := map[string]memdict.OpStats{}
	for _, o := range st.Ops {
		byOp[o.Op] = o
	}
	for _, c := range []struct {
		op, result string
		want       uint64
	}{
		{"get", "hit", 2}, {"get", "miss", 3}, {"put", "ok", 1},
		{"add", "not_stored", 1}, {"delete", "not_found", 1}, {"touch", "not_found", 1},
	} {
		if got := byOp[c.op].Count(c.result); got != c.want {
			t.Errorf("%s/%s = %d, want %d", c.op, c.result, got, c.want)
		}
	}
	lat := byOp["get"].Latency
	if lat.Count != 3 || lat.Sum <= 0 || lat.Quantile(0.5) <= 0 || lat.Quantile(1) > memdict.LatencyBounds[len(memdict.LatencyBounds)-1] {
		t.Fatalf("get latency = %+v (p50 %v)", lat, lat.Quantile(0.5))
	}
	if lat.Mean() <= 0 {
		t.Fatal("mean latency 0")
	}
}

func TestLatencySamplingOff(t *testing.T) {
	d := newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(-1))
	for range 100 {
		d.Get("a")
	}
	if n := d.Stats().Ops[0].Latency.Count; n != 0 {
		t.Fatalf("%d samples with sampling off", n)
	}
	d = newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(10)) // 16
	for range 64 {
		d.Get("a")
	}
	if n := d.Stats().Ops[0].Latency.Count; n != 4 {
		t.Fatalf("%d samples of 64 at 1 in 16", n)
	}
}

func TestLatencyQuantile(t *testing.T) {
	l := memdict.Latency{Count: 100, Buckets: make([]uint64, len(memdict.LatencyBounds)+1)}
	l.Buckets[4] = 50 // (50µs, 100µs]
	l.Buckets[7] = 50 // (500µs, 1ms]
	if q := l.Quantile(0.25); q <= 50*time.Microsecond || q > 100*time.Microsecond {
		t.Errorf("p25 = %v", q)
	}
	if q := l.Quantile(0.99); q <= 500*time.Microsecond || q > time.Millisecond {
		t.Errorf("p99 = %v", q)
	}
	if (memdict.Latency{}).Quantile(0.5) != 0 {
		t.Error("empty quantile")
	}
}

func TestLoggerHook(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	d := newDict[int](t, failing{memory.New()}, "p", memdict.WithLogger(log))
	d.Get("k")
	_ = d.Put("k", 1)
	d2 := newDict[int](t, memory.New(), "p", memdict.WithLogger(log))
	d2.Get("miss") // not logged
	out := buf.String()
	if strings.Count(out, "memdict: operation failed") != 2 || !strings.Contains(out, "op=get") ||
		!strings.Contains(out, "op=put") || !strings.Contains(out, "key=k") || !strings.Contains(out, "prefix=p") {
		t.Fatalf("log:\n%s", out)
	}
}

// WithLogger reports every failed operation through log/slog; Stats
// counts operations by outcome.
func ExampleWithLogger() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable output
			}
			return a
		},
	}))
	d, _ := memdict.New[int](memory.New(), "p", memdict.WithLogger(log))
	_ = d.Put("k", 1)
	d.Get("k")
	d.Get("absent")
	_ = d.Store(context.Background(), "k", 2, memdict.TTL(-time.Second))
	st := d.Stats()
	fmt.Println(st.Hits, st.Misses, st.Sets, st.Errors)
	// Output:
	// level=WARN msg="memdict: operation failed" prefix=p op=put key=k error="backend: invalid TTL: -1s"
	// 1 1 1 1
}

// Stats counts operations by kind and outcome and keeps a histogram of
// sampled latencies per kind.
func ExampleDict_Stats() {
	d, _ := memdict.New[string](memory.New(), "p", memdict.WithLatencySampling(1))
	_ = d.Put("a", "x")
	d.Get("a")
	d.Get("b")
	st := d.Stats()
	fmt.Println("hits", st.Hits, "misses", st.Misses, "sets", st.Sets)
	for _, o := range st.Ops {
		if o.Op == "get" {
			fmt.Println(o.Results, o.Latency.Count, o.Latency.Quantile(0.99) > 0)
		}
	}
	// Output:
	// hits 1 misses 1 sets 1
	// [{hit 1} {miss 1} {error 0}] 2 true
}
