// Package prometheus exports the statistics of memdict Dicts to Prometheus
// (github.com/prometheus/client_golang). It is a package of its own so
// that programs that do not use Prometheus do not depend on it.
//
// A Collector reads, at every scrape, the Stats of the Dicts added to it,
// and of every Dict a Tool hands out:
//
//	c := prometheus.NewCollector()
//	c.AddTool(t)   // every Dict of t, labelled with its plugin, and t's connections
//	c.Add(users)   // or a single *memdict.Dict[V], or *memdict.Counters
//	promclient.MustRegister(c)
//
// It exports, with the labels plugin (the Tool's plugin, "" for a Dict
// added with Add) and prefix (the Dict's key prefix; a byte that is not
// UTF-8, which Prometheus does not take, is written \xNN), only for the
// operations that happened:
//
//	memdict_operations_total{plugin,prefix,op,result}      counter
//	memdict_operation_duration_seconds{plugin,prefix,op}   histogram
//	memdict_update_conflicts_total{plugin,prefix}          counter (Dicts that updated)
//
// for Dicts with a near cache (memdict.WithNearCache):
//
//	memdict_near_cache_requests_total{plugin,prefix,result} counter (hit, miss)
//	memdict_near_cache_evictions_total{plugin,prefix}       counter
//	memdict_near_cache_invalidations_total{plugin,prefix}   counter
//	memdict_near_cache_resets_total{plugin,prefix}          counter
//	memdict_near_cache_entries{plugin,prefix}               gauge
//	memdict_near_cache_bytes{plugin,prefix}                 gauge
//
// and, for each server of a Tool's plugins (once their backend is open)
// and of the backends added with AddBackend:
//
//	memdict_connections{plugin,server}                      gauge
//	memdict_connections_idle{plugin,server}                 gauge (pooling drivers: Redis)
//
// op is get, put, add, delete, touch, update, load, incr, clear, list,
// commit or invalidate; result is hit or miss (get), ok, not_stored (add),
// not_found (delete, touch), conflict (update gave up) or error. Every
// operation is counted, in memdict_operations_total and in the duration
// histogram's _count alike; only its latency is sampled (see
// memdict.WithLatencySampling and memdict.Latency), so the histogram's
// buckets are an estimate. The histogram has the buckets WithBuckets
// chooses (DefaultBuckets: eight, from 50µs to 1s): eleven lines per
// operation used, so that a Dict that gets and puts exports about thirty
// lines in all, and two such Dicts of a Tool, one of them near-cached,
// about seventy.
package prometheus

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// Source is what a Collector reads: a *memdict.Dict of any value type or
// a *memdict.Counters.
type Source interface {
	Prefix() string
	Stats() memdict.Stats
}

// DefaultBuckets are the upper bounds of the duration histogram's buckets
// unless WithBuckets says otherwise.
var DefaultBuckets = []time.Duration{
	50 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second,
}

// Collector is a prometheus.Collector of the statistics of the Sources,
// Tools and backends added to it. It is safe for concurrent use.
type Collector struct {
	namespace   string
	constLabels promclient.Labels
	buckets     []time.Duration

	ops, dur, conflicts *promclient.Desc

	nearReqs, nearEvictions, nearInvalidations, nearResets, nearEntries, nearBytes *promclient.Desc

	conns, connsIdle *promclient.Desc

	// bounds are the histogram's bounds in seconds; merge[i] is the
	// index in bounds of memdict's bucket i (len(bounds): +Inf).
	bounds []float64
	merge  []int

	mu       sync.Mutex
	sources  []named
	tools    []*tool.Tool
	backends []namedBackend
}

type named struct {
	label string
	src   Source
}

type namedBackend struct {
	name string
	be   backend.Backend
}

// An Option configures a Collector.
type Option func(*Collector)

// WithNamespace replaces the metric name prefix "memdict".
func WithNamespace(ns string) Option { return func(c *Collector) { c.namespace = ns } }

// WithConstLabels adds labels with fixed values to every metric, such as
// the name of the service.
func WithConstLabels(l promclient.Labels) Option {
	return func(c *Collector) { c.constLabels = l }
}

// WithBuckets sets the upper bounds of the duration histogram's buckets
// (DefaultBuckets if none). memdict keeps its histograms with the bounds
// memdict.LatencyBounds; each bound given is rounded up to the nearest of
// those (and bounds above 10s are dropped), and each of memdict's buckets
// is counted in the smallest bucket that holds it.
func WithBuckets(bounds ...time.Duration) Option {
	return func(c *Collector) { c.buckets = bounds }
}

// NewCollector returns an empty Collector.
func NewCollector(opts ...Option) *Collector {
	c := &Collector{namespace: "memdict"}
	for _, o := range opts {
		o(c)
	}
	if len(c.buckets) == 0 {
		c.buckets = DefaultBuckets
	}
	c.bounds, c.merge = mergeBuckets(c.buckets)
	name := func(n string) string { return promclient.BuildFQName(c.namespace, "", n) }
	dict := []string{"plugin", "prefix"}
	with := func(more ...string) []string { return append(append([]string(nil), dict...), more...) }
	c.ops = promclient.NewDesc(name("operations_total"),
		"Dict operations by kind and outcome.", with("op", "result"), c.constLabels)
	c.dur = promclient.NewDesc(name("operation_duration_seconds"),
		"Latency of Dict operations (every operation counted, latencies sampled).", with("op"), c.constLabels)
	c.conflicts = promclient.NewDesc(name("update_conflicts_total"),
		"Compare-and-swap conflicts that Update retried.", dict, c.constLabels)
	c.nearReqs = promclient.NewDesc(name("near_cache_requests_total"),
		"Reads of a near-cached Dict, by whether the near cache answered (hit) or the backend (miss).", with("result"), c.constLabels)
	c.nearEvictions = promclient.NewDesc(name("near_cache_evictions_total"),
		"Near-cache entries evicted to stay within the bounds.", dict, c.constLabels)
	c.nearInvalidations = promclient.NewDesc(name("near_cache_invalidations_total"),
		"Near-cache entries dropped because their key was written, here or elsewhere.", dict, c.constLabels)
	c.nearResets = promclient.NewDesc(name("near_cache_resets_total"),
		"Times the near cache was emptied at once (tracking connection lost, server flushed).", dict, c.constLabels)
	c.nearEntries = promclient.NewDesc(name("near_cache_entries"),
		"Entries held by the near cache.", dict, c.constLabels)
	c.nearBytes = promclient.NewDesc(name("near_cache_bytes"),
		"Bytes held by the near cache: keys, encoded values and a fixed overhead per entry.", dict, c.constLabels)
	c.conns = promclient.NewDesc(name("connections"),
		"Connections open to a server.", []string{"plugin", "server"}, c.constLabels)
	c.connsIdle = promclient.NewDesc(name("connections_idle"),
		"Connections to a server waiting unused in the pool.", []string{"plugin", "server"}, c.constLabels)
	return c
}

// mergeBuckets returns the bounds, in seconds, of the exported buckets
// (bounds rounded up to memdict.LatencyBounds, sorted, without repeats)
// and, for each of memdict's buckets, the index of the exported bucket
// that counts it (len of the bounds for +Inf).
func mergeBuckets(bounds []time.Duration) ([]float64, []int) {
	var picked []time.Duration
	for _, b := range bounds {
		i, _ := slices.BinarySearch(memdict.LatencyBounds, b)
		if i < len(memdict.LatencyBounds) {
			picked = append(picked, memdict.LatencyBounds[i])
		}
	}
	slices.Sort(picked)
	picked = slices.Compact(picked)
	secs := make([]float64, len(picked))
	for i, b := range picked {
		secs[i] = b.Seconds()
	}
	merge := make([]int, len(memdict.LatencyBounds)+1)
	for i := range merge {
		if i == len(memdict.LatencyBounds) {
			merge[i] = len(picked)
			continue
		}
		merge[i], _ = slices.BinarySearch(picked, memdict.LatencyBounds[i])
	}
	return secs, merge
}

// Add makes the Collector export src's statistics under the labels
// plugin="" and prefix=src.Prefix(). Adding a source whose prefix is
// already exported makes the scrape fail with a duplicate-metric error;
// use AddAs for a distinct label.
func (c *Collector) Add(src Source) { c.AddAs(src.Prefix(), src) }

// AddAs is Add with the label value prefix=label.
func (c *Collector) AddAs(label string, src Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append(c.sources, named{label, src})
}

// Remove stops exporting src.
func (c *Collector) Remove(src Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.sources {
		if n.src == src {
			c.sources = append(c.sources[:i], c.sources[i+1:]...)
			return
		}
	}
}

// AddTool makes the Collector export, at each scrape, the statistics of
// every Dict t has handed out and the program still holds (Tool.Dicts:
// summed per plugin and prefix, labelled with both), and the connections
// of each plugin whose backend is open (Tool.Describe). Dicts made later
// are exported too; a Dict also added with Add is exported twice, under
// the label plugin="" and under its plugin's.
func (c *Collector) AddTool(t *tool.Tool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tools = append(c.tools, t)
}

// AddBackend makes the Collector export the connections of be, under the
// label plugin=name, as backend.Describe reports them (the memcached and
// Redis drivers do, through any wrapper). A Tool's plugins are exported
// by AddTool.
func (c *Collector) AddBackend(name string, be backend.Backend) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backends = append(c.backends, namedBackend{name, be})
}

// Describe sends the descriptors of the Collector's metrics.
func (c *Collector) Describe(ch chan<- *promclient.Desc) {
	for _, d := range []*promclient.Desc{c.ops, c.dur, c.conflicts, c.nearReqs, c.nearEvictions,
		c.nearInvalidations, c.nearResets, c.nearEntries, c.nearBytes, c.conns, c.connsIdle} {
		ch <- d
	}
}

// Collect reads every source's Stats and sends its metrics.
func (c *Collector) Collect(ch chan<- promclient.Metric) {
	c.mu.Lock()
	sources := slices.Clone(c.sources)
	tools := slices.Clone(c.tools)
	backends := slices.Clone(c.backends)
	c.mu.Unlock()
	for _, n := range sources {
		c.collectStats(ch, "", n.label, n.src.Stats())
	}
	for _, t := range tools {
		for _, di := range t.Dicts() {
			c.collectStats(ch, di.Plugin, di.Prefix, di.Stats)
		}
		// Sorted as pointers: slices.SortFunc on PluginInfo values would be
		// an instantiation of its own, 35 KB of a service's binary.
		infos := t.Plugins()
		plugins := make([]*tool.PluginInfo, len(infos))
		for i := range infos {
			plugins[i] = &infos[i]
		}
		slices.SortFunc(plugins, func(a, b *tool.PluginInfo) int { return cmp.Compare(a.Name, b.Name) })
		for _, p := range plugins {
			c.collectConns(ch, p.Name, t.Describe(p.Path))
		}
	}
	for _, b := range backends {
		c.collectConns(ch, b.name, backend.Describe(b.be))
	}
}

// collectStats sends the metrics of one Dict (or group of Dicts).
func (c *Collector) collectStats(ch chan<- promclient.Metric, plugin, prefix string, st memdict.Stats) {
	plugin, prefix = labelValue(plugin), labelValue(prefix)
	updated := st.Conflicts > 0
	for _, o := range st.Ops {
		var total uint64
		for _, r := range o.Results {
			total += r.Count
		}
		if total == 0 {
			continue // never used: no series
		}
		updated = updated || o.Op == "update"
		for _, r := range o.Results {
			ch <- promclient.MustNewConstMetric(c.ops, promclient.CounterValue, float64(r.Count), plugin, prefix, o.Op, r.Result)
		}
		if o.Latency.Count == 0 {
			continue // latency sampling off
		}
		counts := make([]uint64, len(c.bounds)+1)
		for i, n := range o.Latency.Buckets {
			if i < len(c.merge) {
				counts[c.merge[i]] += n
			}
		}
		buckets := make(map[float64]uint64, len(c.bounds))
		var cum uint64
		for i, b := range c.bounds {
			cum += counts[i]
			buckets[b] = cum
		}
		ch <- promclient.MustNewConstHistogram(c.dur, o.Latency.Count, o.Latency.Sum.Seconds(), buckets, plugin, prefix, o.Op)
	}
	if updated {
		ch <- promclient.MustNewConstMetric(c.conflicts, promclient.CounterValue, float64(st.Conflicts), plugin, prefix)
	}
	if nc := st.NearCache; nc.Enabled {
		ch <- promclient.MustNewConstMetric(c.nearReqs, promclient.CounterValue, float64(nc.Hits), plugin, prefix, "hit")
		ch <- promclient.MustNewConstMetric(c.nearReqs, promclient.CounterValue, float64(nc.Misses), plugin, prefix, "miss")
		ch <- promclient.MustNewConstMetric(c.nearEvictions, promclient.CounterValue, float64(nc.Evictions), plugin, prefix)
		ch <- promclient.MustNewConstMetric(c.nearInvalidations, promclient.CounterValue, float64(nc.Invalidations), plugin, prefix)
		ch <- promclient.MustNewConstMetric(c.nearResets, promclient.CounterValue, float64(nc.Resets), plugin, prefix)
		ch <- promclient.MustNewConstMetric(c.nearEntries, promclient.GaugeValue, float64(nc.Entries), plugin, prefix)
		ch <- promclient.MustNewConstMetric(c.nearBytes, promclient.GaugeValue, float64(nc.Bytes), plugin, prefix)
	}
}

// collectConns sends the connection gauges of one backend.
func (c *Collector) collectConns(ch chan<- promclient.Metric, plugin string, d backend.Description) {
	plugin = labelValue(plugin)
	for _, s := range d.Servers {
		s.Addr = labelValue(s.Addr)
		ch <- promclient.MustNewConstMetric(c.conns, promclient.GaugeValue, float64(s.Open), plugin, s.Addr)
		if s.Idle >= 0 {
			ch <- promclient.MustNewConstMetric(c.connsIdle, promclient.GaugeValue, float64(s.Idle), plugin, s.Addr)
		}
	}
}

// labelValue returns s as a label's value: Prometheus takes only UTF-8,
// and MustNewConstMetric panics on anything else, which fails the whole
// scrape (every metric of the Collector, and with promhttp's default
// handler every metric of the program). A prefix is bytes: each byte
// that is not UTF-8 is written \xNN.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
