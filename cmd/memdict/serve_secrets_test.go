package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
)

// serve hides the passwords of the configured URLs on its page, and
// nothing else: a server list without a scheme (--url host:port, as ERP5
// configures memcached) is no password, and the page's errors name the
// server.
func TestServeServerListIsNoSecret(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	const list = "127.0.0.1:1" // nothing listens there
	go func() {
		done <- runEnv(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--token", "serve-test-token", "--url", list},
			strings.NewReader(""), io.Discard, pw, func(string) string { return "" })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	base := ""
	for base == "" && sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "admin page on "); ok {
			base = strings.TrimSuffix(u, "/")
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatal("serve printed no address")
	}
	code, body := newBrowserish(t, base).Get("/")
	if code != 200 || !strings.Contains(body, "dial tcp "+list) || strings.Contains(body, "tcp xxxxx") {
		t.Errorf("the page of a plugin on %s hides the server's address: %d\n%s", list, code, body)
	}
	cancel()
	<-done
}
