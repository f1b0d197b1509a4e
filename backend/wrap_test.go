package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// recorder is a middleware that records each call's operation and key
// (or prefix, or first key), and its error.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) middleware(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, c backend.Call) backend.Result {
		res := next(ctx, c)
		key := c.Key
		switch {
		case c.Item.Key != "":
			key = c.Item.Key
		case c.Prefix != "":
			key = c.Prefix
		case len(c.Keys) > 0:
			key = c.Keys[0]
		case len(c.Items) > 0:
			key = c.Items[0].Key
		}
		outcome := "ok"
		if backend.NotSupported(res.Err) {
			outcome = "unsupported"
		} else if res.Err != nil {
			outcome = "error"
		}
		r.mu.Lock()
		r.calls = append(r.calls, c.Op.String()+" "+key+" "+outcome)
		r.mu.Unlock()
		return res
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// fakeLeaser adds leases, tracking and server naming to a memory store.
type fakeLeaser struct {
	*memory.Store
}

func (fakeLeaser) GetLease(_ context.Context, key string, _ backend.LeaseOptions) (backend.Lease, error) {
	return backend.Lease{Item: backend.Item{Key: key, CAS: 7}, Won: true}, nil
}
func (fakeLeaser) ReleaseLease(context.Context, backend.Lease) error      { return nil }
func (fakeLeaser) MarkStale(context.Context, string, time.Duration) error { return nil }
func (fakeLeaser) ServerFor(key string) string                            { return "server-of-" + key }
func (fakeLeaser) Timeout() time.Duration                                 { return 42 * time.Millisecond }
func (fakeLeaser) Track(context.Context, string, func(backend.Invalidation)) (backend.Tracking, error) {
	return fakeTracking{}, nil
}

type fakeTracking struct{}

func (fakeTracking) Live() bool      { return true }
func (fakeTracking) Supported() bool { return true }
func (fakeTracking) Stop()           {}

// Every method and every optional ability of a Wrapped goes through its
// middleware, as a Call naming the operation and its keys, and reaches
// the backend under it; an ability that backend lacks is reported as
// unsupported, not hidden.
func TestWrapSeesEveryCall(t *testing.T) {
	ctx := context.Background()
	var rec recorder
	w := backend.Wrap(fakeLeaser{memory.New()}, rec.middleware)
	it := backend.Item{Key: "k", Value: []byte("1")}
	_ = w.Set(ctx, it)
	got, _ := w.Get(ctx, "k")
	_, _ = w.GetMulti(ctx, []string{"k"})
	_ = w.Add(ctx, it)
	_ = w.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("2"), CAS: got.CAS})
	_ = w.Touch(ctx, "k", time.Hour)
	_, _ = w.Increment(ctx, "k", 1)
	_ = w.Delete(ctx, "k")
	for range w.Keys(ctx, "p") {
	}
	_, _ = w.ServerStats(ctx)
	_ = w.Flush(ctx)
	_ = w.Ping(ctx)
	_ = w.SetMulti(ctx, []backend.Item{{Key: "m", Value: []byte("v")}})
	_ = w.DeleteMulti(ctx, []string{"m"})
	l, _ := w.GetLease(ctx, "l", backend.LeaseOptions{TTL: time.Second})
	_ = w.ReleaseLease(ctx, l)
	_ = w.MarkStale(ctx, "l", 0)
	_, _ = w.TryLock(ctx, "lock", "tok", time.Second)
	_, _ = w.Unlock(ctx, "lock", "tok")
	tr, _ := w.Track(ctx, "t", func(backend.Invalidation) {})
	if tr == nil || !tr.Live() {
		t.Fatalf("Track through the wrapper = %v", tr)
	}
	if a := w.ServerFor("s"); a != "server-of-s" {
		t.Fatalf("ServerFor = %q", a)
	}
	if d := w.Timeout(); d != 42*time.Millisecond {
		t.Fatalf("Timeout = %v", d)
	}
	if d := w.Describe(); d.System != "memory" {
		t.Fatalf("Describe = %+v", d)
	}
	_ = w.Close()
	want := []string{
		"set k ok", "get k ok", "getmulti k ok", "add k error", "cas k ok", "touch k ok", "increment k ok", "delete k ok",
		"keys p ok", "stats  ok", "flush  ok", "ping  ok", "setmulti m ok", "deletemulti m ok",
		"getlease l ok", "releaselease l ok", "markstale l ok", "trylock lock ok", "unlock lock ok", "track t ok",
		"serverfor s ok", "timeout  ok", "describe  ok", "close  ok",
	}
	if g := rec.list(); !slices.Equal(g, want) {
		t.Fatalf("the middleware saw\n%q\nwant\n%q", g, want)
	}
	seen := map[backend.Op]bool{}
	for _, c := range want {
		for _, op := range backend.Ops() {
			if strings.HasPrefix(c, op.String()+" ") {
				seen[op] = true
			}
		}
	}
	for _, op := range backend.Ops() {
		if !seen[op] {
			t.Errorf("no call of %v went through the middleware", op)
		}
	}

	// Over a backend without the abilities, the wrapper has their
	// methods, which say so.
	rec = recorder{}
	w = backend.Wrap(struct{ backend.Backend }{memory.New()}, rec.middleware)
	_, err := w.GetLease(ctx, "l", backend.LeaseOptions{TTL: time.Second})
	if !backend.NotSupported(err) || err.Error() != "leases: backend: not supported" {
		t.Fatalf("GetLease over a backend without leases: %v", err)
	}
	if _, err := w.Track(ctx, "t", func(backend.Invalidation) {}); !backend.NotSupported(err) {
		t.Fatalf("Track over a backend without it: %v", err)
	}
	if a := w.ServerFor("s"); a != "" {
		t.Fatalf("ServerFor over a backend without Locator = %q", a)
	}
	if d := w.Timeout(); d != 0 {
		t.Fatalf("Timeout over a backend without Timeouter = %v", d)
	}
	if d := w.Describe(); d.System != "" || d.Servers != nil {
		t.Fatalf("Describe over a backend without Describer = %+v", d)
	}
	if g := rec.list(); !slices.Equal(g, []string{"getlease l unsupported", "track t unsupported", "serverfor s unsupported", "timeout  unsupported", "describe  unsupported"}) {
		t.Fatalf("the middleware saw %q", g)
	}
}

// Only ServerFor, Timeout and Describe are properties; the abilities are
// optional, the Backend methods are not.
func TestOpKinds(t *testing.T) {
	for _, op := range backend.Ops() {
		if got, want := op.Property(), op == backend.OpServerFor || op == backend.OpTimeout || op == backend.OpDescribe; got != want {
			t.Errorf("%v.Property() = %v", op, got)
		}
		if got, want := op.Optional(), op >= backend.OpKeys; got != want {
			t.Errorf("%v.Optional() = %v", op, got)
		}
	}
	if s := backend.Op(200).String(); s != "op(200)" {
		t.Errorf("String of an unknown op = %q", s)
	}
}

// The first middleware sees each call first and its result last.
func TestWrapOrder(t *testing.T) {
	var trace []string
	mw := func(name string) backend.Middleware {
		return func(next backend.CallFunc) backend.CallFunc {
			return func(ctx context.Context, c backend.Call) backend.Result {
				trace = append(trace, name+">")
				r := next(ctx, c)
				trace = append(trace, "<"+name)
				return r
			}
		}
	}
	w := backend.Wrap(memory.New(), mw("a"), nil, mw("b"))
	_, _ = w.Get(context.Background(), "k")
	if want := []string{"a>", "b>", "<b", "<a"}; !slices.Equal(trace, want) {
		t.Fatalf("trace %q, want %q", trace, want)
	}
	// A wrapper of a wrapper hands each call down through both chains.
	trace = nil
	ww := backend.Wrap(w, mw("outer"))
	_ = ww.Ping(context.Background())
	if want := []string{"outer>", "a>", "b>", "<b", "<a", "<outer"}; !slices.Equal(trace, want) {
		t.Fatalf("trace %q, want %q", trace, want)
	}
	if ww.Unwrap() != backend.Backend(w) {
		t.Fatal("Unwrap does not return the wrapped backend")
	}
}

// reverse is a middleware that stores values reversed and reverses them
// back on every read, leases included: a value transform.
func reverse(next backend.CallFunc) backend.CallFunc {
	rev := func(b []byte) []byte {
		out := bytes.Clone(b)
		slices.Reverse(out)
		return out
	}
	return func(ctx context.Context, c backend.Call) backend.Result {
		switch c.Op {
		case backend.OpSet, backend.OpAdd, backend.OpCompareAndSwap:
			c.Item.Value = rev(c.Item.Value)
		case backend.OpSetMulti:
			items := make([]backend.Item, len(c.Items))
			for i, it := range c.Items {
				it.Value = rev(it.Value)
				items[i] = it
			}
			c.Items = items
		}
		r := next(ctx, c)
		switch c.Op {
		case backend.OpGet:
			r.Item.Value, r.Private = rev(r.Item.Value), true // a fresh slice, the caller's own
		case backend.OpGetMulti:
			for k, it := range r.Items {
				it.Value = rev(it.Value)
				r.Items[k] = it
			}
		case backend.OpGetLease:
			r.Lease.Item.Value = rev(r.Lease.Item.Value)
		}
		return r
	}
}

// A middleware may transform values: the backend under it holds what the
// middleware made, its callers see what they wrote, and a Get through it
// says the value is private when the middleware made a fresh one.
func TestWrapTransformsValues(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	w := backend.Wrap(store, reverse)
	if err := backend.SetMulti(ctx, w, []backend.Item{{Key: "a", Value: []byte("abc")}, {Key: "b", Value: []byte("xyz")}}); err != nil {
		t.Fatal(err)
	}
	if it, _ := store.Get(ctx, "a"); string(it.Value) != "cba" {
		t.Fatalf("stored %q, want the transformed cba", it.Value)
	}
	it, private, err := backend.GetPrivate(ctx, w, "a")
	if err != nil || string(it.Value) != "abc" || !private {
		t.Fatalf("GetPrivate = %q, %v, %v", it.Value, private, err)
	}
	if _, private, _ := backend.GetPrivate(ctx, store, "a"); private {
		t.Fatal("the memory store's reads are private")
	}
	items, err := w.GetMulti(ctx, []string{"a", "b"})
	if err != nil || string(items["a"].Value) != "abc" || string(items["b"].Value) != "xyz" {
		t.Fatalf("GetMulti = %v, %v", items, err)
	}
}

// onlyGets is a backend whose wrapper reports every optional ability as
// missing at the call, as a Tool's plugin does whose current backend
// lacks them: the functions of package backend fall back.
func TestFallbackOnUnsupportedAtTheCall(t *testing.T) {
	ctx := context.Background()
	var rec recorder
	store := memory.New()
	deny := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op.Optional() {
				return backend.Result{Err: fmt.Errorf("denied: %w", backend.ErrNotSupported)}
			}
			return next(ctx, c)
		}
	}
	w := backend.Wrap(store, rec.middleware, deny)
	if err := backend.SetMulti(ctx, w, []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	won, err := backend.TryLock(ctx, w, "lock", "tok", time.Minute)
	if err != nil || !won {
		t.Fatalf("TryLock = %v, %v", won, err)
	}
	done, err := backend.Unlock(ctx, w, "lock", "tok")
	if err != nil || !done {
		t.Fatalf("Unlock = %v, %v", done, err)
	}
	got := rec.list()
	slices.Sort(got[1:3]) // the fallback's two Sets run at once
	want := []string{"setmulti a unsupported", "set a ok", "set b ok", "trylock lock unsupported", "add lock ok",
		"unlock lock unsupported", "get lock ok", "delete lock ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

// A *MultiError whose keys failed with ErrNotSupported is an outcome, not
// a missing ability: SetMulti returns it rather than writing again key by
// key.
func TestMultiErrorIsNotMissingAbility(t *testing.T) {
	ctx := context.Background()
	var rec recorder
	perKey := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpSetMulti {
				return backend.Result{Err: &backend.MultiError{Errors: []backend.KeyError{{Key: "a", Err: backend.ErrNotSupported}}}}
			}
			return next(ctx, c)
		}
	}
	w := backend.Wrap(memory.New(), rec.middleware, perKey)
	err := backend.SetMulti(ctx, w, []backend.Item{{Key: "a"}, {Key: "b"}})
	if kes, ok := backend.KeyErrors(err); !ok || len(kes) != 1 || kes[0].Key != "a" {
		t.Fatalf("SetMulti = %v", err)
	}
	if backend.NotSupported(err) {
		t.Fatal("NotSupported of a *MultiError")
	}
	if got := rec.list(); len(got) != 1 {
		t.Fatalf("calls %q: SetMulti fell back", got)
	}
}

// ServerFor and Timeout find a Locator and a Timeouter under wrappers,
// and under a backend with an Unwrap method.
func TestServerForThroughWrappers(t *testing.T) {
	inner := fakeLeaser{memory.New()}
	for name, be := range map[string]backend.Backend{
		"driver":           inner,
		"Wrap":             backend.Wrap(inner),
		"Wrap of Wrap":     backend.Wrap(backend.Wrap(inner, passOn)),
		"Unwrap then Wrap": unwrapperOf{backend.Wrap(inner)},
		"Unwrap":           unwrapperOf{inner},
	} {
		if a := backend.ServerFor(be, "k"); a != "server-of-k" {
			t.Errorf("%s: ServerFor = %q", name, a)
		}
		if d := backend.Timeout(be); d != 42*time.Millisecond {
			t.Errorf("%s: Timeout = %v", name, d)
		}
	}
	if d := backend.Timeout(memory.New()); d != 0 {
		t.Errorf("Timeout of the memory backend = %v", d)
	}
}

// unwrapperOf is an old-style wrapper: it forwards the Backend methods and
// says what it wraps.
type unwrapperOf struct{ backend.Backend }

func (u unwrapperOf) Unwrap() backend.Backend { return u.Backend }

func passOn(next backend.CallFunc) backend.CallFunc { return next }

// Asking a driver for an ability it lacks, and a wrapper for a call,
// costs no allocation.
func TestDoAllocations(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	_ = store.Set(ctx, backend.Item{Key: "k", Value: []byte("v")})
	w := backend.Wrap(store, passOn, passOn, passOn)
	for name, fn := range map[string]func(){
		"GetLease of a driver without leases": func() { _, _ = backend.GetLease(ctx, store, "k", backend.LeaseOptions{TTL: time.Second}) },
		"Get through three middleware":        func() { _, _ = w.Get(ctx, "k") },
		"GetPrivate through three middleware": func() { _, _, _ = backend.GetPrivate(ctx, w, "k") },
		"GetLease through three middleware":   func() { _, _ = w.GetLease(ctx, "k", backend.LeaseOptions{TTL: time.Second}) },
		"Timeout through three middleware":    func() { _ = backend.Timeout(w) },
		"Timeout of a driver without one":     func() { _ = backend.Timeout(store) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

// Closing a Wrapped closes the backend under it (an OpClose the
// middleware sees).
func TestWrapClose(t *testing.T) {
	store := memory.New()
	w := backend.Wrap(store)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(context.Background(), "k"); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Get after the wrapper's Close: %v", err)
	}
}

// benchGet measures a Get of a present key on the memory store, directly
// or through n middleware that pass each call on.
func benchGet(b *testing.B, n int) {
	ctx := context.Background()
	store := memory.New()
	_ = store.Set(ctx, backend.Item{Key: "k", Value: []byte("value")})
	var be backend.Backend = store
	if n >= 0 {
		mw := make([]backend.Middleware, n)
		for i := range mw {
			mw[i] = func(next backend.CallFunc) backend.CallFunc {
				return func(ctx context.Context, c backend.Call) backend.Result { return next(ctx, c) }
			}
		}
		be = backend.Wrap(store, mw...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := be.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetDirect(b *testing.B) { benchGet(b, -1) }
func BenchmarkGetWrap0(b *testing.B)  { benchGet(b, 0) }
func BenchmarkGetWrap1(b *testing.B)  { benchGet(b, 1) }
func BenchmarkGetWrap3(b *testing.B)  { benchGet(b, 3) }
