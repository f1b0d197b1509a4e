package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// EnvAdminToken is the environment variable serve reads the admin token
// from when --token is not given.
const EnvAdminToken = "MEMDICT_ADMIN_TOKEN"

var serveCmd = &command{
	name: "serve", nargs: 0,
	summary: "serve the admin page (the configure screen)",
	help: `
Serves a web page, on 127.0.0.1:8080 unless --addr says otherwise, that
shows every plugin: its URL (passwords replaced by xxxxx), whether its
servers answer (and how fast), their statistics (items, memory, hit ratio,
evictions, uptime; per node for memcached clusters) and the metrics of the
Dicts the page used. Signed in with the admin token, an operator changes a
plugin's URL and defaults (applied at once to the running Tool, as ERP5's
configure screen did) and reads, writes and deletes a key.

The token is --token, else $MEMDICT_ADMIN_TOKEN, else a random one printed
on stderr at start-up. Forms carry a per-session anti-forgery token, the
session cookie is HttpOnly and SameSite=Strict, and cross-origin posts are
refused. Changes apply to this process's Tool only: applications that
read the same configuration keep theirs until they are reconfigured. To
change what a running service uses, mount the same page in the service
(package github.com/memdict/memdict/tool/admin; see examples/adminpage).

The page is for operators on the machine or behind an authenticating
proxy: it speaks plain HTTP, so bind it to a public address only behind
TLS. Behind a proxy that serves it over HTTPS, --secure-cookie marks the
session cookie Secure, so that browsers never send it over plain HTTP.
On a loopback address the page answers to loopback host names only (a
defence against DNS rebinding): a proxy on the same machine that passes
on its public host name needs --host NAME (comma-separated for several).

Examples:
  memdict serve --config app.yaml
  MEMDICT_ADMIN_TOKEN=s3cret memdict serve --addr 127.0.0.1:9090`,
	flags: func(fs *flag.FlagSet) {
		fs.String("addr", "127.0.0.1:8080", "listen on this `host:port` (port 0: any free port)")
		fs.String("token", "", "admin `token` needed to change anything (default $"+EnvAdminToken+", else generated)")
		fs.String("host", "", "also answer to these host `names` (comma-separated) on a loopback address: a reverse proxy's public name")
		fs.Bool("secure-cookie", false, "mark the session cookie Secure (the page is served over HTTPS by a TLS-terminating proxy)")
	},
	run: runServe,
}

func runServe(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	addr := fs.Lookup("addr").Value.String()
	token := fs.Lookup("token").Value.String()
	if token == "" {
		token = e.getenv(EnvAdminToken)
	}
	generated := false
	if token == "" {
		token = randomToken(18)
		generated = true
	} else if len(token) < admin.MinTokenLen {
		return e.fail("serve", usagef("the admin token must be at least %d characters", admin.MinTokenLen))
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("serve", err)
	}
	t, err := tool.New(cfg)
	if err != nil {
		return e.fail("serve", err)
	}
	defer t.Close()
	var hosts []string
	for h := range strings.SplitSeq(fs.Lookup("host").Value.String(), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	log := &lockedWriter{w: e.stderr}
	secrets := []string{e.url}
	for _, pc := range cfg.Plugins {
		secrets = append(secrets, pc.URL)
	}
	h, err := admin.New(t, admin.Options{
		Token:        token,
		Logger:       slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Secrets:      secrets,
		SecureCookie: boolFlag(fs, "secure-cookie"),
		Hosts:        hosts,
	})
	if err != nil {
		return e.fail("serve", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return e.fail("serve", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if generated {
		log.printf("memdict serve: admin token (generated; set --token or $%s to choose it): %s\n", EnvAdminToken, token)
	}
	log.printf("memdict serve: admin page on http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return e.fail("serve", err)
	case <-ctx.Done():
	}
	log.printf("memdict serve: shutting down\n")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return exitOK
}

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// lockedWriter serializes writes to the log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
