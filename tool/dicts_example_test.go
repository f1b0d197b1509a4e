package tool_test

import (
	"fmt"

	"github.com/memdict/memdict/tool"
)

// Dicts lists the Dicts the Tool handed out, with their metrics, as an
// admin page or a metrics exporter shows them.
func ExampleTool_Dicts() {
	t, err := tool.New(tool.Config{})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	visits, err := tool.Dict[int](t, "visits", "")
	if err != nil {
		panic(err)
	}
	visits.Get("home") // a miss
	_ = visits.Put("home", 1)
	visits.Get("home") // a hit

	for _, d := range t.Dicts() {
		fmt.Printf("%s %q: %d Dict(s), %d hit(s), %d miss(es), %d set(s)\n",
			d.Plugin, d.Prefix, d.Count, d.Stats.Hits, d.Stats.Misses, d.Stats.Sets)
	}
	// Output:
	// default_memcached_plugin "visits": 1 Dict(s), 1 hit(s), 1 miss(es), 1 set(s)
}
