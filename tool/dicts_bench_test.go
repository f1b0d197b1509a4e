package tool_test

import (
	"testing"

	"github.com/memdict/memdict/tool"
)

// The cost of tool.Dict, which now also records the Dict for Tool.Dicts
// (a weak pointer and a cleanup): programs that make a Dict per request,
// as ERP5 code calls getMemcachedDict, pay it each time.
func BenchmarkDict(b *testing.B) {
	tl := newTool(b, tool.Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tool.Dict[int](tl, "per-request", ""); err != nil {
			b.Fatal(err)
		}
	}
}
