package admin_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// URLs typed for the in-use plugin's server with other passwords redact
// to the plugin's URL: every one was kept as "in use", so the bound did
// not hold (193 kept after 192 posts). Only the newest counts now.
func TestAdminFormSecretsOtherPasswordsBounded(t *testing.T) {
	const pw = "in-use-pass-word"
	rd := testserver.Redis(t, "--requirepass", pw)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig("mem://")}})
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	b := newBrowserish(t, hs.URL, "/")
	_, body := b.Get("?token=" + testToken)
	csrf := csrfRE.FindStringSubmatch(body)[1]
	inUse := "redis://:" + pw + "@" + rd.Addr + "/0"
	b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {inUse}})
	for i := range 3 * admin.MaxFormSecrets {
		b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {fmt.Sprintf("redis://:wrong-%d@%s/0", i, rd.Addr)}})
	}
	if n := admin.SecretCount(h); n > 1+admin.MaxFormSecrets {
		t.Errorf("%d secrets kept, want at most %d", n, 1+admin.MaxFormSecrets)
	}
}
