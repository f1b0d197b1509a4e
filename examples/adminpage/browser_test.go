package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

const chromiumPath = "/usr/bin/chromium"

// service is the example, built and running as a process.
type service struct {
	cmd      *exec.Cmd
	adminURL string // the printed link, with the token
	mu       sync.Mutex
	logs     strings.Builder
	done     chan struct{}
}

func (s *service) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startService builds the example as a user's "go build" would, runs it
// on a free loopback port with args, and waits for the admin page's link.
func startService(t *testing.T, args ...string) *service {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "adminpage")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := &service{done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEMDICT_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	link := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`admin page on (http://\S+/admin/\?token=\S+)`)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				link <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		s.cmd.Wait()
	}()
	select {
	case s.adminURL = <-link:
	case <-s.done:
		t.Fatalf("the example exited:\n%s", s.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("the example did not start:\n%s", s.log())
	}
	return s
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
	if _, err := os.Stat(chromiumPath); err != nil {
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

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Headless,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelCtx()
	// The first Run starts the browser; it must not have a timeout (see
	// chromedp.Run), so the test's deadline is set on a derived context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	defer cancelTimeout()

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nservice log:\n%s", what, err, svc.log())
		}
	}
	submit := func(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, actions...)
		if err != nil {
			t.Fatalf("%s: %v\nservice log:\n%s", what, err, svc.log())
		}
		return resp.Status
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	number := func(sel string) int {
		t.Helper()
		s := text(sel)
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		if err != nil {
			t.Fatalf("%s: %q is not a number", sel, s)
		}
		return n
	}
	const (
		card = "#plugin-default_memcached_plugin"
		sets = `tr.dict[data-source=program][data-prefix=adminpage] td.sets`
	)

	// 1. The printed link signs in and shows the service's plugin and its
	// Dict's metrics.
	if status := submit("open the printed link", chromedp.Navigate(svc.adminURL)); status != http.StatusOK {
		t.Fatalf("the printed link: status %d\n%s", status, svc.log())
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
		t.Fatalf("change: %q\n%s", got, svc.log())
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
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("MEMDICT_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "adminpage.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the service's admin page: %s (%d bytes)", path, len(png))

	// 4. The page never shows the token, and the service stops cleanly.
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.SplitN(svc.adminURL, "token=", 2)[1]
	if strings.Contains(page, token) {
		t.Error("the page shows the admin token")
	}
	svc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-svc.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the service did not stop on SIGTERM:\n%s", svc.log())
	}
	if code := svc.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(svc.log(), "shutting down") {
		t.Errorf("the service exited with %d after SIGTERM:\n%s", code, svc.log())
	}
}
