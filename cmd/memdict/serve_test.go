package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/memdict/memdict/tool"
)

const testToken = "admin-token-for-tests"

// adminServer starts the admin handler in-process on a loopback port.
func adminServer(t *testing.T, cfg tool.Config) (*httptest.Server, *server, *bytes.Buffer) {
	t.Helper()
	tl, err := tool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	var logb bytes.Buffer
	s, err := newServer(tl, testToken, &lockedWriter{w: &logb})
	if err != nil {
		t.Fatal(err)
	}
	s.loopback = true
	for _, pc := range cfg.Plugins {
		s.addSecrets(pc.URL)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return hs, s, &logb
}

// browserish is an HTTP client with a cookie jar that sends the Origin
// header a browser sends on a same-origin form post.
type browserish struct {
	t      *testing.T
	c      *http.Client
	base   string
	origin string // Origin header for posts; "" for none
}

func newBrowserish(t *testing.T, base string) *browserish {
	jar, _ := cookiejar.New(nil)
	return &browserish{t: t, c: &http.Client{Jar: jar}, base: base, origin: base}
}

func (b *browserish) get() (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + "/")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browserish) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestAdminSecurity(t *testing.T) {
	const pw = "redis-pass-word"
	mr := miniredis.RunT(t)
	mr.RequireAuth(pw)
	redisURL := "redis://:" + pw + "@" + mr.Addr() + "/0"
	hs, _, logb := adminServer(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin:    tool.DefaultPluginConfig("mem://"),
		tool.PersistentPlugin: tool.DefaultPluginConfig(redisURL),
	}})
	b := newBrowserish(t, hs.URL)

	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}

	code, body := b.get()
	if code != 200 || !strings.Contains(body, "portal_memcached/persistent_memcached_plugin") || !strings.Contains(body, `id="login"`) {
		t.Fatalf("anonymous page: %d\n%s", code, body)
	}
	if strings.Contains(body, `action="/plugin"`) {
		t.Error("anonymous page shows the plugin form")
	}

	// Host names other than loopback ones are refused (DNS rebinding).
	req, _ := http.NewRequest("GET", hs.URL+"/", nil)
	req.Host = "evil.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %v %v", resp, err)
	}

	// No session: refused.
	change := url.Values{"plugin": {tool.DefaultPlugin}, "url": {"mem://?max_bytes=1000000"}}
	if code, _ := b.post("/plugin", change); code != http.StatusForbidden {
		t.Errorf("change without signing in: %d, want 403", code)
	}
	if code, body := b.post("/login", url.Values{"token": {"wrong-token"}}); code != http.StatusForbidden || !strings.Contains(body, "Wrong admin token") {
		t.Errorf("wrong token: %d", code)
	}
	b.origin = "http://evil.example"
	if code, _ := b.post("/login", url.Values{"token": {testToken}}); code != http.StatusForbidden {
		t.Errorf("cross-origin sign-in: %d, want 403", code)
	}
	b.origin = hs.URL
	code, body = b.post("/login", url.Values{"token": {testToken}})
	if code != 200 || !strings.Contains(body, `id="signed-in"`) {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	u, _ := url.Parse(hs.URL)
	if cs := b.c.Jar.Cookies(u); len(cs) != 1 {
		t.Fatalf("cookies after sign-in: %v", cs)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf field in the signed-in page")
	}
	csrf := m[1]

	// Session but no or wrong anti-forgery token: refused.
	if code, _ := b.post("/plugin", change); code != http.StatusForbidden {
		t.Errorf("change without csrf: %d, want 403", code)
	}
	change.Set("csrf", "forged")
	if code, _ := b.post("/plugin", change); code != http.StatusForbidden {
		t.Errorf("change with a forged csrf: %d, want 403", code)
	}
	// Right token but another origin: refused.
	change.Set("csrf", csrf)
	b.origin = "http://127.0.0.1:1"
	if code, _ := b.post("/plugin", change); code != http.StatusForbidden {
		t.Errorf("cross-origin change: %d, want 403", code)
	}
	b.origin = hs.URL
	code, body = b.post("/plugin", change)
	if code != 200 || !strings.Contains(body, "now uses mem://?max_bytes=1000000") {
		t.Errorf("change: %d\n%s", code, body)
	}

	// The redis plugin's form keeps the password when its redacted URL
	// comes back, and never shows it.
	code, body = b.post("/plugin", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "url": {"redis://:xxxxx@" + mr.Addr() + "/0"}, "expiration": {"1h"}})
	if code != 200 || !strings.Contains(body, "1h0m0s") {
		t.Errorf("change of expiration: %d\n%s", code, body)
	}
	// A bad URL with a password: the error does not show it.
	code, body = b.post("/plugin", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "url": {"redis://:another-secret@127.0.0.1:1/0?bogus=1"}})
	if code != 200 || !strings.Contains(body, "not changed") || strings.Contains(body, "another-secret") {
		t.Errorf("change to a bad URL: %d\n%s", code, body)
	}
	// The key tester.
	code, body = b.post("/key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "value": {`{"a":1}`}, "codec": {""}, "action": {"write"}})
	if code != 200 || !strings.Contains(body, "Stored key k (msgpack") {
		t.Errorf("write: %d\n%s", code, body)
	}
	code, body = b.post("/key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "action": {"read"}})
	if code != 200 || !strings.Contains(body, "&#34;a&#34;: 1") {
		t.Errorf("read: %d\n%s", code, body)
	}
	code, body = b.post("/key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "action": {"delete"}})
	if code != 200 || !strings.Contains(body, "Deleted key k") {
		t.Errorf("delete: %d\n%s", code, body)
	}
	if !strings.Contains(body, `<td>persistent_memcached_plugin</td><td><code>demo</code></td><td>1</td>`) {
		t.Errorf("Dict metrics missing:\n%s", body)
	}
	_, body = b.get()
	for _, secret := range []string{pw, "another-secret", testToken} {
		if strings.Contains(body, secret) || strings.Contains(logb.String(), secret) {
			t.Errorf("%q shown in the page or the log:\n%s\n%s", secret, body, logb)
		}
	}
	// Sign out: the session no longer works.
	if code, _ := b.post("/logout", url.Values{"csrf": {csrf}}); code != 200 {
		t.Errorf("sign out: %d", code)
	}
	if code, _ := b.post("/plugin", change); code != http.StatusForbidden {
		t.Errorf("change after signing out: %d, want 403", code)
	}
}

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
	if code, body := b.get(); code != 200 || !strings.Contains(body, "default_memcached_plugin") {
		t.Fatalf("page: %d\n%s", code, body)
	}
	if code, body := b.post("/login", url.Values{"token": {token}}); code != 200 || !strings.Contains(body, `id="signed-in"`) {
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
