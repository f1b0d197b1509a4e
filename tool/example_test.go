package tool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// The how-to's counter, written against a Tool: a miss is 0, and the new
// value is stored explicitly. With no configuration, the default plugin is
// the in-memory backend; tool.FromEnv() would read MEMDICT_CONFIG and
// MEMDICT_URL instead.
func Example() {
	t, err := tool.New(tool.Config{})
	if err != nil {
		panic(err)
	}
	defer t.Close()

	for range 3 {
		// "" is the default plugin, "default" (ERP5's path
		// "portal_memcached/default_memcached_plugin" names it too).
		counts, err := tool.Dict[int](t, "my_first_test", "")
		if err != nil {
			panic(err)
		}
		value, ok := counts.Get("some_key")
		if !ok {
			value = 0 // a miss: never set, or lost by the cache
		}
		if err := counts.Put("some_key", value+1); err != nil {
			panic(err)
		}
		fmt.Println(value + 1)
	}
	// Output:
	// 1
	// 2
	// 3
}

// A persistent plugin beside the volatile default, and code that picks
// one by path. Here both are in memory; in production the persistent one
// points at Redis with persistence on:
//
//	sessions:
//	  url: redis://127.0.0.1:6379/0
func Example_persistentPlugin() {
	dir, _ := os.MkdirTemp("", "memdict")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "memdict.yaml")
	os.WriteFile(path, []byte(`
site_id: shop
plugins:
  default:
    url: mem://
    expiration: 1h
  sessions:
    url: mem://          # redis://127.0.0.1:6379/0 in production
    max_key_length: 0    # Redis has no 250-byte limit
    max_value_length: 0
    order: 1
`), 0o600)

	t, err := tool.Load(path)
	if err != nil {
		panic(err)
	}
	defer t.Close()

	sessions, _ := tool.Dict[string](t, "session", "sessions")
	_ = sessions.Put("alice", "logged in")
	v, _ := sessions.Get("alice")
	fmt.Println(v)
	for _, p := range t.Plugins() {
		fmt.Println(p.Path, p.URL, p.Expiration)
	}
	// Output:
	// logged in
	// default mem:// 1h0m0s
	// sessions mem:// 0s
}

// ERP5's names keep working: a configuration (or code) written for ERP5's
// Memcached Tool names the default plugin default_memcached_plugin and
// paths portal_memcached/<name>; the Tool takes them for "default" and
// <name>.
func Example_erp5Names() {
	dir, _ := os.MkdirTemp("", "memdict")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "memdict.yaml")
	os.WriteFile(path, []byte(`
plugins:
  default_memcached_plugin:
    url: mem://
    expiration: 1h
  persistent_memcached_plugin:
    url: mem://
`), 0o600)

	t, err := tool.Load(path)
	if err != nil {
		panic(err)
	}
	defer t.Close()
	for _, p := range []string{"", "default_memcached_plugin", "portal_memcached/default_memcached_plugin", "portal_memcached/persistent_memcached_plugin"} {
		info, _ := t.Plugin(p)
		fmt.Printf("%q: %s %v\n", p, info.Name, info.Expiration)
	}
	// Output:
	// "": default 1h0m0s
	// "default_memcached_plugin": default 1h0m0s
	// "portal_memcached/default_memcached_plugin": default 1h0m0s
	// "portal_memcached/persistent_memcached_plugin": persistent_memcached_plugin 0s
}

// Changing a plugin at run time, as ERP5's configure screen does: Dicts
// handed out earlier follow.
func ExampleTool_SetPlugin() {
	t, _ := tool.New(tool.Config{})
	defer t.Close()
	counts, _ := tool.Dict[int](t, "my_first_test", "")

	cfg := tool.DefaultPluginConfig("mem://?max_bytes=67108864") // a new server
	cfg.Expiration = 10 * time.Minute
	if err := t.SetPlugin(context.Background(), tool.DefaultPlugin, cfg); err != nil {
		panic(err)
	}
	fmt.Println(counts.Settings().TTL)
	info, _ := t.Plugin("")
	fmt.Println(info.URL)
	// Output:
	// 10m0s
	// mem://?max_bytes=67108864
}

// An unknown plugin path names the path and the configured plugins.
func ExampleDict_unknownPlugin() {
	t, _ := tool.New(tool.Config{})
	defer t.Close()
	_, err := tool.Dict[int](t, "my_first_test", "nope")
	fmt.Println(err)
	// Output:
	// tool: unknown plugin "nope" (configured: default)
}

// Dicts lists the Dicts the Tool handed out, with their metrics, as an
// admin page or a metrics exporter shows them.
func ExampleTool_Dicts() {
	t, err := tool.New(tool.Config{})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	visits, err := tool.Dict[int](t, "visits", "")
	if err != nil {
		panic(err)
	}
	visits.Get("home") // a miss
	_ = visits.Put("home", 1)
	visits.Get("home") // a hit

	for _, d := range t.Dicts() {
		fmt.Printf("%s %q: %d Dict(s), %d hit(s), %d miss(es), %d set(s)\n",
			d.Plugin, d.Prefix, d.Count, d.Stats.Hits, d.Stats.Misses, d.Stats.Sets)
	}
	// Output:
	// default "visits": 1 Dict(s), 1 hit(s), 1 miss(es), 1 set(s)
}

// Options given to Dict override the plugin's defaults for that Dict
// only: here its own TTL, over the plugin's expiration of an hour, and a
// near cache (over a backend that cannot report other clients' writes, a
// near cache needs MaxStale). The Dict follows the plugin for the rest.
func ExampleDict_options() {
	t, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin: {URL: "mem://", Expiration: time.Hour},
	}})
	if err != nil {
		panic(err)
	}
	defer t.Close()

	sessions, err := tool.Dict[string](t, "sessions", "",
		memdict.WithDefaultTTL(20*time.Minute),
		memdict.WithNearCache(memdict.NearCache{MaxEntries: 10_000, MaxStale: time.Second}))
	if err != nil {
		panic(err)
	}
	fmt.Println(sessions.Settings().TTL, sessions.Stats().NearCache.Enabled)
	// Output:
	// 20m0s true
}

// WithMiddleware puts middleware around every plugin's backend, where
// instrumentation goes: it sees every call of the plugins' Dicts, fleet
// leases and batched writes included, whichever backend the plugin is on.
func ExampleWithMiddleware() {
	var calls []string
	record := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if !c.Op.Property() { // not the asks without I/O (the timeout, ...)
				calls = append(calls, c.Op.String())
			}
			return next(ctx, c)
		}
	}
	t, err := tool.New(tool.Config{}, tool.WithMiddleware(record))
	if err != nil {
		panic(err)
	}
	defer t.Close()
	prices, _ := tool.Dict[int](t, "prices", "")
	_ = prices.PutMulti(context.Background(), map[string]int{"tea": 350, "coffee": 280})
	// The read of the Dict's namespace generation (with its key's TTL,
	// which the Dict renews), the add of one (a new namespace has none
	// yet), then one batched write.
	fmt.Println(calls)
	// Output:
	// [getttl add setmulti]
}
