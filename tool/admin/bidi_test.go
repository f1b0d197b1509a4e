package admin_test

import (
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/memdict/memdict/tool"
)

// Keys, prefixes and values are other programs' text: a bidirectional
// control among them, shown as it was, reordered what follows it in the
// page (a prefix "report\u202etxt.exe" showed as "reportexe.txt" in the
// Dict metrics table, and a value read likewise). The page shows the C1
// and bidirectional controls escaped, as \u202e, as the memdict command
// does, in the table, the value read and the messages; the key tester's
// form keeps what was typed, which it sends back unchanged.
func TestAdminShowsBidiControlsEscaped(t *testing.T) {
	tl := newTool(t, tool.Config{})
	// The program's Dict, listed while it is in use.
	prog, err := tool.Dict[string](tl, "prog\u202etxt.exe", tool.DefaultPlugin)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.KeepAlive(prog)
	b, csrf := signIn(t, tl, "/")
	const prefix, key, value = "report\u202etxt.exe", "k\u2066ey", "a\u202egnp.exe\u0085"
	form := url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "prefix": {prefix}, "key": {key}, "value": {value}, "codec": {"string"}, "action": {"write"}}
	if code, body := b.Post("key", form); code != 200 || !strings.Contains(body, "Stored key") {
		t.Fatalf("write: %d\n%.2000s", code, body)
	}
	form.Set("action", "read")
	code, body := b.Post("key", form)
	if code != 200 {
		t.Fatalf("read: %d\n%.2000s", code, body)
	}
	for _, want := range []string{
		`<td class="prefix"><code>report\u202etxt.exe</code>`,  // the key tester's Dict
		`<td class="prefix"><code>prog\u202etxt.exe</code>`,    // the program's
		`<pre id="value">&#34;a\u202egnp.exe\u0085&#34;</pre>`, // the value read, a JSON string
		`Key &#34;k\u2066ey&#34; holds`,                        // the message (Go-quoted)
		`name="prefix" value="` + prefix + `"`,                 // the form, as typed
		`name="key" value="` + key + `"`,
		`<textarea name="value" rows="3" spellcheck="false">` + value + `</textarea>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// In the text shown (outside tags, whose attributes are not shown or
	// are the form's fields, and the form's textarea), no control is
	// left as it is.
	shown := strings.ReplaceAll(body, ">"+value+"</textarea>", "")
	shown = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(shown, "")
	if i := strings.IndexAny(shown, "\u202e\u2066\u0085"); i >= 0 {
		t.Errorf("a control shown as it is: %q", shown[max(0, i-200):min(len(shown), i+100)])
	}
}

// A key with a space at either end showed as it was in the key tester's
// messages, where the page's text collapses the space: the key " k"
// showed as "Key k holds", as if it were the key "k". It shows quoted,
// as the memdict command quotes it.
func TestAdminQuotesKeysWithSpaces(t *testing.T) {
	tl := newTool(t, tool.Config{})
	b, csrf := signIn(t, tl, "/")
	for key, want := range map[string]string{" k": `Key &#34; k&#34; is not in the cache`, "k ": `Key &#34;k &#34; is not in the cache`, "k": `Key k is not in the cache`} {
		code, body := b.Post("key", url.Values{"csrf": {csrf}, "plugin": {tool.DefaultPlugin}, "key": {key}, "action": {"read"}})
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("read of %q: %d, the page lacks %q\n%.3000s", key, code, want, body)
		}
	}
}
