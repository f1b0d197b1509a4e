package admin_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/memdict/memdict/tool"
)

// The key tester shows the start of a large value, not all of it: a value
// of megabytes (another program's, or one planted to that end) would make
// a page that size, held in the session and sent to the browser.
func TestAdminReadShowsBoundedValue(t *testing.T) {
	pc := tool.DefaultPluginConfig("mem://?max_value_length=16777216")
	pc.MaxValueLen = 0 // no limit
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{"p": pc}})
	d, err := tool.Dict[string](tl, "big", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", strings.Repeat("x", 3<<20)); err != nil {
		t.Fatal(err)
	}
	bd, err := tool.Dict[[]byte](tl, "bin", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := bd.Put("k", []byte(strings.Repeat("\xff", 3<<20))); err != nil {
		t.Fatal(err)
	}
	b, csrf := signIn(t, tl, "/")
	for _, prefix := range []string{"big", "bin"} {
		code, body := b.Post("key", url.Values{"csrf": {csrf}, "plugin": {"p"}, "prefix": {prefix}, "key": {"k"}, "action": {"read"}})
		if code != 200 || !strings.Contains(body, "3,145,728 bytes") {
			t.Fatalf("read of a 3 MiB value under %s: %d\n%.2000s", prefix, code, body)
		}
		if len(body) > 512<<10 {
			t.Errorf("read of a 3 MiB value under %s: a page of %d bytes", prefix, len(body))
		}
		if !strings.Contains(body, "first 65,536") {
			t.Errorf("read of a 3 MiB value under %s: the page does not say it shows only the start", prefix)
		}
	}
}

// The key tester's messages show the start of a long key, not all of it:
// a key of 300 KiB typed in the form (controls, each quoted as 4 bytes)
// made a message of 1.2 MB (it quotes the key twice: the page's quote
// and the error's) in a page of 1.5 MB, and the session held the message
// until the next page.
func TestAdminKeyMessagesBounded(t *testing.T) {
	tl := newTool(t, tool.Config{})
	b, csrf := signIn(t, tl, "/")
	key := strings.Repeat("\x01", 300<<10)
	code, body := b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "key": {key}, "action": {"read"}})
	i, j := strings.Index(body, `id="flash"`), strings.Index(body, "</p>")
	if code != 200 || i < 0 || j < i {
		t.Fatalf("read of a key of 300 KiB: %d, no message\n%.2000s", code, body)
	}
	if msg := body[i:j]; len(msg) > 8<<10 || !strings.Contains(msg, "a key of 307,200 bytes") {
		t.Errorf("read of a key of 300 KiB: a message of %d bytes, want at most 8 KiB naming the key's length\n%.1000s", len(msg), msg)
	}
	if len(body) > 512<<10 {
		t.Errorf("read of a key of 300 KiB: a page of %d bytes", len(body))
	}
}
