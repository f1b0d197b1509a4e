package tool_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// The "warmtest" scheme opens warmtest://name: a backend.Wrap of a named
// in-memory store (every ability of memory.Store, TTLReader included),
// whose calls a test can intercept (hook) and whose Close is counted, not
// done, so that the store outlives the handle.
func init() {
	backend.Register("warmtest", func(_ context.Context, u *url.URL) (backend.Backend, error) {
		ws := warmServers.get(u.Host)
		ws.opens.Add(1)
		closed := atomic.Bool{}
		return backend.Wrap(ws.Store, func(next backend.CallFunc) backend.CallFunc {
			return func(ctx context.Context, c backend.Call) backend.Result {
				if c.Op == backend.OpClose {
					if !closed.Swap(true) {
						ws.closes.Add(1)
					}
					return backend.Result{}
				}
				if closed.Load() {
					return backend.Result{Err: fmt.Errorf("warmtest: %v on a closed handle: %w", c.Op, backend.ErrClosed)}
				}
				if h := ws.hook.Load(); h != nil {
					if r, done := (*h)(ctx, c); done {
						return r
					}
				}
				return next(ctx, c)
			}
		}), nil
	})
}

type warmServer struct {
	*memory.Store
	clock         *memory.FakeClock
	opens, closes atomic.Int64
	hook          atomic.Pointer[func(ctx context.Context, c backend.Call) (backend.Result, bool)]
}

// setHook makes h see every call on the server first; it answers the call
// itself if it returns true.
func (ws *warmServer) setHook(h func(ctx context.Context, c backend.Call) (backend.Result, bool)) {
	ws.hook.Store(&h)
}

var warmServers = struct {
	mu  sync.Mutex
	m   map[string]*warmServer
	n   atomic.Int64
	get func(string) *warmServer
}{m: map[string]*warmServer{}}

func init() {
	warmServers.get = func(name string) *warmServer {
		warmServers.mu.Lock()
		defer warmServers.mu.Unlock()
		ws := warmServers.m[name]
		if ws == nil {
			clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			ws = &warmServer{Store: memory.New(memory.WithClock(clock)), clock: clock}
			warmServers.m[name] = ws
		}
		return ws
	}
}

// newWarmServer returns a new named store and its URL.
func newWarmServer() (*warmServer, string) {
	name := fmt.Sprintf("w%d", warmServers.n.Add(1))
	return warmServers.get(name), "warmtest://" + name
}

// warmPlugin makes a Tool whose plugin "p" is on a new store, writes
// items there through the plugin's backend, and moves the plugin to
// another new store with Warm d. It returns the Tool, the plugin's
// backend and both stores.
func warmPlugin(t *testing.T, d time.Duration, items ...backend.Item) (*tool.Tool, backend.Backend, *warmServer, *warmServer) {
	t.Helper()
	oldSrv, oldURL := newWarmServer()
	newSrv, newURL := newWarmServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: oldURL}}})
	ctx := context.Background()
	be, err := tl.Backend(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := be.Set(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := tl.SetPlugin(ctx, "p", tool.PluginConfig{URL: newURL, Warm: d}); err != nil {
		t.Fatal(err)
	}
	return tl, be, oldSrv, newSrv
}

func item(k, v string) backend.Item { return backend.Item{Key: k, Value: []byte(v)} }

// wantGet fails t unless be's Get of key gives want ("" for a miss).
func wantGet(t *testing.T, be backend.Backend, key, want, what string) {
	t.Helper()
	it, err := be.Get(context.Background(), key)
	switch {
	case want == "" && !errors.Is(err, backend.ErrNotFound):
		t.Errorf("%s: Get %s = %q, %v; want a miss", what, key, it.Value, err)
	case want != "" && (err != nil || string(it.Value) != want):
		t.Errorf("%s: Get %s = %q, %v; want %q", what, key, it.Value, err, want)
	}
}

// TestWarmMemcached is the warm migration of the issue: 2000 keys stored
// through Dicts on one memcached; the plugin moves to an empty one with
// Warm: at least 95% of them read as hits right after the switch (all of
// them here), each copied with its remaining TTL; without Warm, none.
func TestWarmMemcached(t *testing.T) {
	for _, warm := range []time.Duration{10 * time.Minute, 0} {
		t.Run(fmt.Sprint("warm=", warm), func(t *testing.T) {
			oldSrv, newSrv := testserver.Memcached(t), testserver.Memcached(t)
			oldURL, newURL := "memcached://"+oldSrv.Addr, "memcached://"+newSrv.Addr
			cfg := tool.DefaultPluginConfig(oldURL)
			cfg.Expiration = time.Hour
			tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: cfg}})
			ctx := context.Background()
			d := mustDict[string](t, tl, "users", "")
			const n = 2000
			for i := range n {
				if err := d.Store(ctx, fmt.Sprint("u", i), fmt.Sprint("user ", i)); err != nil {
					t.Fatal(err)
				}
			}
			cfg.URL, cfg.Warm = newURL, warm
			if err := tl.SetPlugin(ctx, "", cfg); err != nil {
				t.Fatal(err)
			}
			fresh := mustDict[string](t, tl, "users", "") // a Dict made after the switch
			hits := 0
			for i := range n {
				dd := d
				if i%2 == 1 {
					dd = fresh
				}
				v, ok, err := dd.Lookup(ctx, fmt.Sprint("u", i))
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					if v != fmt.Sprint("user ", i) {
						t.Fatalf("u%d = %q", i, v)
					}
					hits++
				}
			}
			t.Logf("warm %v: %d of %d keys read as hits right after the switch", warm, hits, n)
			if warm == 0 {
				if hits != 0 {
					t.Errorf("without warm-up, %d hits on an empty server", hits)
				}
				return
			}
			if hits*100 < n*95 {
				t.Errorf("%d of %d hits after the switch, want at least 95%%", hits, n)
			}
			// The copies have the remaining TTL of the originals (an hour,
			// less the test's time), not none.
			nc, err := backend.Open(ctx, newURL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			it, err := backend.GetTTL(ctx, nc, d.BackendKey("u7"))
			if err != nil {
				t.Fatal(err)
			}
			if it.TTL < 50*time.Minute || it.TTL > time.Hour+time.Second {
				t.Errorf("copy of u7 on the new server: TTL %v, want about an hour", it.TTL)
			}
		})
	}
}

// TestWarmLeases: during the window GetOrLoad over memcached (leases)
// loads nothing that the previous server holds: the lease winner copies
// it, the others wait for it; a key neither server holds is loaded once.
func TestWarmLeases(t *testing.T) {
	oldSrv, newSrv := testserver.Memcached(t), testserver.Memcached(t)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "memcached://" + oldSrv.Addr}}})
	ctx := context.Background()
	d := mustDict[string](t, tl, "l", "p")
	for i := range 20 {
		if err := d.Store(ctx, fmt.Sprint("k", i), fmt.Sprint("old ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tl.SetPlugin(ctx, "p", tool.PluginConfig{URL: "memcached://" + newSrv.Addr, Warm: time.Minute}); err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int64
	load := func(_ context.Context, key string) (string, error) {
		loads.Add(1)
		return "loaded " + key, nil
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 21 {
				k := fmt.Sprint("k", (i+g)%21) // k20 is on neither server
				v, err := d.GetOrLoad(ctx, k, load)
				if err != nil {
					t.Error(err)
					return
				}
				want := "old " + strings.TrimPrefix(k, "k")
				if k == "k20" {
					want = "loaded k20"
				}
				if v != want {
					t.Errorf("GetOrLoad %s = %q, want %q", k, v, want)
				}
			}
		}()
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1 (k20 alone)", n)
	}
}

// TestWarmReads: a miss on the new backend reads the previous one and
// copies the item with its client flags and remaining TTL (GetTTL), for Get, GetTTL,
// GetMulti and GetLease; an item the new backend holds is read there.
func TestWarmReads(t *testing.T) {
	tl, be, oldSrv, newSrv := warmPlugin(t, time.Minute,
		backend.Item{Key: "a", Value: []byte("A"), TTL: time.Hour, Flags: 3}, item("b", "B"), item("c", "C"), item("d", "D"), item("both", "old"))
	ctx := context.Background()
	if err := newSrv.Set(ctx, item("both", "new")); err != nil {
		t.Fatal(err)
	}
	oldSrv.clock.Advance(10 * time.Minute) // a has 50 minutes left
	wantGet(t, be, "a", "A", "copied")
	it, err := newSrv.GetTTL(ctx, "a")
	if err != nil || it.TTL != 50*time.Minute || it.Flags != 3 {
		t.Errorf("copy of a on the new store: %v, TTL %v, flags %d; want 50m and the client flags 3", err, it.TTL, it.Flags)
	}
	if it, err := backend.GetTTL(ctx, be, "b"); err != nil || string(it.Value) != "B" || it.TTL != 0 {
		t.Errorf("GetTTL b = %+v, %v", it, err)
	}
	wantGet(t, be, "both", "new", "a key of both")
	got, err := be.GetMulti(ctx, []string{"c", "both", "none"})
	if err != nil || len(got) != 2 || string(got["c"].Value) != "C" || string(got["both"].Value) != "new" {
		t.Errorf("GetMulti = %v, %v", got, err)
	}
	if _, err := newSrv.Get(ctx, "c"); err != nil {
		t.Errorf("GetMulti did not copy c: %v", err)
	}
	info, err := tl.Plugin("p")
	if err != nil || info.WarmFrom == "" || time.Until(info.WarmUntil) < 50*time.Second {
		t.Errorf("PluginInfo during the window: from %q until %v, %v", info.WarmFrom, info.WarmUntil, err)
	}
	if !strings.HasPrefix(info.WarmFrom, "warmtest://") {
		t.Errorf("WarmFrom = %q", info.WarmFrom)
	}
}

// TestWarmWrites: a write during the window deletes the key from the
// previous backend, so that nothing older comes back; Delete, Add,
// Increment and Touch see the previous backend's items.
func TestWarmWrites(t *testing.T) {
	_, be, oldSrv, newSrv := warmPlugin(t, time.Minute,
		item("set", "old"), item("del", "old"), item("add", "old"), item("n", "41"), item("touch", "old"),
		item("m1", "old"), item("m2", "old"), item("cas", "old"))
	ctx := context.Background()

	// Set, then the new backend loses the value (evicted): a miss, not
	// the previous backend's older value.
	if err := be.Set(ctx, item("set", "new")); err != nil {
		t.Fatal(err)
	}
	if err := newSrv.Delete(ctx, "set"); err != nil {
		t.Fatal(err)
	}
	wantGet(t, be, "set", "", "written in the window, then evicted")

	// Delete of a key the previous backend alone holds: found, and gone.
	if err := be.Delete(ctx, "del"); err != nil {
		t.Errorf("Delete of a key on the previous backend: %v", err)
	}
	wantGet(t, be, "del", "", "deleted in the window")
	if err := be.Delete(ctx, "del"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}

	// Add of a key the previous backend holds fails, as it would there.
	if err := be.Add(ctx, item("add", "new")); !errors.Is(err, backend.ErrNotStored) {
		t.Errorf("Add of a key on the previous backend: %v, want ErrNotStored", err)
	}
	wantGet(t, be, "add", "old", "after the failed Add")

	// Increment and Touch act on the previous backend's item.
	if n, err := be.Increment(ctx, "n", 1); err != nil || n != 42 {
		t.Errorf("Increment of a counter on the previous backend = %d, %v; want 42", n, err)
	}
	if err := be.Touch(ctx, "touch", time.Hour); err != nil {
		t.Errorf("Touch of a key on the previous backend: %v", err)
	}
	if it, err := newSrv.GetTTL(ctx, "touch"); err != nil || it.TTL != time.Hour {
		t.Errorf("touched key on the new store: %+v, %v", it, err)
	}

	// CompareAndSwap with the CAS a read returned.
	it, err := be.Get(ctx, "cas")
	if err != nil {
		t.Fatal(err)
	}
	it.Value = []byte("swapped")
	if err := be.CompareAndSwap(ctx, it); err != nil {
		t.Errorf("CompareAndSwap with the CAS of a copied item: %v", err)
	}

	// Multi-key writes.
	if err := backend.SetMulti(ctx, be, []backend.Item{item("m1", "new")}); err != nil {
		t.Fatal(err)
	}
	if err := backend.DeleteMulti(ctx, be, []string{"m2"}); err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	wantGet(t, be, "m2", "", "deleted with DeleteMulti")
	for _, k := range []string{"set", "del", "n", "touch", "m1", "m2", "cas"} {
		if _, err := oldSrv.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%s is still on the previous backend after a write in the window: %v", k, err)
		}
	}
}

// TestWarmDeleteRacesCopy: a Delete that comes between a copy's read of
// the previous backend and its Add on the new one is not undone by the
// copy: the copy sees the item gone from the previous backend and removes
// itself.
func TestWarmDeleteRacesCopy(t *testing.T) {
	_, be, oldSrv, newSrv := warmPlugin(t, time.Minute, item("k", "old"))
	ctx := context.Background()
	var once sync.Once
	newSrv.setHook(func(ctx context.Context, c backend.Call) (backend.Result, bool) {
		if c.Op == backend.OpAdd && c.Item.Key == "k" {
			once.Do(func() {
				if err := be.Delete(ctx, "k"); err != nil {
					t.Errorf("Delete during the copy: %v", err)
				}
			})
		}
		return backend.Result{}, false
	})
	// The Get copies, and the Delete lands before the copy's Add: either
	// answer is right for the Get, as long as the key stays deleted.
	_, _ = be.Get(ctx, "k")
	newSrv.setHook(func(context.Context, backend.Call) (backend.Result, bool) { return backend.Result{}, false })
	wantGet(t, be, "k", "", "deleted while a copy was on its way")
	if _, err := newSrv.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the new store holds the deleted key: %v", err)
	}
	if _, err := oldSrv.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the previous store holds the deleted key: %v", err)
	}
}

// TestWarmWindowEnds: when the window ends the previous backend is closed
// and misses are misses; a Flush ends it at once; a write that cannot
// reach the previous backend ends it too.
func TestWarmWindowEnds(t *testing.T) {
	ctx := context.Background()
	t.Run("timer", func(t *testing.T) {
		tl, be, oldSrv, _ := warmPlugin(t, 200*time.Millisecond, item("a", "A"), item("b", "B"))
		wantGet(t, be, "a", "A", "in the window")
		waitFor(t, func() bool { return oldSrv.opens.Load() == oldSrv.closes.Load() }, "the previous backend closed after the window")
		wantGet(t, be, "b", "", "after the window")
		if info, _ := tl.Plugin("p"); !info.WarmUntil.IsZero() {
			t.Errorf("PluginInfo after the window: warming until %v", info.WarmUntil)
		}
	})
	t.Run("flush", func(t *testing.T) {
		_, be, oldSrv, _ := warmPlugin(t, time.Minute, item("a", "A"))
		if err := backend.Flush(ctx, be); err != nil {
			t.Fatal(err)
		}
		wantGet(t, be, "a", "", "after a Flush")
		waitFor(t, func() bool { return oldSrv.opens.Load() == oldSrv.closes.Load() }, "the previous backend closed after Flush")
	})
	t.Run("previous down", func(t *testing.T) {
		_, be, oldSrv, _ := warmPlugin(t, time.Minute, item("a", "A"), item("b", "B"))
		oldSrv.setHook(func(_ context.Context, c backend.Call) (backend.Result, bool) {
			if c.Op == backend.OpDelete {
				return backend.Result{Err: fmt.Errorf("warmtest: %w", backend.ErrUnavailable)}, true
			}
			return backend.Result{}, false
		})
		if err := be.Set(ctx, item("a", "new")); err != nil {
			t.Fatal(err)
		}
		oldSrv.setHook(func(context.Context, backend.Call) (backend.Result, bool) { return backend.Result{}, false })
		wantGet(t, be, "b", "", "after a write the previous backend missed")
		wantGet(t, be, "a", "new", "the write")
	})
	t.Run("another switch", func(t *testing.T) {
		tl, _, oldSrv, _ := warmPlugin(t, time.Minute, item("a", "A"))
		_, third := newWarmServer()
		if err := tl.SetPlugin(ctx, "p", tool.PluginConfig{URL: third}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return oldSrv.opens.Load() == oldSrv.closes.Load() }, "the first backend closed after the next switch")
	})
	t.Run("close", func(t *testing.T) {
		tl, _, oldSrv, _ := warmPlugin(t, time.Minute, item("a", "A"))
		if err := tl.Close(); err != nil {
			t.Fatal(err)
		}
		if oldSrv.opens.Load() != oldSrv.closes.Load() {
			t.Errorf("the previous backend is open after Tool.Close")
		}
	})
}

// TestWarmFallbackTTL: over a previous backend that cannot tell TTLs (the
// tooltest handles), copies get the plugin's Expiration.
func TestWarmFallbackTTL(t *testing.T) {
	oldSrv, oldURL := freshServer()
	newSrv, newURL := newWarmServer()
	ctx := context.Background()
	if err := oldSrv.Set(ctx, item("k", "v")); err != nil {
		t.Fatal(err)
	}
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: oldURL}}})
	if err := tl.SetPlugin(ctx, "p", tool.PluginConfig{URL: newURL, Warm: time.Minute, Expiration: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	be, err := tl.Backend(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	wantGet(t, be, "k", "v", "copied")
	if it, err := newSrv.GetTTL(ctx, "k"); err != nil || it.TTL != 5*time.Minute {
		t.Errorf("copy from a backend without TTLs: %+v, %v; want the plugin's Expiration 5m", it, err)
	}
}

// TestWarmUnderLoad: switches back and forth with Warm under load: no
// call fails, and every previous backend is closed at the end.
func TestWarmUnderLoad(t *testing.T) {
	a, urlA := newWarmServer()
	b, urlB := newWarmServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: {URL: urlA}}})
	ctx := context.Background()
	urls := []string{urlB, urlA}
	hammer(t, tl, 20, func(i int) error {
		return tl.SetPlugin(ctx, "", tool.PluginConfig{URL: urls[i%2], Warm: time.Minute})
	})
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*warmServer{a, b} {
		if s.opens.Load() != s.closes.Load() {
			t.Errorf("%d of %d handles still open after Close", s.opens.Load()-s.closes.Load(), s.opens.Load())
		}
	}
}

// TestWarmConfig: warm in files (seconds or a duration), refused when
// negative, and shown by Plugin.
func TestWarmConfig(t *testing.T) {
	for _, tc := range []struct {
		data, format string
		want         time.Duration
		err          string
	}{
		{"plugins:\n  p:\n    url: mem://\n    warm: 10m\n", "yaml", 10 * time.Minute, ""},
		{"plugins:\n  p:\n    url: mem://\n    warm: 90\n", "yaml", 90 * time.Second, ""},
		{`{"plugins": {"p": {"url": "mem://", "warm": "1h"}}}`, "json", time.Hour, ""},
		{"plugins:\n  p:\n    url: mem://\n    warm: -1s\n", "yaml", 0, `field "warm"`},
		{"plugins:\n  p:\n    url: mem://\n    warm: soon\n", "yaml", 0, `field "warm"`},
	} {
		cfg, err := tool.ParseConfig([]byte(tc.data), tc.format)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error naming %s", tc.data, err, tc.err)
			}
			continue
		}
		if err != nil || cfg.Plugins["p"].Warm != tc.want {
			t.Errorf("%q: warm %v, %v; want %v", tc.data, cfg.Plugins["p"].Warm, err, tc.want)
		}
	}
	if err := (tool.PluginConfig{URL: "mem://", Warm: -time.Second}).Validate(); err == nil {
		t.Error("a negative Warm is valid")
	}
	// SetPlugin without a change of URL starts no window.
	tl, _, _, _ := warmPlugin(t, time.Minute)
	info, _ := tl.Plugin("p")
	if err := tl.SetPlugin(context.Background(), "p", info.PluginConfig); err != nil {
		t.Fatal(err)
	}
	if info, _ := tl.Plugin("p"); info.WarmUntil.IsZero() {
		t.Error("the window ended when only the settings changed")
	}
}

// TestWarmNearCache: a near cache that relies on the server's reports
// (Redis, MaxStale 0) keeps its guarantee in the window: a value copied
// from the previous server is near-cached, and another client's write of
// it on the new server reaches the near cache.
func TestWarmNearCache(t *testing.T) {
	ctx := t.Context()
	urlA := "redis://" + testserver.Redis(t).Addr + "/0"
	urlB := "redis://" + testserver.Redis(t).Addr + "/0"
	tl := newTool(t, tool.Config{SiteID: "s", Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig(urlA)}})
	d := mustDict[string](t, tl, "nc", "p", memdict.WithNearCache(memdict.NearCache{}))
	writer := func(url string) *memdict.Dict[string] { return siteDict(t, url, "s", "nc") }
	a, b := writer(urlA), writer(urlB)
	for _, k := range []string{"k", "mine"} {
		if err := a.Put(k, "a1"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := tool.DefaultPluginConfig(urlB)
	cfg.Warm = time.Minute
	if err := tl.SetPlugin(ctx, "p", cfg); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("k"); v != "a1" {
		t.Fatalf("Get k after the switch = %q, want the previous server's a1", v)
	}
	nearHit(t, d, "k", "a1")
	seenWithin(t, d, b, "k", "b1")
	nearHit(t, d, "k", "b1")
	// The Dict's own write in the window, then a read.
	if err := d.Put("mine", "d1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("mine"); v != "d1" {
		t.Errorf("Get after the Dict's own write = %q", v)
	}
	if _, ok := a.Get("mine"); ok {
		t.Error("the previous server still holds a key written in the window")
	}
}
