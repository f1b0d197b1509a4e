package tool_test

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// privateStore is a memory backend that says its reads are private, and
// makes them so: each Get returns a fresh copy, which it remembers.
type privateStore struct {
	*memory.Store
	last atomic.Pointer[[]byte]
}

func (p *privateStore) PrivateReads() bool { return true }

func (p *privateStore) Get(ctx context.Context, key string) (backend.Item, error) {
	it, err := p.Store.Get(ctx, key)
	if err == nil {
		it.Value = append([]byte(nil), it.Value...)
		p.last.Store(&it.Value)
	}
	return it, err
}

// A Dict[[]byte] of a plugin whose backend's reads are private gets the
// read value itself, as it does on the backend (no copy); once the plugin
// moves to a backend whose reads share its storage, values are copied
// again, so writing to one changes nothing stored.
func TestPluginPrivateReads(t *testing.T) {
	ctx := t.Context()
	ps := &privateStore{Store: memory.New()}
	defer ps.Close()
	tl := newTool(t, tool.Config{}, tool.WithBackend("p", ps))
	d := mustDict[[]byte](t, tl, "pr", "p")
	if err := d.Put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, ok := d.Get("k")
	last := *ps.last.Load()
	if !ok || string(v) != "hello" || &v[0] != &last[len(last)-len(v)] {
		t.Fatalf("Get = %q, %v: the value of a private read was copied (or is wrong)", v, ok)
	}

	if err := tl.SetPlugin(ctx, "p", tool.DefaultPluginConfig("mem://")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, _ = d.Get("k")
	v[0] = 'j'
	if w, _, err := d.Lookup(ctx, "k"); err != nil || string(w) != "hello" {
		t.Fatalf("after writing to a value read from the memory store, Lookup = %q, %v", w, err)
	}
}

// Errors of a Tool's Dict name the server, as those of a Dict on the
// driver do: with two memcached servers, the one holding the generation
// key down, a Store of a key on the live one says the generation (on the
// dead server) could not be read.
func TestPluginErrorsNameTheServer(t *testing.T) {
	const dead = "127.0.0.1:1"
	mc := testserver.Memcached(t)
	c, err := memcached.New([]string{mc.Addr, dead})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var prefix, okKey string
	for i := 0; prefix == ""; i++ {
		if p := fmt.Sprintf("two%d", i); c.ServerFor(keyspace.MetaKey("", p, "gen", 250)) == dead {
			prefix = p
		}
	}
	for i := 0; okKey == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		if bk, _ := keyspace.Key(keyspace.Namespace("", prefix, 0, 250), k, 250); c.ServerFor(bk) == mc.Addr {
			okKey = k
		}
	}
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"p": tool.DefaultPluginConfig("memcached://" + mc.Addr + "," + dead + "?timeout=2s"),
	}})
	d := mustDict[string](t, tl, prefix, "p")
	err = d.Store(t.Context(), okKey, "v")
	want := fmt.Sprintf(`memdict: put %q: the namespace generation of prefix %q (on %s) could not be read: server unavailable`, okKey, prefix, dead)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Store of a key on the live server: %v; want it to start %q", err, want)
	}
}

// loadBlocked starts d.GetOrLoad(key) with a loader that waits until
// release is closed, and returns once the loader runs, with the channel
// of GetOrLoad's error.
func loadBlocked(t *testing.T, d *memdict.Dict[string], key string, release chan struct{}) chan error {
	t.Helper()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := d.GetOrLoad(context.Background(), key, func(context.Context, string) (string, error) {
			close(running)
			<-release
			return "loaded", nil
		})
		done <- err
	}()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("GetOrLoad returned before its loader ran: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the loader did not run in 30s")
	}
	return done
}

// A Dict made while its plugin is on Redis coordinates fills with a lock
// key; once SetPlugin moves the plugin to memcached, with memcached's
// leases, and back with a lock key once it is on Redis again: the Dict
// asks its plugin's current backend at each call.
func TestPluginLeasesFollowSetPlugin(t *testing.T) {
	ctx := t.Context()
	redisURL := "redis://" + testserver.Redis(t).Addr + "/0"
	mc := testserver.Memcached(t)
	mcURL := "memcached://" + mc.Addr
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig(redisURL)}})
	d := mustDict[string](t, tl, "moving", "p")

	lockHeld := func(url, key string) bool {
		be, err := backend.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		_, err = be.Get(ctx, keyspace.LeaseKey(d.BackendKey(key), 250))
		return err == nil
	}
	step := func(url, key string, leases bool) {
		t.Helper()
		if err := tl.SetPlugin(ctx, "p", tool.DefaultPluginConfig(url)); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		done := loadBlocked(t, d, key, release)
		if got := lockHeld(url, key); got == leases {
			t.Errorf("on %s: the fill's lock key is there: %v, want %v", url, got, !leases)
		}
		if leases {
			raw, err := memcached.New([]string{mc.Addr})
			if err != nil {
				t.Fatal(err)
			}
			l, err := raw.GetLease(ctx, d.BackendKey(key), backend.LeaseOptions{TTL: time.Second})
			raw.Close()
			if err != nil || l.Won || !l.Busy {
				t.Errorf("on memcached, another client's GetLease during the fill = %+v, %v; want Busy (the Dict holds the lease)", l, err)
			}
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if v, ok := d.Get(key); !ok || v != "loaded" {
			t.Fatalf("after the load, Get = %q, %v", v, ok)
		}
	}
	step(redisURL, "a", false)
	step(mcURL, "b", true)
	step(redisURL, "c", false)
}

// seenWithin writes v under k with w and reads it with d until d returns
// it, failing after 10s.
func seenWithin(t *testing.T, d, w *memdict.Dict[string], k, v string) {
	t.Helper()
	if err := w.Put(k, v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := d.Get(k); got == v {
			return
		}
		if time.Now().After(deadline) {
			got, _ := d.Get(k)
			t.Fatalf("another client's write of %q not seen in 10s: Get = %q", v, got)
		}
		time.Sleep(time.Millisecond)
	}
}

// nearHit reads k with d until the near cache answers, failing after 10s.
func nearHit(t *testing.T, d *memdict.Dict[string], k, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for hits := d.Stats().NearCache.Hits; d.Stats().NearCache.Hits == hits; {
		if v, _ := d.Get(k); v != want {
			t.Fatalf("Get(%q) = %q, want %q", k, v, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not near-cached after 10s (tracking not live?)", k)
		}
		time.Sleep(time.Millisecond)
	}
}

// A near cache with MaxStale 0 through a Tool over Redis: the server's
// reports reach it; when SetPlugin moves the plugin to a second Redis,
// the tracking moves with it; on memcached, which cannot report changes,
// it keeps nothing, so that another client's write is seen at the next
// read; back on Redis it serves again.
func TestPluginNearCacheFollowsSetPlugin(t *testing.T) {
	ctx := t.Context()
	urlA := "redis://" + testserver.Redis(t).Addr + "/0"
	urlB := "redis://" + testserver.Redis(t).Addr + "/0"
	mcURL := "memcached://" + testserver.Memcached(t).Addr
	tl := newTool(t, tool.Config{SiteID: "s", Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig(urlA)}})
	d := mustDict[string](t, tl, "nc", "p", memdict.WithNearCache(memdict.NearCache{}))

	writer := func(url string) *memdict.Dict[string] { return siteDict(t, url, "s", "nc") }
	a, b, m := writer(urlA), writer(urlB), writer(mcURL)

	seenWithin(t, d, a, "k", "a1")
	nearHit(t, d, "k", "a1")
	seenWithin(t, d, a, "k", "a2")

	if err := tl.SetPlugin(ctx, "p", tool.DefaultPluginConfig(urlB)); err != nil {
		t.Fatal(err)
	}
	seenWithin(t, d, b, "k", "b1")
	nearHit(t, d, "k", "b1")
	seenWithin(t, d, b, "k", "b2")
	nearHit(t, d, "k", "b2")

	if err := tl.SetPlugin(ctx, "p", tool.DefaultPluginConfig(mcURL)); err != nil {
		t.Fatal(err)
	}
	if err := m.Put("k", "m1"); err != nil {
		t.Fatal(err)
	}
	hits := d.Stats().NearCache.Hits
	for i := range 3 {
		if v, _ := d.Get("k"); v != "m1" {
			t.Fatalf("read %d on memcached = %q, want m1", i, v)
		}
	}
	if err := m.Put("k", "m2"); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("k"); v != "m2" {
		t.Fatalf("on memcached, the read after another client's write = %q, want m2 (a near cache with MaxStale 0 keeps nothing there)", v)
	}
	if n := d.Stats().NearCache.Hits - hits; n != 0 {
		t.Fatalf("%d near-cache hits on memcached with MaxStale 0", n)
	}

	if err := tl.SetPlugin(ctx, "p", tool.DefaultPluginConfig(urlA)); err != nil {
		t.Fatal(err)
	}
	seenWithin(t, d, a, "k", "a3")
	nearHit(t, d, "k", "a3")
	seenWithin(t, d, a, "k", "a4")
}

// Per-Dict options through tool.Dict override the plugin's settings for
// that Dict, which follows the plugin for the rest; the plugin's near
// cache applies unless the Dict sets its own or none.
func TestDictOptionsOverPlugin(t *testing.T) {
	ctx := t.Context()
	tl := newTool(t, tool.Config{SiteID: "site", Plugins: map[string]tool.PluginConfig{
		"p": {URL: "mem://", Expiration: time.Hour, MaxKeyLen: 100, MaxValueLen: 1000, Codec: "json",
			NearCache: &tool.NearCacheConfig{MaxEntries: 50, MaxStale: time.Minute}},
	}})
	d := mustDict[map[string]int](t, tl, "pre", "p",
		memdict.WithDefaultTTL(time.Minute), memdict.WithCodec(codec.Gob), memdict.WithStaleWhileRevalidate(time.Second),
		memdict.WithNegativeTTL(2*time.Second), memdict.WithLeaseTTL(3*time.Second))
	want := memdict.Settings{SiteID: "site", TTL: time.Minute, Codec: codec.Gob, MaxKeyLen: 100, MaxValueLen: 1000,
		NearCache: &memdict.NearCache{MaxEntries: 50, MaxStale: time.Minute}}
	got := d.Settings()
	if got.NearCache == nil || !reflect.DeepEqual(*got.NearCache, *want.NearCache) {
		t.Fatalf("Settings.NearCache = %+v, want %+v", got.NearCache, want.NearCache)
	}
	got.NearCache, want.NearCache = nil, nil
	if got != want {
		t.Fatalf("Settings = %+v, want %+v", got, want)
	}
	if !d.Stats().NearCache.Enabled {
		t.Fatal("the plugin's near cache was not applied")
	}
	if err := d.Put("k", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); !ok || v["a"] != 1 {
		t.Fatalf("Get = %v, %v", v, ok)
	}

	// The plugin changes: the Dict follows it for the settings it did
	// not set.
	pc := tool.PluginConfig{URL: "mem://", Expiration: 2 * time.Hour, MaxKeyLen: 0, MaxValueLen: 5000, Codec: "msgpack"}
	if err := tl.SetPlugin(ctx, "p", pc); err != nil {
		t.Fatal(err)
	}
	got = d.Settings()
	want = memdict.Settings{SiteID: "site", TTL: time.Minute, Codec: codec.Gob, MaxKeyLen: 0, MaxValueLen: 5000}
	if got != want {
		t.Fatalf("after SetPlugin, Settings = %+v, want %+v", got, want)
	}
	other := mustDict[int](t, tl, "pre2", "p")
	if other.Settings().TTL != 2*time.Hour || other.Stats().NearCache.Enabled {
		t.Fatalf("a Dict without options: %+v, near %v", other.Settings(), other.Stats().NearCache.Enabled)
	}

	// The near cache: the Dict's own replaces the plugin's, or none.
	pc.NearCache = &tool.NearCacheConfig{MaxStale: time.Second}
	if err := tl.SetPlugin(ctx, "p", pc); err != nil {
		t.Fatal(err)
	}
	if d := mustDict[int](t, tl, "x", "p", memdict.WithoutNearCache()); d.Stats().NearCache.Enabled {
		t.Fatal("WithoutNearCache: the Dict has the plugin's near cache")
	}
	if d := mustDict[int](t, tl, "x", "p"); !d.Stats().NearCache.Enabled {
		t.Fatal("the plugin's near cache, set by SetPlugin, not applied to a new Dict")
	}
}

// An option that cannot apply through a Tool says so in the caller's
// terms, naming the plugin and the option, and no internal type.
func TestDictOptionErrors(t *testing.T) {
	mc := testserver.Memcached(t)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"mc":   tool.DefaultPluginConfig("memcached://" + mc.Addr),
		"near": {URL: "memcached://" + mc.Addr, NearCache: &tool.NearCacheConfig{}},
	}})
	// A prefix this long makes the namespace hashed: its tracking prefix
	// depends on the generation, so the check that the backend can track
	// had been left to the first read, which then kept nothing, silently.
	long := strings.Repeat("p", 220)
	tests := []struct {
		name, path string
		opts       []memdict.Option
		want       []string
		prefix     string // "users" if empty
	}{
		{"near cache MaxStale 0 on memcached", "mc", []memdict.Option{memdict.WithNearCache(memdict.NearCache{MaxEntries: 10_000})},
			[]string{`plugin "mc"`, "WithNearCache", "MaxStale is 0", "set MaxStale"}, ""},
		{"near cache MaxStale 0 on memcached, hashed namespace", "mc", []memdict.Option{memdict.WithNearCache(memdict.NearCache{})},
			[]string{`plugin "mc"`, "WithNearCache", "MaxStale is 0", "set MaxStale"}, long},
		{"plugin's near cache MaxStale 0 on memcached, hashed namespace", "near", nil,
			[]string{`plugin "near"`, "near cache", "MaxStale is 0", "set MaxStale"}, long},
		{"plugin's near cache MaxStale 0 on memcached", "near", nil,
			[]string{`plugin "near"`, "near cache", "MaxStale is 0", "set MaxStale"}, ""},
		{"WithSettings", "mc", []memdict.Option{memdict.WithSettings(mustShared(t, memdict.DefaultSettings()))},
			[]string{`plugin "mc"`, "WithSettings", "its plugin's"}, ""},
	}
	for _, tt := range tests {
		prefix := cmp.Or(tt.prefix, "users")
		_, err := tool.Dict[int](tl, prefix, tt.path, tt.opts...)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		t.Logf("%s: %v", tt.name, err)
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.name, err, w)
			}
		}
		for _, internal := range []string{"*tool.", "proxy", "*backend."} {
			if strings.Contains(err.Error(), internal) {
				t.Errorf("%s: %q names an internal type (%s)", tt.name, err, internal)
			}
		}
	}
	// With MaxStale, a near cache over memcached through a Tool is fine.
	if _, err := tool.Dict[int](tl, "users", "mc", memdict.WithNearCache(memdict.NearCache{MaxStale: time.Second})); err != nil {
		t.Fatal(err)
	}
}

// WithMiddleware puts middleware around every plugin's backend: it sees
// the calls of the plugins' Dicts, abilities included, before and after
// SetPlugin, and for plugins added later.
func TestToolMiddleware(t *testing.T) {
	ctx := t.Context()
	var ops sync.Map // backend.Op -> *atomic.Int64
	count := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			n, _ := ops.LoadOrStore(c.Op, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return next(ctx, c)
		}
	}
	calls := func(op backend.Op) int64 {
		if n, ok := ops.Load(op); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	tl := newTool(t, tool.Config{}, tool.WithMiddleware(count))
	d := mustDict[int](t, tl, "mw", "")
	if err := d.PutMulti(ctx, map[string]int{"a": 1, "b": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetOrLoad(ctx, "c", func(context.Context, string) (int, error) { return 3, nil }); err != nil {
		t.Fatal(err)
	}
	if calls(backend.OpSetMulti) != 1 || calls(backend.OpTryLock) != 1 || calls(backend.OpGetLease) != 1 {
		t.Fatalf("setmulti %d, trylock %d, getlease %d; want 1 each", calls(backend.OpSetMulti), calls(backend.OpTryLock), calls(backend.OpGetLease))
	}
	if err := tl.SetPlugin(ctx, "added", tool.DefaultPluginConfig("mem://")); err != nil {
		t.Fatal(err)
	}
	before := calls(backend.OpSet)
	if err := mustDict[int](t, tl, "mw", "added").Put("k", 1); err != nil {
		t.Fatal(err)
	}
	if calls(backend.OpSet) != before+1 {
		t.Fatal("the middleware did not see a call of a plugin added by SetPlugin")
	}
}

// siteDict is a Dict[string] on its own backend at url, with site id site
// and prefix prefix, as another process writing a Tool's keys would have
// (closed when the test ends).
func siteDict(t *testing.T, url, site, prefix string) *memdict.Dict[string] {
	t.Helper()
	be, err := backend.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d, err := memdict.New[string](be, prefix, memdict.WithSiteID(site))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
