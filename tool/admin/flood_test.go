package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// postCtx posts form to u, as a browser of origin does, within ctx.
func postCtx(ctx context.Context, u, origin string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	return http.DefaultClient.Do(req)
}

// A guesser sending wrong tokens, or anyone sending cross-origin posts,
// no longer fills the service's log: 100 wrong tokens logged 100 lines,
// as fast as they were sent. Each kind of refusal logs LogBurst lines
// per LogWindow, and the first line of a later window says how many were
// not logged.
func TestAdminRefusalsLogBounded(t *testing.T) {
	var logb syncBuffer
	tl := newTool(t, tool.Config{})
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(&logb, nil))})
	admin.SetFailDelay(h, 0)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	admin.SetClock(h, func() time.Time { return time.Unix(0, clock.Load()) })
	b := webtest.New(t, hs.URL+"/", hs.URL)
	evil := webtest.New(t, hs.URL+"/", "http://evil.example")
	const n = 100
	for range n {
		if code, _ := b.Post("login", url.Values{"token": {"wrong-token"}}); code != http.StatusForbidden {
			t.Fatalf("wrong token: %d, want 403", code)
		}
		if code, _ := evil.Post("plugin", url.Values{"plugin": {"default"}}); code != http.StatusForbidden {
			t.Fatalf("cross-origin post: %d, want 403", code)
		}
	}
	count := func(msg string) int { return strings.Count(logb.String(), msg) }
	if got := count("failed sign-in"); got != admin.LogBurst {
		t.Errorf("%d wrong tokens logged %d lines, want %d", n, got, admin.LogBurst)
	}
	if got := count("refused a cross-origin request"); got != admin.LogBurst {
		t.Errorf("%d cross-origin posts logged %d lines, want %d", n, got, admin.LogBurst)
	}
	clock.Add(int64(admin.LogWindow))
	b.Post("login", url.Values{"token": {"wrong-token"}})
	want := "not_logged=" + strconv.Itoa(n-admin.LogBurst)
	if got := count("failed sign-in"); got != admin.LogBurst+1 || !strings.Contains(logb.String(), want) {
		t.Errorf("a wrong token %v later: %d lines in all, want %d, the last with %s\n%s", admin.LogWindow, got, admin.LogBurst+1, want, logb.String())
	}
}

// Failed sign-ins wait their turn to be refused, each holding its
// connection and request: a guesser's connections piled up without
// bound. Beyond MaxFailWaiting waiting, a wrong token is refused at once
// with 429; the right token still signs in at once.
func TestAdminFailedSignInsWaitingBounded(t *testing.T) {
	tl := newTool(t, tool.Config{})
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	admin.SetFailDelay(h, time.Hour) // the first holds its turn until it leaves
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range admin.MaxFailWaiting {
		wg.Go(func() {
			resp, err := postCtx(ctx, hs.URL+"/login", hs.URL, url.Values{"token": {"wrong-token"}})
			if err == nil {
				resp.Body.Close()
				t.Errorf("a waiting wrong token was answered %d before it left", resp.StatusCode)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); admin.FailWaiting(h) < admin.MaxFailWaiting; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d wrong tokens wait their turn after 10s", admin.FailWaiting(h), admin.MaxFailWaiting)
		}
	}
	octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ocancel()
	resp, err := postCtx(octx, hs.URL+"/login", hs.URL, url.Values{"token": {"one-more-wrong-token"}})
	if err != nil {
		t.Errorf("a wrong token with %d waiting: %v, want 429 at once", admin.MaxFailWaiting, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too many failed sign-ins") {
			t.Errorf("a wrong token with %d waiting: %d (Retry-After %q), want 429 saying too many failed sign-ins wait\n%.2000s",
				admin.MaxFailWaiting, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if code, body := webtest.New(t, hs.URL+"/", hs.URL).Post("login", url.Values{"token": {testToken}}); code != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
		t.Errorf("the right token with %d wrong ones waiting: %d, want signed in", admin.MaxFailWaiting, code)
	}
}
