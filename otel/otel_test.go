package otel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/testserver"
	memdictotel "github.com/memdict/memdict/otel"
	"github.com/memdict/memdict/testing/memdicttest"
)

// harness is the instrumentation on in-memory exporters.
type harness struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	tel    *memdictotel.Instrumentation
}

func newHarness(t *testing.T, opts ...memdictotel.Option) *harness {
	t.Helper()
	h := &harness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = h.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	tel, err := memdictotel.New(append([]memdictotel.Option{memdictotel.WithTracerProvider(h.tp), memdictotel.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	return h
}

// ended returns the spans ended so far and forgets them.
func (h *harness) ended() []sdktrace.ReadOnlySpan {
	s := h.spans.Ended()
	h.spans.Reset()
	return s
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// describe writes a span as "name kind parent-name {k=v ...}".
func describe(s sdktrace.ReadOnlySpan, byID map[trace.SpanID]string) string {
	var kvs []string
	for _, kv := range s.Attributes() {
		kvs = append(kvs, string(kv.Key)+"="+kv.Value.String())
	}
	return fmt.Sprintf("%s %s parent=%q {%s}", s.Name(), s.SpanKind(), byID[s.Parent().SpanID()], strings.Join(kvs, " "))
}

// memcachedDict returns a Dict over a test memcached, through the
// instrumentation, and the server's address.
func memcachedDict(t *testing.T, h *harness, opts ...memdict.Option) (*memdict.Dict[string], string) {
	t.Helper()
	p := testserver.Memcached(t)
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d, err := memdict.New[string](backend.Wrap(c, h.tel.Middleware), "users", append([]memdict.Option{memdict.WithObserver(h.tel)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d, p.Addr
}

// A span per Dict operation, with a child per backend call that follows
// the semantic conventions of database clients; no key is recorded.
func TestSpans(t *testing.T) {
	h := newHarness(t)
	d, addr := memcachedDict(t, h, memdict.WithNearCache(memdict.NearCache{MaxStale: time.Minute}))
	ctx := context.Background()
	const secret = "alice@example.com"
	d.Get(secret) // a miss
	if err := d.Store(ctx, secret, "Alice"); err != nil {
		t.Fatal(err)
	}
	d.Get(secret) // from the server, filling the near cache
	d.Get(secret) // from the near cache: no backend call
	spans := h.ended()
	byID := map[trace.SpanID]string{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s.Name()
	}
	var dict, calls []string
	host, port, _ := strings.Cut(addr, ":")
	for _, s := range spans {
		a := attrs(s)
		for k, v := range a {
			if strings.Contains(v.String(), secret) || strings.Contains(v.String(), "alice") {
				t.Errorf("span %s records the key in %s", s.Name(), k)
			}
		}
		switch s.SpanKind() {
		case trace.SpanKindInternal:
			dict = append(dict, s.Name()+" "+a["memdict.result"].String())
			if a["db.operation.name"].String() != strings.Fields(s.Name())[0] || a["db.collection.name"].String() != "users" {
				t.Errorf("Dict span %s", describe(s, byID))
			}
		case trace.SpanKindClient:
			calls = append(calls, s.Name())
			// The near cache's tracking registration (which memcached
			// cannot do) is made for no one operation: a root span.
			if a["db.system.name"].String() != "memcached" || a["db.operation.name"].String() != s.Name() ||
				a["server.address"].String() != host || a["server.port"].String() != port || s.Parent().IsValid() == (s.Name() == "track") {
				t.Errorf("backend span %s", describe(s, byID))
			}
			if s.Status().Code == codes.Error {
				t.Errorf("backend span %s failed: %v", describe(s, byID), s.Status())
			}
		}
	}
	if got, want := strings.Join(dict, ", "), "get users miss, put users ok, get users hit, get users hit"; got != want {
		t.Errorf("Dict spans: %s, want %s", got, want)
	}
	// The namespace generation is read once, with its key's TTL (which
	// the Dict renews), and stored (a new namespace has none); the near
	// cache tries to register; then a get, a set, a get.
	if got, want := strings.Join(calls, " "), "getttl add track get set get"; got != want {
		t.Errorf("backend spans: %s, want %s", got, want)
	}
	last := spans[len(spans)-1]
	if a := attrs(last); a["memdict.near_cache.hits"].AsInt64() != 1 {
		t.Errorf("the near-cache hit: %s", describe(last, byID))
	}
}

// WithKeys records keys, and the messages of errors.
func TestSpansWithKeys(t *testing.T) {
	h := newHarness(t, memdictotel.WithKeys())
	dict, _ := memcachedDict(t, h)
	dict.Get("k1")
	var dictKey, backendKey bool
	for _, s := range h.ended() {
		a := attrs(s)
		dictKey = dictKey || a["memdict.key"].String() == "k1"
		backendKey = backendKey || strings.HasSuffix(a["memdict.backend_key"].String(), ":k1")
	}
	if !dictKey || !backendKey {
		t.Fatalf("keys recorded: Dict %v, backend %v", dictKey, backendKey)
	}
}

// A failure marks both spans with error.type and the status Error, without
// the error's message (which names the key) unless WithKeys.
func TestSpansOfAFailure(t *testing.T) {
	for _, keys := range []bool{false, true} {
		t.Run(fmt.Sprint("keys=", keys), func(t *testing.T) {
			var opts []memdictotel.Option
			if keys {
				opts = append(opts, memdictotel.WithKeys())
			}
			h := newHarness(t, opts...)
			f := memdicttest.NewFaulty(memory.New())
			d, err := memdict.New[string](backend.Wrap(f, h.tel.Middleware), "p", memdict.WithObserver(h.tel))
			if err != nil {
				t.Fatal(err)
			}
			_ = d.Put("warm", "x") // reads the generation
			h.ended()
			f.FailOp(memdicttest.OpGet, backend.ErrUnavailable)
			if _, _, err := d.Lookup(context.Background(), "secret"); !errors.Is(err, memdict.ErrUnavailable) {
				t.Fatalf("Lookup: %v", err)
			}
			spans := h.ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans", len(spans))
			}
			for _, s := range spans {
				a := attrs(s)
				if a["error.type"].String() != "unavailable" || s.Status().Code != codes.Error {
					t.Errorf("span %s: error.type %q, status %v", s.Name(), a["error.type"].String(), s.Status())
				}
				if bare := s.Status().Description == "unavailable"; bare == keys {
					t.Errorf("span %s: status %q (keys recorded: %v)", s.Name(), s.Status().Description, keys)
				}
				if named := strings.Contains(s.Status().Description, `"secret"`); named != (keys && s.SpanKind() == trace.SpanKindInternal) {
					t.Errorf("span %s: status %q (keys recorded: %v)", s.Name(), s.Status().Description, keys)
				}
				if recorded := len(s.Events()) > 0; recorded != keys {
					t.Errorf("span %s: events %v (keys recorded: %v)", s.Name(), s.Events(), keys)
				}
			}
		})
	}
}

// What a span records of a key, an error's message and a server's address
// is bounded: a 1 MiB key failing with a 1 MiB message, from a server
// whose address is 1 MiB long, made spans with attributes, a status and
// an exception event of 1 to 3 MiB each; a GetMulti of 20 such keys, a
// status of 23 MiB.
func TestSpansBoundKeysAndMessages(t *testing.T) {
	h := newHarness(t, memdictotel.WithKeys())
	said := strings.Repeat("s", 1<<20)
	addr := strings.Repeat("h", 1<<20) + ":6379"
	failing := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op.Property() {
				return next(ctx, c)
			}
			return backend.Result{Err: &backend.ServerError{Addr: addr, Err: fmt.Errorf("%w: the server said %s", backend.ErrUnavailable, said)}}
		}
	}
	d, err := memdict.New[string](backend.Wrap(memory.New(), h.tel.Middleware, failing), "p",
		memdict.WithObserver(h.tel), memdict.WithMaxKeyLen(0))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 1<<20)
	if _, _, err := d.Lookup(context.Background(), key); !errors.Is(err, memdict.ErrUnavailable) || !strings.Contains(err.Error(), said) {
		t.Fatalf("Lookup: %.100v: want the whole error", err)
	}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint(i, key)
	}
	if _, err := d.GetMulti(context.Background(), keys); err == nil {
		t.Fatal("GetMulti did not fail")
	}
	spans := h.ended()
	if len(spans) < 4 {
		t.Fatalf("%d spans", len(spans))
	}
	const most = 10 << 10
	var keyed, server bool
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if n := len(kv.Value.String()); n > most {
				t.Errorf("span %s: attribute %s of %d bytes", s.Name(), kv.Key, n)
			}
			keyed = keyed || strings.HasPrefix(kv.Value.String(), "kkkk") && strings.HasSuffix(kv.Value.String(), "(1048576 bytes)")
			server = server || kv.Key == "server.address" && strings.HasPrefix(kv.Value.String(), "hhhh")
		}
		if d := s.Status().Description; len(d) > most || !strings.HasSuffix(d, " bytes)") {
			t.Errorf("span %s: status of %d bytes, want it cut: %.200q", s.Name(), len(d), d)
		}
		if len(s.Events()) != 1 {
			t.Fatalf("span %s: events %d, want the exception", s.Name(), len(s.Events()))
		}
		for _, kv := range s.Events()[0].Attributes {
			if n := len(kv.Value.String()); n > most {
				t.Errorf("span %s: event attribute %s of %d bytes", s.Name(), kv.Key, n)
			}
			if kv.Key == "exception.type" && kv.Value.String() == "" {
				t.Errorf("span %s: no exception.type", s.Name())
			}
		}
	}
	if !keyed || !server {
		t.Errorf("want the start of the key (%v) and of the server's address (%v)", keyed, server)
	}
}

// Everything a span or a metric records is valid UTF-8: a key of a
// client's choosing, a prefix, a server's error or address with bytes
// that are not were recorded as they were, and OTLP's exporter then
// fails to encode the whole batch they are in (protobuf strings must be
// UTF-8), losing every span or metric of it.
func TestSpansAndMetricsAreValidUTF8(t *testing.T) {
	h := newHarness(t, memdictotel.WithKeys())
	failing := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op.Property() {
				return next(ctx, c)
			}
			return backend.Result{Err: &backend.ServerError{Addr: "h\xff:6379", Err: fmt.Errorf("%w: ERR \xfe", backend.ErrUnavailable)}}
		}
	}
	d, err := memdict.New[string](backend.Wrap(memory.New(), h.tel.Middleware, failing), "p\xff",
		memdict.WithObserver(h.tel), memdict.WithMaxKeyLen(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Lookup(context.Background(), "k\xfd"); err == nil {
		t.Fatal("Lookup did not fail")
	}
	valid := func(what, s string) {
		if !utf8.ValidString(s) {
			t.Errorf("%s %q is not UTF-8", what, s)
		}
	}
	spans := h.ended()
	if len(spans) < 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for _, s := range spans {
		valid("span name", s.Name())
		valid("status", s.Status().Description)
		for _, kv := range s.Attributes() {
			valid(string(kv.Key), kv.Value.String())
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				valid(string(kv.Key), kv.Value.String())
			}
		}
	}
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if hist, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range hist.DataPoints {
					for _, kv := range dp.Attributes.ToSlice() {
						n++
						valid(m.Name+" "+string(kv.Key), kv.Value.String())
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no metric attributes")
	}
}

// Over Redis, the server is the backend's one server.
func TestSpansRedis(t *testing.T) {
	h := newHarness(t)
	p := testserver.Redis(t)
	be, err := backend.Open(context.Background(), "redis://"+p.Addr+"?timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d, err := memdict.New[string](backend.Wrap(be, h.tel.Middleware), "p", memdict.WithObserver(h.tel))
	if err != nil {
		t.Fatal(err)
	}
	d.Get("k")
	host, _, _ := strings.Cut(p.Addr, ":")
	for _, s := range h.ended() {
		if s.SpanKind() != trace.SpanKindClient {
			continue
		}
		if a := attrs(s); a["db.system.name"].String() != "redis" || a["server.address"].String() != host {
			t.Errorf("backend span %s: %v", s.Name(), s.Attributes())
		}
	}
}

// The metrics: the durations of backend calls and Dict operations, and
// the near cache's hits and misses.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	d, _ := memcachedDict(t, h, memdict.WithNearCache(memdict.NearCache{MaxStale: time.Minute}))
	_ = d.Put("a", "x")
	d.Get("a")
	d.Get("a")
	d.Get("a")
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					op, _ := dp.Attributes.Value("db.operation.name")
					sys, _ := dp.Attributes.Value("db.system.name")
					got[m.Name+" "+op.String()+" "+sys.String()] = fmt.Sprint(dp.Count)
				}
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					r, _ := dp.Attributes.Value("memdict.result")
					got[m.Name+" "+r.String()] = fmt.Sprint(dp.Value)
				}
			}
		}
	}
	for k, want := range map[string]string{
		"db.client.operation.duration getttl memcached": "1", // the generation, with its key's TTL
		"db.client.operation.duration get memcached":    "1", // the first read of a
		"db.client.operation.duration set memcached":    "1",
		"memdict.operation.duration get ":               "3",
		"memdict.operation.duration put ":               "1",
		"memdict.near_cache.requests hit":               "2",
		"memdict.near_cache.requests miss":              "1",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %s (all: %v)", k, got[k], want, got)
		}
	}
}

// GetOrLoad's background refresh is a span of its own, a child of the
// call that started it, whose context the caller's cancellation does not
// end; its backend calls are its children.
func TestRefreshSpan(t *testing.T) {
	h := newHarness(t)
	d, _ := memcachedDict(t, h)
	ctx := context.Background()
	if err := d.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	h.ended()
	cctx, parent := h.tp.Tracer("test").Start(ctx, "request")
	cctx, cancel := context.WithCancel(cctx)
	var loaderErr error
	var mu sync.Mutex
	loaded := make(chan struct{})
	v, err := d.GetOrLoad(cctx, "k", func(ctx context.Context, _ string) (string, error) {
		time.Sleep(10 * time.Millisecond) // the caller has gone by now
		mu.Lock()
		loaderErr = ctx.Err()
		mu.Unlock()
		close(loaded)
		return "v2", nil
	})
	cancel()
	parent.End()
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v", v, err)
	}
	<-loaded
	deadline := time.Now().Add(20 * time.Second)
	var spans []sdktrace.ReadOnlySpan
	for {
		spans = append(spans, h.ended()...)
		if hasSpan(spans, "refresh users") || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	if loaderErr != nil {
		t.Errorf("the loader's context ended: %v", loaderErr)
	}
	mu.Unlock()
	byName := map[string]sdktrace.ReadOnlySpan{}
	byID := map[trace.SpanID]string{}
	for _, s := range spans {
		byName[s.Name()] = s
		byID[s.SpanContext().SpanID()] = s.Name()
	}
	gol, ref := byName["getorload users"], byName["refresh users"]
	if gol == nil || ref == nil {
		t.Fatalf("spans: %v", byID)
	}
	if gol.Parent().SpanID() != parent.SpanContext().SpanID() || ref.Parent().SpanID() != gol.SpanContext().SpanID() {
		t.Fatalf("getorload's parent %q, refresh's parent %q", byID[gol.Parent().SpanID()], byID[ref.Parent().SpanID()])
	}
	var children []string
	for _, s := range spans {
		if s.Parent().SpanID() == ref.SpanContext().SpanID() {
			children = append(children, s.Name())
		}
	}
	// The lock, a read, the write under the lock, the unlock.
	if len(children) < 3 {
		t.Fatalf("the refresh's children: %v", children)
	}
	if v, ok := d.Get("k"); !ok || v != "v2" {
		t.Fatalf("after the refresh Get = %q, %v", v, ok)
	}
}

func hasSpan(spans []sdktrace.ReadOnlySpan, name string) bool {
	for _, s := range spans {
		if s.Name() == name {
			return true
		}
	}
	return false
}
