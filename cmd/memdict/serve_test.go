package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/webtest"
)

// newBrowserish returns an HTTP client for the page at base that sends
// the Origin header a browser sends on a same-origin form post. (The
// page's own tests, TestAdminSecurity and the others, are in package
// tool/admin.)
func newBrowserish(t *testing.T, base string) *webtest.Client { return webtest.New(t, base, base) }

// TestServeInProcess runs "serve" through run: it prints a generated token
// and its address, serves the page, and stops when its context ends.
func TestServeInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, pw, func(string) string { return "" })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var token, base string
	for base == "" && sc.Scan() {
		line := sc.Text()
		if _, tok, ok := strings.Cut(line, "(generated; set --token or $MEMDICT_ADMIN_TOKEN to choose it): "); ok {
			token = tok
		}
		if _, u, ok := strings.Cut(line, "admin page on "); ok {
			base = strings.TrimSuffix(u, "/")
		}
	}
	go io.Copy(io.Discard, pr)
	if len(token) < 20 || base == "" {
		t.Fatalf("serve printed token %q, address %q", token, base)
	}
	b := newBrowserish(t, base)
	if code, body := b.Get("/"); code != 200 || !strings.Contains(body, `id="plugin-default"`) {
		t.Fatalf("page: %d\n%s", code, body)
	}
	if code, body := b.Post("/login", url.Values{"token": {token}}); code != 200 || !strings.Contains(body, `id="signed-in"`) {
		t.Errorf("sign-in with the generated token: %d", code)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve returned %d after its context ended", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when its context ended")
	}
}

// A token shorter than the admin page accepts is a usage error.
func TestServeRefusesShortToken(t *testing.T) {
	var stderr strings.Builder
	code := runEnv(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--token", "short"}, strings.NewReader(""), io.Discard, &stderr, func(string) string { return "" })
	if code != exitUsage || !strings.Contains(stderr.String(), "at least 8 characters") {
		t.Errorf("serve --token short: exit %d, stderr %q", code, stderr.String())
	}
}

// startServe runs serve with args (after --addr 127.0.0.1:0 --token
// serve-token-for-tests) until the end of the test, and returns the
// page's URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--token", "serve-token-for-tests"}, args...)
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, args, strings.NewReader(""), io.Discard, pw, func(string) string { return "" })
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve %q returned %d", args, code)
		}
	})
	sc := bufio.NewScanner(pr)
	var base string
	for base == "" && sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "admin page on "); ok {
			base = strings.TrimSuffix(u, "/")
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatalf("serve %q printed no address", args)
	}
	return base
}

// noRedirect is a client that returns redirects instead of following
// them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// serve --secure-cookie marks the session cookie Secure though the page
// is served over plain HTTP (by a TLS-terminating proxy, say); without
// it, the cookie of a plain HTTP sign-in is not Secure.
func TestServeSecureCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		var args []string
		if secure {
			args = append(args, "--secure-cookie")
		}
		base := startServe(t, args...)
		resp, err := noRedirect.PostForm(base+"/login", url.Values{"token": {"serve-token-for-tests"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) != 1 || cs[0].Secure != secure {
			t.Errorf("serve with --secure-cookie %v: sign-in %d, cookies %v, want one with Secure %v", secure, resp.StatusCode, cs, secure)
		}
	}
}

// A reverse proxy on the same machine passes the page's requests to
// serve's loopback address under its public host name, which the page
// refuses there (DNS rebinding) unless told of it: serve had no way to
// tell it (admin.Options.Hosts), so the page could not be served behind
// such a proxy at all. --host names it.
func TestServeHost(t *testing.T) {
	const public = "admin.example.com"
	send := func(base, method, path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		req.Host = public
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "https://"+public)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := send(startServe(t), "GET", "/", nil); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("without --host, a request for %s: %d, want 421", public, resp.StatusCode)
	}
	base := startServe(t, "--host", "other.example, "+public)
	if resp := send(base, "GET", "/", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("with --host %s, the page: %d, want 200", public, resp.StatusCode)
	}
	if resp := send(base, "POST", "/login", url.Values{"token": {"serve-token-for-tests"}}); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Errorf("with --host %s, sign-in: %d, cookies %v", public, resp.StatusCode, resp.Cookies())
	}
}
