package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// A sign-in form holds a token: one of a megabyte is refused as too large
// at once, with a message that says so, instead of being parsed whole and
// held while it waits its turn among the failed sign-ins (a flood of
// them held 2 MB each); the right token still signs in.
func TestAdminSignInBodyLimit(t *testing.T) {
	tl := newTool(t, tool.Config{})
	hs, _ := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := webtest.New(t, hs.URL+"/", hs.URL)
	code, body := b.Post("login", url.Values{"token": {"wrong-token"}, "pad": {strings.Repeat("x", 1<<20)}})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "sign-in form") || !strings.Contains(body, "larger than") {
		t.Errorf("a sign-in of 1 MB: %d, want 413 saying the form is too large\n%.2000s", code, body)
	}
	code, body = b.Post("login", url.Values{"token": {testToken}})
	if code != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
		t.Errorf("sign-in after the refused one: %d", code)
	}
}

// Pages loaded by visitors who are not signed in, anyone who reaches the
// handler, do not each reach the servers: every page load pinged every
// plugin's servers and read their statistics, so that a flood of
// anonymous requests became a flood on the cache servers. They share the
// status read last while it is less than StatusTTL old, read one page at
// a time; a signed-in page reads it afresh.
func TestAdminAnonymousPagesShareServerStatus(t *testing.T) {
	var mu sync.Mutex
	calls := map[backend.Op]int{}
	count := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpPing || c.Op == backend.OpServerStats {
				mu.Lock()
				calls[c.Op]++
				mu.Unlock()
			}
			return next(ctx, c)
		}
	}
	reads := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return calls[backend.OpPing], calls[backend.OpServerStats]
	}
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{"other": tool.DefaultPluginConfig("mem://")}}, tool.WithMiddleware(count))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	admin.SetClock(h, func() time.Time { return time.Unix(0, clock.Load()) })

	anon := webtest.New(t, hs.URL+"/", hs.URL)
	for range 5 {
		if code, body := anon.Get(""); code != http.StatusOK || !strings.Contains(body, `class="badge ok status"`) {
			t.Fatalf("anonymous page: %d\n%s", code, body)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, _ := webtest.New(t, hs.URL+"/", hs.URL).Get(""); code != http.StatusOK {
				t.Errorf("anonymous page: %d", code)
			}
		})
	}
	wg.Wait()
	// Refusals render the page too.
	anon.Post("plugin", url.Values{"plugin": {"default"}})
	if pings, stats := reads(); pings != 2 || stats != 2 {
		t.Errorf("14 anonymous pages within %v pinged %d times and read statistics %d times; want once each for each of the 2 plugins", admin.StatusTTL, pings, stats)
	}

	clock.Add(int64(admin.StatusTTL))
	code, body := anon.Get("")
	if pings, stats := reads(); code != http.StatusOK || pings != 4 || stats != 4 {
		t.Errorf("after %v, an anonymous page: %d, pinged %d times and read statistics %d times in all, want 4", admin.StatusTTL, code, pings, stats)
	}
	if !strings.Contains(body, "2026-01-02 03:04:15 UTC") {
		t.Errorf("the anonymous page does not say when the status was read:\n%s", body)
	}

	// A signed-in page shows a status read after it was asked for (the
	// clock moves on, as it does between two requests).
	signed := webtest.New(t, hs.URL+"/", hs.URL)
	clock.Add(1)
	if code, _ := signed.Get("?token=" + testToken); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	clock.Add(1)
	signed.Get("")
	if pings, _ := reads(); pings != 8 {
		t.Errorf("two signed-in pages: %d pings in all, want 8 (each reads afresh)", pings)
	}
}

// Behind a TLS-terminating proxy the page is served over HTTPS but the
// handler sees plain HTTP: the session cookie was Secure only on a TLS
// connection, so a browser sent it over plain HTTP too. With
// Options.SecureCookie it is Secure on every request; without it, only
// over TLS, as before.
func TestAdminSecureCookie(t *testing.T) {
	tl := newTool(t, tool.Config{})
	quiet := slog.New(slog.DiscardHandler)
	signIn := func(h http.Handler) *http.Cookie {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "http://127.0.0.1/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", "https")
		h.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			if c.Value != "" {
				return c
			}
		}
		t.Fatalf("sign-in: %d, no session cookie", rec.Code)
		return nil
	}
	for _, secure := range []bool{false, true} {
		h, err := admin.New(tl, admin.Options{Token: testToken, Logger: quiet, SecureCookie: secure})
		if err != nil {
			t.Fatal(err)
		}
		if c := signIn(h); c.Secure != secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("with SecureCookie %v, the session cookie of a plain HTTP sign-in is Secure %v (HttpOnly %v, SameSite %v)", secure, c.Secure, c.HttpOnly, c.SameSite)
		}
	}
}

// Each form is bounded to what it holds, as the sign-in form is: every
// post was read up to 2 MiB, so that a plugin form of a megabyte was
// applied (its URL kept, at that size, among the secrets every message is
// scrubbed of) and a key tester form over 2 MiB was refused as a stale
// anti-forgery token. A plugin form over 16 KiB, a sign-out form over
// 4 KiB and a key tester form over 1 MiB are refused with 413, saying
// so, and change nothing; forms within bounds still work.
func TestAdminFormBodyLimits(t *testing.T) {
	tl := newTool(t, tool.Config{})
	b, csrf := signIn(t, tl, "/")
	before, _ := tl.Plugin(tool.DefaultPlugin)
	for _, c := range []struct {
		path, what string
		form       url.Values
	}{
		{"plugin", "plugin form", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "url": {"mem://?max_bytes=1000000"}, "pad": {strings.Repeat("x", 17<<10)}}},
		{"logout", "sign-out form", url.Values{"csrf": {csrf}, "pad": {strings.Repeat("x", 5<<10)}}},
		{"key", "key tester form", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "key": {"k"}, "value": {strings.Repeat("x", 1<<20)}, "codec": {"string"}, "action": {"write"}}},
	} {
		code, body := b.Post(c.path, c.form)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "the "+c.what+" is larger than") {
			t.Errorf("an oversized %s: %d, want 413 saying the %s is too large\n%.2000s", c.what, code, c.what, body)
		}
	}
	if now, _ := tl.Plugin(tool.DefaultPlugin); now.URL != before.URL {
		t.Errorf("an oversized plugin form changed the URL to %q", now.URL)
	}
	d, err := tool.Dict[string](tl, "", tool.DefaultPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get("k"); ok {
		t.Errorf("an oversized key tester form stored its value")
	}
	// Still signed in, and forms within bounds work.
	code, body := b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "key": {"k"}, "value": {strings.Repeat("x", 100<<10)}, "codec": {"string"}, "action": {"write"}})
	if code != http.StatusOK || !strings.Contains(body, "Stored key k") {
		t.Errorf("a key tester form of 100 KiB: %d\n%.2000s", code, body)
	}
	if v, ok := d.Get("k"); !ok || len(v) != 100<<10 {
		t.Errorf("the key tester's value of 100 KiB reads back as %d bytes (found %v)", len(v), ok)
	}
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "url": {"mem://?max_bytes=1000000"}})
	if code != http.StatusOK || !strings.Contains(body, "now uses mem://?max_bytes=1000000") {
		t.Errorf("a plugin form: %d\n%.2000s", code, body)
	}
	if code, body := b.Post("logout", url.Values{"csrf": {csrf}}); code != http.StatusOK || strings.Contains(body, `id="signed-in"`) {
		t.Errorf("sign-out: %d, signed in still", code)
	}
}

// Signed-in pages asked for at once share one read of the servers'
// status, read after they were asked for: each page read it, all at the
// same time, so that 8 pages loaded at once pinged each of the 2 plugins
// 8 times. A page asked for later reads it again.
func TestAdminSignedInPagesShareConcurrentStatus(t *testing.T) {
	var pings atomic.Int64
	count := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpPing {
				pings.Add(1)
			}
			return next(ctx, c)
		}
	}
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{"other": tool.DefaultPluginConfig("mem://")}}, tool.WithMiddleware(count))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	signed := webtest.New(t, hs.URL+"/", hs.URL)
	if code, _ := signed.Get("?token=" + testToken); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	// Pages asked for at the same time (a clock that stands still),
	// after the sign-in's.
	var clock atomic.Int64
	clock.Store(time.Now().Add(time.Hour).UnixNano())
	admin.SetClock(h, func() time.Time { return time.Unix(0, clock.Load()) })
	pings.Store(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, body := signed.Get(""); code != http.StatusOK || !strings.Contains(body, `id="signed-in"`) || !strings.Contains(body, `class="badge ok status"`) {
				t.Errorf("signed-in page: %d\n%.2000s", code, body)
			}
		})
	}
	wg.Wait()
	if n := pings.Load(); n != 2 {
		t.Errorf("8 signed-in pages asked for at once pinged %d times, want once for each of the 2 plugins", n)
	}
	clock.Add(1)
	signed.Get("")
	if n := pings.Load(); n != 4 {
		t.Errorf("a signed-in page asked for later: %d pings in all, want 4 (it reads afresh)", n)
	}
}
