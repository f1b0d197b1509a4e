package redis

import (
	"context"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// Describe names the system and the server with go-redis's pool
// statistics, without I/O, also through a wrapper.
func TestDescribe(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout+"&batch=false")
	if d := b.Describe(); d.System != "redis" || len(d.Servers) != 1 || d.Servers[0].Addr != p.Addr || d.Servers[0].Open != 0 {
		t.Fatalf("Describe before any call = %+v", d)
	}
	for range 3 {
		_, _ = b.Get(context.Background(), "k")
	}
	d := backend.Describe(backend.Wrap(b))
	if d.System != "redis" || len(d.Servers) != 1 || d.Servers[0].Addr != p.Addr || d.Servers[0].Open < 1 || d.Servers[0].Idle < 1 {
		t.Fatalf("Describe through a wrapper after calls = %+v", d)
	}
}
