// Command adminpage is a small service that mounts memdict's admin page
// (package tool/admin) on its own mux, at /admin/: a hit counter, kept in
// a Dict and written every 100ms, that an operator watches and moves to
// another server from the page while the service runs.
//
// With no set-up it runs on the embedded in-memory backend:
//
//	go run ./examples/adminpage
//
// It prints the page's URL with the admin token; open it in a browser.
// The counter is at / and its Dict's metrics are on the admin page, where
// "Change this plugin" points the service at another server: the counter
// carries on there at once. -url (or MEMDICT_URL) starts it on a server:
//
//	go run ./examples/adminpage -url memcached://127.0.0.1:11211
//	MEMDICT_URL=redis://127.0.0.1:6379/0 go run ./examples/adminpage -addr 127.0.0.1:9090
//
// MEMDICT_CONFIG names a configuration file, as for every program that
// uses tool.FromEnv; MEMDICT_ADMIN_TOKEN (or -token) sets the admin token,
// else one is generated. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/memdict/memdict"
	_ "github.com/memdict/memdict/backend/memcached" // memcached:// URLs (mem:// is built into the tool package)
	_ "github.com/memdict/memdict/backend/redis"     // redis:// URLs
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

const (
	counterPrefix = "adminpage"
	counterKey    = "hits"
	tick          = 100 * time.Millisecond
)

func main() {
	log.SetFlags(0)
	addr := flag.String("addr", "127.0.0.1:8080", "listen on this `host:port` (port 0: any free port)")
	url := flag.String("url", "", "the default plugin's backend `URL` (default $MEMDICT_URL, else mem://)")
	token := flag.String("token", os.Getenv("MEMDICT_ADMIN_TOKEN"), "admin `token` (default $MEMDICT_ADMIN_TOKEN, else generated)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *url, *token); err != nil {
		log.Fatalf("adminpage: %v", err)
	}
}

func run(ctx context.Context, addr, url, token string) error {
	cfg, err := tool.ConfigFromEnv() // MEMDICT_CONFIG, MEMDICT_URL, MEMDICT_SITE_ID
	if err != nil {
		return err
	}
	if url != "" {
		pc := cfg.Plugins[tool.DefaultPlugin]
		pc.URL = url
		cfg.Plugins[tool.DefaultPlugin] = pc
	}
	t, err := tool.New(cfg)
	if err != nil {
		return err
	}
	defer t.Close()

	// The service's own Dict, from the Tool: it follows what the admin
	// page changes.
	hits, err := tool.Dict[int](t, counterPrefix, "")
	if err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	secrets := []string{url, os.Getenv(tool.EnvURL)}
	for _, pc := range cfg.Plugins {
		secrets = append(secrets, pc.URL)
	}
	page, err := admin.New(t, admin.Options{Token: token, Logger: logger, Secrets: secrets})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", page))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := hits.Lookup(r.Context(), counterKey)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		case !ok:
			fmt.Fprintln(w, "hits: none yet (a miss)")
		default:
			fmt.Fprintf(w, "hits: %d\n", n)
		}
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "adminpage: counter on http://%s/\n", ln.Addr())
	fmt.Fprintf(os.Stderr, "adminpage: admin page on http://%s/admin/?token=%s\n", ln.Addr(), page.Token())

	var wg sync.WaitGroup
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	wg.Go(func() { count(loopCtx, hits, logger) })

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "adminpage: shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			// A connection still open after 5s (a browser's idle
			// preconnection, say): close it.
			srv.Close()
		}
		err = <-errc
	}
	stopLoop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// count adds one to the counter every tick, as a service's work would:
// read, treat a miss as 0, write the value plus one. A failure is logged
// when it starts and when it ends, not at every tick.
func count(ctx context.Context, hits *memdict.Dict[int], logger *slog.Logger) {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	var failing error
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		err := func() error {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			n, _, err := hits.Lookup(cctx, counterKey)
			if err != nil {
				return err
			}
			return hits.Store(cctx, counterKey, n+1)
		}()
		switch {
		case err != nil && ctx.Err() == nil && failing == nil:
			logger.Warn("adminpage: the counter fails", "error", err)
			failing = err
		case err == nil && failing != nil:
			logger.Info("adminpage: the counter works again")
			failing = nil
		}
	}
}
