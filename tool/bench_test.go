package tool_test

import (
	"context"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/tool"
)

// The cost of the Tool's reconfigurable backend: a Get through a Tool's
// Dict against one on the bare store.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	direct, err := memdict.New[int](store, "p")
	if err != nil {
		b.Fatal(err)
	}
	tl := newTool(b, tool.Config{}, tool.WithBackend(tool.DefaultPlugin, store))
	viaTool := mustDict[int](b, tl, "q", "")
	for _, c := range []struct {
		name string
		d    *memdict.Dict[int]
	}{{"direct", direct}, {"tool", viaTool}} {
		name, d := c.name, c.d
		if err := d.Put("k", 1); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok, err := d.Lookup(ctx, "k"); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
			})
		})
	}
}
