package memdict_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
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
	oneStripe(t)
	d = newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(10)) // 16
	for range 64 {
		d.Get("a")
	}
	if l := d.Stats().Ops[0].Latency; l.Samples != 4 || l.Count != 64 {
		t.Fatalf("%d samples and a count of %d after 64 gets at 1 in 16", l.Samples, l.Count)
	}
}

// oneStripe makes the Dicts the test creates count their calls on a single
// stripe (GOMAXPROCS 1), where one call in n is timed exactly, the first
// included.
func oneStripe(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// With calls counted on many stripes (GOMAXPROCS 8: 16 stripes), about
// one call in n is timed (the first of each stripe, then one in n of
// its calls), and the histogram's count is still exact.
func TestLatencySamplingStriped(t *testing.T) {
	prev := runtime.GOMAXPROCS(8)
	d := newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(16))
	runtime.GOMAXPROCS(prev)
	const workers, calls = 4, 1600
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				d.Get("a")
			}
		})
	}
	wg.Wait()
	const total, stripes = workers * calls, 16
	st := d.Stats()
	l := st.Ops[0].Latency
	if l.Samples < total/16 || l.Samples > total/16+stripes || l.Count != total {
		t.Fatalf("%d samples and a count of %d after %d gets at 1 in 16 on %d stripes: want %d to %d samples, a count of %d",
			l.Samples, l.Count, total, stripes, total/16, total/16+stripes, total)
	}
	if st.Misses != total || st.Hits != 0 {
		t.Fatalf("%d misses and %d hits after %d gets of a missing key", st.Misses, st.Hits, total)
	}
}

// The latency histogram counts every operation, though only one in n is
// timed: with the default 1 in 64, a few calls are counted, not dropped.
func TestLatencyCountsEveryOperation(t *testing.T) {
	ctx := context.Background()
	oneStripe(t)
	d := newDict[int](t, memory.New(), "p")
	for range 20 {
		d.Get("a")
	}
	for i := range 3 {
		_ = d.Put("a", i)
	}
	_, _ = d.GetMulti(ctx, []string{"a", "b", "c"})
	byOp := map[string]memdict.Latency{}
	for _, o := range d.Stats().Ops {
		byOp[o.Op] = o.Latency
	}
	for op, want := range map[string]uint64{"get": 23, "put": 3, "delete": 0} {
		l := byOp[op]
		var sum uint64
		for _, n := range l.Buckets {
			sum += n
		}
		if l.Count != want || sum != want {
			t.Errorf("%s: count %d, buckets sum to %d, want %d", op, l.Count, sum, want)
		}
		if want > 0 && (l.Samples != 1 || l.Sum <= 0) {
			t.Errorf("%s: %d samples, sum %v: want the first call timed", op, l.Samples, l.Sum)
		}
	}
}

// The histogram only grows, as a Prometheus histogram must, while calls
// run and others are timed, and its count ends up exact.
func TestLatencyHistogramOnlyGrows(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p", memdict.WithLatencySampling(4))
	const workers, calls = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				if i%7 == 0 {
					_, _ = d.GetMulti(ctx, []string{"a", "b"})
				} else {
					d.Get(fmt.Sprint(w))
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	prev := d.Stats().Ops[0].Latency
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		cur := d.Stats().Ops[0].Latency
		if cur.Count < prev.Count || cur.Sum < prev.Sum {
			t.Fatalf("the histogram shrank: count %d -> %d, sum %v -> %v", prev.Count, cur.Count, prev.Sum, cur.Sum)
		}
		for i := range cur.Buckets {
			if cur.Buckets[i] < prev.Buckets[i] {
				t.Fatalf("bucket %d shrank: %d -> %d", i, prev.Buckets[i], cur.Buckets[i])
			}
		}
		prev = cur
	}
	calls0 := uint64(workers * (calls + calls/7 + 1)) // GetMulti counts a call per key
	if l := d.Stats().Ops[0].Latency; l.Count != calls0 {
		t.Fatalf("count %d after %d get calls", l.Count, calls0)
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

// Failures are logged at most once per interval for each kind of
// operation and of error, the next line saying how many were left out.
func TestLoggerRateLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	clock := memory.NewFakeClock(time.Unix(1_700_000_000, 0))
	d := newDict[int](t, failing{memory.New()}, "p", memdict.WithLogger(log), memdict.WithClock(clock.Now))
	lines := func() []string {
		out := strings.TrimSpace(buf.String())
		buf.Reset()
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	for range 100 {
		d.Get("k")
	}
	_ = d.Put("k", 1) // another operation: a line of its own
	if got := lines(); len(got) != 2 || !strings.Contains(got[0], "op=get") || !strings.Contains(got[1], "op=put") ||
		strings.Contains(got[0], "suppressed") || !strings.Contains(got[0], "kind=unavailable") {
		t.Fatalf("lines after 100 failed gets and a failed put:\n%s", strings.Join(got, "\n"))
	}
	clock.Advance(memdict.DefaultLogInterval - time.Millisecond)
	d.Get("k")
	if got := lines(); len(got) != 0 {
		t.Fatalf("a line before the interval ended: %q", got)
	}
	clock.Advance(time.Millisecond)
	d.Get("k")
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "suppressed=100") {
		t.Fatalf("lines after the interval: %q, want one saying 100 were suppressed", got)
	}
	if st := d.Stats(); st.Errors != 103 {
		t.Fatalf("Errors = %d: every failure is counted", st.Errors)
	}

	// WithLogInterval(-1) logs every failure.
	d = newDict[int](t, failing{memory.New()}, "p", memdict.WithLogger(log), memdict.WithLogInterval(-1))
	for range 5 {
		d.Get("k")
	}
	if got := lines(); len(got) != 5 {
		t.Fatalf("%d lines for 5 failures without a limit", len(got))
	}
}

// A failure line shows a bounded part of the key and of the error's
// message: a 1 MiB key failing with a 1 MiB message from its server (a
// Redis error line, an address a cluster announced) made a line of more
// than 2 MiB; a GetMulti of 20 such keys, of more than 20 MiB.
func TestLoggerBoundsKeysAndMessages(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	said := "\x1b[31m" + strings.Repeat("s", 1<<20)
	be := backend.Wrap(memory.New(), func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op.Property() {
				return next(ctx, c)
			}
			return backend.Result{Err: fmt.Errorf("%w: the server said %s", backend.ErrUnavailable, said)}
		}
	})
	d := newDict[int](t, be, "p", memdict.WithLogger(log), memdict.WithLogInterval(-1))
	key := strings.Repeat("k", 1<<20)
	_, _, err := d.Lookup(context.Background(), key)
	if err == nil || !strings.Contains(err.Error(), said) || !errors.Is(err, memdict.ErrUnavailable) {
		t.Fatalf("Lookup's error must stay whole: %.100v", err)
	}
	_ = d.Put(key, 1)
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint(i, key)
	}
	if _, err := d.GetMulti(context.Background(), keys); err == nil {
		t.Fatal("GetMulti did not fail")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (lookup, put, getmulti)", len(lines))
	}
	for _, l := range lines {
		if len(l) > 10<<10 {
			t.Errorf("a line of %d bytes: %.200s...", len(l), l)
		}
		if !strings.Contains(l, "kind=unavailable") || !strings.Contains(l, "the server said") || strings.Contains(l, "\x1b") {
			t.Errorf("line %.300s...: want the kind and the start of the message, escaped", l)
		}
	}
	for _, l := range lines[:2] {
		if !strings.Contains(l, `key="kkkk`) || !strings.Contains(l, "(1048576 bytes)") {
			t.Errorf("line %.300s...: want the start of the key and its length", l)
		}
	}
}

func TestErrorKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{memdict.ErrUnavailable, "unavailable"},
		{&memdict.OpError{Op: "get", Key: "k", Err: fmt.Errorf("x: %w", context.DeadlineExceeded)}, "timeout"},
		{fmt.Errorf("%w: bad", memdict.ErrDecode), "decode"},
		{memdict.ErrValueTooLarge, "value_too_large"},
		{errors.New("the loader's own"), "other"},
	} {
		if got := memdict.ErrorKind(c.err); got != c.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", c.err, got, c.want)
		}
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
	// level=WARN msg="memdict: operation failed" prefix=p op=put key=k kind=invalid_ttl error="backend: invalid TTL: -1s"
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
