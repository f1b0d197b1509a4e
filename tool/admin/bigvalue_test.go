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
