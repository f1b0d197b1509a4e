package tool_test

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// A plugin's Dicts see the timeout of the plugin's current backend (its
// URL's timeout parameter), through the Tool's proxy and across a
// reconfiguration, so that a Dict call is bounded by it as a whole.
func TestPluginTimeout(t *testing.T) {
	ctx := context.Background()
	// memcached opens no connection before its first call: no server is
	// needed to read its timeout.
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin: tool.DefaultPluginConfig("memcached://127.0.0.1:1?timeout=123ms"),
	}})
	d := mustDict[string](t, tl, "p", "")
	// The plugin opens its backend at its first call, or when it is asked
	// its timeout (which a Dict asks before its first call, to bound it):
	// it never says none for a backend that has a timeout.
	if got := backend.Timeout(d.Backend()); got != 123*time.Millisecond {
		t.Errorf("Timeout through a plugin not opened yet = %v, want 123ms", got)
	}
	_, _, _ = d.Lookup(ctx, "k") // nothing listens there: it fails
	if got := backend.Timeout(d.Backend()); got != 123*time.Millisecond {
		t.Errorf("Timeout through the plugin = %v, want 123ms", got)
	}
	if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig("memcached://127.0.0.1:1?timeout=250ms")); err != nil {
		t.Fatal(err)
	}
	if got := backend.Timeout(d.Backend()); got != 250*time.Millisecond {
		t.Errorf("Timeout after the plugin moved = %v, want 250ms", got)
	}
	if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig("mem://")); err != nil {
		t.Fatal(err)
	}
	if got := backend.Timeout(d.Backend()); got != 0 {
		t.Errorf("Timeout on the memory backend = %v, want 0", got)
	}
}
