package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// runPower runs the subtests of the Dict's power features: Tx, Update,
// GetOrLoad, Clear, Keys/All and Counters.
func runPower(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	tests := []struct {
		name string
		fn   func(h *harness)
	}{
		{"Tx/Commit", powerTxCommit},
		{"Tx/FailedKey", powerTxFailedKey},
		{"Tx/Batched", powerTxBatched},
		{"Update/Concurrent", powerUpdateConcurrent},
		{"GetOrLoad", powerGetOrLoad},
		{"Clear", powerClear},
		{"Keys", powerKeys},
		{"Counters", powerCounters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(newHarness(t, newBackend, opts)) })
	}
}

// trackMeta remembers d's namespace generation key for deletion.
func trackMeta[V any](h *harness, d *memdict.Dict[V]) {
	h.mu.Lock()
	h.keys = append(h.keys, d.GenerationKey())
	h.mu.Unlock()
}

func powerTxCommit(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[record](h, "")
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	track(h, d, keys...)
	for _, k := range keys[:10] {
		noErr(t, "Put", d.Put(k, record{Name: "before"}))
	}
	tx := d.Begin()
	for i, k := range keys[10:] {
		noErr(t, "Tx.Put", tx.Put(k, record{Name: k, Count: i}))
	}
	for _, k := range keys[:10] {
		noErr(t, "Tx.Delete", tx.Delete(k))
	}
	noErr(t, "Tx.Delete of an absent key", tx.Delete("never-there"))
	if v, ok := tx.Get("k050"); !ok || v.Name != "k050" {
		t.Fatalf("Tx.Get(k050) = %+v, %v; want its own write", v, ok)
	}
	if _, ok := tx.Get("k000"); ok {
		t.Fatal("Tx.Get of a key the Tx deleted: want a miss")
	}
	if _, ok := d.Get("k050"); ok {
		t.Fatal("Tx write visible before Commit")
	}
	noErr(t, "Commit", tx.Commit(ctx))
	got, err := d.GetMulti(ctx, keys)
	noErr(t, "GetMulti", err)
	if len(got) != 90 {
		t.Fatalf("after Commit %d keys, want 90", len(got))
	}
	for i, k := range keys[10:] {
		if v := got[k]; v.Name != k || v.Count != i {
			t.Fatalf("%s = %+v", k, v)
		}
	}
	wantErr(t, "second Commit", tx.Commit(ctx), memdict.ErrTxDone)
}

// failOne wraps a backend and fails the writes of one backend key; it
// implements backend.MultiWriter when the wrapped backend does, passing
// the other keys to the backend's own SetMulti.
type failOne struct {
	backend.Backend
	bad      string
	sets     atomic.Int64
	setMulti atomic.Int64
}

var errInjected = fmt.Errorf("injected failure: %w", backend.ErrUnavailable)

func (f *failOne) Set(ctx context.Context, it backend.Item) error {
	f.sets.Add(1)
	if it.Key == f.bad {
		return errInjected
	}
	return f.Backend.Set(ctx, it)
}

type failOneMulti struct{ *failOne }

func (f failOneMulti) SetMulti(ctx context.Context, items []backend.Item) error {
	f.setMulti.Add(1)
	var rest []backend.Item
	me := &backend.MultiError{}
	for _, it := range items {
		if it.Key == f.bad {
			me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: errInjected})
		} else {
			rest = append(rest, it)
		}
	}
	if err := backend.Do(ctx, f.Backend, backend.Call{Op: backend.OpSetMulti, Items: rest}).Err; err != nil {
		kes, ok := backend.KeyErrors(err)
		if !ok {
			return err
		}
		me.Errors = append(me.Errors, kes...)
	}
	if len(me.Errors) > 0 {
		return me
	}
	return nil
}

func (f failOneMulti) DeleteMulti(ctx context.Context, keys []string) error {
	return backend.Do(ctx, f.Backend, backend.Call{Op: backend.OpDeleteMulti, Keys: keys}).Err
}

// wrapFailOne returns h's backend wrapped to fail the Dict key bad.
func wrapFailOne(h *harness, probe *memdict.Dict[record], bad string) (backend.Backend, *failOne) {
	f := &failOne{Backend: h.be, bad: probe.BackendKey(bad)}
	if h.supports(backend.OpSetMulti) {
		return failOneMulti{f}, f
	}
	return f, f
}

// ERP5 drops every write after the first failed one; a Commit must write
// all the others and name the failed key.
func powerTxFailedKey(h *harness) {
	t, ctx := h.t, h.ctx()
	probe := dictOf[record](h, "")
	be, _ := wrapFailOne(h, probe, "k050")
	d, err := memdict.New[record](be, probe.Prefix(), append(h.nearOpts(), memdict.WithSettings(mustShared(t, probe.Settings())))...)
	noErr(t, "memdict.New", err)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	track(h, d, keys...)
	tx := d.Begin()
	for _, k := range keys {
		noErr(t, "Tx.Put", tx.Put(k, record{Name: k}))
	}
	err = tx.Commit(ctx)
	var ce *memdict.CommitError
	if !errors.As(err, &ce) || !slices.Equal(ce.Keys(), []string{"k050"}) || !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Commit = %v; want a *CommitError naming k050 only", err)
	}
	got, err := probe.GetMulti(ctx, keys)
	noErr(t, "GetMulti", err)
	for _, k := range keys {
		if _, ok := got[k]; ok != (k != "k050") {
			t.Fatalf("after Commit, %s present = %v", k, ok)
		}
	}
}

func mustShared(t *testing.T, s memdict.Settings) *memdict.SharedSettings {
	sh, err := memdict.NewSharedSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// A backend with backend.MultiWriter gets one SetMulti per Commit, not a
// Set per key.
func powerTxBatched(h *harness) {
	t, ctx := h.t, h.ctx()
	if !h.supports(backend.OpSetMulti) {
		t.Skip("backend does not implement backend.MultiWriter: Commit writes key by key")
	}
	probe := dictOf[record](h, "")
	be, f := wrapFailOne(h, probe, "none")
	d, err := memdict.New[record](be, probe.Prefix(), append(h.nearOpts(), memdict.WithSettings(mustShared(t, probe.Settings())))...)
	noErr(t, "memdict.New", err)
	tx := d.Begin()
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		track(h, d, k)
		noErr(t, "Tx.Put", tx.Put(k, record{Name: k}))
	}
	noErr(t, "Commit", tx.Commit(ctx))
	if f.setMulti.Load() != 1 || f.sets.Load() != 0 {
		t.Fatalf("Commit of 100 keys made %d SetMulti and %d Set calls; want 1 and 0", f.setMulti.Load(), f.sets.Load())
	}
	if got, _ := probe.GetMulti(ctx, []string{"k000", "k099"}); len(got) != 2 {
		t.Fatalf("GetMulti after Commit = %v", got)
	}
}

// 50 goroutines increment one field 100 times each through Update: no
// increment may be lost. They use five Dicts, standing for five processes,
// so that both the combining of one Dict's concurrent updates and the
// compare-and-swap between Dicts are at work. Under such contention an
// Update may retry for longer than a call's timeout (memdict.WithTimeout),
// which would fail it: the test is about lost increments, not time, so its
// Dicts retry without that bound.
func powerUpdateConcurrent(h *harness) {
	t, ctx := h.t, h.ctx()
	const goroutines, each, dicts = 50, 100, 5
	ds := make([]*memdict.Dict[record], dicts)
	for i := range ds {
		ds[i] = dictOf[record](h, "", memdict.WithUpdateRetries(100000), memdict.WithTimeout(-1))
	}
	track(h, ds[0], "counter")
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		d := ds[g%dicts]
		wg.Go(func() {
			for range each {
				if _, err := d.Update(ctx, "counter", func(r record, _ bool) (record, error) {
					r.Name = "counter"
					r.Count++
					return r, nil
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, ok, err := ds[0].Lookup(ctx, "counter")
	if err != nil || !ok || v.Count != goroutines*each {
		t.Fatalf("Count = %d (%v, %v), want %d", v.Count, ok, err, goroutines*each)
	}
	var conflicts uint64
	for _, d := range ds {
		conflicts += d.Stats().Conflicts
	}
	t.Logf("%d CAS conflicts retried", conflicts)
}

func powerGetOrLoad(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[record](h, "")
	track(h, d, "k", "bad")
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(_ context.Context, key string) (record, error) {
		loads.Add(1)
		<-release
		return record{Name: key}, nil
	}
	var wg, started sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			v, err := d.GetOrLoad(ctx, "k", load)
			if err == nil && v.Name != "k" {
				err = fmt.Errorf("got %+v", v)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("100 concurrent GetOrLoad calls made %d loads, want 1", n)
	}
	if v, ok := d.Get("k"); !ok || v.Name != "k" {
		t.Fatalf("loaded value not stored: %+v, %v", v, ok)
	}
	boom := errors.New("loader failed")
	if _, err := d.GetOrLoad(ctx, "bad", func(context.Context, string) (record, error) { return record{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("GetOrLoad with a failing loader = %v", err)
	}
	if _, ok := d.Get("bad"); ok {
		t.Fatal("a failed load stored a value")
	}
}

func powerClear(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[record](h, "c")
	other := dictOf[record](h, "o")
	// Another process's Dict on the same prefix, re-reading the
	// generation every 50ms.
	peer := dictOf[record](h, "c", memdict.WithGenerationRefresh(50*time.Millisecond))
	trackMeta(h, d)
	track(h, d, "a", "b")
	track(h, other, "a")
	noErr(t, "Put", d.Put("a", record{Name: "a"}))
	noErr(t, "Put", d.Put("b", record{Name: "b"}))
	noErr(t, "Put", other.Put("a", record{Name: "other"}))
	if _, ok := peer.Get("a"); !ok {
		t.Fatal("peer does not see the value")
	}
	noErr(t, "Clear", d.Clear(ctx))
	track(h, d, "a", "b")
	if _, ok := d.Get("a"); ok {
		t.Fatal("value readable after Clear")
	}
	if v, ok := other.Get("a"); !ok || v.Name != "other" {
		t.Fatal("Clear touched another prefix")
	}
	start := time.Now()
	for {
		if _, ok := peer.Get("a"); !ok {
			break
		}
		if time.Since(start) > 30*time.Second { // generous: only the refresh timer is awaited
			t.Fatal("a Dict on the same prefix did not see the Clear within 30s (refresh 50ms)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	noErr(t, "Put after Clear", peer.Put("a", record{Name: "new"}))
	track(h, peer, "a")
	if v, ok := d.Get("a"); !ok || v.Name != "new" {
		t.Fatalf("after Clear the Dicts do not share keys: %+v, %v", v, ok)
	}
}

func powerKeys(h *harness) {
	t, ctx := h.t, h.ctx()
	if !h.supports(backend.OpKeys) {
		d := dictOf[record](h, "")
		for _, err := range d.Keys(ctx) {
			wantErr(t, "Keys on a backend without Lister", err, memdict.ErrNotSupported)
		}
		t.Skip("backend does not implement backend.Lister")
	}
	d := dictOf[record](h, "k")
	neighbour := dictOf[record](h, "k2")
	trackMeta(h, d)
	long := strings.Repeat("long key ", 60)
	want := []string{"a", "b c", "d:e#f", long}
	for i := range 20 {
		want = append(want, fmt.Sprintf("n%02d", i))
	}
	track(h, d, want...)
	track(h, neighbour, "x")
	for _, k := range want {
		noErr(t, "Put", d.Put(k, record{Name: k}))
	}
	noErr(t, "Put", neighbour.Put("x", record{Name: "x"}))
	slices.Sort(want)
	var keys []string
	for k, err := range d.Keys(ctx) {
		noErr(t, "Keys", err)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("Keys = %q\nwant %q", keys, want)
	}
	n := 0
	for e, err := range d.All(ctx) {
		noErr(t, "All", err)
		if e.Value.Name != e.Key {
			t.Fatalf("All: %q = %+v", e.Key, e.Value)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("All yielded %d entries, want %d", n, len(want))
	}
	noErr(t, "Clear", d.Clear(ctx))
	for k, err := range d.Keys(ctx) {
		t.Fatalf("Keys after Clear yielded %q, %v", k, err)
	}
}

func powerCounters(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[string](h, "n")
	c, err := memdict.NewCounters(h.be, d.Prefix(), memdict.WithSettings(mustShared(t, d.Settings())))
	noErr(t, "NewCounters", err)
	track(h, d, "hits", "down")
	if n, ok, err := c.Get(ctx, "hits"); n != 0 || ok || err != nil {
		t.Fatalf("Get of a missing counter = %d, %v, %v", n, ok, err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if _, err := c.Inc(ctx, "hits"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, ok, err := c.Get(ctx, "hits"); n != 200 || !ok || err != nil {
		t.Fatalf("after 200 Inc, Get = %d, %v, %v", n, ok, err)
	}
	if n, err := c.Add(ctx, "hits", -50); n != 150 || err != nil {
		t.Fatalf("Add(-50) = %d, %v", n, err)
	}
	it, err := h.be.Get(ctx, d.BackendKey("hits"))
	noErr(t, "raw Get", err)
	if strings.TrimSpace(string(it.Value)) != "150" {
		t.Fatalf("counter stored as %q, want decimal text", it.Value)
	}
	if n, err := c.Dec(ctx, "down"); n != 0 || err != nil {
		t.Fatalf("Dec of a missing counter = %d, %v", n, err)
	}
	noErr(t, "Set", c.Set(ctx, "down", 1))
	if n, _ := c.Add(ctx, "down", -5); n != 0 {
		t.Fatalf("decrement below 0 gave %d, want 0", n)
	}
	noErr(t, "Reset", c.Reset(ctx, "hits"))
	if n, ok, _ := c.Get(ctx, "hits"); n != 0 || !ok {
		t.Fatalf("after Reset Get = %d, %v", n, ok)
	}
}
