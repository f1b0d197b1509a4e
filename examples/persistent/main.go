// Command persistent shows a persistent plugin beside the volatile default
// (as ERP5 sites have a persistent_memcached_plugin beside
// default_memcached_plugin): values that must survive a cache restart (here,
// shopping carts) go to the plugin "persistent", on Redis with persistence on,
// throw-away ones to the default plugin, and code picks the plugin by its
// path.
//
// Start a Redis that persists, then run the example:
//
//	redis-server --appendonly yes --port 6379 &
//	go run ./examples/persistent
//
// The configuration is written in the program; the same in a file
// (examples/memdict.yaml) is used with MEMDICT_CONFIG=examples/memdict.yaml.
// MEMDICT_PERSISTENT_URL replaces the Redis URL (redis://:password@host:6379/0,
// rediss://... for TLS).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	_ "github.com/memdict/memdict/backend/memcached" // memcached:// URLs, in a configuration file
	_ "github.com/memdict/memdict/backend/redis"     // redis:// URLs
	"github.com/memdict/memdict/tool"
)

// Cart is what the persistent plugin keeps.
type Cart struct {
	Items map[string]int
	Saved time.Time
}

func main() {
	log.SetFlags(0)
	redisURL := os.Getenv("MEMDICT_PERSISTENT_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}

	var (
		t   *tool.Tool
		err error
	)
	if os.Getenv(tool.EnvConfig) != "" {
		t, err = tool.FromEnv()
	} else {
		persistent := tool.DefaultPluginConfig(redisURL)
		persistent.MaxKeyLen = 0   // Redis takes long keys...
		persistent.MaxValueLen = 0 // ...and large values
		persistent.Order = 1
		volatile := tool.DefaultPluginConfig("mem://")
		volatile.Expiration = time.Hour
		t, err = tool.New(tool.Config{
			SiteID: "shop",
			Plugins: map[string]tool.PluginConfig{
				tool.DefaultPlugin: volatile,
				"persistent":       persistent,
			},
		})
	}
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	for _, p := range t.Plugins() {
		fmt.Printf("%-45s %s (expiration %v)\n", p.Path, p.URL, p.Expiration)
	}

	// Picked by path, as ERP5 code does.
	carts, err := tool.Dict[Cart](t, "cart", "persistent")
	if err != nil {
		log.Fatal(err)
	}
	pages, err := tool.Dict[string](t, "rendered_page", "") // the default plugin
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	// Lookup and Store, unlike Get and Put, report a server that is down.
	cart, found, err := carts.Lookup(ctx, "alice")
	if err != nil {
		log.Fatalf("persistent plugin: %v (is Redis running? set MEMDICT_PERSISTENT_URL)", err)
	}
	if !found {
		cart = Cart{Items: map[string]int{}}
	}
	cart.Items["apple"]++
	cart.Saved = time.Now()
	if err := carts.Store(ctx, "alice", cart); err != nil {
		log.Fatal(err)
	}
	if err := pages.Put("/home", "<html>...</html>"); err != nil {
		// A page cache that fails costs a re-render, not the request.
		log.Printf("rendered page not cached: %v", err)
	}

	fmt.Printf("alice's cart holds %d apple(s); it survives a Redis restart\n", cart.Items["apple"])
}
