package browsertest_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/browsertest"
	"github.com/memdict/memdict/internal/testserver"
)

// service is the example, built and running as a process.
type service struct {
	*browsertest.Process
	adminURL string // the printed link, with the token
}

// The example's counter (examples/adminpage/main.go).
const (
	counterPrefix = "adminpage"
	counterKey    = "hits"
)

// startService builds the example as a user's "go build" would, runs it
// on a free loopback port with args, and waits for the admin page's link.
func startService(t *testing.T, args ...string) *service {
	t.Helper()
	bin := build(t, "github.com/memdict/memdict/examples/adminpage")
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = environ()
	p, link := browsertest.StartProcess(t, cmd, regexp.MustCompile(`admin page on (http://\S+/admin/\?token=\S+)`), 30*time.Second, "the example")
	return &service{p, link}
}

// counter reads the example's counter straight from a memcached server,
// as another program would.
type counter struct {
	t    *testing.T
	addr string
	d    *memdict.Dict[int]
}

func newCounter(t *testing.T, addr string) *counter {
	be, err := backend.Open(context.Background(), "memcached://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d, err := memdict.New[int](be, counterPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &counter{t: t, addr: addr, d: d}
}

func (c *counter) read() (int, bool) {
	c.t.Helper()
	n, ok, err := c.d.Lookup(context.Background(), counterKey)
	if err != nil {
		c.t.Fatalf("read the counter on %s: %v", c.addr, err)
	}
	return n, ok
}

// waitAbove polls until the counter on the server is above n, within a
// bounded time, and returns it.
func (c *counter) waitAbove(n int, what string) int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := c.read(); ok && v > n {
			return v
		}
		if time.Now().After(deadline) {
			v, ok := c.read()
			c.t.Fatalf("%s: the counter on %s is %d (present: %v), want above %d", what, c.addr, v, ok, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAdminPageMovesTheServiceInBrowser runs the example service on one
// memcached, opens its admin page in Debian's chromium with the link the
// service prints, moves the default plugin to a second memcached through
// the page's form, and checks on the servers themselves that the
// service's own Dict now writes its counter to the second one, and no
// longer to the first.
func TestAdminPageMovesTheServiceInBrowser(t *testing.T) {
	if _, err := os.Stat(browsertest.Chromium); err != nil {
		testserver.SkipOrFail(t, "chromium is not installed (apt-get install chromium): %v", err)
	}
	mc1, mc2 := testserver.Memcached(t), testserver.Memcached(t)
	first, second := newCounter(t, mc1.Addr), newCounter(t, mc2.Addr)
	svc := startService(t, "-url", "memcached://"+mc1.Addr)
	base := strings.SplitN(svc.adminURL, "?", 2)[0] // http://127.0.0.1:port/admin/

	// The service counts on the first server.
	first.waitAbove(2, "before the change")
	if _, ok := second.read(); ok {
		t.Fatal("the counter is on the second server before the change")
	}

	b := browsertest.Start(t, 1200, 1000, 90*time.Second, "service log", svc.Log)
	ctx := b.Ctx
	do, submit, text, number := b.Do, b.Submit, b.Text, b.Number
	const (
		card = "#plugin-default"
		sets = `tr.dict[data-source=program][data-prefix=adminpage] td.sets`
	)

	// 1. The printed link signs in and shows the service's plugin and its
	// Dict's metrics.
	if status := submit("open the printed link", chromedp.Navigate(svc.adminURL)); status != http.StatusOK {
		t.Fatalf("the printed link: status %d\n%s", status, svc.Log())
	}
	do("signed in", chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	if url, err := chromedp.Run(ctx, chromedp.Location()); err != nil || strings.Contains(url, "token") || url != base {
		t.Errorf("the page's URL after signing in: %q (%v), want %s without the token", url, err, base)
	}
	if got := text(card + " .url"); got != "memcached://"+mc1.Addr {
		t.Errorf("default plugin URL shown: %q", got)
	}
	if got := text(card + " .status"); !strings.HasPrefix(got, "answers") {
		t.Errorf("default plugin status: %q", got)
	}
	if got := text(card + " td.addr"); got != mc1.Addr {
		t.Errorf("statistics of %q, want %s", got, mc1.Addr)
	}
	if n := number(sets); n < 2 {
		t.Errorf("the service's Dict shows %d sets, want at least 2", n)
	}
	setsBefore := number(sets)

	// 2. Move the default plugin to the second memcached.
	do("open the plugin form", chromedp.Click(chromedp.CSS(card+" details summary")),
		chromedp.WaitVisible(chromedp.CSS(card+` input[name=url]`)),
		chromedp.SetValue(chromedp.CSS(card+` input[name=url]`), "memcached://"+mc2.Addr))
	submit("apply", chromedp.Click(chromedp.CSS(card+` form.plugin-form button[type=submit]`)))
	if got := text("#flash"); !strings.Contains(got, "now uses memcached://"+mc2.Addr) {
		t.Fatalf("change: %q\n%s", got, svc.Log())
	}
	if got := text(card + " .url"); got != "memcached://"+mc2.Addr {
		t.Errorf("URL after the change: %q", got)
	}
	if got := text(card + " td.addr"); got != mc2.Addr {
		t.Errorf("statistics after the change are of %q, want %s", got, mc2.Addr)
	}

	// 3. The service's own Dict now writes to the second server: the
	// counter appears there (a miss there: it starts again from 1) and
	// advances, and the first server's stops.
	v := second.waitAbove(0, "after the change")
	v = second.waitAbove(v, "after the change, advancing")
	frozen, _ := first.read() // every write to the first server has returned by now
	second.waitAbove(v+2, "later")
	if now, _ := first.read(); now != frozen {
		t.Errorf("the service still writes to the first server: %d, then %d", frozen, now)
	}
	do("reload", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(sets)))
	if n := number(sets); n <= setsBefore {
		t.Errorf("the service's Dict metrics did not advance: %d sets, then %d", setsBefore, n)
	}
	b.Screenshot("adminpage.png", "the service's admin page")

	// 4. The page never shows the token, and the service stops cleanly.
	page := b.HTML()
	token := strings.SplitN(svc.adminURL, "token=", 2)[1]
	if strings.Contains(page, token) {
		t.Error("the page shows the admin token")
	}
	svc.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-svc.Done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the service did not stop on SIGTERM:\n%s", svc.Log())
	}
	if code := svc.Cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(svc.Log(), "shutting down") {
		t.Errorf("the service exited with %d after SIGTERM:\n%s", code, svc.Log())
	}
}
