package tool

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/memdict/memdict"
)

// DictInfo describes the Dicts of one plugin and key prefix that a Tool
// handed out (with Dict) and that the program still holds, for admin pages
// and metrics exporters.
type DictInfo struct {
	// Plugin is the plugin's name ("default").
	Plugin string
	// Prefix is the Dicts' key prefix, as given to Dict (without the site
	// id).
	Prefix string
	// Count is the number of live Dicts of that plugin and prefix.
	Count int
	// Stats is the sum of their Stats: operations by kind and outcome,
	// latency histograms, totals, near caches.
	Stats memdict.Stats
}

// dictRegistry tracks the Dicts a Tool handed out, through weak pointers:
// a Dict the program drops is reclaimed by the garbage collector as if the
// Tool had never seen it, and leaves the registry then.
type dictRegistry struct {
	mu     sync.Mutex
	nextID uint64
	dicts  map[uint64]trackedDict
}

// trackedDict is one Dict handed out: stats reads its Stats, ok false once
// the Dict is reclaimed.
type trackedDict struct {
	plugin, prefix string
	stats          func() (memdict.Stats, bool)
}

// track records d, handed out for plugin.
func track[V any](r *dictRegistry, plugin string, d *memdict.Dict[V]) {
	wp := weak.Make(d)
	td := trackedDict{plugin: plugin, prefix: d.Prefix(), stats: func() (memdict.Stats, bool) {
		if d := wp.Value(); d != nil {
			return d.Stats(), true
		}
		return memdict.Stats{}, false
	}}
	r.mu.Lock()
	if r.dicts == nil {
		r.dicts = map[uint64]trackedDict{}
	}
	r.nextID++
	id := r.nextID
	r.dicts[id] = td
	r.mu.Unlock()
	runtime.AddCleanup(d, r.forget, id)
}

// forget removes a reclaimed Dict.
func (r *dictRegistry) forget(id uint64) {
	r.mu.Lock()
	delete(r.dicts, id)
	r.mu.Unlock()
}

// list returns the live Dicts grouped by plugin and prefix, sorted by
// plugin name, then prefix.
func (r *dictRegistry) list() []DictInfo {
	r.mu.Lock()
	tracked := make([]trackedDict, 0, len(r.dicts))
	for _, td := range r.dicts {
		tracked = append(tracked, td)
	}
	r.mu.Unlock()
	type groupKey struct{ plugin, prefix string }
	groups := map[groupKey]*DictInfo{}
	for _, td := range tracked {
		st, ok := td.stats()
		if !ok {
			continue
		}
		k := groupKey{td.plugin, td.prefix}
		g := groups[k]
		if g == nil {
			g = &DictInfo{Plugin: td.plugin, Prefix: td.prefix}
			groups[k] = g
		}
		g.Count++
		g.Stats = addStats(g.Stats, st)
	}
	// Sorted as pointers: slices.SortFunc on DictInfo values (Stats and
	// all) would be an instantiation of its own, some 30 KB of every
	// program that has a Tool.
	sorted := make([]*DictInfo, 0, len(groups))
	for _, g := range groups {
		sorted = append(sorted, g)
	}
	slices.SortFunc(sorted, func(a, b *DictInfo) int {
		return cmp.Or(cmp.Compare(a.Plugin, b.Plugin), cmp.Compare(a.Prefix, b.Prefix))
	})
	out := make([]DictInfo, len(sorted))
	for i, g := range sorted {
		out[i] = *g
	}
	return out
}

// addStats returns the sum of two Stats: totals, and per operation the
// counts of each outcome and the latency histograms. It never writes into
// b's slices (a's are its own: addStats makes them).
func addStats(a, b memdict.Stats) memdict.Stats {
	a.Hits += b.Hits
	a.Misses += b.Misses
	a.Errors += b.Errors
	a.Sets += b.Sets
	a.Deletes += b.Deletes
	a.Loads += b.Loads
	a.Conflicts += b.Conflicts
	for _, bo := range b.Ops {
		i := slices.IndexFunc(a.Ops, func(o memdict.OpStats) bool { return o.Op == bo.Op })
		if i < 0 {
			a.Ops = append(a.Ops, memdict.OpStats{Op: bo.Op})
			i = len(a.Ops) - 1
		}
		ao := &a.Ops[i]
		for _, rc := range bo.Results {
			j := slices.IndexFunc(ao.Results, func(r memdict.ResultCount) bool { return r.Result == rc.Result })
			if j < 0 {
				ao.Results = append(ao.Results, memdict.ResultCount{Result: rc.Result})
				j = len(ao.Results) - 1
			}
			ao.Results[j].Count += rc.Count
		}
		ao.Latency.Count += bo.Latency.Count
		ao.Latency.Samples += bo.Latency.Samples
		ao.Latency.Sum += bo.Latency.Sum
		if len(ao.Latency.Buckets) < len(bo.Latency.Buckets) {
			ao.Latency.Buckets = append(ao.Latency.Buckets, make([]uint64, len(bo.Latency.Buckets)-len(ao.Latency.Buckets))...)
		}
		for k, n := range bo.Latency.Buckets {
			ao.Latency.Buckets[k] += n
		}
	}
	an, bn := &a.NearCache, b.NearCache
	an.Enabled = an.Enabled || bn.Enabled
	an.Hits += bn.Hits
	an.Misses += bn.Misses
	an.Evictions += bn.Evictions
	an.Invalidations += bn.Invalidations
	an.Resets += bn.Resets
	an.Entries += bn.Entries
	an.Bytes += bn.Bytes
	return a
}

// Dicts returns the Dicts the Tool handed out (with Dict) that the program
// still holds, one entry per plugin and key prefix with the sum of their
// Stats, sorted by plugin name, then prefix. A Dict the program no longer
// references stops counting once the garbage collector reclaims it, so
// that programs which make a Dict per request do not grow the list; keep a
// Dict for the life of the program to keep its counts. After Close, Dicts
// returns none.
func (t *Tool) Dicts() []DictInfo {
	t.mu.RLock()
	closed := t.closed
	t.mu.RUnlock()
	if closed {
		return nil
	}
	return t.handedOut.list()
}
