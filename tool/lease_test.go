package tool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// A plugin's backend forwards memcached's leases, and says it has none
// over a store without them, so that GetOrLoad through a Tool
// coordinates fills as it does on the driver itself.
func TestPluginLeases(t *testing.T) {
	mc := testserver.Memcached(t)
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{
		"mc": {URL: "memcached://" + mc.Addr},
	}}, tool.WithBackend("mem", memory.New()))
	ctx := t.Context()

	be, err := tl.Backend(ctx, "mc")
	if err != nil {
		t.Fatal(err)
	}
	l := be.(backend.Leaser)
	key := "plugin-lease-" + time.Now().Format("150405.000000000")
	first, err := l.GetLease(ctx, key, backend.LeaseOptions{TTL: 5 * time.Second})
	if err != nil || first.Found || !first.Won {
		t.Fatalf("first GetLease = %+v, %v; want a won lease on a miss", first, err)
	}
	second, err := l.GetLease(ctx, key, backend.LeaseOptions{TTL: 5 * time.Second})
	if err != nil || second.Won || !second.Busy {
		t.Fatalf("second GetLease = %+v, %v; want busy", second, err)
	}
	if err := l.ReleaseLease(ctx, first); err != nil {
		t.Fatal(err)
	}

	mem, err := tl.Backend(ctx, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.(backend.Leaser).GetLease(ctx, key, backend.LeaseOptions{TTL: time.Second}); !errors.Is(err, backend.ErrNotSupported) {
		t.Fatalf("GetLease over memory = %v; want ErrNotSupported", err)
	}
	// GetOrLoad through two Dicts (two processes' worth of flights) on
	// the plugin loads once.
	var loads atomic.Int32
	loader := func(ctx context.Context, k string) (string, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond)
		return "v", nil
	}
	d1, _ := memdict.New[string](be, "pl")
	d2, _ := memdict.New[string](be, "pl")
	done := make(chan error, 2)
	for _, d := range []*memdict.Dict[string]{d1, d2} {
		go func() {
			v, err := d.GetOrLoad(ctx, key, loader)
			if err == nil && v != "v" {
				err = errors.New("wrong value " + v)
			}
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads through the plugin, want 1", n)
	}
}
