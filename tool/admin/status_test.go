package admin_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
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

// silentServer returns the address of a loopback server that accepts
// connections and never answers, closed when the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A memcached server that does not answer, with a backend timeout longer
// than the page's: the ping used the page's whole timeout, and the
// statistics showed the call's error, "memcached: stats: context deadline
// exceeded", which names no server (the ping's line names it). The
// statistics now show the server asked, with its error naming it.
func TestAdminStatsTimeoutNamesServer(t *testing.T) {
	addr := silentServer(t)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"default": tool.DefaultPluginConfig("memcached://" + addr + "?timeout=5s")}})
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	admin.SetPingTimeout(h, 200*time.Millisecond)
	_, body := webtest.New(t, hs.URL+"/", hs.URL).Get("")
	i := strings.Index(body, `<dl class="settings">`)
	if i < 0 || !strings.Contains(body, `badge down status`) {
		t.Fatalf("the page shows no plugin card, or the silent server answering:\n%s", body)
	}
	stats := body[i:]
	if j := strings.Index(stats, "</section>"); j >= 0 {
		stats = stats[:j]
	}
	if j := strings.Index(stats, "</dl>"); j >= 0 {
		stats = stats[j:]
	}
	t.Logf("statistics: %s", stats)
	if !strings.Contains(stats, "stats on "+addr) {
		t.Errorf("the statistics of a server that timed out do not name it (%s):\n%s", addr, stats)
	}
}
