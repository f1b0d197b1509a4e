package tool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigGood(t *testing.T) {
	def := tool.DefaultPluginConfig
	with := func(pc tool.PluginConfig, f func(*tool.PluginConfig)) tool.PluginConfig { f(&pc); return pc }
	tests := []struct {
		name, file, content string
		want                tool.Config
	}{
		{"empty yaml", "c.yaml", "", tool.Config{}},
		{"empty json", "c.json", "  \n", tool.Config{}},
		{"yaml comments only", "c.yml", "# nothing\n", tool.Config{}},
		{"yaml site id only", "c.yaml", "site_id: shop\n", tool.Config{SiteID: "shop"}},
		{"yaml full", "c.yaml", `
site_id: shop
plugins:
  default_memcached_plugin:
    url: memcached://127.0.0.1:11211,127.0.0.1:11212?timeout=200ms
    expiration: 3600
    max_key_length: 250
    max_value_length: 2097152
    codec: json
    order: 0
  persistent_memcached_plugin:
    url: redis://:secret@127.0.0.1:6379/1
    expiration: 1h30m
    max_key_length: 0
    max_value_length: 0
    order: 1
`, tool.Config{SiteID: "shop", Plugins: map[string]tool.PluginConfig{
			"default": {URL: "memcached://127.0.0.1:11211,127.0.0.1:11212?timeout=200ms",
				Expiration: time.Hour, MaxKeyLen: 250, MaxValueLen: 2 << 20, Codec: "json"},
			"persistent_memcached_plugin": {URL: "redis://:secret@127.0.0.1:6379/1", Expiration: 90 * time.Minute, Order: 1},
		}}},
		{"yaml defaults", "c.yaml", "plugins:\n  other:\n    url: mem://\n", tool.Config{Plugins: map[string]tool.PluginConfig{
			"other": def("mem://")}}},
		{"yaml default plugin without url is mem", "c.yaml", "plugins:\n  default_memcached_plugin:\n    expiration: 60\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{"default": with(def("mem://"), func(p *tool.PluginConfig) { p.Expiration = time.Minute })}}},
		{"yaml empty default plugin", "c.yaml", "plugins:\n  default_memcached_plugin:\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{"default": def("mem://")}}},
		{"yaml erp5 host:port", "c.yaml", "plugins:\n  p:\n    url: 127.0.0.1:11211\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{"p": def("127.0.0.1:11211")}}},
		{"yaml quoted seconds", "c.yaml", "plugins:\n  p:\n    url: mem://\n    expiration: \"90\"\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{"p": with(def("mem://"), func(p *tool.PluginConfig) { p.Expiration = 90 * time.Second })}}},
		{"yaml fractional seconds", "c.yaml", "plugins:\n  p:\n    url: mem://\n    expiration: 1.5\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{"p": with(def("mem://"), func(p *tool.PluginConfig) { p.Expiration = 1500 * time.Millisecond })}}},
		{"json full", "c.json", `{
  "site_id": "shop",
  "plugins": {
    "default_memcached_plugin": {"url": "mem://", "expiration": 60, "codec": "gob", "order": 2},
    "persistent_memcached_plugin": {"url": "rediss://h:6380/0", "expiration": "2h", "max_key_length": 0, "max_value_length": 0, "order": 1}
  }
}`, tool.Config{SiteID: "shop", Plugins: map[string]tool.PluginConfig{
			"default":                     with(def("mem://"), func(p *tool.PluginConfig) { p.Expiration, p.Codec, p.Order = time.Minute, "gob", 2 }),
			"persistent_memcached_plugin": {URL: "rediss://h:6380/0", Expiration: 2 * time.Hour, Order: 1},
		}}},
		{"yaml generation refresh", "c.yaml", "plugins:\n  p:\n    url: mem://\n    generation_refresh: never\n  q:\n    url: mem://\n    generation_refresh: 5s\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationRefresh = -1 }),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationRefresh = 5 * time.Second }),
			}}},
		{"json generation refresh", "c.json", `{"plugins": {"p": {"url": "mem://", "generation_refresh": 2}, "q": {"url": "mem://", "generation_refresh": "never"}}}`,
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationRefresh = 2 * time.Second }),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationRefresh = -1 }),
			}}},
		{"yaml generation ttl", "c.yaml", "plugins:\n  p:\n    url: mem://\n    generation_ttl: never\n  q:\n    url: mem://\n    generation_ttl: 168h\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationTTL = -1 }),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationTTL = 168 * time.Hour }),
			}}},
		{"json generation ttl", "c.json", `{"plugins": {"p": {"url": "mem://", "generation_ttl": 86400}, "q": {"url": "mem://", "generation_ttl": "never"}}}`,
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationTTL = 24 * time.Hour }),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.GenerationTTL = -1 }),
			}}},
		{"json null expiration", "c.json", `{"plugins": {"p": {"url": "mem://", "expiration": null}}}`,
			tool.Config{Plugins: map[string]tool.PluginConfig{"p": def("mem://")}}},
		{"yaml near cache", "c.yaml", "plugins:\n  p:\n    url: mem://\n    near_cache:\n      max_entries: 500\n      max_bytes: 1048576\n      max_stale: 1.5\n" +
			"  q:\n    url: mem://\n    near_cache: {}\n  r:\n    url: mem://\n    near_cache:\n",
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) {
					p.NearCache = &tool.NearCacheConfig{MaxEntries: 500, MaxBytes: 1 << 20, MaxStale: 1500 * time.Millisecond}
				}),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.NearCache = &tool.NearCacheConfig{} }),
				"r": def("mem://"),
			}}},
		{"yaml format", "c.yaml", "site_id: erp5_site\nplugins:\n  p:\n    url: 127.0.0.1:11211\n    format: erp5\n  q:\n    url: mem://\n    format: memdict\n",
			tool.Config{SiteID: "erp5_site", Plugins: map[string]tool.PluginConfig{
				"p": with(def("127.0.0.1:11211"), func(p *tool.PluginConfig) { p.Format = memdict.FormatERP5 }),
				"q": with(def("mem://"), func(p *tool.PluginConfig) { p.Format = memdict.FormatMemdict }),
			}}},
		{"json format", "c.json", `{"plugins": {"p": {"url": "mem://", "format": "python"}}}`,
			tool.Config{Plugins: map[string]tool.PluginConfig{"p": with(def("mem://"), func(p *tool.PluginConfig) { p.Format = memdict.FormatPython })}}},
		{"json near cache", "c.json", `{"plugins": {"p": {"url": "mem://", "near_cache": {"max_entries": 500, "max_stale": "30s"}}}}`,
			tool.Config{Plugins: map[string]tool.PluginConfig{
				"p": with(def("mem://"), func(p *tool.PluginConfig) {
					p.NearCache = &tool.NearCacheConfig{MaxEntries: 500, MaxStale: 30 * time.Second}
				}),
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			got, err := tool.LoadConfig(path)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadConfig =\n%+v\nwant\n%+v", got, tt.want)
			}
			if _, err := tool.New(got); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestLoadConfigBad(t *testing.T) {
	tests := []struct {
		name, file, content string
		line                int    // 0: don't check
		plugin, field       string // as the *ConfigError says
		msg                 string // in the error text
	}{
		{"unknown extension", "c.toml", "", 0, "", "", "extension"},
		{"yaml syntax", "c.yaml", "plugins: [\n", 0, "", "", "yaml"},
		{"yaml not a mapping", "c.yaml", "- a\n", 1, "", "", "want a mapping"},
		{"yaml two documents", "c.yaml", "site_id: a\n---\nsite_id: b\n", 0, "", "", "more than one"},
		{"yaml unknown top field", "c.yaml", "site_id: a\nplugin: {}\n", 2, "", "plugin", "unknown field"},
		{"yaml unknown plugin field", "c.yaml", "plugins:\n  p:\n    url: mem://\n    urll: x\n", 4, "p", "urll", "unknown field"},
		{"yaml erp5 field name", "c.yaml", "plugins:\n  p:\n    url_string: 127.0.0.1:11211\n", 3, "p", "url_string", "unknown field"},
		{"yaml missing url", "c.yaml", "plugins:\n  p:\n    expiration: 1\n", 2, "p", "url", "missing"},
		{"yaml unknown scheme", "c.yaml", "plugins:\n  p:\n    url: ftp://h\n", 3, "p", "url", "unknown URL scheme"},
		{"yaml unparseable url", "c.yaml", "plugins:\n  p:\n    url: \"memcached://h:port:x\"\n", 3, "p", "url", "invalid port"},
		{"yaml bad url hides password", "c.yaml", "plugins:\n  p:\n    url: \"ftp://u:hunter2@h\"\n", 3, "p", "url", "xxxxx"},
		{"yaml negative expiration", "c.yaml", "plugins:\n  p:\n    url: mem://\n    expiration: -5\n", 4, "p", "expiration", "negative"},
		{"yaml negative duration", "c.yaml", "plugins:\n  p:\n    url: mem://\n    expiration: -1h\n", 4, "p", "expiration", "negative"},
		{"yaml bad duration", "c.yaml", "plugins:\n  p:\n    url: mem://\n    expiration: soon\n", 4, "p", "expiration", "duration"},
		{"yaml small max key", "c.yaml", "plugins:\n  p:\n    url: mem://\n    max_key_length: 10\n", 4, "p", "max_key_length", "at least 80"},
		{"yaml negative max value", "c.yaml", "plugins:\n  p:\n    url: mem://\n    max_value_length: -1\n", 4, "p", "max_value_length", "negative"},
		{"yaml non-integer length", "c.yaml", "plugins:\n  p:\n    url: mem://\n    max_value_length: 1MB\n", 4, "p", "max_value_length", "integer"},
		{"yaml unknown codec", "c.yaml", "plugins:\n  p:\n    url: mem://\n    codec: pickle\n", 4, "p", "codec", "msgpack"},
		{"yaml bad plugin name", "c.yaml", "plugins:\n  a/b:\n    url: mem://\n", 2, "a/b", "", "plugin name"},
		{"yaml plugins not a mapping", "c.yaml", "plugins: [a]\n", 1, "", "plugins", "mapping"},
		{"yaml plugin not a mapping", "c.yaml", "plugins:\n  p: mem://\n", 2, "p", "", "mapping"},
		{"yaml duplicate field", "c.yaml", "plugins:\n  p:\n    url: mem://\n    url: mem://\n", 4, "p", "url", ""},
		{"yaml site id not a string", "c.yaml", "site_id: [a]\n", 1, "", "site_id", "string"},
		{"yaml negative refresh", "c.yaml", "plugins:\n  p:\n    url: mem://\n    generation_refresh: -1\n", 4, "p", "generation_refresh", "never"},
		{"yaml negative generation ttl", "c.yaml", "plugins:\n  p:\n    url: mem://\n    generation_ttl: -1h\n", 4, "p", "generation_ttl", "never"},
		{"yaml bad refresh", "c.yaml", "plugins:\n  p:\n    url: mem://\n    generation_refresh: sometimes\n", 4, "p", "generation_refresh", "duration"},
		{"json bad refresh", "c.json", `{"plugins": {"p": {"url": "mem://", "generation_refresh": "-1s"}}}`, 0, "p", "generation_refresh", "negative"},
		{"yaml redis unknown parameter", "c.yaml", "plugins:\n  x:\n    url: redis://127.0.0.1:1?nope=1\n", 3, "x", "url", `redis: unknown parameter(s) nope`},
		{"yaml rediss bad value", "c.yaml", "plugins:\n  x:\n    url: rediss://127.0.0.1:1?pool_size=many\n", 3, "x", "url", `pool_size="many"`},
		{"yaml memcached unknown parameter", "c.yaml", "plugins:\n  x:\n    url: memcached://127.0.0.1:1?timout=1s\n", 3, "x", "url", `memcached: unknown parameter(s) timout`},
		{"yaml memcached bad value", "c.yaml", "plugins:\n  x:\n    url: memcached://127.0.0.1:1?timeout=soon\n", 3, "x", "url", `timeout="soon"`},
		{"yaml memcached server list bad value", "c.yaml", "plugins:\n  x:\n    url: 127.0.0.1:1?failure_limit=-1\n", 3, "x", "url", `failure_limit="-1"`},
		{"yaml memcached path", "c.yaml", "plugins:\n  x:\n    url: memcached://127.0.0.1:1/0\n", 3, "x", "url", `no databases`},
		{"yaml mem unknown parameter", "c.yaml", "plugins:\n  x:\n    url: mem://?max_byte=1\n", 3, "x", "url", `memory: unknown parameter(s) max_byte`},
		{"yaml bad parameter hides password", "c.yaml", "plugins:\n  x:\n    url: redis://u:hunter2@127.0.0.1:1?nope=1\n", 3, "x", "url", "xxxxx"},
		{"json redis unknown parameter", "c.json", `{"plugins": {"x": {"url": "redis://127.0.0.1:1?nope=1"}}}`, 0, "x", "url", "nope"},
		{"json syntax", "c.json", "{\n\"plugins\": {\n\"p\": {,}}}", 3, "", "", ""},
		{"json unknown top field", "c.json", `{"site": "a"}`, 0, "", "site", "unknown field"},
		{"json unknown plugin field", "c.json", `{"plugins": {"p": {"url": "mem://", "ttl": 5}}}`, 0, "p", "ttl", "unknown field"},
		{"json missing url", "c.json", `{"plugins": {"p": {}}}`, 0, "p", "url", "missing"},
		{"json bad url", "c.json", `{"plugins": {"p": {"url": "gopher://h"}}}`, 0, "p", "url", "unknown URL scheme"},
		{"json negative expiration", "c.json", `{"plugins": {"p": {"url": "mem://", "expiration": -1}}}`, 0, "p", "expiration", "negative"},
		{"json wrong type", "c.json", `{"plugins": {"p": {"url": "mem://", "order": "first"}}}`, 0, "p", "order", "int"},
		{"json trailing data", "c.json", `{} {}`, 0, "", "", "after"},
		{"yaml near cache not a mapping", "c.yaml", "plugins:\n  p:\n    url: mem://\n    near_cache: yes\n", 4, "p", "near_cache", "max_entries, max_bytes, max_stale"},
		{"yaml near cache unknown field", "c.yaml", "plugins:\n  p:\n    url: mem://\n    near_cache:\n      entries: 5\n", 5, "p", "near_cache.entries", "unknown field"},
		{"yaml near cache negative entries", "c.yaml", "plugins:\n  p:\n    url: mem://\n    near_cache:\n      max_entries: -5\n", 5, "p", "near_cache.max_entries", "negative"},
		{"yaml near cache bad stale", "c.yaml", "plugins:\n  p:\n    url: mem://\n    near_cache:\n      max_stale: soon\n", 5, "p", "near_cache.max_stale", "duration"},
		{"json near cache negative stale", "c.json", `{"plugins": {"p": {"url": "mem://", "near_cache": {"max_stale": "-1s"}}}}`, 0, "p", "near_cache.max_stale", "negative"},
		{"yaml unknown format", "c.yaml", "plugins:\n  p:\n    url: mem://\n    format: pickle\n", 4, "p", "format", "known: memdict, erp5, python"},
		{"json format not a string", "c.json", `{"plugins": {"p": {"url": "mem://", "format": 1}}}`, 0, "p", "format", ""},
		{"yaml format erp5 on redis", "c.yaml", "plugins:\n  p:\n    url: redis://127.0.0.1:6379/0\n    format: erp5\n", 4, "p", "format", "needs memcached"},
		{"yaml format erp5 with a near cache", "c.yaml", "plugins:\n  p:\n    url: mem://\n    format: erp5\n    near_cache: {}\n", 5, "p", "near_cache", "not available with format: erp5"},
		{"json near cache bytes not a number", "c.json", `{"plugins": {"p": {"url": "mem://", "near_cache": {"max_bytes": "1MB"}}}}`, 0, "p", "near_cache.max_bytes", "integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			_, err := tool.LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig: no error")
			}
			if !errors.Is(err, tool.ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			var ce *tool.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is no *ConfigError", err, err)
			}
			if ce.File != path {
				t.Errorf("File = %q, want %q", ce.File, path)
			}
			if ce.Plugin != tt.plugin || ce.Field != tt.field {
				t.Errorf("Plugin, Field = %q, %q; want %q, %q (%v)", ce.Plugin, ce.Field, tt.plugin, tt.field, err)
			}
			if tt.line != 0 && ce.Line != tt.line {
				t.Errorf("Line = %d, want %d (%v)", ce.Line, tt.line, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q should name the file and say %q", msg, tt.msg)
			}
			if tt.plugin != "" && !strings.Contains(msg, `plugin "`+tt.plugin+`"`) {
				t.Errorf("error %q should name plugin %q", msg, tt.plugin)
			}
			if tt.field != "" && !strings.Contains(msg, `field "`+tt.field+`"`) {
				t.Errorf("error %q should name field %q", msg, tt.field)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows a password", msg)
			}
		})
	}
}

func TestLoadConfigSeveralProblems(t *testing.T) {
	path := writeFile(t, "c.yaml", "plugins:\n  a:\n    url: mem://\n    expiration: -1\n  b:\n    url: nope://\n")
	_, err := tool.LoadConfig(path)
	for _, want := range []string{`plugin "a": field "expiration"`, `plugin "b": field "url"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v should contain %q", err, want)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := tool.LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("LoadConfig of a missing file: %v", err)
	}
}

// TestLoadConfigBoundsSize guards against LoadConfig reading a huge file
// whole (it allocated 256 MiB for a 256 MiB file before reporting a parse
// error): a configuration is a few KiB, and a file larger than
// MaxConfigSize (a wrong path, a log file renamed, a device behind a
// symlink) is a *ConfigError naming the file, found by its size; a file of
// MaxConfigSize bytes is still read.
func TestLoadConfigBoundsSize(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	paths := []string{huge}
	// A FIFO has no size to stat: it is read up to the bound. Its writer
	// gives 16 MiB, then ends (an error once the reader is gone).
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err == nil {
		paths = append(paths, fifo)
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			defer w.Close()
			line := []byte(strings.Repeat("#", 1023) + "\n")
			for range 16 << 10 {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		}()
	}
	for _, path := range paths {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := tool.LoadConfig(path)
		runtime.ReadMemStats(&after)
		var ce *tool.ConfigError
		if !errors.As(err, &ce) || ce.File != path || !errors.Is(err, tool.ErrConfig) || !strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", tool.MaxConfigSize)) {
			t.Errorf("LoadConfig(%s): %v, want a *ConfigError naming the file and its size", path, err)
		}
		// Reading up to the bound takes some 2*MaxConfigSize; the
		// margin is for what the rest of the process allocates meanwhile.
		if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
			t.Errorf("LoadConfig(%s) allocated %d MiB", path, n>>20)
		}
	}
	head := "site_id: edge\n"
	edge := head + strings.Repeat("#", tool.MaxConfigSize-len(head)-1) + "\n"
	cfg, err := tool.LoadConfig(writeFile(t, "edge.yaml", edge))
	if err != nil || cfg.SiteID != "edge" {
		t.Errorf("LoadConfig of a file of MaxConfigSize bytes: %+v, %v", cfg.SiteID, err)
	}
	if _, err := tool.LoadConfig(writeFile(t, "over.yaml", edge+"\n")); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("LoadConfig of a file of MaxConfigSize+1 bytes: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := tool.ParseConfig([]byte(`{"site_id": "x"}`), "json")
	if err != nil || cfg.SiteID != "x" {
		t.Errorf("ParseConfig json = %+v, %v", cfg, err)
	}
	cfg, err = tool.ParseConfig([]byte("site_id: y\n"), "yaml")
	if err != nil || cfg.SiteID != "y" {
		t.Errorf("ParseConfig yaml = %+v, %v", cfg, err)
	}
	if _, err := tool.ParseConfig(nil, "toml"); !errors.Is(err, tool.ErrConfig) {
		t.Errorf("ParseConfig toml: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name          string
		cfg           tool.Config
		plugin, field string
	}{
		{"zero", tool.Config{}, "", ""},
		{"default", tool.DefaultConfig(), "", ""},
		{"empty url", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {}}}, "p", "url"},
		{"negative expiration", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "mem://", Expiration: -time.Second}}}, "p", "expiration"},
		{"small key length", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "mem://", MaxKeyLen: 79}}}, "p", "max_key_length"},
		{"negative key length", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "mem://", MaxKeyLen: -1}}}, "p", "max_key_length"},
		{"codec", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "mem://", Codec: "xml"}}}, "p", "codec"},
		{"name", tool.Config{Plugins: map[string]tool.PluginConfig{"": {URL: "mem://"}}}, "", ""},
		{"unknown url parameter", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "redis://127.0.0.1:1?nope=1"}}}, "p", "url"},
		{"bad url value", tool.Config{Plugins: map[string]tool.PluginConfig{"p": {URL: "memcached://127.0.0.1:1?batch=maybe"}}}, "p", "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, nerr := tool.New(tt.cfg)
			if (err == nil) != (nerr == nil) {
				t.Errorf("Validate: %v, but New: %v", err, nerr)
			}
			if tt.plugin == "" && tt.field == "" && tt.name != "name" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			var ce *tool.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate: %v, want a *ConfigError", err)
			}
			if ce.Plugin != tt.plugin || ce.Field != tt.field || ce.File != "" {
				t.Errorf("ConfigError = %+v, want plugin %q field %q", ce, tt.plugin, tt.field)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	file := writeFile(t, "c.yaml", "site_id: fromfile\nplugins:\n  default_memcached_plugin:\n    url: memcached://h:11211\n    expiration: 60\n  other:\n    url: mem://\n")
	tests := []struct {
		name    string
		env     map[string]string
		want    tool.Config
		wantErr string
	}{
		{"nothing", nil, tool.DefaultConfig(), ""},
		{"url", map[string]string{"MEMDICT_URL": "redis://h:6379"},
			tool.Config{Plugins: map[string]tool.PluginConfig{"default": tool.DefaultPluginConfig("redis://h:6379")}}, ""},
		{"site id", map[string]string{"MEMDICT_SITE_ID": "s"},
			tool.Config{SiteID: "s", Plugins: tool.DefaultConfig().Plugins}, ""},
		{"file", map[string]string{"MEMDICT_CONFIG": file}, tool.Config{SiteID: "fromfile", Plugins: map[string]tool.PluginConfig{
			"default": {URL: "memcached://h:11211", Expiration: time.Minute, MaxKeyLen: 250, MaxValueLen: 1 << 20},
			"other":   tool.DefaultPluginConfig("mem://"),
		}}, ""},
		{"file and overrides", map[string]string{"MEMDICT_CONFIG": file, "MEMDICT_URL": "mem://", "MEMDICT_SITE_ID": "env"},
			tool.Config{SiteID: "env", Plugins: map[string]tool.PluginConfig{
				"default": {URL: "mem://", Expiration: time.Minute, MaxKeyLen: 250, MaxValueLen: 1 << 20},
				"other":   tool.DefaultPluginConfig("mem://"),
			}}, ""},
		{"bad url", map[string]string{"MEMDICT_URL": "bogus://x"}, tool.Config{}, `$MEMDICT_URL: plugin "default": field "url"`},
		{"missing file", map[string]string{"MEMDICT_CONFIG": "/nonexistent/memdict.yaml"}, tool.Config{}, "/nonexistent/memdict.yaml"},
		{"unknown url parameter", map[string]string{"MEMDICT_URL": "memcached://127.0.0.1:1?nope=1"}, tool.Config{}, `$MEMDICT_URL: plugin "default": field "url": backend: URL "memcached://127.0.0.1:1?nope=1": memcached: unknown parameter(s) nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"MEMDICT_CONFIG", "MEMDICT_URL", "MEMDICT_SITE_ID"} {
				t.Setenv(k, tt.env[k])
				if _, ok := tt.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			got, err := tool.ConfigFromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigFromEnv: %v, want an error with %q", err, tt.wantErr)
				}
				if _, err := tool.FromEnv(); err == nil {
					t.Error("FromEnv: no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConfigFromEnv =\n%+v\nwant\n%+v", got, tt.want)
			}
			tl, err := tool.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer tl.Close()
			if tl.SiteID() != tt.want.SiteID {
				t.Errorf("SiteID = %q, want %q", tl.SiteID(), tt.want.SiteID)
			}
		})
	}
}

// The defaults of a plugin are memdict's.
func TestDefaultPluginConfig(t *testing.T) {
	pc := tool.DefaultPluginConfig("mem://")
	if pc.MaxKeyLen != memdict.DefaultMaxKeyLen || pc.MaxValueLen != memdict.DefaultMaxValueLen || pc.Expiration != 0 {
		t.Errorf("DefaultPluginConfig = %+v", pc)
	}
	if err := pc.Validate(); err != nil {
		t.Error(err)
	}
	if err := (tool.PluginConfig{URL: "nope://"}).Validate(); !errors.Is(err, backend.ErrUnknownScheme) {
		t.Errorf("Validate of an unknown scheme: %v", err)
	}
}

// The example configuration shipped in examples/ stays valid.
func TestExampleConfigFile(t *testing.T) {
	cfg, err := tool.LoadConfig("../examples/memdict.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SiteID == "" || len(cfg.Plugins) != 2 {
		t.Errorf("examples/memdict.yaml: %+v", cfg)
	}
	// Neutral names: "default" and "persistent", not ERP5's.
	p, ok := cfg.Plugins["persistent"]
	if !ok || !strings.HasPrefix(p.URL, "redis://") || p.MaxKeyLen != 0 || p.MaxValueLen != 0 {
		t.Errorf("persistent plugin: %+v", p)
	}
	if d, ok := cfg.Plugins[tool.DefaultPlugin]; !ok || d.Expiration != time.Hour || d.MaxKeyLen != 250 {
		t.Errorf("default plugin: %+v", d)
	}
}

func TestConfigFromGetenv(t *testing.T) {
	env := map[string]string{"MEMDICT_URL": "mem://?max_bytes=1000", "MEMDICT_SITE_ID": "own"}
	cfg, err := tool.ConfigFromGetenv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SiteID != "own" || cfg.Plugins[tool.DefaultPlugin].URL != "mem://?max_bytes=1000" {
		t.Errorf("ConfigFromGetenv = %+v", cfg)
	}
}

// tool.Load and tool.FromEnv reject a plugin URL with an unknown parameter
// or a bad value at once, naming the file (or variable), the plugin and the
// parameter, rather than failing at the first call as "server unavailable".
func TestLoadAndFromEnvValidateURLParameters(t *testing.T) {
	path := writeFile(t, "memdict.yaml", "plugins:\n  x:\n    url: redis://127.0.0.1:1?nope=1\n  y:\n    url: memcached://127.0.0.1:1?timeout=fast\n")
	_, err := tool.Load(path)
	if err == nil {
		t.Fatal("Load: no error")
	}
	for _, want := range []string{
		path + `:3: plugin "x": field "url": backend: URL "redis://127.0.0.1:1?nope=1": redis: unknown parameter(s) nope`,
		path + `:5: plugin "y": field "url": backend: URL "memcached://127.0.0.1:1?timeout=fast": memcached: parameter timeout="fast"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load: %v\nshould contain %q", err, want)
		}
	}
	for _, env := range []map[string]string{
		{"MEMDICT_URL": "mem://?nope=1"},
		{"MEMDICT_CONFIG": path},
	} {
		getenv := func(k string) string { return env[k] }
		if _, err := tool.ConfigFromGetenv(getenv); !errors.Is(err, tool.ErrConfig) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("ConfigFromGetenv(%v): %v, want a *ConfigError naming nope", env, err)
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := tool.FromEnv(); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("FromEnv(%v): %v, want an error naming nope", env, err)
		}
		os.Unsetenv("MEMDICT_URL")
		os.Unsetenv("MEMDICT_CONFIG")
	}
}

// YAML and JSON go through one front-end: the same configuration means
// the same, JSON that yaml.v3 would refuse (\/, tabs) reads, problems in
// JSON files name their line, and null is as if the field were absent.
func TestConfigFormatsAgree(t *testing.T) {
	yamlText := "site_id: s\nplugins:\n  p:\n    url: \"mem://\"\n    expiration: 90\n    codec: json\n    generation_refresh: never\n    order: ~\n"
	jsonText := "{\n\t\"site_id\": \"s\",\n\t\"plugins\": {\"p\": {\"url\": \"mem:\\/\\/\", \"expiration\": 90,\n\t\t\"codec\": \"json\", \"generation_refresh\": \"never\", \"order\": null}}\n}\n"
	fromYAML, err := tool.ParseConfig([]byte(yamlText), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := tool.ParseConfig([]byte(jsonText), "json")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) || fromJSON.Plugins["p"].Expiration != 90*time.Second {
		t.Fatalf("YAML gives %+v, JSON %+v", fromYAML, fromJSON)
	}
	path := writeFile(t, "c.json", "{\"plugins\": {\n  \"p\": {\n    \"url\": \"mem://\",\n    \"expiration\": \"soon\"}}}")
	_, err = tool.LoadConfig(path)
	var ce *tool.ConfigError
	if !errors.As(err, &ce) || ce.Line != 4 || ce.Plugin != "p" || ce.Field != "expiration" {
		t.Errorf("bad JSON expiration: %v, want line 4, plugin p, field expiration", err)
	}
}

// ERP5's name of the default plugin is the default plugin: in files, in a
// Config and in paths. Defining it beside "default" is an error that says
// why, not a second plugin.
func TestERP5DefaultPluginName(t *testing.T) {
	path := writeFile(t, "c.yaml", "plugins:\n  default:\n    url: mem://\n  default_memcached_plugin:\n    url: mem://\n")
	if _, err := tool.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "defined twice (default_memcached_plugin is ERP5's name of the default plugin, default)") {
		t.Errorf("LoadConfig with both names: %v", err)
	}
	both := tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin:     tool.DefaultPluginConfig("mem://"),
		tool.ERP5DefaultPlugin: tool.DefaultPluginConfig("mem://"),
	}}
	if _, err := tool.New(both); !errors.Is(err, tool.ErrConfig) || !strings.Contains(err.Error(), "ERP5's name of the default plugin") {
		t.Errorf("New with both names: %v", err)
	}
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.ERP5DefaultPlugin: {URL: "mem://", Expiration: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	if ps := tl.Plugins(); len(ps) != 1 || ps[0].Name != tool.DefaultPlugin || ps[0].Expiration != time.Hour {
		t.Errorf("New with ERP5's name: plugins %+v, want one, default, with its expiration", ps)
	}
	if err := tl.SetPlugin(context.Background(), "portal_memcached/"+tool.ERP5DefaultPlugin, tool.DefaultPluginConfig("mem://")); err != nil {
		t.Errorf("SetPlugin through ERP5's path: %v", err)
	}
	if info, _ := tl.Plugin(""); info.Expiration != 0 {
		t.Errorf("SetPlugin through ERP5's path did not change the default plugin: %+v", info)
	}
	if err := tl.Configure(context.Background(), both); err == nil {
		t.Error("Configure with both names: no error")
	}
}

// A top-level field given twice is an error, as a plugin's field and a
// plugin's name are: a second "plugins" dropped the first's plugins, and a
// second "site_id" won, silently.
func TestConfigTopLevelFieldTwice(t *testing.T) {
	for _, c := range []struct{ format, data, field string }{
		{"yaml", "plugins:\n  sessions:\n    url: mem://\nplugins:\n  other:\n    url: mem://\n", "plugins"},
		{"json", `{"plugins":{"sessions":{"url":"mem://"}},"plugins":{"other":{"url":"mem://"}}}`, "plugins"},
		{"yaml", "site_id: shop\nsite_id: blog\n", "site_id"},
	} {
		cfg, err := tool.ParseConfig([]byte(c.data), c.format)
		if err == nil || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("%s %q: %v (config %+v); want an error saying %s is given twice", c.format, c.data, err, cfg, c.field)
		}
	}
}

// A TTL too large for a time.Duration is refused as too large: one that
// rounds to 2^63 nanoseconds passed the check and overflowed to a
// negative TTL ("is negative" in the config, the CLI and the admin page).
func TestParseTTLTooLarge(t *testing.T) {
	for _, s := range []string{"9223372036.854775807", "9223372036.8547758", "1e300"} {
		if d, err := tool.ParseTTL(s); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("ParseTTL(%q) = %v, %v; want an error saying it is too large", s, d, err)
		}
	}
	_, err := tool.ParseConfig([]byte("plugins:\n  a:\n    url: mem://\n    expiration: 9223372036.854775807\n"), "yaml")
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("expiration 9223372036.854775807: %v; want an error saying it is too large", err)
	}
	if d, err := tool.ParseTTL("9223372035"); err != nil || d <= 0 {
		t.Errorf("ParseTTL of the largest whole seconds = %v, %v", d, err)
	}
}

// A TTL shorter than a nanosecond is refused: truncated to 0 it meant
// "never", the opposite of what was asked ("1e-10" made a value that
// never expires).
func TestParseTTLTooSmall(t *testing.T) {
	for _, s := range []string{"1e-10", "-1e-10", "0.0000000001", "0.5ns", "0.9ns"} {
		if d, err := tool.ParseTTL(s); err == nil || !strings.Contains(err.Error(), "shorter than a nanosecond") {
			t.Errorf("ParseTTL(%q) = %v, %v; want an error saying it is shorter than a nanosecond", s, d, err)
		}
	}
	_, err := tool.ParseConfig([]byte("plugins:\n  a:\n    url: mem://\n    expiration: 1e-10\n"), "yaml")
	if err == nil || !strings.Contains(err.Error(), "shorter than a nanosecond") {
		t.Errorf("expiration 1e-10: %v; want an error saying it is shorter than a nanosecond", err)
	}
	for s, want := range map[string]time.Duration{"0": 0, "0s": 0, "0.0": 0, "0h0m": 0, "1ns": 1, "1e-9": 1, "0.5": 500 * time.Millisecond} {
		if d, err := tool.ParseTTL(s); err != nil || d != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", s, d, err, want)
		}
	}
}

// A JSON number no float64 holds is an error naming it, not an infinity
// stored in its place (the CLI's put --typed, load and the admin page's key
// tester stored +Inf for 1e999).
func TestParseJSONOutOfRange(t *testing.T) {
	for _, s := range []string{"1e999", "-1e999", `{"a":[1e400]}`} {
		if v, err := tool.ParseJSON([]byte(s)); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("ParseJSON(%q) = %v, %v; want an error naming the number", s, v, err)
		}
	}
	if v, err := tool.ParseJSON([]byte(`{"a":[1.5, 18446744073709551615, -3]}`)); err != nil {
		t.Errorf("ParseJSON of numbers in range: %v, %v", v, err)
	}
}

// TestConfigErrorHidesSlashPassword guards against a config error showing
// a password that holds an unescaped "/" after digits, as generated
// (base64) passwords may: "redis://u:123/s3cret@h:6379/0" parses as host
// "u", port 123 and path "/s3cret@h:6379/0", and the drivers quoted that
// path ("bad database "s3cret@h:6379/0"", "URL path "/s3cret@h:11211"").
// Likewise a "?" (the rest was quoted twice: the URL whole, and "unknown
// parameter(s) s3cret@h:6379/0") or a "#" (no error at all: the URL
// opened on host "u", port 123, and Redact returned it whole).
func TestConfigErrorHidesSlashPassword(t *testing.T) {
	for _, u := range []string{
		"redis://u:123/s3cret@h:6379/0",
		"redis://:123/s3cret@h:6379/0?cluster=true",
		"memcached://u:123/s3cret@h:11211",
		// A "?" or "#" in the password: the rest is the query (quoted as
		// an unknown parameter) or the fragment (ignored: the URL opened
		// on host "u", port 123).
		"redis://u:123?s3cret@h:6379/0",
		"redis://u:123?s3cret@h&s3cret@h:6379/0",
		"redis://u:123#s3cret@h:6379/0",
		"memcached://:123#s3cret@h:11211",
	} {
		_, err := tool.ConfigFromGetenv(func(k string) string {
			if k == tool.EnvURL {
				return u
			}
			return ""
		})
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "123") || !strings.Contains(err.Error(), `"@"`) {
			t.Errorf("MEMDICT_URL=%s: error %v; want one that says the URL holds \"@\" where it should not, without the password", u, err)
		}
	}
}

// TestJSONConfigHostileShape guards the JSON reader against a file within
// MaxConfigSize shaped to cost: it counted the lines before every token
// from the start of the file (a 2 MiB file of small tokens took 57 s of
// CPU; this one, 1 MiB of 3-byte tokens, 9.4 s, 0.33 s now) and went one
// call deeper per level of nesting (1 MiB of "[" took 256 MB of stack and
// 31 s). Both are refused or read in a moment now.
func TestJSONConfigHostileShape(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"site_id": "s", "x": [`)
	for b.Len() < tool.MaxConfigSize-64 {
		b.WriteString("1,\n")
	}
	b.WriteString("1],\n\"y\": 1}")
	path := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := tool.LoadConfig(path)
	// The lines still count: "y" is on the last line.
	lines := strings.Count(b.String(), "\n") + 1
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`big.json:%d: field "y"`, lines)) {
		t.Errorf("error %v; want one naming line %d's field \"y\"", err, lines)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("reading a %d KiB JSON configuration of %d tokens took %v", b.Len()>>10, lines, d)
	}

	deep := strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20)
	_, err = tool.ParseConfig([]byte(deep), "json")
	if err == nil || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("1 MiB of nested arrays: error %v, want one saying the file is nested too deep", err)
	}
}
