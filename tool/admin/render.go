package admin

import (
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/memdict/memdict/internal/controls"
)

// The page is written by plain Go code with explicit escaping, not by
// html/template: template execution looks methods up by name through
// reflection (reflect.Value.MethodByName), which makes the linker keep
// every exported method of every type a program may convert to an
// interface. With a template, a Redis service that mounts this page
// linked four times as much of go-redis (every command method of its
// clients) and was 12 MiB larger. Every value below is escaped where it
// is written: text with text, attribute values with attr (always inside
// double quotes), URLs with urlAttr.

// page accumulates the HTML of one page.
type page struct{ strings.Builder }

// raw writes trusted markup as it is.
func (p *page) raw(s ...string) {
	for _, x := range s {
		p.WriteString(x)
	}
}

// text writes s escaped as HTML text (element content), its C1 and
// bidirectional controls written as \u202e and so on (controls): the
// page shows keys, prefixes, values and servers' messages, other
// programs' text, and a U+202E in a table cell reordered what followed
// it ("report\u202etxt.exe" showed as "reportexe.txt").
func (p *page) text(s string) { p.WriteString(html.EscapeString(controls.EscapeString(s))) }

// field writes s escaped as the RCDATA of a textarea, as it is
// otherwise: the form sends it back, and must send the same text.
func (p *page) field(s string) { p.WriteString(html.EscapeString(s)) }

// attr writes s escaped for a double-quoted attribute value, controls
// included: the page's attributes are form fields' values, which the
// form sends back and must send unchanged, and names it does not show.
func (p *page) attr(s string) { p.WriteString(html.EscapeString(s)) }

// urlAttr writes the path s, percent-encoded as a URL path, then escaped
// for a double-quoted attribute value.
func (p *page) urlAttr(s string) {
	p.attr((&url.URL{Path: s}).EscapedPath())
}

// option writes an <option> whose value and label are value and label,
// selected when selected is true.
func (p *page) option(value, label string, selected bool) {
	p.raw(`<option value="`)
	p.attr(value)
	p.raw(`"`)
	if selected {
		p.raw(` selected`)
	}
	p.raw(`>`)
	p.text(label)
	p.raw(`</option>`)
}

// hidden writes a hidden form field.
func (p *page) hidden(name, value string) {
	p.raw(`<input type="hidden" name="`, name, `" value="`)
	p.attr(value)
	p.raw(`">`)
}

// html returns the page of d.
func (d *pageData) html() string {
	var p page
	p.Grow(8 << 10)
	p.raw(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memdict admin</title>
<link rel="stylesheet" href="`)
	p.urlAttr(d.Base + "static/style.css")
	p.raw(`">
</head>
<body>
<header>
  <h1>memdict <span class="sub">admin</span></h1>
  <div class="who">`)
	if d.SignedIn {
		p.raw(`
    <span class="badge ok" id="signed-in">signed in</span>
    <form method="post" action="`)
		p.urlAttr(d.Base + "logout")
		p.raw(`" class="inline">
      `)
		p.hidden("csrf", d.CSRF)
		p.raw(`
      <button type="submit" class="link">Sign out</button>
    </form>`)
	} else {
		p.raw(`
    <form method="post" action="`)
		p.urlAttr(d.Base + "login")
		p.raw(`" class="inline" id="login">
      <label for="token">Admin token</label>
      <input type="password" id="token" name="token" autocomplete="current-password" required>
      <button type="submit">Sign in</button>
    </form>`)
	}
	p.raw(`
  </div>
</header>
<main>
`)
	if f := d.Flash; f != nil {
		kind := "info"
		if f.Error {
			kind = "error"
		}
		p.raw(`<div class="flash `, kind, `" id="flash" role="status">
  <p>`)
		p.text(f.Text)
		p.raw(`</p>`)
		if f.Pre != "" {
			p.raw(`<pre id="value">`)
			p.text(f.Pre)
			p.raw(`</pre>`)
		}
		p.raw("\n</div>")
	}
	p.raw("\n" + `<p class="meta">`)
	if d.SiteID != "" {
		p.raw(`Site id <code>`)
		p.text(d.SiteID)
		p.raw(`</code> · `)
	}
	p.raw(strconv.Itoa(len(d.Plugins)), ` plugin(s) · as of `)
	p.text(d.Now)
	if d.Cached {
		p.raw(` (until you sign in, the servers' status is read at most every `, strconv.Itoa(int(statusTTL/time.Second)), ` s)`)
	}
	p.raw(` · <a href="`)
	p.urlAttr(d.Base)
	p.raw(`">refresh</a></p>

<section id="plugins">
<h2>Plugins</h2>
`)
	for i := range d.Plugins {
		d.plugin(&p, &d.Plugins[i])
	}
	p.raw(`</section>

<section id="dicts">
<h2>Dict metrics</h2>
`)
	if len(d.Dicts) > 0 {
		p.raw(`<div class="scroll"><table class="stats">
  <thead><tr><th>Plugin</th><th>Prefix</th><th>Source</th><th>Dicts</th><th>Hits</th><th>Misses</th><th>Hit ratio</th><th>Sets</th><th>Deletes</th><th>Errors</th><th>Loads</th><th>Get p50/p99</th></tr></thead>
  <tbody>`)
		for _, dv := range d.Dicts {
			p.raw(`<tr class="dict" data-source="`)
			p.attr(dv.Source)
			p.raw(`" data-plugin="`)
			p.attr(dv.Plugin)
			p.raw(`" data-prefix="`)
			p.attr(dv.Prefix)
			p.raw(`"><td class="plugin">`)
			p.text(dv.Plugin)
			p.raw(`</td><td class="prefix"><code>`)
			p.text(dv.Prefix)
			p.raw(`</code></td><td class="source">`)
			p.text(dv.Source)
			p.raw(`</td><td class="num">`, strconv.Itoa(dv.Count))
			for _, c := range [...]struct{ class, v string }{
				{"hits num", dv.Hits}, {"misses num", dv.Misses}, {"hit-ratio num", dv.HitRatio},
				{"sets num", dv.Sets}, {"deletes num", dv.Deletes}, {"errors num", dv.Errors},
				{"num", dv.Loads}, {"num", dv.GetLatency},
			} {
				p.raw(`</td><td class="`, c.class, `">`)
				p.text(c.v)
			}
			p.raw(`</td></tr>`)
		}
		p.raw(`</tbody>
</table></div>
<p class="hint">The program's Dicts are those the Tool handed out that are still in use; latencies are sampled.</p>
`)
	} else {
		p.raw(`<p class="muted">No Dict in use yet: the Dicts the program gets from the Tool, and the key tester's, show here.</p>
`)
	}
	p.raw(`</section>

<section id="tester">
<h2>Test a key</h2>
`)
	if d.SignedIn {
		d.keyForm(&p)
	} else {
		p.raw(`<p class="muted">Sign in with the admin token to change plugins and to read, write and delete keys.</p>
`)
	}
	p.raw(`</section>
</main>
<footer>memdict admin · changes apply at once to this program's Dicts</footer>
</body>
</html>
`)
	return p.String()
}

// plugin writes the card of one plugin.
func (d *pageData) plugin(p *page, v *pluginView) {
	p.raw(`<article class="plugin" id="plugin-`)
	p.attr(v.Name)
	p.raw(`">
  <div class="head">
    <h3>`)
	p.text(v.Path)
	p.raw(`</h3>
    `)
	if v.Ping.OK {
		p.raw(`<span class="badge ok status">answers · `)
		p.text(v.Ping.Latency)
	} else {
		p.raw(`<span class="badge down status">down · `)
		p.text(v.Ping.Error)
	}
	p.raw(`</span>
  </div>
  <dl class="settings">
    <dt>URL</dt><dd class="wide"><code class="url">`)
	p.text(v.URLText)
	p.raw(`</code></dd>
    <dt>Expiration</dt><dd class="expiration">`)
	p.text(v.Expiration)
	p.raw(`</dd>
    <dt>Max key length</dt><dd class="max-key">`)
	p.text(v.MaxKeyText)
	p.raw(`</dd>
    <dt>Max value length</dt><dd class="max-value">`)
	p.text(v.MaxValText)
	p.raw(`</dd>
    <dt>Codec</dt><dd class="codec">`)
	p.text(v.Codec)
	p.raw(`</dd>
    <dt>Format</dt><dd class="format">`)
	p.text(string(v.Format))
	p.raw(`</dd>
    <dt>Order</dt><dd>`, strconv.Itoa(v.Order), `</dd>
    <dt>Near cache</dt><dd class="near-cache">`)
	p.text(v.NearCache.String())
	p.raw(`</dd>
    <dt>Warm-up</dt><dd class="warm">`)
	p.text(v.WarmText)
	p.raw(`</dd>
  </dl>
  `)
	if v.StatsError != "" {
		p.raw(`<p class="muted">Statistics: `)
		p.text(v.StatsError)
		p.raw(`</p>
`)
	} else {
		p.raw(`<table class="stats">
    <thead><tr><th>Server</th><th>Items</th><th>Memory</th><th>Hit ratio</th><th>Evictions</th><th>Uptime</th></tr></thead>
    <tbody>
`)
		for _, n := range v.Nodes {
			p.raw(`      <tr class="node"><td class="addr">`)
			p.text(n.Addr)
			if n.Error != "" {
				p.raw(`</td><td colspan="5" class="down">`)
				p.text(n.Error)
			} else {
				for _, c := range [...]struct{ class, v string }{
					{"items num", n.ItemsText()}, {"memory num", n.MemoryText()}, {"hit-ratio num", n.HitRatioText()},
					{"num", n.EvictionsText()}, {"num", n.UptimeText()},
				} {
					p.raw(`</td><td class="`, c.class, `">`)
					p.text(c.v)
				}
			}
			p.raw("</td></tr>\n")
		}
		p.raw(`    </tbody>
  </table>
`)
	}
	if d.SignedIn {
		p.raw(`  <details class="edit">
    <summary>Change this plugin</summary>
    <form method="post" action="`)
		p.urlAttr(d.Base + "plugin")
		p.raw(`" class="grid plugin-form">
      `)
		p.hidden("csrf", d.CSRF)
		p.raw(`
      `)
		p.hidden("plugin", v.Name)
		p.raw(`
      <label>URL <input type="text" name="url" value="`)
		p.attr(v.URL)
		p.raw(`" size="48" spellcheck="false" placeholder="memcached://host:11211 or redis://host:6379/0"></label>
      <label>Expiration (seconds or 1h30m; 0: never) <input type="text" name="expiration" value="`, strconv.FormatInt(v.ExpSeconds, 10), `"></label>
      <label>Max key length (0: no limit) <input type="number" name="max_key_length" value="`, strconv.Itoa(v.MaxKeyLen), `" min="0"></label>
      <label>Max value length (0: no limit) <input type="number" name="max_value_length" value="`, strconv.Itoa(v.MaxValueLen), `" min="0"></label>
      <label>Codec <select name="codec">`)
		for _, c := range d.Codecs {
			p.option(c, c, c == v.Codec)
		}
		p.raw(`</select></label>
      <label>Order <input type="number" name="order" value="`, strconv.Itoa(v.Order), `"></label>
      <label>Warm-up when the URL changes (seconds or 10m; 0: none) <input type="text" name="warm" value="`)
		p.attr(v.WarmValue)
		p.raw(`"></label>
      <p class="hint">A password in the URL shows as xxxxx; leave it so to keep it. The change applies at once to every Dict of this plugin in this program. With a warm-up, a new URL starts from the old servers' values: for that long a miss on the new servers reads the old ones and copies the value over.</p>
      <button type="submit">Apply</button>
    </form>
  </details>
`)
	}
	p.raw(`</article>
`)
}

// keyForm writes the key tester's form.
func (d *pageData) keyForm(p *page) {
	f := d.Form
	p.raw(`<form method="post" action="`)
	p.urlAttr(d.Base + "key")
	p.raw(`" class="grid" id="key-form">
  `)
	p.hidden("csrf", d.CSRF)
	p.raw(`
  <label>Plugin <select name="plugin">`)
	for _, v := range d.Plugins {
		p.option(v.Name, v.Name, v.Name == f.Plugin)
	}
	p.raw(`</select></label>
  <label>Prefix <input type="text" name="prefix" value="`)
	p.attr(f.Prefix)
	p.raw(`"></label>
  <label>Key <input type="text" name="key" value="`)
	p.attr(f.Key)
	p.raw(`" required></label>
  <label>Codec for writes <select name="codec">`)
	p.option("string", "string (as typed)", f.Codec == "string")
	p.option("", "plugin's codec (JSON value)", f.Codec == "")
	for _, c := range d.Codecs {
		if c != "raw" {
			p.option(c, c+" (JSON value)", c == f.Codec)
		}
	}
	p.raw(`</select></label>
  <label>TTL for writes (blank: plugin's) <input type="text" name="ttl" value="`)
	p.attr(f.TTL)
	p.raw(`"></label>
  <label class="wide">Value (for writes) <textarea name="value" rows="3" spellcheck="false">`)
	p.field(f.Value)
	p.raw(`</textarea></label>
  <div class="buttons">
    <button type="submit" name="action" value="read">Read</button>
    <button type="submit" name="action" value="write">Write</button>
    <button type="submit" name="action" value="delete" class="danger">Delete</button>
  </div>
</form>
`)
}
