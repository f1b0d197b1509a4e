package admin

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// TestRenderEscapes: every value the page shows, from the configuration,
// the servers, the key tester or an error, is escaped where it is written.
func TestRenderEscapes(t *testing.T) {
	const evil = `"><script>alert(1)</script>&'`
	const escaped = `&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#39;`
	pc := tool.DefaultPluginConfig(evil)
	pc.Codec = evil
	view := pluginView{
		PluginInfo: tool.PluginInfo{Name: evil, Path: evil, PluginConfig: pc},
		URLText:    evil, Expiration: evil, MaxKeyText: evil, MaxValText: evil,
		serverStatus: serverStatus{
			Ping:  pingResult{Error: evil},
			Nodes: []nodeSummary{{tool.ServerSummary{Addr: evil, Error: evil}}, summarize(backend.NodeStats{Addr: evil})},
		},
	}
	d := pageData{
		Base: "/ad min/", Flash: &flash{Error: true, Text: evil, Pre: evil}, SignedIn: true, CSRF: evil, SiteID: evil,
		Plugins: []pluginView{view, {PluginInfo: tool.PluginInfo{Name: "b"}, serverStatus: serverStatus{StatsError: evil}}},
		Dicts:   []dictView{{Plugin: evil, Prefix: evil, Source: evil, Hits: evil, GetLatency: evil}},
		Codecs:  []string{evil, "raw"},
		Form:    keyForm{Plugin: evil, Prefix: evil, Key: evil, Value: evil, Codec: evil, TTL: evil},
		Now:     evil,
	}
	out := d.html()
	if strings.Contains(out, "<script") || strings.Contains(out, evil) {
		t.Errorf("an unescaped value in the page:\n%s", out)
	}
	// Each field above, in text or in an attribute.
	if n := strings.Count(out, escaped); n < 30 {
		t.Errorf("%d escaped values in the page, want at least 30:\n%s", n, out)
	}
	if !strings.Contains(out, `href="/ad%20min/static/style.css"`) || !strings.Contains(out, `action="/ad%20min/plugin"`) {
		t.Errorf("the mount point is not written as a URL path:\n%s", out)
	}
	for _, want := range []string{`id="plugin-` + escaped + `"`, `<option value="` + escaped + `" selected>` + escaped + `</option>`, `<pre id="value">` + escaped + `</pre>`} {
		if !strings.Contains(out, want) {
			t.Errorf("the page has no %s:\n%s", want, out)
		}
	}
}

// TestNoTemplatePackage: the page is written without text/template or
// html/template, whose method lookup by name through reflection makes
// the linker keep every exported method of a program's types (every
// go-redis command of a Redis service).
func TestNoTemplatePackage(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/memdict/memdict/tool/admin").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "text/template" || pkg == "html/template" {
			t.Errorf("package tool/admin depends on %s", pkg)
		}
	}
}
