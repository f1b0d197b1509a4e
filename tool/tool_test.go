package tool_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

var serverSeq atomic.Int64

// freshServer returns the name of a new tooltest server and its URL.
func freshServer() (*testServer, string) {
	name := fmt.Sprintf("s%d", serverSeq.Add(1))
	return servers.server(name), "tooltest://" + name
}

// mustDict returns tool.Dict[V](tl, prefix, path), failing t if it
// cannot.
func mustDict[V any](t testing.TB, tl *tool.Tool, prefix, path string, opts ...memdict.Option) *memdict.Dict[V] {
	t.Helper()
	d, err := tool.Dict[V](tl, prefix, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustShared returns SharedSettings holding s, failing t if it cannot.
func mustShared(t testing.TB, s memdict.Settings) *memdict.SharedSettings {
	t.Helper()
	sh, err := memdict.NewSharedSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// newTool returns a Tool on cfg and opts, closed when the test ends.
func newTool(t testing.TB, cfg tool.Config, opts ...tool.Option) *tool.Tool {
	t.Helper()
	tl, err := tool.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	return tl
}

func TestPluginResolution(t *testing.T) {
	_, urlA := freshServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"persistent_memcached_plugin": {URL: urlA, Order: -1},
		"zeta":                        tool.DefaultPluginConfig("mem://"),
	}})
	tests := []struct {
		path, want string // want "" : unknown
	}{
		{"", "default"},
		{"default", "default"},
		{"portal_memcached/default", "default"},
		// ERP5's name of the default plugin, in every form.
		{"default_memcached_plugin", "default"},
		{"portal_memcached/default_memcached_plugin", "default"},
		{"/portal_memcached/default_memcached_plugin", "default"},
		{"persistent_memcached_plugin", "persistent_memcached_plugin"},
		{"portal_memcached/persistent_memcached_plugin", "persistent_memcached_plugin"},
		{"portal_memcached/zeta", "zeta"},
		{"nope", ""},
		{"portal_memcached/nope", ""},
		{"portal_memcached/", ""},
		{"other_tool/zeta", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			info, err := tl.Plugin(tt.path)
			d, derr := tool.Dict[string](tl, "p", tt.path)
			if tt.want == "" {
				for _, err := range []error{err, derr} {
					if !errors.Is(err, tool.ErrUnknownPlugin) {
						t.Fatalf("error %v, want ErrUnknownPlugin", err)
					}
					msg := err.Error()
					if !strings.Contains(msg, fmt.Sprintf("%q", tt.path)) ||
						!strings.Contains(msg, "persistent_memcached_plugin, default, zeta") {
						t.Errorf("error %q should name the path and list the plugins in order", msg)
					}
				}
				return
			}
			if err != nil || derr != nil {
				t.Fatalf("Plugin: %v; Dict: %v", err, derr)
			}
			if info.Name != tt.want || info.Path != tt.want {
				t.Errorf("Plugin = %+v, want %s", info, tt.want)
			}
			if d.Prefix() != "p" {
				t.Errorf("Prefix = %q", d.Prefix())
			}
		})
	}
	var names []string
	for _, p := range tl.Plugins() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "persistent_memcached_plugin default zeta" {
		t.Errorf("Plugins order: %s", got)
	}
}

func TestPluginsInfo(t *testing.T) {
	tl := newTool(t, tool.Config{SiteID: "site", Plugins: map[string]tool.PluginConfig{
		"r": {URL: "redis://user:hunter2@127.0.0.1:1/0", Expiration: time.Minute, Codec: "json", Order: 3},
	}})
	info, err := tl.Plugin("portal_memcached/r")
	if err != nil {
		t.Fatal(err)
	}
	want := tool.PluginInfo{Name: "r", Path: "r", SiteID: "site",
		PluginConfig: tool.PluginConfig{URL: "redis://user:xxxxx@127.0.0.1:1/0", Expiration: time.Minute, Codec: "json", Order: 3, Format: memdict.FormatMemdict}}
	if info != want {
		t.Errorf("Plugin =\n%+v\nwant\n%+v", info, want)
	}
	if fmt.Sprint(tl.Plugins()) == "" || strings.Contains(fmt.Sprint(tl.Plugins()), "hunter2") {
		t.Errorf("Plugins shows the password: %v", tl.Plugins())
	}
	d, _ := tool.Dict[int](tl, "x", "")
	if info, _ := tl.Plugin(""); info.Open {
		t.Error("default plugin open before any call")
	}
	d.Get("k")
	if info, _ := tl.Plugin(""); !info.Open || info.URL != "mem://" {
		t.Errorf("after a call: %+v", info)
	}
}

// Dicts take the plugin's settings: site id, expiration, limits, codec.
func TestDictSettings(t *testing.T) {
	tl := newTool(t, tool.Config{SiteID: "site", Plugins: map[string]tool.PluginConfig{
		"p": {URL: "mem://", Expiration: time.Hour, MaxKeyLen: 100, MaxValueLen: 1000, Codec: "json"},
	}})
	d := mustDict[map[string]int](t, tl, "pre", "p")
	want := memdict.Settings{SiteID: "site", TTL: time.Hour, Codec: codec.JSON, MaxKeyLen: 100, MaxValueLen: 1000}
	if got := d.Settings(); got != want {
		t.Errorf("Settings = %+v, want %+v", got, want)
	}
	def, _ := tool.Dict[int](tl, "pre", "")
	if got, want := def.Settings(), (memdict.Settings{SiteID: "site", Codec: codec.Default(), MaxKeyLen: 250, MaxValueLen: 1 << 20}); got != want {
		t.Errorf("default plugin Settings = %+v, want %+v", got, want)
	}
	if err := d.Put("k", map[string]int{"a": 1}); err != nil {
		t.Error(err)
	}
	big := map[string]int{strings.Repeat("x", 2000): 1}
	if err := d.Put("k", big); !errors.Is(err, memdict.ErrValueTooLarge) {
		t.Errorf("Put over max_value_length: %v", err)
	}
	// Options that set one setting override the plugin's (see
	// TestDictOptionsOverPlugin); WithSettings cannot apply.
	if _, err := tool.Dict[int](tl, "pre", "p", memdict.WithSettings(mustShared(t, memdict.DefaultSettings()))); err == nil || !strings.Contains(err.Error(), "plugin") {
		t.Errorf("Dict WithSettings: %v", err)
	}
	var seen atomic.Int64
	if _, err := tool.Dict[int](tl, "pre", "p", memdict.WithErrorHandler(func(error) { seen.Add(1) })); err != nil {
		t.Errorf("Dict WithErrorHandler: %v", err)
	}
}

// Dicts of one plugin share one backend, opened once.
func TestSharedBackend(t *testing.T) {
	srv, url := freshServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig(url)}})
	var ds []*memdict.Dict[int]
	for i := range 5 {
		d := mustDict[int](t, tl, fmt.Sprint("prefix", i), "portal_memcached/p")
		ds = append(ds, d)
	}
	if srv.opens.Load() != 0 {
		t.Errorf("opened before use: %d", srv.opens.Load())
	}
	for i, d := range ds {
		if err := d.Put("k", i); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range ds {
		if v, ok := d.Get("k"); !ok || v != i {
			t.Errorf("Dict %d: %v, %v", i, v, ok)
		}
	}
	if n := srv.opens.Load(); n != 1 {
		t.Errorf("backend opened %d times, want 1", n)
	}
	if ds[0].Backend() != ds[4].Backend() {
		t.Error("Dicts have different backends")
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if srv.open() != 0 {
		t.Errorf("%d handles left open after Close", srv.open())
	}
}

// Two Tools with different site ids on one backend never see each other's
// keys, nor do two prefixes of one Tool.
func TestSiteIsolation(t *testing.T) {
	store := memory.New()
	defer store.Close()
	tools := map[string]*tool.Tool{}
	for _, site := range []string{"", "site1", "site2", "site1_x", "site"} {
		tools[site] = newTool(t, tool.Config{SiteID: site}, tool.WithBackend(tool.DefaultPlugin, store))
	}
	prefixes := []string{"", "p", "p_x", "x", "1_p", "site1", "1"}
	keys := []string{"", "k", "x_k", "p_x_k"}
	// Every (site, prefix, key) gets its own value.
	val := func(site, prefix, key string) string { return site + "|" + prefix + "|" + key }
	for site, tl := range tools {
		for _, prefix := range prefixes {
			d := mustDict[string](t, tl, prefix, "")
			for _, k := range keys {
				if err := d.Put(k, val(site, prefix, k)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// And every (site, prefix) its generation key.
	gens := len(tools) * len(prefixes)
	if want := len(tools)*len(prefixes)*len(keys) + gens; store.Len() != want {
		t.Errorf("store holds %d keys, want %d", store.Len(), want)
	}
	for site, tl := range tools {
		for _, prefix := range prefixes {
			d, _ := tool.Dict[string](tl, prefix, "")
			for _, k := range keys {
				if v, ok := d.Get(k); !ok || v != val(site, prefix, k) {
					t.Errorf("site %q prefix %q key %q: %q, %v", site, prefix, k, v, ok)
				}
			}
		}
	}
	// Deleting everything of one site leaves the others.
	for _, prefix := range prefixes {
		d, _ := tool.Dict[string](tools["site1"], prefix, "")
		for _, k := range keys {
			if err := d.Delete(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := (len(tools)-1)*len(prefixes)*len(keys) + gens; store.Len() != want {
		t.Errorf("after deleting site1: %d keys, want %d", store.Len(), want)
	}
	// Closing a Tool does not close a backend supplied with WithBackend.
	tools["site2"].Close()
	if err := store.Ping(context.Background()); err != nil {
		t.Errorf("supplied backend closed by Tool.Close: %v", err)
	}
}

func TestClose(t *testing.T) {
	srvA, urlA := freshServer()
	srvB, urlB := freshServer()
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{
		"a": tool.DefaultPluginConfig(urlA),
		"b": tool.DefaultPluginConfig(urlB),
	}})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := tool.Dict[int](tl, "x", "a")
	db, _ := tool.Dict[int](tl, "x", "b")
	dm, _ := tool.Dict[int](tl, "x", "")
	for _, d := range []*memdict.Dict[int]{da, dm} {
		if err := d.Put("k", 1); err != nil {
			t.Fatal(err)
		}
	}
	be, err := tl.Backend(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil { // a no-op: the Tool owns it
		t.Fatal(err)
	}
	if _, ok := dm.Get("k"); !ok {
		t.Error("closing the proxy closed the plugin's backend")
	}
	if err := tl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if srvA.open() != 0 || srvB.opens.Load() != 0 {
		t.Errorf("after Close: a has %d open handles; b was opened %d times", srvA.open(), srvB.opens.Load())
	}
	ctx := context.Background()
	checks := map[string]error{}
	for name, d := range map[string]*memdict.Dict[int]{"a": da, "b": db, "default": dm} {
		_, _, checks["Lookup "+name] = d.Lookup(ctx, "k")
		checks["Store "+name] = d.Store(ctx, "k", 2)
		_, checks["GetMulti "+name] = d.GetMulti(ctx, []string{"k"})
	}
	_, checks["Dict"] = tool.Dict[int](tl, "x", "a")
	_, checks["Backend"] = tl.Backend(ctx, "a")
	_, checks["Plugin"] = tl.Plugin("a")
	checks["SetPlugin"] = tl.SetPlugin(ctx, "a", tool.DefaultPluginConfig("mem://"))
	checks["Configure"] = tl.Configure(ctx, tool.Config{})
	checks["RemovePlugin"] = tl.RemovePlugin("a")
	checks["Ping"] = be.(backend.Pinger).Ping(ctx)
	for what, err := range checks {
		if !errors.Is(err, backend.ErrClosed) || !errors.Is(err, memdict.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	if len(tl.Plugins()) != 0 {
		t.Error("Plugins after Close")
	}
	if err := tl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Close waits for calls in flight, which succeed.
func TestCloseWaitsForCalls(t *testing.T) {
	tl, err := tool.New(tool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := tl.Backend(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tool.Dict[int](tl, "x", "")
	d.Put("k", 1)
	// A Keys iteration holds the backend: Close must wait for it.
	next, stop := iter.Pull2(be.(backend.Lister).Keys(context.Background(), ""))
	defer stop()
	if _, err, ok := next(); !ok || err != nil {
		t.Fatalf("Keys: %v %v", err, ok)
	}
	closed := make(chan error)
	go func() { closed <- tl.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned with a call in flight")
	case <-time.After(50 * time.Millisecond):
	}
	// Once Close has started (the goroutine may not have run yet on a
	// loaded machine), calls fail, while Close still waits.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := d.Get("k"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Gets still succeed 5s after Close started")
		}
	}
	select {
	case <-closed:
		t.Fatal("Close returned with a call in flight")
	default:
	}
	stop()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func TestBackendOptionalInterfaces(t *testing.T) {
	_, url := freshServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"plain": tool.DefaultPluginConfig(url)}})
	ctx := context.Background()
	// mem:// has them all.
	be, err := tl.Backend(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := be.(backend.Pinger).Ping(ctx); err != nil {
		t.Error(err)
	}
	if st, err := be.(backend.StatsReporter).ServerStats(ctx); err != nil || len(st) != 1 {
		t.Errorf("ServerStats: %v, %v", st, err)
	}
	d, _ := tool.Dict[int](tl, "p", "")
	d.Put("k", 1)
	n := 0
	for k, err := range be.(backend.Lister).Keys(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		if k != d.BackendKey("k") && k != d.GenerationKey() {
			t.Errorf("key %q", k)
		}
		n++
	}
	if n != 2 {
		t.Errorf("Keys gave %d keys, want the value's and the generation's", n)
	}
	var dictKeys []string
	for k, err := range d.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		dictKeys = append(dictKeys, k)
	}
	if len(dictKeys) != 1 || dictKeys[0] != "k" {
		t.Errorf("Dict.Keys = %q", dictKeys)
	}
	if err := be.(backend.Flusher).Flush(ctx); err != nil {
		t.Error(err)
	}
	if _, ok := d.Get("k"); ok {
		t.Error("Flush kept the key")
	}
	// The test handle has none.
	plain, err := tl.Backend(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	errs = append(errs, plain.(backend.Pinger).Ping(ctx), plain.(backend.Flusher).Flush(ctx))
	_, err = plain.(backend.StatsReporter).ServerStats(ctx)
	errs = append(errs, err)
	for _, err := range plain.(backend.Lister).Keys(ctx, "") {
		errs = append(errs, err)
	}
	for i, err := range errs {
		if !errors.Is(err, backend.ErrNotSupported) || !strings.Contains(err.Error(), `"plain"`) {
			t.Errorf("%d: %v, want ErrNotSupported naming the plugin", i, err)
		}
	}
}

func TestSetPlugin(t *testing.T) {
	srvA, urlA := freshServer()
	srvB, urlB := freshServer()
	ctx := context.Background()
	tl := newTool(t, tool.Config{SiteID: "s", Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig(urlA)}})
	d, _ := tool.Dict[int](tl, "x", "p")
	if err := d.Put("k", 1); err != nil {
		t.Fatal(err)
	}
	// Bad configurations change nothing.
	bad := []struct {
		path string
		cfg  tool.PluginConfig
		want error
	}{
		{"p", tool.PluginConfig{URL: "nope://", MaxKeyLen: 250}, backend.ErrUnknownScheme},
		{"p", tool.PluginConfig{URL: urlB, Expiration: -1}, tool.ErrConfig},
		{"p", tool.PluginConfig{URL: urlB, Codec: "zip"}, tool.ErrConfig},
		{"p", tool.PluginConfig{URL: "tooltest://x?fail=1"}, nil},
		{"a/b", tool.PluginConfig{URL: "mem://"}, tool.ErrConfig},
		{"new", tool.PluginConfig{}, tool.ErrConfig},
	}
	for _, b := range bad {
		err := tl.SetPlugin(ctx, b.path, b.cfg)
		if err == nil || (b.want != nil && !errors.Is(err, b.want)) {
			t.Errorf("SetPlugin(%q, %+v): %v, want %v", b.path, b.cfg, err, b.want)
		}
	}
	if info, _ := tl.Plugin("p"); info.URL != urlA || len(tl.Plugins()) != 2 {
		t.Errorf("after failed SetPlugins: %+v", tl.Plugins())
	}
	// Change the defaults only: same backend, new settings.
	cfg := tool.DefaultPluginConfig("")
	cfg.Expiration = time.Minute
	cfg.Codec = "json"
	if err := tl.SetPlugin(ctx, "portal_memcached/p", cfg); err != nil {
		t.Fatal(err)
	}
	if s := d.Settings(); s.TTL != time.Minute || s.Codec != codec.JSON || s.SiteID != "s" {
		t.Errorf("settings after SetPlugin: %+v", s)
	}
	if srvA.opens.Load() != 1 || srvB.opens.Load() != 0 {
		t.Errorf("opens: a %d b %d", srvA.opens.Load(), srvB.opens.Load())
	}
	// Change the URL: the old backend is closed, the Dict uses the new one.
	cfg.URL = urlB
	if err := tl.SetPlugin(ctx, "p", cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srvA.open() == 0 }, "old backend closed")
	if _, ok := d.Get("k"); ok {
		t.Error("value of the old backend seen on the new one")
	}
	d.Put("k", 2)
	if srvB.Len() != 2 {
		t.Errorf("new server holds %d keys, want the value and the generation", srvB.Len())
	}
	if info, _ := tl.Plugin("p"); info.URL != urlB || info.Expiration != time.Minute || !info.Open {
		t.Errorf("Plugin after SetPlugin: %+v", info)
	}
	// Add a plugin.
	if err := tl.SetPlugin(ctx, "portal_memcached/added", tool.DefaultPluginConfig(urlA)); err != nil {
		t.Fatal(err)
	}
	d2 := mustDict[int](t, tl, "x", "added")
	if _, ok := d2.Get("k"); !ok {
		t.Error("added plugin does not see server a's key")
	}
}

// An admin page shows the redacted URL; sending it back keeps the password.
func TestSetPluginKeepsPassword(t *testing.T) {
	ctx := context.Background()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"r": tool.DefaultPluginConfig("redis://:hunter2@127.0.0.1:1/0")}})
	info, _ := tl.Plugin("r")
	if !strings.Contains(info.URL, "xxxxx") {
		t.Fatalf("URL not redacted: %s", info.URL)
	}
	info.Expiration = time.Second
	if err := tl.SetPlugin(ctx, "r", info.PluginConfig); err != nil {
		t.Fatal(err)
	}
	d, _ := tool.Dict[int](tl, "x", "r")
	if d.Settings().TTL != time.Second {
		t.Error("expiration not changed")
	}
	// The Dict still uses the URL with the password: its backend is the
	// one first opened (not reopened, as the URL did not change).
	info.URL = ""
	if err := tl.SetPlugin(ctx, "r", info.PluginConfig); err != nil {
		t.Fatal(err)
	}
	if got, _ := tl.Plugin("r"); got.URL != "redis://:xxxxx@127.0.0.1:1/0" || got.Codec != "msgpack" {
		t.Errorf("Plugin = %+v", got)
	}
}

func TestConfigure(t *testing.T) {
	srvA, urlA := freshServer()
	srvB, urlB := freshServer()
	ctx := context.Background()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"a":    tool.DefaultPluginConfig(urlA),
		"gone": tool.DefaultPluginConfig(urlB),
	}})
	da, _ := tool.Dict[int](tl, "x", "a")
	dg, _ := tool.Dict[int](tl, "x", "gone")
	dg.Put("k", 1)
	da.Put("k", 1)
	// A bad configuration changes nothing, and closes what it opened.
	err := tl.Configure(ctx, tool.Config{SiteID: "new", Plugins: map[string]tool.PluginConfig{
		"a": tool.DefaultPluginConfig(urlB),
		"b": {URL: "mem://", Expiration: -1},
	}})
	if !errors.Is(err, tool.ErrConfig) || !strings.Contains(err.Error(), `plugin "b"`) {
		t.Errorf("Configure: %v", err)
	}
	if tl.SiteID() != "" || srvB.open() != 1 {
		t.Errorf("failed Configure changed things: site %q, b open %d", tl.SiteID(), srvB.open())
	}
	if err := tl.Configure(ctx, tool.Config{SiteID: "new", Plugins: map[string]tool.PluginConfig{
		"a": tool.DefaultPluginConfig(urlB),
		"c": tool.DefaultPluginConfig("mem://"),
	}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range tl.Plugins() {
		names = append(names, p.Name+"="+p.URL+"@"+p.SiteID)
	}
	if got, want := strings.Join(names, " "), "a="+urlB+"@new c=mem://@new default=mem://@new"; got != want {
		t.Errorf("plugins:\n%s\nwant\n%s", got, want)
	}
	if s := da.Settings(); s.SiteID != "new" {
		t.Errorf("site id of an earlier Dict: %q", s.SiteID)
	}
	da.Put("k", 2)
	if v, _ := da.Get("k"); v != 2 {
		t.Error("Dict of a does not work")
	}
	_, _, err = dg.Lookup(ctx, "k")
	if !errors.Is(err, backend.ErrClosed) || !strings.Contains(err.Error(), "removed") {
		t.Errorf("Dict of a removed plugin: %v", err)
	}
	waitFor(t, func() bool { return srvA.open() == 0 }, "a's old backend closed")
	// b: one handle for gone (closed) and one for a.
	waitFor(t, func() bool { return srvB.open() == 1 }, "gone's backend closed")

	if err := tl.RemovePlugin("c"); err != nil {
		t.Fatal(err)
	}
	if err := tl.RemovePlugin("c"); !errors.Is(err, tool.ErrUnknownPlugin) {
		t.Errorf("second RemovePlugin: %v", err)
	}
	if err := tl.RemovePlugin(""); err == nil {
		t.Error("RemovePlugin of the default plugin")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: only scheduling is awaited
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A backend that cannot be opened (its URL is valid, as a URL with a bad
// parameter is not: see TestLoadAndFromEnvValidateURLParameters) is an
// error of the calls, as a down server is, and is tried again later.
func TestOpenFailure(t *testing.T) {
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"bad": tool.DefaultPluginConfig("tooltest://bad?fail=1"),
	}})
	d, err := tool.Dict[int](tl, "x", "bad")
	if err != nil {
		t.Fatalf("Dict opens nothing, so cannot fail: %v", err)
	}
	if _, ok := d.Get("k"); ok {
		t.Error("Get succeeded")
	}
	_, _, err = d.Lookup(context.Background(), "k")
	if !errors.Is(err, memdict.ErrUnavailable) || !strings.Contains(err.Error(), "refused to open") {
		t.Errorf("Lookup: %v", err)
	}
	if _, err := tl.Backend(context.Background(), "bad"); err == nil {
		t.Error("Backend: no error")
	}
}

// Transactions commit through the Tool's backend, with or without
// backend.MultiWriter on the server.
func TestTxThroughTool(t *testing.T) {
	_, url := freshServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"plain": tool.DefaultPluginConfig(url)}})
	ctx := context.Background()
	for _, path := range []string{"", "plain"} { // mem:// has MultiWriter, the test handle not
		d := mustDict[int](t, tl, "tx", path)
		d.Put("gone", 1)
		tx := d.Begin()
		tx.Put("a", 1)
		tx.Put("b", 2)
		tx.Delete("gone")
		tx.Delete("absent")
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("%q: Commit: %v", path, err)
		}
		got, err := d.GetMulti(ctx, []string{"a", "b", "gone"})
		if err != nil || len(got) != 2 || got["a"] != 1 || got["b"] != 2 {
			t.Errorf("%q: after Commit: %v, %v", path, got, err)
		}
	}
}

// After a Clear and a switch of server, Dicts made before and after the
// switch agree on the namespace generation.
func TestClearAndSwitch(t *testing.T) {
	_, urlA := freshServer()
	srvB, urlB := freshServer()
	ctx := context.Background()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(urlA)}})
	old, _ := tool.Dict[int](tl, "c", "")
	old.Put("k", 1)
	if err := old.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := old.Get("k"); ok {
		t.Fatal("Clear kept k")
	}
	old.Put("k", 2)
	if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig(urlB)); err != nil {
		t.Fatal(err)
	}
	if err := old.Store(ctx, "k", 3); err != nil {
		t.Fatal(err)
	}
	fresh, _ := tool.Dict[int](tl, "c", "")
	if v, ok := fresh.Get("k"); !ok || v != 3 {
		t.Errorf("new Dict reads %v, %v; want 3 written by the old one", v, ok)
	}
	if _, err := srvB.Get(ctx, old.BackendKey("k")); err != nil {
		t.Errorf("key not on the new server: %v", err)
	}
}

// A backend supplied with WithBackend keeps its place through settings
// changes, and is not closed when the plugin moves to a URL.
func TestSuppliedBackend(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	tl := newTool(t, tool.Config{}, tool.WithBackend("shared", store))
	info, err := tl.Plugin("shared")
	if err != nil || info.URL != "" || info.MaxKeyLen != 250 || !info.Open {
		t.Fatalf("Plugin = %+v, %v", info, err)
	}
	d, _ := tool.Dict[int](tl, "x", "shared")
	d.Put("k", 1)
	cfg := info.PluginConfig
	cfg.Expiration = time.Minute
	if err := tl.SetPlugin(ctx, "shared", cfg); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); !ok || v != 1 || d.Settings().TTL != time.Minute {
		t.Errorf("after a settings change: %v %v %+v", v, ok, d.Settings())
	}
	cfg.Expiration = -1
	if err := tl.SetPlugin(ctx, "shared", cfg); !errors.Is(err, tool.ErrConfig) {
		t.Errorf("bad expiration: %v", err)
	}
	cfg.Expiration = 0
	cfg.URL = "mem://"
	if err := tl.SetPlugin(ctx, "shared", cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get("k"); ok {
		t.Error("the new backend has the old key")
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(ctx); err != nil {
		t.Errorf("supplied backend closed: %v", err)
	}
	if _, err := tool.New(tool.Config{}, tool.WithBackend("x", nil)); err == nil {
		t.Error("WithBackend(nil): no error")
	}
}
