// Package prometheus exports the statistics of memdict Dicts to Prometheus
// (github.com/prometheus/client_golang). It is a package of its own so
// that programs that do not use Prometheus do not depend on it.
//
// A Collector reads each registered Dict's Stats at every scrape:
//
//	c := prometheus.NewCollector()
//	c.Add(users) // any *memdict.Dict[V], or *memdict.Counters
//	promclient.MustRegister(c)
//
// It exports, with the label prefix naming the Dict's key prefix:
//
//	memdict_operations_total{prefix,op,result}          counter
//	memdict_operation_duration_seconds{prefix,op}       histogram
//	memdict_update_conflicts_total{prefix}              counter
//
// and, for Dicts with a near cache (memdict.WithNearCache):
//
//	memdict_near_cache_requests_total{prefix,result}    counter (hit, miss)
//	memdict_near_cache_evictions_total{prefix}          counter
//	memdict_near_cache_invalidations_total{prefix}      counter
//	memdict_near_cache_resets_total{prefix}             counter
//	memdict_near_cache_entries{prefix}                  gauge
//
// op is get, put, add, delete, touch, update, load, incr, clear, list or
// commit; result is hit or miss (get), ok, not_stored (add), not_found
// (delete, touch), conflict (update gave up) or error. The duration
// histogram holds the sampled latencies (see memdict.WithLatencySampling):
// its _count is about 1/n-th of the operations, its quantiles are
// unbiased; count operations with memdict_operations_total.
package prometheus

import (
	"sync"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/memdict/memdict"
)

// Source is what a Collector reads: a *memdict.Dict of any value type or
// a *memdict.Counters.
type Source interface {
	Prefix() string
	Stats() memdict.Stats
}

// Collector is a prometheus.Collector of the statistics of the Sources
// added to it. It is safe for concurrent use.
type Collector struct {
	namespace   string
	constLabels promclient.Labels

	ops, dur, conflicts *promclient.Desc

	nearReqs, nearEvictions, nearInvalidations, nearResets, nearEntries *promclient.Desc

	mu      sync.Mutex
	sources []named
}

type named struct {
	label string
	src   Source
}

// An Option configures a Collector.
type Option func(*Collector)

// WithNamespace replaces the metric name prefix "memdict".
func WithNamespace(ns string) Option { return func(c *Collector) { c.namespace = ns } }

// WithConstLabels adds labels with fixed values to every metric, such as
// the name of the cache server.
func WithConstLabels(l promclient.Labels) Option {
	return func(c *Collector) { c.constLabels = l }
}

// NewCollector returns an empty Collector.
func NewCollector(opts ...Option) *Collector {
	c := &Collector{namespace: "memdict"}
	for _, o := range opts {
		o(c)
	}
	name := func(n string) string { return promclient.BuildFQName(c.namespace, "", n) }
	c.ops = promclient.NewDesc(name("operations_total"),
		"Dict operations by kind and outcome.", []string{"prefix", "op", "result"}, c.constLabels)
	c.dur = promclient.NewDesc(name("operation_duration_seconds"),
		"Latency of sampled Dict operations.", []string{"prefix", "op"}, c.constLabels)
	c.conflicts = promclient.NewDesc(name("update_conflicts_total"),
		"Compare-and-swap conflicts that Update retried.", []string{"prefix"}, c.constLabels)
	c.nearReqs = promclient.NewDesc(name("near_cache_requests_total"),
		"Reads of a near-cached Dict, by whether the near cache answered (hit) or the backend (miss).", []string{"prefix", "result"}, c.constLabels)
	c.nearEvictions = promclient.NewDesc(name("near_cache_evictions_total"),
		"Near-cache entries evicted to stay within the bounds.", []string{"prefix"}, c.constLabels)
	c.nearInvalidations = promclient.NewDesc(name("near_cache_invalidations_total"),
		"Near-cache entries dropped because their key was written, here or elsewhere.", []string{"prefix"}, c.constLabels)
	c.nearResets = promclient.NewDesc(name("near_cache_resets_total"),
		"Times the near cache was emptied at once (tracking connection lost, server flushed).", []string{"prefix"}, c.constLabels)
	c.nearEntries = promclient.NewDesc(name("near_cache_entries"),
		"Entries held by the near cache.", []string{"prefix"}, c.constLabels)
	return c
}

// Add makes the Collector export src's statistics under the label
// prefix=src.Prefix(). Adding a source whose prefix is already exported
// makes the scrape fail with a duplicate-metric error; use AddAs for a
// distinct label.
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

// Describe sends the descriptors of the Collector's metrics.
func (c *Collector) Describe(ch chan<- *promclient.Desc) {
	ch <- c.ops
	ch <- c.dur
	ch <- c.conflicts
	ch <- c.nearReqs
	ch <- c.nearEvictions
	ch <- c.nearInvalidations
	ch <- c.nearResets
	ch <- c.nearEntries
}

// bounds are memdict.LatencyBounds in seconds.
var bounds = func() []float64 {
	b := make([]float64, len(memdict.LatencyBounds))
	for i, d := range memdict.LatencyBounds {
		b[i] = d.Seconds()
	}
	return b
}()

// Collect reads every source's Stats and sends its metrics.
func (c *Collector) Collect(ch chan<- promclient.Metric) {
	c.mu.Lock()
	sources := append([]named(nil), c.sources...)
	c.mu.Unlock()
	for _, n := range sources {
		st := n.src.Stats()
		for _, o := range st.Ops {
			for _, r := range o.Results {
				ch <- promclient.MustNewConstMetric(c.ops, promclient.CounterValue, float64(r.Count), n.label, o.Op, r.Result)
			}
			buckets := make(map[float64]uint64, len(bounds))
			var cum uint64
			for i, b := range bounds {
				if i < len(o.Latency.Buckets) {
					cum += o.Latency.Buckets[i]
				}
				buckets[b] = cum
			}
			ch <- promclient.MustNewConstHistogram(c.dur, o.Latency.Count, o.Latency.Sum.Seconds(), buckets, n.label, o.Op)
		}
		ch <- promclient.MustNewConstMetric(c.conflicts, promclient.CounterValue, float64(st.Conflicts), n.label)
		if nc := st.NearCache; nc.Enabled {
			ch <- promclient.MustNewConstMetric(c.nearReqs, promclient.CounterValue, float64(nc.Hits), n.label, "hit")
			ch <- promclient.MustNewConstMetric(c.nearReqs, promclient.CounterValue, float64(nc.Misses), n.label, "miss")
			ch <- promclient.MustNewConstMetric(c.nearEvictions, promclient.CounterValue, float64(nc.Evictions), n.label)
			ch <- promclient.MustNewConstMetric(c.nearInvalidations, promclient.CounterValue, float64(nc.Invalidations), n.label)
			ch <- promclient.MustNewConstMetric(c.nearResets, promclient.CounterValue, float64(nc.Resets), n.label)
			ch <- promclient.MustNewConstMetric(c.nearEntries, promclient.GaugeValue, float64(nc.Entries), n.label)
		}
	}
}
