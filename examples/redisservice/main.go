// Command redisservice is a small HTTP service on Redis, as a user would
// write one: a Tool whose default plugin is a Redis URL, a Dict with a
// near cache, memdict's admin page at /admin/ and Prometheus metrics at
// /metrics. It is a module of its own, as a service is, and it imports
// only the Redis driver.
//
// .ci/run builds it with the default flags (go build, no -ldflags) to
// check what such a service costs: its binary stays under 20 MiB and
// links no memcached client (.ci/binary).
//
//	redis-server --port 6379 &
//	cd examples/redisservice && go run . -url redis://127.0.0.1:6379/0
//	curl 'http://127.0.0.1:8080/greeting?name=ada'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memdict/memdict"
	_ "github.com/memdict/memdict/backend/redis" // redis://, rediss://: the only driver this service links
	"github.com/memdict/memdict/metrics/prometheus"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

func main() {
	log.SetFlags(0)
	addr := flag.String("addr", "127.0.0.1:8080", "listen on this `host:port`")
	url := flag.String("url", "redis://127.0.0.1:6379/0", "the Redis `URL` of the default plugin")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *url); err != nil {
		log.Fatalf("redisservice: %v", err)
	}
}

func run(ctx context.Context, addr, url string) error {
	t, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin: tool.DefaultPluginConfig(url),
	}})
	if err != nil {
		return err
	}
	defer t.Close()

	// Greetings are kept an hour, and the hot ones in the process: Redis
	// reports changes made elsewhere, MaxStale bounds them if it cannot.
	greetings, err := tool.Dict[string](t, "greetings", "",
		memdict.WithDefaultTTL(time.Hour),
		memdict.WithNearCache(memdict.NearCache{MaxEntries: 10_000, MaxStale: 30 * time.Second}))
	if err != nil {
		return err
	}

	reg := promclient.NewRegistry()
	metrics := prometheus.NewCollector()
	metrics.AddTool(t) // every Dict of the Tool, by plugin and prefix, and its connections
	reg.MustRegister(metrics)

	page, err := admin.New(t, admin.Options{Token: os.Getenv("ADMIN_TOKEN")}) // "": generated, logged once
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", page))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /greeting", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		g, ok, err := greetings.Lookup(r.Context(), name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if !ok {
			g = "Hello, " + name + "!" // the expensive computation
			if err := greetings.Store(r.Context(), name, g); err != nil {
				log.Printf("redisservice: store %q: %v", name, err)
			}
		}
		fmt.Fprintln(w, g)
	})

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("redisservice: http://%s/greeting?name=you, admin page http://%s/admin/?token=%s", addr, addr, page.Token())
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = srv.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
