package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/memdict/memdict/internal/browsertest"
	"github.com/memdict/memdict/internal/testserver"
)

// servedAdmin is a running "memdict serve".
type servedAdmin struct {
	*browsertest.Process
	URL string // http://127.0.0.1:port
}

// startServe builds the memdict command, runs its serve on a free
// loopback port and waits until it prints its address.
func startServe(t *testing.T, env []string, args ...string) *servedAdmin {
	t.Helper()
	bin := build(t, "github.com/memdict/memdict/cmd/memdict")
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = environ(env...)
	p, url := browsertest.StartProcess(t, cmd, regexp.MustCompile(`admin page on (http://\S+)/`), 15*time.Second, "memdict serve")
	return &servedAdmin{p, url}
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *servedAdmin) stop(t *testing.T) {
	t.Helper()
	s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Done:
	case <-time.After(10 * time.Second):
		t.Fatalf("memdict serve did not stop on SIGTERM:\n%s", s.Log())
	}
	if code := s.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("memdict serve exited with %d after SIGTERM:\n%s", code, s.Log())
	}
}

// TestAdminPageInBrowser drives Debian's chromium against "memdict serve":
// the page shows the plugins and live statistics, refuses changes without
// the token and forged cross-site posts, and, signed in, tests keys and
// moves the default plugin from one memcached to another.
func TestAdminPageInBrowser(t *testing.T) {
	if _, err := os.Stat(browsertest.Chromium); err != nil {
		testserver.SkipOrFail(t, "chromium is not installed (apt-get install chromium): %v", err)
	}
	const (
		token   = "browser-test-token"
		redisPW = "redis-secret-pw"
	)
	mc1, mc2 := testserver.Memcached(t), testserver.Memcached(t)
	rd := testserver.Redis(t, "--requirepass", redisPW)
	cfg := filepath.Join(t.TempDir(), "app.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`site_id: shop
plugins:
  default:
    url: memcached://%s
    expiration: 1h
  sessions:
    url: redis://:%s@%s/0
    max_key_length: 0
    max_value_length: 0
    order: 1
`, mc1.Addr, redisPW, rd.Addr)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// An application's value, so that the statistics show an item.
	runMemdict(t, environ(), exitOK, "--config", cfg, "put", "--prefix", "app", "visits", "7")

	admin := startServe(t, []string{"MEMDICT_ADMIN_TOKEN=" + token}, "--config", cfg)
	base := admin.URL

	// A page on another origin that posts a change to the admin page.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/plugin">
<input type="hidden" name="plugin" value="default">
<input type="hidden" name="url" value="memcached://%s">
<input type="hidden" name="csrf" value="guessed">
<button id="go" type="submit">Win a prize</button></form>`, base, mc2.Addr)
	}))
	defer evil.Close()

	b := browsertest.Start(t, 1200, 900, 60*time.Second, "server log", admin.Log)
	do, submit, text, html := b.Do, b.Submit, b.Text, b.HTML
	screenshot := func(name string) string { return b.Screenshot(name, "the admin page") }
	const card = "#plugin-default"

	// 1. The page shows the plugins and live statistics.
	do("load the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(card)))
	if got := text(card + " .url"); got != "memcached://"+mc1.Addr {
		t.Errorf("default plugin URL shown: %q", got)
	}
	if got := text(card + " .status"); !strings.HasPrefix(got, "answers") {
		t.Errorf("default plugin status: %q", got)
	}
	if n, err := strconv.Atoi(strings.ReplaceAll(text(card+" td.items"), ",", "")); err != nil || n < 1 {
		t.Errorf("items of memcached %s: %q (%v), want at least 1", mc1.Addr, text(card+" td.items"), err)
	}
	if got := text("#plugin-sessions .url"); got != "redis://:xxxxx@"+rd.Addr+"/0" {
		t.Errorf("persistent plugin URL shown: %q", got)
	}
	if got := text("#plugin-sessions .status"); !strings.HasPrefix(got, "answers") {
		t.Errorf("persistent plugin status: %q", got)
	}
	page := html()
	if strings.Contains(page, `action="/plugin"`) || strings.Contains(page, `id="key-form"`) {
		t.Error("the page offers changes before signing in")
	}

	// 2. A wrong token is refused.
	status := submit("sign in with a wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Submit(chromedp.CSS("#token")))
	if status != http.StatusForbidden || !strings.Contains(text("#flash"), "Wrong admin token") {
		t.Errorf("wrong token: status %d, flash %q", status, text("#flash"))
	}

	// 3. Sign in with the token.
	do("back to the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	submit("sign in",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Submit(chromedp.CSS("#token")))
	do("signed in", chromedp.WaitVisible(chromedp.CSS("#signed-in")))

	// 4. A forged cross-site post is refused, even with the session.
	do("open the other site", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS("#go")))
	status = submit("forged post", chromedp.Click(chromedp.CSS("#go")))
	if status != http.StatusForbidden || !strings.Contains(text("#flash"), "Refused") {
		t.Errorf("forged cross-site post: status %d, flash %q", status, text("#flash"))
	}
	do("back to the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(card)))
	if got := text(card + " .url"); got != "memcached://"+mc1.Addr {
		t.Fatalf("the forged post changed the URL to %q", got)
	}

	// 5. Test a key: write, read.
	fillKey := func(key, value, codecName string) {
		t.Helper()
		for _, f := range [][2]string{
			{"#key-form select[name=plugin]", "default"},
			{"#key-form input[name=prefix]", "demo"},
			{"#key-form input[name=key]", key},
			{"#key-form textarea[name=value]", value},
			{"#key-form select[name=codec]", codecName},
		} {
			do("set "+f[0]+" to "+f[1], chromedp.SetValue(chromedp.CSS(f[0]), f[1]))
		}
	}
	fillKey("greeting", "hello from chromium", "string")
	submit("write a key", chromedp.Click(chromedp.CSS(`#key-form button[value=write]`)))
	if got := text("#flash"); !strings.Contains(got, "Stored key greeting (raw") {
		t.Errorf("write: %q", got)
	}
	submit("read the key", chromedp.Click(chromedp.CSS(`#key-form button[value=read]`)))
	if got := text("#value"); got != `"hello from chromium"` {
		t.Errorf("read: %q (flash %q)", got, text("#flash"))
	}
	fillKey("cart", `{"items":[1,2]}`, "")
	submit("write JSON", chromedp.Click(chromedp.CSS(`#key-form button[value=write]`)))
	submit("read JSON", chromedp.Click(chromedp.CSS(`#key-form button[value=read]`)))
	if got := text("#flash"); !strings.Contains(got, "msgpack value") || !strings.Contains(text("#value"), `"items"`) {
		t.Errorf("read JSON: %q", got)
	}
	submit("delete", chromedp.Click(chromedp.CSS(`#key-form button[value=delete]`)))
	if got := text("#flash"); !strings.Contains(got, "Deleted key cart") {
		t.Errorf("delete: %q", got)
	}
	if got := text(`tr.dict[data-plugin=default][data-prefix=demo] td.sets`); got != "2" {
		t.Errorf("Dict metrics for demo: %q sets, want 2", got)
	}
	screenshot("admin.png")

	// 6. Move the default plugin to the second memcached.
	do("open the plugin form", chromedp.Click(chromedp.CSS(card+" details summary")),
		chromedp.WaitVisible(chromedp.CSS(card+` input[name=url]`)),
		chromedp.SetValue(chromedp.CSS(card+` input[name=url]`), "memcached://"+mc2.Addr),
		chromedp.SetValue(chromedp.CSS(card+` input[name=expiration]`), "90"))
	submit("apply", chromedp.Click(chromedp.CSS(card+` form[action="/plugin"] button[type=submit]`)))
	if got := text("#flash"); !strings.Contains(got, "now uses memcached://"+mc2.Addr) {
		t.Fatalf("change: %q\n%s", got, admin.Log())
	}
	if got := text(card + " .url"); got != "memcached://"+mc2.Addr {
		t.Errorf("URL after the change: %q", got)
	}
	if got := text(card + " td.addr"); got != mc2.Addr {
		t.Errorf("statistics after the change are of %q, want %s", got, mc2.Addr)
	}
	if got := text(card + " .expiration"); got != "1m30s" {
		t.Errorf("expiration after the change: %q", got)
	}
	// The change takes effect: the key written on the first server is not
	// on the second, and a new write goes to the second.
	fillKey("greeting", "(not written)", "string")
	submit("read after the change", chromedp.Click(chromedp.CSS(`#key-form button[value=read]`)))
	if got := text("#flash"); !strings.Contains(got, "a miss") {
		t.Errorf("read on the new server: %q", got)
	}
	fillKey("moved", "on the second server", "string")
	submit("write after the change", chromedp.Click(chromedp.CSS(`#key-form button[value=write]`)))
	env := environ("MEMDICT_SITE_ID=shop")
	if r := runMemdict(t, env, exitOK, "get", "--url", "memcached://"+mc2.Addr, "--prefix", "demo", "moved", "--raw"); r.stdout != "on the second server" {
		t.Errorf("value on the second memcached: %q", r.stdout)
	}
	runMemdict(t, env, exitMiss, "get", "--url", "memcached://"+mc1.Addr, "--prefix", "demo", "moved")
	if r := runMemdict(t, env, exitOK, "get", "--url", "memcached://"+mc1.Addr, "--prefix", "demo", "greeting", "--raw"); r.stdout != "hello from chromium" {
		t.Errorf("value on the first memcached: %q", r.stdout)
	}

	// 7. Without the session, changes are refused.
	resp, err := http.PostForm(base+"/plugin", map[string][]string{"plugin": {"default"}, "url": {"mem://"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("change without a session: %d, want 403", resp.StatusCode)
	}

	page = html()
	if strings.Contains(page, redisPW) || strings.Contains(page, token) || strings.Contains(admin.Log(), redisPW) || strings.Contains(admin.Log(), token) {
		t.Error("a secret shows in the page or the server log")
	}
	screenshot("admin-after-change.png")

	admin.stop(t)
	if !strings.Contains(admin.Log(), "shutting down") {
		t.Errorf("no graceful shutdown in the log:\n%s", admin.Log())
	}
}
