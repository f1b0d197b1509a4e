package tool_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/tool"
)

func TestDictsReportsHandedOutDicts(t *testing.T) {
	tl := newTool(t, tool.Config{})
	a1 := mustDict[int](t, tl, "visits", "")
	a2 := mustDict[string](t, tl, "visits", tool.PluginPath(tool.DefaultPlugin))
	b := mustDict[int](t, tl, "carts", "")
	for i := range 3 {
		if err := a1.Put("k", i); err != nil {
			t.Fatal(err)
		}
	}
	a1.Get("k")       // hit
	a2.Get("missing") // miss
	a2.Get("k")       // an int under a string Dict: an error (decode), not a hit
	b.Get("x")        // miss

	got := tl.Dicts()
	if len(got) != 2 {
		t.Fatalf("Dicts() = %+v, want 2 groups", got)
	}
	carts, visits := got[0], got[1]
	if carts.Plugin != tool.DefaultPlugin || carts.Prefix != "carts" || carts.Count != 1 || carts.Stats.Misses != 1 || carts.Stats.Hits != 0 {
		t.Errorf("carts: %+v", carts)
	}
	if visits.Prefix != "visits" || visits.Count != 2 {
		t.Fatalf("visits: %+v", visits)
	}
	want1, want2 := a1.Stats(), a2.Stats()
	if visits.Stats.Sets != 3 || visits.Stats.Hits != want1.Hits+want2.Hits || visits.Stats.Misses != want1.Misses+want2.Misses ||
		visits.Stats.Errors != want1.Errors+want2.Errors {
		t.Errorf("visits stats %+v, want the sum of %+v and %+v", visits.Stats, want1, want2)
	}
	var gets, puts uint64
	for _, o := range visits.Stats.Ops {
		switch o.Op {
		case "get":
			gets = o.Count("hit") + o.Count("miss") + o.Count("error")
		case "put":
			puts = o.Count("ok")
		}
	}
	if gets != 3 || puts != 3 {
		t.Errorf("visits per-op counts: gets %d, puts %d, want 3 and 3 (%+v)", gets, puts, visits.Stats.Ops)
	}
	runtime.KeepAlive(a1)
	runtime.KeepAlive(a2)
	runtime.KeepAlive(b)
}

// A Dict the program drops leaves the list once it is reclaimed, so that
// a Dict per request does not grow it.
func TestDictsForgetsReclaimedDicts(t *testing.T) {
	tl := newTool(t, tool.Config{})
	keep := mustDict[int](t, tl, "kept", "")
	for range 100 {
		d := mustDict[int](t, tl, "per-request", "")
		d.Get("k")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		got := tl.Dicts()
		if len(got) == 1 && got[0].Prefix == "kept" && got[0].Count == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dicts() after dropping 100 Dicts: %+v, want only kept", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(keep)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tl.Dicts(); got != nil {
		t.Errorf("Dicts() after Close = %+v, want none", got)
	}
}

// Dicts sums the near caches of a group; Describe tells what the plugin's
// backend is, once it is open, without opening it.
func TestDictsNearCacheAndDescribe(t *testing.T) {
	tl := newTool(t, tool.Config{})
	if d := tl.Describe(""); d.System != "" {
		t.Fatalf("Describe before the backend is open = %+v", d)
	}
	near := memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour})
	a := mustDict[int](t, tl, "n", "", near)
	b := mustDict[int](t, tl, "n", "", near)
	_ = a.Put("k", 1)
	a.Get("k") // miss, filled
	a.Get("k") // hit
	b.Get("k") // miss
	got := tl.Dicts()
	if len(got) != 1 {
		t.Fatalf("Dicts() = %+v", got)
	}
	if nc := got[0].Stats.NearCache; !nc.Enabled || nc.Hits != 1 || nc.Misses != 2 || nc.Entries != 2 || nc.Bytes <= 0 {
		t.Fatalf("near cache of the group: %+v", nc)
	}
	if d := tl.Describe(""); d.System != "memory" {
		t.Fatalf("Describe = %+v", d)
	}
	if d := tl.Describe("no_such_plugin"); d.System != "" {
		t.Fatalf("Describe of an unknown plugin = %+v", d)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}
