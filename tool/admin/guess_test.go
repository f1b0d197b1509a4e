package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// Wrong tokens are slowed down as much when a client sends them all at
// once as one after the other: the delay of a failed sign-in is taken in
// turn, else a guesser with n connections tries n times as many tokens.
// The right token is never held up by them.
func TestParallelGuessesSlowedDown(t *testing.T) {
	tl := newTool(t, tool.Config{})
	hs, _ := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	const guesses = 6
	start := time.Now()
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			b := webtest.New(t, hs.URL+"/", hs.URL)
			if code, _ := b.Post("login", url.Values{"token": {"wrong-token-" + string(rune('a'+i))}}); code != http.StatusForbidden {
				t.Errorf("wrong token: %d", code)
			}
		})
	}
	// The right token, sent while the guesses wait, gets in at once.
	time.Sleep(50 * time.Millisecond)
	b := webtest.New(t, hs.URL+"/", hs.URL)
	in := time.Now()
	if code, _ := b.Post("login", url.Values{"token": {testToken}}); code != http.StatusOK {
		t.Errorf("right token during the guesses: %d", code)
	}
	if d := time.Since(in); d > time.Second {
		t.Errorf("the right token took %v while guesses waited", d)
	}
	wg.Wait()
	// Each failure waits 300ms: in turn, 6 take at least 1.8s (taken
	// together, 0.3s).
	if d := time.Since(start); d < (guesses-1)*300*time.Millisecond {
		t.Errorf("%d wrong tokens sent at once were refused in %v: the delay is not taken in turn", guesses, d)
	}
}
