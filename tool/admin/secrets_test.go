package admin_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	_ "github.com/memdict/memdict/backend/memcached" // server lists (host:port) in the plugin form
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// A URL typed in the plugin form is a secret only for its password: a
// server list without a scheme (host:port, as ERP5 configures memcached)
// is no password, and messages that name the server keep naming it, on
// this page and every later one.
func TestAdminServerListIsNoSecret(t *testing.T) {
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig("mem://")}})
	b, csrf := signIn(t, tl, "/")
	const list = "127.0.0.1:1" // nothing listens there
	code, body := b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {list}})
	if code != 200 {
		t.Fatalf("plugin form: %d\n%s", code, body)
	}
	_, body = b.Get("")
	if !strings.Contains(body, "dial tcp "+list) || strings.Contains(body, "tcp xxxxx") {
		t.Errorf("the page after the plugin moved to %s hides the server's address:\n%s", list, body)
	}
	// A server list with a password keeps it hidden.
	code, body = b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {"user:sekrit-pw@" + list}})
	if code != 200 || strings.Contains(body, "sekrit-pw") {
		t.Errorf("plugin form with a password: %d\n%s", code, body)
	}
}

// Every post of the plugin form added its URL to the secrets every
// message is scrubbed of, the same URL again and again, without bound: a
// signed-in operator (or a script) posting the form grew the handler's
// memory and the cost of every message shown. The list keeps the
// configured secrets and the URLs in use, and at most MaxFormSecrets
// others.
func TestAdminFormSecretsBounded(t *testing.T) {
	const pw = "in-use-pass-word"
	rd := testserver.Redis(t, "--requirepass", pw)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": tool.DefaultPluginConfig("mem://")}})
	hs, h := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.DiscardHandler), Secrets: []string{"redis://:config-pass-word@127.0.0.1:1/0"}})
	b := newBrowserish(t, hs.URL, "/")
	code, body := b.Get("?token=" + testToken)
	if code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	inUse := "redis://:" + pw + "@" + rd.Addr + "/0"
	if code, body := b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {inUse}}); code != 200 || !strings.Contains(body, "now uses") {
		t.Fatalf("plugin form: %d\n%s", code, body)
	}
	const posts = 3 * admin.MaxFormSecrets
	var last string
	for i := range posts {
		last = fmt.Sprintf("other-pass-word-%d", i)
		if code, body := b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {"redis://:" + last + "@127.0.0.1:1/0"}}); code != 200 {
			t.Fatalf("plugin form %d: %d\n%s", i, code, body)
		}
		b.Post("plugin", url.Values{"csrf": {csrf}, "plugin": {"p"}, "url": {inUse}}) // the same URL again
	}
	if n := admin.SecretCount(h); n > 2+admin.MaxFormSecrets {
		t.Errorf("after %d posts of the plugin form, %d secrets kept, want at most %d", 2*posts+1, n, 2+admin.MaxFormSecrets)
	}
	for _, secret := range []string{pw, "config-pass-word", last} {
		if msg := admin.Scrub(h, "dial redis://:"+secret+"@127.0.0.1:1/0: refused"); strings.Contains(msg, secret) {
			t.Errorf("a message quoting %s is not scrubbed: %s", secret, msg)
		}
	}
}
