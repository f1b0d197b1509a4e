package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	_ "github.com/memdict/memdict/backend/redis" // redis:// URLs (the tool package links only mem://)
	"github.com/memdict/memdict/codec/python"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

const testToken = "admin-token-for-tests"

// syncBuffer is a log that handlers write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTool returns a Tool closed at the end of the test.
func newTool(t *testing.T, cfg tool.Config) *tool.Tool {
	t.Helper()
	tl, err := tool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	return tl
}

// serveAdmin mounts the handler at mount ("/" or "/admin/") on a mux, with
// http.StripPrefix, on a loopback httptest server.
func serveAdmin(t *testing.T, tl *tool.Tool, mount string, opts admin.Options) (*httptest.Server, *admin.Handler) {
	t.Helper()
	h, err := admin.New(tl, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if mount == "/" {
		mux.Handle("/", h)
	} else {
		mux.Handle(mount, http.StripPrefix(strings.TrimSuffix(mount, "/"), h))
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the service's own page") })
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, h
}

// newBrowserish returns an HTTP client for the page mounted at mount on
// server that sends the Origin header a browser sends on a same-origin
// form post.
func newBrowserish(t *testing.T, server, mount string) *webtest.Client {
	return webtest.New(t, server+mount, server)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestAdminSecurity checks what the page defends, mounted at the root and
// under /admin/: the token, the anti-forgery token, the origin, the host
// name, and passwords never shown.
func TestAdminSecurity(t *testing.T) {
	for _, mount := range []string{"/", "/admin/"} {
		t.Run("at "+mount, func(t *testing.T) { testAdminSecurity(t, mount) })
	}
}

func testAdminSecurity(t *testing.T, mount string) {
	const pw = "redis-pass-word"
	rd := testserver.Redis(t, "--requirepass", pw)
	redisURL := "redis://:" + pw + "@" + rd.Addr + "/0"
	var logb syncBuffer
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin:    tool.DefaultPluginConfig("mem://"),
		tool.PersistentPlugin: tool.DefaultPluginConfig(redisURL),
	}})
	hs, _ := serveAdmin(t, tl, mount, admin.Options{
		Token: testToken, Logger: slog.New(slog.NewTextHandler(&logb, nil)), Secrets: []string{redisURL},
	})
	b := newBrowserish(t, hs.URL, mount)

	resp, err := http.Get(b.Base)
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

	code, body := b.Get("")
	if code != 200 || !strings.Contains(body, "<h3>persistent_memcached_plugin</h3>") || !strings.Contains(body, `id="login"`) {
		t.Fatalf("anonymous page: %d\n%s", code, body)
	}
	if strings.Contains(body, `action="`+mount+`plugin"`) {
		t.Error("anonymous page shows the plugin form")
	}
	if !strings.Contains(body, `href="`+mount+`static/style.css"`) || !strings.Contains(body, `action="`+mount+`login"`) {
		t.Errorf("the page's links are not under %s:\n%s", mount, body)
	}
	if code, css := b.Get("static/style.css"); code != 200 || !strings.Contains(css, "font") {
		t.Errorf("stylesheet under %s: %d", mount, code)
	}

	// Host names other than loopback ones are refused (DNS rebinding).
	req, _ := http.NewRequest("GET", b.Base, nil)
	req.Host = "evil.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// No session: refused.
	change := url.Values{"plugin": {tool.DefaultPlugin}, "url": {"mem://?max_bytes=1000000"}}
	if code, _ := b.Post("plugin", change); code != http.StatusForbidden {
		t.Errorf("change without signing in: %d, want 403", code)
	}
	if code, body := b.Post("login", url.Values{"token": {"wrong-token"}}); code != http.StatusForbidden || !strings.Contains(body, "Wrong admin token") {
		t.Errorf("wrong token: %d", code)
	}
	b.Origin = "http://evil.example"
	if code, _ := b.Post("login", url.Values{"token": {testToken}}); code != http.StatusForbidden {
		t.Errorf("cross-origin sign-in: %d, want 403", code)
	}
	b.Origin = hs.URL
	code, body = b.Post("login", url.Values{"token": {testToken}})
	if code != 200 || !strings.Contains(body, `id="signed-in"`) {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	u, _ := url.Parse(b.Base)
	cs := b.HTTP.Jar.Cookies(u)
	if len(cs) != 1 {
		t.Fatalf("cookies after sign-in: %v", cs)
	}
	if mount != "/" {
		// The session cookie is not sent to the rest of the service.
		other, _ := url.Parse(hs.URL + "/")
		if cs := b.HTTP.Jar.Cookies(other); len(cs) != 0 {
			t.Errorf("the session cookie is sent outside %s: %v", mount, cs)
		}
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf field in the signed-in page")
	}
	csrf := m[1]

	// Session but no or wrong anti-forgery token: refused.
	if code, _ := b.Post("plugin", change); code != http.StatusForbidden {
		t.Errorf("change without csrf: %d, want 403", code)
	}
	change.Set("csrf", "forged")
	if code, _ := b.Post("plugin", change); code != http.StatusForbidden {
		t.Errorf("change with a forged csrf: %d, want 403", code)
	}
	// Right token but another origin: refused.
	change.Set("csrf", csrf)
	b.Origin = "http://127.0.0.1:1"
	if code, _ := b.Post("plugin", change); code != http.StatusForbidden {
		t.Errorf("cross-origin change: %d, want 403", code)
	}
	b.Origin = hs.URL
	code, body = b.Post("plugin", change)
	if code != 200 || !strings.Contains(body, "now uses mem://?max_bytes=1000000") {
		t.Errorf("change: %d\n%s", code, body)
	}
	if got, _ := tl.Plugin(tool.DefaultPlugin); got.URL != "mem://?max_bytes=1000000" {
		t.Errorf("the Tool's default plugin after the change: %q", got.URL)
	}

	// The redis plugin's form keeps the password when its redacted URL
	// comes back, and never shows it.
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "url": {"redis://:xxxxx@" + rd.Addr + "/0"}, "expiration": {"1h"}})
	if code != 200 || !strings.Contains(body, "1h0m0s") {
		t.Errorf("change of expiration: %d\n%s", code, body)
	}
	// A bad URL with a password: the error does not show it.
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "url": {"redis://:another-secret@127.0.0.1:1/0?bogus=1"}})
	if code != 200 || !strings.Contains(body, "not changed") || strings.Contains(body, "another-secret") {
		t.Errorf("change to a bad URL: %d\n%s", code, body)
	}
	// The key tester.
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "value": {`{"a":1,"b":"<x>"}`}, "codec": {""}, "action": {"write"}})
	if code != 200 || !strings.Contains(body, "Stored key k (msgpack") {
		t.Errorf("write: %d\n%s", code, body)
	}
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "action": {"read"}})
	if code != 200 || !strings.Contains(body, "&#34;a&#34;: 1") || !strings.Contains(body, "&#34;&lt;x&gt;&#34;") {
		t.Errorf("read: %d\n%s", code, body)
	}
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.PersistentPlugin}, "prefix": {"demo"}, "key": {"k"}, "action": {"delete"}})
	if code != 200 || !strings.Contains(body, "Deleted key k") {
		t.Errorf("delete: %d\n%s", code, body)
	}
	row := regexp.MustCompile(`<tr class="dict" data-source="key tester" data-plugin="persistent_memcached_plugin" data-prefix="demo">.*?<td class="hits num">(\d+)</td>`).FindStringSubmatch(body)
	if row == nil || row[1] != "1" {
		t.Errorf("Dict metrics of the key tester: %v\n%s", row, body)
	}
	_, body = b.Get("")
	for _, secret := range []string{pw, "another-secret", testToken} {
		if strings.Contains(body, secret) || strings.Contains(logb.String(), secret) {
			t.Errorf("%q shown in the page or the log:\n%s\n%s", secret, body, logb.String())
		}
	}
	// Sign out: the session no longer works.
	if code, _ := b.Post("logout", url.Values{"csrf": {csrf}}); code != 200 {
		t.Errorf("sign out: %d", code)
	}
	if code, _ := b.Post("plugin", change); code != http.StatusForbidden {
		t.Errorf("change after signing out: %d, want 403", code)
	}
}

// The page shows the Dicts the program got from the Tool, with their
// counts grouped by thousands, and a change of plugin reaches them.
// A refused request's log line shows little of its Origin, which any
// client chooses: a sign-in with a 512 KiB Origin (and Sec-Fetch-Site
// saying same-origin, which net/http's check trusts) made a log line of
// 512 KiB.
func TestAdminLogsLittleOfAForeignOrigin(t *testing.T) {
	var logb syncBuffer
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig("mem://")}})
	hs, _ := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(&logb, nil))})
	origin := "http://" + strings.Repeat("e", 512<<10) + ".example"
	req, _ := http.NewRequest("POST", hs.URL+"/login", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in from a foreign origin: %d, want 403", resp.StatusCode)
	}
	out := logb.String()
	if len(out) > 2<<10 || !strings.Contains(out, "refused a cross-origin sign-in") ||
		!strings.Contains(out, `http://eeee`) || !strings.Contains(out, fmt.Sprintf("(%d bytes)", len(origin))) {
		t.Errorf("log of %d bytes: %.600s", len(out), out)
	}
}

func TestAdminShowsAndMovesProgramDicts(t *testing.T) {
	tl := newTool(t, tool.Config{})
	hits, err := tool.Dict[int](tl, "hits", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1234 {
		if err := hits.Put("n", i); err != nil {
			t.Fatal(err)
		}
	}
	hs, _ := serveAdmin(t, tl, "/admin/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := newBrowserish(t, hs.URL, "/admin/")

	// The link a service prints signs in and drops the token from the URL.
	code, body := b.Get("?token=" + testToken)
	if code != 200 || !strings.Contains(body, `id="signed-in"`) {
		t.Fatalf("sign-in by link: %d\n%s", code, body)
	}
	row := regexp.MustCompile(`<tr class="dict" data-source="program" data-plugin="default" data-prefix="hits">.*?<td class="sets num">([\d,]+)</td>`).FindStringSubmatch(body)
	if row == nil || row[1] != "1,234" {
		t.Errorf("the program's Dict metrics: %v\n%s", row, body)
	}
	if !strings.Contains(body, "1,048,576 B (1 MiB)") {
		t.Errorf("the default value limit is not shown grouped:\n%s", body)
	}
	if code, _ := newBrowserish(t, hs.URL, "/admin/").Get("?token=wrong-token"); code != http.StatusForbidden {
		t.Errorf("sign-in by link with a wrong token: %d, want 403", code)
	}

	csrf := csrfRE.FindStringSubmatch(body)[1]
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "url": {"mem://?max_bytes=2000000"}, "expiration": {"90"}})
	if code != 200 || !strings.Contains(body, "now uses mem://?max_bytes=2000000") {
		t.Fatalf("change: %d\n%s", code, body)
	}
	// The program's Dict now uses the new backend: the value written
	// before is not there, and settings follow.
	if _, ok := hits.Get("n"); ok {
		t.Error("the program's Dict still reads the old backend")
	}
	if got := hits.Settings().TTL; got.Seconds() != 90 {
		t.Errorf("the program's Dict's TTL after the change: %v, want 1m30s", got)
	}
	be, err := tl.Backend(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := hits.Put("n", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Get(t.Context(), hits.BackendKey("n")); err != nil {
		t.Errorf("the write after the change is not in the new backend: %v", err)
	}
}

// Every way of mounting the handler under a path gives links, form
// actions, redirects and a cookie under that path.
func TestAdminMounts(t *testing.T) {
	tl := newTool(t, tool.Config{})
	quiet := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name    string
		pattern string
		handler func(*testing.T) http.Handler
	}{
		{"StripPrefix without the slash", "/ops/cache/", func(t *testing.T) http.Handler {
			h, err := admin.New(tl, admin.Options{Token: testToken, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			return http.StripPrefix("/ops/cache", h)
		}},
		{"StripPrefix with the slash", "/ops/cache/", func(t *testing.T) http.Handler {
			h, err := admin.New(tl, admin.Options{Token: testToken, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			return http.StripPrefix("/ops/cache/", h)
		}},
		{"Options.Prefix", "/ops/cache/", func(t *testing.T) http.Handler {
			h, err := admin.New(tl, admin.Options{Token: testToken, Logger: quiet, Prefix: "/ops/cache"})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle(c.pattern, c.handler(t))
			hs := httptest.NewServer(mux)
			defer hs.Close()
			b := newBrowserish(t, hs.URL, "/ops/cache/")
			code, body := b.Post("login", url.Values{"token": {testToken}})
			if code != 200 || !strings.Contains(body, `id="signed-in"`) {
				t.Fatalf("sign-in under /ops/cache/: %d\n%s", code, body)
			}
			for _, want := range []string{`action="/ops/cache/plugin"`, `action="/ops/cache/key"`, `href="/ops/cache/static/style.css"`, `href="/ops/cache/"`} {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
			if code, _ := b.Get("static/style.css"); code != 200 {
				t.Errorf("stylesheet: %d", code)
			}
			u, _ := url.Parse(hs.URL + "/ops/cache/")
			if cs := b.HTTP.Jar.Cookies(u); len(cs) != 1 {
				t.Errorf("cookies under /ops/cache/: %v", cs)
			}
			other, _ := url.Parse(hs.URL + "/ops/")
			if cs := b.HTTP.Jar.Cookies(other); len(cs) != 0 {
				t.Errorf("the session cookie is sent outside /ops/cache/: %v", cs)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tl := newTool(t, tool.Config{})
	for _, c := range []struct {
		name string
		tl   *tool.Tool
		opts admin.Options
		want string
	}{
		{"nil tool", nil, admin.Options{}, "nil *tool.Tool"},
		{"short token", tl, admin.Options{Token: "short"}, "at least 8 characters"},
		{"relative prefix", tl, admin.Options{Token: testToken, Prefix: "admin"}, `Prefix "admin"`},
	} {
		if _, err := admin.New(c.tl, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// A generated token is logged once and returned by Token.
func TestGeneratedToken(t *testing.T) {
	var logb syncBuffer
	h, err := admin.New(newTool(t, tool.Config{}), admin.Options{Logger: slog.New(slog.NewTextHandler(&logb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Token()) < 20 {
		t.Fatalf("generated token %q", h.Token())
	}
	if n := strings.Count(logb.String(), h.Token()); n != 1 {
		t.Errorf("the generated token shows %d times in the log, want once:\n%s", n, logb.String())
	}
}

// The page shows each plugin's near cache, and a change of the plugin's
// other settings through the form keeps it.
func TestAdminShowsNearCache(t *testing.T) {
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"near": {URL: "mem://", NearCache: &tool.NearCacheConfig{MaxEntries: 1000, MaxStale: 30 * time.Second}},
	}})
	hs, _ := serveAdmin(t, tl, "/admin/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := newBrowserish(t, hs.URL, "/admin/")
	code, body := b.Get("?token=" + testToken)
	if code != 200 {
		t.Fatalf("page: %d\n%s", code, body)
	}
	for _, want := range []string{
		`<dd class="near-cache">1000 entries, at most 30s stale</dd>`,
		`<dd class="near-cache">none</dd>`, // the default plugin
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %s:\n%s", want, body)
		}
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	if code, body := b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"near"}, "url": {"mem://"}, "expiration": {"90"}}); code != 200 {
		t.Fatalf("change: %d\n%s", code, body)
	}
	if p, _ := tl.Plugin("near"); p.NearCache == nil || p.NearCache.MaxEntries != 1000 || p.Expiration != 90*time.Second {
		t.Errorf("after the form's change: %+v, near cache %v", p.PluginConfig, p.NearCache)
	}
}

// TestAdminKeyTesterOnERP5Plugin: on a format: erp5 plugin the page shows
// the format, and its key tester reads and writes ERP5's entries: ERP5's
// keys, python-memcached's values.
func TestAdminKeyTesterOnERP5Plugin(t *testing.T) {
	tl := newTool(t, tool.Config{SiteID: "erp5_site", Plugins: map[string]tool.PluginConfig{
		"erp5": {URL: "mem://", MaxKeyLen: 250, Format: memdict.FormatERP5},
	}})
	hs, _ := serveAdmin(t, tl, "/admin/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := newBrowserish(t, hs.URL, "/admin/")
	code, body := b.Get("?token=" + testToken)
	if code != 200 || !strings.Contains(body, `<dd class="format">erp5</dd>`) {
		t.Fatalf("page: %d, the format is not shown\n%s", code, body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {"erp5"}, "prefix": {"my_app"}, "key": {"user/1"}, "value": {`{"name":"Ada","visits":3}`}, "codec": {""}, "action": {"write"}})
	if code != 200 || !strings.Contains(body, "Stored key user/1 (python") {
		t.Fatalf("write: %d\n%s", code, body)
	}
	be, err := tl.Backend(context.Background(), "erp5")
	if err != nil {
		t.Fatal(err)
	}
	it, err := be.Get(context.Background(), "erp5_site_my_app_user/1")
	var v map[string]any
	if err != nil || it.Flags != python.FlagPickle || python.Unmarshal(it.Value, it.Flags, &v) != nil || v["name"] != "Ada" || v["visits"] != int64(3) {
		t.Fatalf("stored under ERP5's key: %q with flags %d (%v), read %v", it.Value, it.Flags, err, v)
	}
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {"erp5"}, "prefix": {"my_app"}, "key": {"user/1"}, "action": {"read"}})
	if code != 200 || !strings.Contains(body, "holds a python value") || !strings.Contains(body, "&#34;name&#34;: &#34;Ada&#34;") {
		t.Errorf("read: %d\n%s", code, body)
	}
	// An integer beyond 64 bits is a Python int, as Python reads it, not
	// the nearest float.
	code, body = b.Post("key", url.Values{"csrf": {csrf}, "plugin": {"erp5"}, "prefix": {"my_app"}, "key": {"big"}, "value": {`{"n":1180591620717411303424}`}, "codec": {""}, "action": {"write"}})
	if code != 200 || !strings.Contains(body, "Stored key big (python") {
		t.Fatalf("write of a big int: %d\n%s", code, body)
	}
	it, err = be.Get(context.Background(), "erp5_site_my_app_big")
	var bv map[string]any
	if err != nil || python.Unmarshal(it.Value, it.Flags, &bv) != nil {
		t.Fatalf("stored big int: %q with flags %d (%v)", it.Value, it.Flags, err)
	}
	if n, ok := bv["n"].(*big.Int); !ok || n.Cmp(new(big.Int).Lsh(big.NewInt(1), 70)) != 0 {
		t.Fatalf("2**70 written from the page reads as %T %v, want the int 2**70", bv["n"], bv["n"])
	}
}

// signIn serves tl's admin page at mount (quiet logs) and signs in with
// the test token; it returns the signed-in client and the page's CSRF
// token.
func signIn(t *testing.T, tl *tool.Tool, mount string) (*webtest.Client, string) {
	t.Helper()
	hs, _ := serveAdmin(t, tl, mount, admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := newBrowserish(t, hs.URL, mount)
	code, body := b.Get("?token=" + testToken)
	if code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	return b, csrfRE.FindStringSubmatch(body)[1]
}

// The key tester follows the changes the program makes to a plugin, not
// only those made on the page: it kept the Dict it had made, with the
// site id, settings and backend of that moment, so that after the program
// changed the site id it read another site's keys, and after the program
// removed the plugin and added it again it met a closed backend.
func TestAdminKeyTesterFollowsProgramChanges(t *testing.T) {
	tl := newTool(t, tool.Config{SiteID: "site_a", Plugins: map[string]tool.PluginConfig{"extra": tool.DefaultPluginConfig("mem://")}})
	b, csrf := signIn(t, tl, "/admin/")
	key := func(plugin, action, value string) string {
		t.Helper()
		code, body := b.Post("key", url.Values{"csrf": {csrf}, "plugin": {plugin}, "prefix": {"app"}, "key": {"k"},
			"value": {value}, "codec": {"string"}, "action": {action}})
		if code != 200 {
			t.Fatalf("%s on %s: %d\n%s", action, plugin, code, body)
		}
		return body
	}
	for _, plugin := range []string{"default", "extra"} {
		key(plugin, "read", "") // the key tester makes its Dicts
	}

	// The program moves the Tool to another site id.
	if err := tl.Configure(t.Context(), tool.Config{SiteID: "site_b", Plugins: map[string]tool.PluginConfig{"extra": tool.DefaultPluginConfig("mem://")}}); err != nil {
		t.Fatal(err)
	}
	d, err := tool.Dict[string](tl, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", "from the program"); err != nil {
		t.Fatal(err)
	}
	if body := key("default", "read", ""); !strings.Contains(body, "from the program") {
		t.Errorf("after the program changed the site id, the key tester does not read the program's value:\n%s", body)
	}

	// The program removes a plugin and adds it again.
	if err := tl.RemovePlugin("extra"); err != nil {
		t.Fatal(err)
	}
	if err := tl.SetPlugin(t.Context(), "extra", tool.DefaultPluginConfig("mem://")); err != nil {
		t.Fatal(err)
	}
	if body := key("extra", "write", "v"); !strings.Contains(body, "Stored key k") {
		t.Errorf("after the program removed the plugin and added it again, the key tester cannot write:\n%s", body)
	}
	e, err := tool.Dict[string](tl, "app", "extra")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := e.Get("k"); !ok || v != "v" {
		t.Errorf("the program reads %q, %v of the key tester's write, want v", v, ok)
	}
}

// The plugin form with an empty URL keeps the plugin's backend and
// changes its other settings, as SetPlugin does: the form of a plugin the
// program supplied (WithBackend), which has no URL, was refused on every
// save ("url: missing").
func TestAdminPluginFormEmptyURLKeepsBackend(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{"other": tool.DefaultPluginConfig("mem://")}},
		tool.WithBackend("supplied", mb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	b, csrf := signIn(t, tl, "/")
	for _, name := range []string{"supplied", "other"} {
		code, body := b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {name}, "url": {""}, "expiration": {"60"}})
		info, _ := tl.Plugin(name)
		if code != 200 || info.Expiration != time.Minute {
			t.Errorf("plugin %s: expiration %v after the form set 60 with an empty URL: %d\n%s", name, info.Expiration, code, body)
		}
	}
	if be, err := tl.Backend(t.Context(), "supplied"); err != nil || !sameStore(t, be, mb) {
		t.Errorf("the supplied plugin's backend after the change: %v", err)
	}
}

// sameStore reports whether a write through be is read from mb.
func sameStore(t *testing.T, be, mb backend.Backend) bool {
	t.Helper()
	if err := be.Set(t.Context(), backend.Item{Key: "same-store-probe", Value: []byte("x")}); err != nil {
		return false
	}
	_, err := mb.Get(t.Context(), "same-store-probe")
	return err == nil
}

// The form offers a warm-up when the URL changes: the plugin then warms
// up from its previous URL, which the flash and the page say; a negative
// warm-up is refused.
func TestAdminWarm(t *testing.T) {
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"w": {URL: "mem://"}}})
	hs, _ := serveAdmin(t, tl, "/admin/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := newBrowserish(t, hs.URL, "/admin/")
	code, body := b.Get("?token=" + testToken)
	if code != 200 {
		t.Fatalf("page: %d\n%s", code, body)
	}
	for _, want := range []string{`name="warm" value="0"`, `<dd class="warm">none</dd>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %s", want)
		}
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"w"}, "url": {"mem://?max_bytes=67108864"}, "warm": {"-5"}})
	if code != 200 || !strings.Contains(body, "not changed") || !strings.Contains(body, "warm") {
		t.Errorf("a negative warm-up: %d\n%s", code, body)
	}
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"w"}, "url": {"mem://?max_bytes=67108864"}, "warm": {"5m"}})
	if code != 200 || !strings.Contains(body, "It warms up from mem:// for 5m0s") {
		t.Errorf("the flash after a change of URL with a warm-up: %d\n%s", code, body)
	}
	if !strings.Contains(body, `<dd class="warm">warming up from mem:// until `) || !strings.Contains(body, `name="warm" value="5m0s"`) {
		t.Errorf("the page does not show the window:\n%s", body)
	}
	if p, _ := tl.Plugin("w"); p.Warm != 5*time.Minute || p.WarmFrom != "mem://" {
		t.Errorf("after the form: warm %v from %q", p.Warm, p.WarmFrom)
	}
}
