// Package browsertest drives Debian's headless chromium for the tests of
// the admin page (the memdict command's serve, the adminpage example): it
// runs the server under test as a process, starts the browser with the
// flags those tests need and gives them helpers that fail the test with
// the server's log. Only tests import it.
package browsertest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memdict/memdict/internal/testserver"
)

// Chromium is where Debian's chromium package installs the browser.
const Chromium = "/usr/bin/chromium"

// Browser is one headless chromium tab, closed when the test ends.
type Browser struct {
	t *testing.T
	// Ctx is the tab's context, with the test's deadline, for chromedp
	// calls the helpers do not cover.
	Ctx context.Context
	// log returns the log of the server under test, for failures.
	logName string
	log     func() string
}

// Start starts chromium with a window of width by height pixels and a tab
// whose calls must all be done within timeout. logName and log name and
// return the log of the server under test, shown when a helper fails. A
// missing chromium skips the test (fails it under MEMDICT_REQUIRE_SERVERS,
// as testserver.SkipOrFail does).
func Start(t *testing.T, width, height int, timeout time.Duration, logName string, log func() string) *Browser {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		testserver.SkipOrFail(t, "chromium is not installed (apt-get install chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Headless,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelCtx)
	// The first Run starts the browser; it must not have a timeout (see
	// chromedp.Run), so the test's deadline is set on a derived context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancelTimeout)
	return &Browser{t: t, Ctx: ctx, logName: logName, log: log}
}

// Do runs actions, failing the test with what and the server's log.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s:\n%s", what, err, b.logName, b.log())
	}
}

// Submit runs actions that submit a form and waits for the page that
// answers (after any redirect); it returns its HTTP status.
func (b *Browser) Submit(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.Ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s:\n%s", what, err, b.logName, b.log())
	}
	return resp.Status
}

// Text returns the text of the element sel selects, trimmed.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Number returns the number the element sel shows, digit groups allowed
// ("1,234").
func (b *Browser) Number(sel string) int {
	b.t.Helper()
	s := b.Text(sel)
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		b.t.Fatalf("%s: %q is not a number", sel, s)
	}
	return n
}

// HTML returns the page's HTML.
func (b *Browser) HTML() string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	return s
}

// Screenshot writes a screenshot of the whole page to name in the
// artifact directory ($MEMDICT_ARTIFACTS, else a temporary directory),
// logs it as a screenshot of what, and returns its path.
func (b *Browser) Screenshot(name, what string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("MEMDICT_ARTIFACTS")
	if dir == "" {
		dir = b.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot of %s: %s (%d bytes)", what, path, len(png))
	return path
}

// Process is a server under test run as a process, its standard error
// kept as its log.
type Process struct {
	Cmd  *exec.Cmd
	Done chan struct{} // closed once the process has exited
	mu   sync.Mutex
	logs strings.Builder
}

// Log returns what the process wrote to its standard error so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// StartProcess starts cmd and waits, at most timeout, until a line of its
// standard error matches re, whose first group it returns (the address or
// link the server prints). The process is killed when the test ends; what
// names it in failures.
func StartProcess(t *testing.T, cmd *exec.Cmd, re *regexp.Regexp, timeout time.Duration, what string) (*Process, string) {
	t.Helper()
	p := &Process{Cmd: cmd, Done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.Done
	})
	found := make(chan string, 1)
	go func() {
		defer close(p.Done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	select {
	case s := <-found:
		return p, s
	case <-p.Done:
		t.Fatalf("%s exited:\n%s", what, p.Log())
	case <-time.After(timeout):
		t.Fatalf("%s did not start:\n%s", what, p.Log())
	}
	return nil, ""
}
