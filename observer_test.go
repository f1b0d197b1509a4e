package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// recordingObserver records each operation as "name key result near=h/m",
// and puts a value in the context it hands on, which the backend calls
// must see.
type recordingObserver struct {
	mu      sync.Mutex
	ended   []string
	started []memdict.Operation
	ctxs    map[string]context.Context // the context of each started op, by name
}

type opKey struct{}

func (r *recordingObserver) Start(ctx context.Context, op memdict.Operation) (context.Context, func(memdict.Outcome)) {
	ctx = context.WithValue(ctx, opKey{}, op.Name)
	r.mu.Lock()
	r.started = append(r.started, op)
	if r.ctxs == nil {
		r.ctxs = map[string]context.Context{}
	}
	r.ctxs[op.Name] = ctx
	r.mu.Unlock()
	return ctx, func(o memdict.Outcome) {
		s := fmt.Sprintf("%s %s %s", op.Name, op.Key, o.Result)
		if o.NearHits+o.NearMisses > 0 {
			s += fmt.Sprintf(" near=%d/%d", o.NearHits, o.NearMisses)
		}
		if (o.Err != nil) != (o.Result == "error" || o.Result == "not_found") {
			s += " (inconsistent error: " + fmt.Sprint(o.Err) + ")"
		}
		r.mu.Lock()
		r.ended = append(r.ended, s)
		r.mu.Unlock()
	}
}

func (r *recordingObserver) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ended
	r.ended = nil
	return out
}

// ctxChecker fails calls whose context lacks the observer's value.
type ctxChecker struct {
	backend.Backend
	mu      sync.Mutex
	missing []string
}

func (c *ctxChecker) check(ctx context.Context, what string) {
	if ctx.Value(opKey{}) == nil {
		c.mu.Lock()
		c.missing = append(c.missing, what)
		c.mu.Unlock()
	}
}

func (c *ctxChecker) middleware(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, call backend.Call) backend.Result {
		// Not the near caches' shared registration, nor properties
		// (timeout, describe), which are asked without a call's context.
		if call.Op != backend.OpTrack && !call.Op.Property() {
			c.check(ctx, call.Op.String())
		}
		return next(ctx, call)
	}
}

// An Observer sees every operation start and end, with its outcome and
// the near cache's part in it, and the backend calls run in the context
// it handed on.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	var obs recordingObserver
	var chk ctxChecker
	be := backend.Wrap(memory.New(), chk.middleware)
	d := newDict[string](t, be, "p", memdict.WithObserver(&obs),
		memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	d.Get("a")
	_ = d.Put("a", "x")
	d.Get("a")
	d.Get("a")
	_, _ = d.Add(ctx, "a", "y")
	_, _ = d.Add(ctx, "b", "y")
	_ = d.Remove(ctx, "zz")
	_ = d.Delete("b")
	_, _ = d.GetMulti(ctx, []string{"a", "b", "c", "a"})
	_ = d.PutMulti(ctx, map[string]string{"m": "1", "n": "2"})
	_, _ = d.Update(ctx, "u", func(old string, _ bool) (string, error) { return old + "!", nil })
	_, _ = d.GetOrLoad(ctx, "l", func(context.Context, string) (string, error) { return "loaded", nil })
	_, _ = d.GetOrLoad(ctx, "l", func(context.Context, string) (string, error) { return "again", nil })
	_ = d.Touch(ctx, "zz", time.Minute)
	_ = d.Invalidate(ctx, "l")
	tx := d.Begin()
	tx.Put("t", "1")
	_ = tx.Commit(ctx)
	_ = d.Clear(ctx)
	_ = d.Store(ctx, "bad", "x", memdict.TTL(-time.Second))
	want := []string{
		"get a miss near=0/1", "put a ok", "get a hit near=0/1", "get a hit near=1/0",
		"add a not_stored", "add b ok", "delete zz not_found", "delete b ok",
		"getmulti  ok near=1/2", "putmulti  ok", "update u ok",
		"getorload l miss near=0/1", "getorload l hit near=0/1", // the load stored it: no near entry yet
		"touch zz not_found", "invalidate l ok", "commit  ok", "clear  ok", "put bad error",
	}
	if got := obs.take(); !slices.Equal(got, want) {
		t.Fatalf("observed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(chk.missing) > 0 {
		t.Fatalf("backend calls without the observer's context: %q", chk.missing)
	}
	for _, op := range obs.started {
		if op.Prefix != "p" {
			t.Fatalf("operation %+v: prefix", op)
		}
		want, many := map[string]int{"getmulti": 3, "putmulti": 2, "commit": 1, "clear": 0}[op.Name]
		if !many {
			want = 1
		}
		if op.Keys != want || (op.Key == "") != many {
			t.Errorf("operation %+v: Key and Keys", op)
		}
	}

	c, err := memdict.NewCounters(be, "c", memdict.WithObserver(&obs))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Inc(ctx, "n")
	_, _, _ = c.Get(ctx, "n")
	_ = c.Set(ctx, "n", 5)
	if got, want := obs.take(), []string{"incr n ok", "get n hit", "put n ok"}; !slices.Equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

// GetOrLoad's background refresh is observed as an operation of its own,
// "refresh", in a context that keeps the caller's values (its trace span)
// but not its cancellation.
func TestObserverRefresh(t *testing.T) {
	ctx := testCtx(t)
	var obs recordingObserver
	d := newDict[string](t, memory.New(), "p", memdict.WithObserver(&obs))
	if err := d.Put("k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	obs.take()
	type callerKey struct{}
	cctx, cancel := context.WithCancel(context.WithValue(ctx, callerKey{}, "caller"))
	type seen struct {
		caller, observed any
		err              error
	}
	loaded := make(chan seen, 1)
	release := make(chan struct{})
	v, err := d.GetOrLoad(cctx, "k", func(ctx context.Context, _ string) (string, error) {
		<-release
		loaded <- seen{ctx.Value(callerKey{}), ctx.Value(opKey{}), ctx.Err()}
		return "v2", nil
	})
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v", v, err)
	}
	cancel() // the caller is gone: the refresh goes on
	close(release)
	if l := <-loaded; l.caller != "caller" || l.observed != "refresh" || l.err != nil {
		t.Fatalf("the loader's context: caller value %v, observed as %v, err %v", l.caller, l.observed, l.err)
	}
	waitFor(t, "the refresh to end", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return slices.Contains(obs.ended, "refresh k ok")
	})
	if v, ok := d.Get("k"); !ok || v != "v2" {
		t.Fatalf("after the refresh Get = %q, %v", v, ok)
	}
	obs.mu.Lock()
	rctx := obs.ctxs["refresh"]
	obs.mu.Unlock()
	if rctx == nil || rctx.Value(callerKey{}) != "caller" {
		t.Fatal("the refresh was not started in a context of the caller's")
	}

	// A refresh that fails is observed as failed.
	obs.take()
	if err := d.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) {
		return "", errors.New("the source is down")
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed refresh to end", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return slices.Contains(obs.ended, "refresh k error")
	})
}

// Without an Observer, an operation allocates no more than before.
func TestObserverUnsetCostsNoAllocation(t *testing.T) {
	d := newDict[string](t, memory.New(), "p")
	_ = d.Put("k", "v")
	if n := testing.AllocsPerRun(100, func() { d.Get("k") }); n > 1 {
		t.Fatalf("Get allocates %v times", n)
	}
}
