package admin_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// A signed-in visitor who left while the page read the servers made the
// read, cut short by the visitor's context ("context canceled"), the
// status shown to every anonymous visitor for statusTTL. Such a read is
// no longer kept.
func TestAdminSignedInLeavingKeepsAnonymousStatus(t *testing.T) {
	var slow atomic.Bool
	mw := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if slow.Load() && c.Op == backend.OpPing {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			return next(ctx, c)
		}
	}
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{"default": tool.DefaultPluginConfig("mem://")}}, tool.WithMiddleware(mw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	hs, _ := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if resp, err := c.Get(hs.URL + "/?token=" + testToken); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	slow.Store(true)
	c.Timeout = 100 * time.Millisecond
	if resp, err := c.Get(hs.URL + "/"); err == nil {
		resp.Body.Close()
	}
	time.Sleep(300 * time.Millisecond)
	slow.Store(false)
	_, body := webtest.New(t, hs.URL+"/", hs.URL).Get("")
	if !strings.Contains(body, `class="badge ok status"`) {
		i := strings.Index(body, "status")
		t.Errorf("the anonymous page shows the servers failing, from a signed-in read cut short:\n%.600s", body[max(0, i-300):])
	}
}
