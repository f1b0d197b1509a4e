package backendtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// RunParity checks a wrapper: that a backend made by wrap around a backend
// (made by newBackend, the inner one) has every optional ability the inner
// backend has, no other, and that each behaves the same through the
// wrapper, so that a Dict over the wrapper runs the code it runs over the
// inner backend (leases rather than lock keys, batched writes, server
// invalidation, private reads, errors naming the server). Each subtest
// uses one ability through the wrapper and checks its effect through the
// inner backend, and the other way round, on one server.
//
// wrap is called once per subtest, after newBackend, and must return a
// backend whose calls reach inner (backend.Wrap with middleware, a Tool's
// plugin given inner with tool.WithBackend, a memdicttest.Faulty); the
// suite does not close it, so wrap registers what the wrapper needs closed
// with t.Cleanup, and the suite closes inner. Flush is not checked: it
// would empty a server other tests share.
//
// The subtests are named by ability ("Parity/Leaser", ...); an ability the
// inner backend lacks is checked to be missing through the wrapper too.
func RunParity(t *testing.T, newBackend func(t *testing.T) backend.Backend, wrap func(t *testing.T, inner backend.Backend) backend.Backend, opts Options) {
	t.Helper()
	opts = opts.withDefaults()
	tests := []struct {
		name string
		fn   func(p *parity)
	}{
		{"Abilities", parityAbilities},
		{"Lister", parityLister},
		{"StatsReporter", parityStats},
		{"MultiWriter", parityMultiWriter},
		{"Leaser", parityLeaser},
		{"Locker", parityLocker},
		{"Invalidator", parityInvalidator},
		{"PrivateReader", parityPrivate},
		{"Locator", parityLocator},
		{"Describer", parityDescriber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newBackend, opts)
			w := wrap(t, h.be)
			if w == nil {
				t.Fatal("backendtest: wrap returned a nil backend")
			}
			tt.fn(&parity{harness: h, w: w})
		})
	}
}

// parity is one parity subtest: the harness of the inner backend, and the
// wrapper around it.
type parity struct {
	*harness
	w backend.Backend
}

// both returns the inner backend and the wrapper, named, for subtests that
// do the same through each.
func (p *parity) both() []struct {
	name string
	be   backend.Backend
} {
	return []struct {
		name string
		be   backend.Backend
	}{{"inner", p.be}, {"wrapper", p.w}}
}

// probed are the abilities supportsOn can ask for without changing
// anything.
var probed = []backend.Op{backend.OpKeys, backend.OpServerStats, backend.OpPing, backend.OpSetMulti,
	backend.OpDeleteMulti, backend.OpGetLease, backend.OpTryLock}

// same fails unless the wrapper and the inner backend both have op, or
// both lack it, and reports whether they have it.
func (p *parity) same(op backend.Op) bool {
	p.t.Helper()
	in, out := p.supportsOn(p.be, op), p.supportsOn(p.w, op)
	if in != out {
		p.t.Fatalf("%v: the inner backend supports it: %v; through the wrapper: %v", op, in, out)
	}
	return in
}

// Every ability the inner backend has, the wrapper has, and no other.
func parityAbilities(p *parity) {
	var have []string
	for _, op := range probed {
		if p.same(op) {
			have = append(have, op.String())
		}
	}
	p.t.Logf("abilities of the inner backend, found through the wrapper too: %s", strings.Join(have, " "))
}

func parityLister(p *parity) {
	t, ctx := p.t, p.ctx()
	if !p.same(backend.OpKeys) {
		for _, err := range backend.Keys(ctx, p.w, p.prefix) {
			wantErr(t, "Keys through the wrapper", err, backend.ErrNotSupported)
		}
		return
	}
	want := []string{p.key("l/a"), p.key("l/b"), p.key("l/c")}
	for _, k := range want {
		p.set(k, []byte("v"), 0)
	}
	for _, b := range p.both() {
		var got []string
		for k, err := range backend.Keys(ctx, b.be, p.prefix+"l/") {
			noErr(t, "Keys ("+b.name+")", err)
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("Keys (%s) = %q, want %q", b.name, got, want)
		}
	}
}

func parityStats(p *parity) {
	t, ctx := p.t, p.ctx()
	if p.same(backend.OpPing) {
		noErr(t, "Ping through the wrapper", backend.Ping(ctx, p.w))
	} else {
		wantErr(t, "Ping through the wrapper", backend.Ping(ctx, p.w), backend.ErrNotSupported)
	}
	if !p.same(backend.OpServerStats) {
		_, err := backend.ServerStats(ctx, p.w)
		wantErr(t, "ServerStats through the wrapper", err, backend.ErrNotSupported)
		return
	}
	addrs := map[string][]string{}
	for _, b := range p.both() {
		nodes, err := backend.ServerStats(ctx, b.be)
		noErr(t, "ServerStats ("+b.name+")", err)
		for _, n := range nodes {
			addrs[b.name] = append(addrs[b.name], n.Addr)
		}
		slices.Sort(addrs[b.name])
	}
	if !slices.Equal(addrs["inner"], addrs["wrapper"]) || len(addrs["inner"]) == 0 {
		t.Fatalf("ServerStats names servers %q; through the wrapper %q", addrs["inner"], addrs["wrapper"])
	}
}

// SetMulti and DeleteMulti: batched through the wrapper when the inner
// backend batches, with the same outcome and the same per-key errors.
func parityMultiWriter(p *parity) {
	t, ctx := p.t, p.ctx()
	has := p.same(backend.OpSetMulti)
	if p.same(backend.OpDeleteMulti) != has {
		t.Fatal("the inner backend has one of SetMulti and DeleteMulti only")
	}
	if !has {
		wantErr(t, "SetMulti through the wrapper", backend.Do(ctx, p.w, backend.Call{Op: backend.OpSetMulti}).Err, backend.ErrNotSupported)
	}
	for _, b := range p.both() {
		var items []backend.Item
		var keys []string
		for i := range 20 {
			k := p.key(fmt.Sprintf("m/%s/%d", b.name, i))
			items = append(items, backend.Item{Key: k, Value: []byte(fmt.Sprint(i))})
			keys = append(keys, k)
		}
		noErr(t, "SetMulti ("+b.name+")", backend.SetMulti(ctx, b.be, items))
		got, err := p.be.GetMulti(ctx, keys)
		noErr(t, "GetMulti", err)
		for i, k := range keys {
			if string(got[k].Value) != fmt.Sprint(i) {
				t.Fatalf("after SetMulti (%s), %s = %q", b.name, k, got[k].Value)
			}
		}
		absent := p.key("m/" + b.name + "/absent")
		err = backend.DeleteMulti(ctx, b.be, append(keys[:10:10], absent))
		kes, ok := backend.KeyErrors(err)
		if !ok || len(kes) != 1 || kes[0].Key != absent || !errors.Is(kes[0].Err, backend.ErrNotFound) {
			t.Fatalf("DeleteMulti (%s) of 10 keys and an absent one = %v; want a *MultiError naming the absent key with ErrNotFound", b.name, err)
		}
		got, err = p.w.GetMulti(ctx, keys)
		noErr(t, "GetMulti through the wrapper", err)
		if n := len(got); n != 10 {
			t.Fatalf("after DeleteMulti (%s) of 10 of 20 keys, %d are left", b.name, n)
		}
	}
}

// Fill leases given through the wrapper are the server's: the inner
// backend sees them, and the other way round.
func parityLeaser(p *parity) {
	t, ctx := p.t, p.ctx()
	if !p.same(backend.OpGetLease) {
		wantErr(t, "MarkStale through the wrapper", backend.MarkStale(ctx, p.w, p.key("x"), 0), backend.ErrNotSupported)
		return
	}
	o := backend.LeaseOptions{TTL: 30 * time.Second}
	for _, order := range [][2]backend.Backend{{p.w, p.be}, {p.be, p.w}} {
		first, second := order[0], order[1]
		k := p.key(fmt.Sprintf("lease/%p", first))
		l, err := backend.GetLease(ctx, first, k, o)
		if err != nil || !l.Won || l.Found {
			t.Fatalf("GetLease of a cold key = %+v, %v; want it won", l, err)
		}
		l2, err := backend.GetLease(ctx, second, k, o)
		if err != nil || l2.Won || !l2.Busy {
			t.Fatalf("second GetLease = %+v, %v; want Busy", l2, err)
		}
		noErr(t, "ReleaseLease", backend.ReleaseLease(ctx, first, l))
		l3, err := backend.GetLease(ctx, second, k, o)
		if err != nil || !l3.Won {
			t.Fatalf("GetLease after ReleaseLease = %+v, %v; want it won", l3, err)
		}
		noErr(t, "fill", second.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("v"), CAS: l3.Item.CAS}))
		noErr(t, "MarkStale", backend.MarkStale(ctx, first, k, 0))
		l4, err := backend.GetLease(ctx, second, k, o)
		if err != nil || !l4.Found || !l4.Stale || !l4.Won || string(l4.Item.Value) != "v" {
			t.Fatalf("GetLease after MarkStale = %+v, %v; want the stale value, won", l4, err)
		}
	}
}

// Locks taken through the wrapper are the inner backend's, and the other
// way round; without a Locker, backend.TryLock's fallback behaves the
// same through both.
func parityLocker(p *parity) {
	t, ctx := p.t, p.ctx()
	p.same(backend.OpTryLock)
	for _, order := range [][2]backend.Backend{{p.w, p.be}, {p.be, p.w}} {
		first, second := order[0], order[1]
		k := p.key(fmt.Sprintf("lock/%p", first))
		tok, other := backend.NewLockToken(), backend.NewLockToken()
		won, err := backend.TryLock(ctx, first, k, tok, 30*time.Second)
		if err != nil || !won {
			t.Fatalf("TryLock = %v, %v; want it taken", won, err)
		}
		if won, err := backend.TryLock(ctx, second, k, other, 30*time.Second); err != nil || won {
			t.Fatalf("TryLock of a held lock = %v, %v; want false", won, err)
		}
		if done, err := backend.Unlock(ctx, second, k, other); err != nil || done {
			t.Fatalf("Unlock with another token = %v, %v; want false", done, err)
		}
		if done, err := backend.Unlock(ctx, second, k, tok); err != nil || !done {
			t.Fatalf("Unlock with the token = %v, %v; want true", done, err)
		}
		if won, err := backend.TryLock(ctx, first, k, other, 30*time.Second); err != nil || !won {
			t.Fatalf("TryLock after Unlock = %v, %v; want it taken", won, err)
		}
		_, _ = backend.Unlock(ctx, first, k, other)
	}
}

// Tracking through the wrapper reports the changes made through the inner
// backend, as tracking on the inner backend does.
func parityInvalidator(p *parity) {
	t, ctx := p.t, p.ctx()
	prefix := p.prefix + "tr/"
	type tracked struct {
		tr backend.Tracking
		mu sync.Mutex
		n  map[string]int
	}
	var trs []*tracked
	errs := map[string]error{}
	for _, b := range p.both() {
		x := &tracked{n: map[string]int{}}
		tr, err := backend.Track(ctx, b.be, prefix, func(inv backend.Invalidation) {
			x.mu.Lock()
			defer x.mu.Unlock()
			for _, k := range inv.Keys {
				x.n[k]++
			}
		})
		errs[b.name] = err
		if tr != nil {
			x.tr = tr
			t.Cleanup(tr.Stop)
		}
		trs = append(trs, x)
	}
	for name, err := range errs {
		if err != nil && !backend.NotSupported(err) {
			t.Fatalf("Track (%s): %v", name, err)
		}
	}
	// A registration that cannot track is an error wrapping
	// ErrNotSupported, or a Tracking that is not Supported (a wrapper
	// whose backend may change keeps it, to track once it can).
	can := func(x *tracked) bool { return x.tr != nil && x.tr.Supported() }
	if !can(trs[0]) || !can(trs[1]) {
		p.waitUntil("the inner backend and the wrapper to agree whether they track", func() bool { return can(trs[0]) == can(trs[1]) })
		return
	}
	p.waitUntil("both registrations to be live", func() bool {
		return (trs[0].tr.Live() && trs[1].tr.Live()) || !can(trs[0]) || !can(trs[1])
	})
	if !can(trs[0]) || !can(trs[1]) {
		p.waitUntil("the inner backend and the wrapper to agree whether they track", func() bool { return can(trs[0]) == can(trs[1]) })
		return
	}
	k := p.key("tr/k")
	p.set(k, []byte("v"), 0)
	p.waitUntil("both registrations to report the write", func() bool {
		for _, x := range trs {
			x.mu.Lock()
			n := x.n[k]
			x.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
}

// A read through the wrapper is private to the caller exactly when one
// through the inner backend is.
func parityPrivate(p *parity) {
	t, ctx := p.t, p.ctx()
	k := p.key("private")
	p.set(k, []byte("v"), 0)
	_, in, err := backend.GetPrivate(ctx, p.be, k)
	noErr(t, "GetPrivate", err)
	it, out, err := backend.GetPrivate(ctx, p.w, k)
	noErr(t, "GetPrivate through the wrapper", err)
	if in != out || string(it.Value) != "v" {
		t.Fatalf("GetPrivate: private %v; through the wrapper %v (value %q)", in, out, it.Value)
	}
}

// The wrapper names the server of each key as the inner backend does.
func parityLocator(p *parity) {
	got := map[string]int{}
	for i := range 50 {
		k := p.prefix + fmt.Sprint("loc", i)
		in, out := backend.ServerFor(p.be, k), backend.ServerFor(p.w, k)
		if in != out {
			p.t.Fatalf("ServerFor(%q) = %q; through the wrapper %q", k, in, out)
		}
		got[in]++
	}
	p.t.Logf("servers of 50 keys: %q", slices.Sorted(maps.Keys(got)))
}

// The wrapper describes the inner backend: its system and servers (the
// connection counts may move between the two calls).
func parityDescriber(p *parity) {
	in, out := backend.Describe(p.be), backend.Describe(p.w)
	if in.System != out.System || len(in.Servers) != len(out.Servers) {
		p.t.Fatalf("Describe = %+v; through the wrapper %+v", in, out)
	}
	for i := range in.Servers {
		if in.Servers[i].Addr != out.Servers[i].Addr {
			p.t.Fatalf("Describe = %+v; through the wrapper %+v", in, out)
		}
	}
	p.t.Logf("system %q, %d servers", in.System, len(in.Servers))
}
