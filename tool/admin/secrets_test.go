package admin_test

import (
	"net/url"
	"strings"
	"testing"

	_ "github.com/memdict/memdict/backend/memcached" // server lists (host:port) in the plugin form
	"github.com/memdict/memdict/tool"
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
