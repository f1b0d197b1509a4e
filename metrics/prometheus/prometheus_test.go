package prometheus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
	memprom "github.com/memdict/memdict/metrics/prometheus"
)

func TestCollector(t *testing.T) {
	ctx := context.Background()
	d, err := memdict.New[string](memory.New(), "users", memdict.WithLatencySampling(1))
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Put("a", "x")
	d.Get("a")
	d.Get("b")
	_ = d.Delete("a")
	c, _ := memdict.NewCounters(memory.New(), "hits")
	_, _ = c.Inc(ctx, "x")

	col := memprom.NewCollector()
	col.Add(d)
	col.Add(c)
	mfs := gather(t, col)
	found := map[string]bool{}
	ops := map[string]float64{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() == "memdict_operations_total" {
			for _, m := range mf.GetMetric() {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+"="+l.GetValue())
				}
				ops[strings.Join(parts, ",")] = m.GetCounter().GetValue()
			}
		}
		if mf.GetName() == "memdict_operation_duration_seconds" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "get" && m.GetLabel()[1].GetValue() == "users" && m.GetHistogram().GetSampleCount() != 2 {
					t.Errorf("get histogram count = %d, want 2", m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	for _, n := range []string{"memdict_operations_total", "memdict_operation_duration_seconds", "memdict_update_conflicts_total"} {
		if !found[n] {
			t.Errorf("metric %s missing", n)
		}
	}
	for k, want := range map[string]float64{
		"op=get,prefix=users,result=hit":       1,
		"op=get,prefix=users,result=miss":      1,
		"op=get,prefix=users,result=error":     0,
		"op=put,prefix=users,result=ok":        1,
		"op=delete,prefix=users,result=ok":     1,
		"op=incr,prefix=hits,result=ok":        1,
		"op=add,prefix=hits,result=not_stored": 0,
	} {
		if got, ok := ops[k]; !ok || got != want {
			t.Errorf("memdict_operations_total{%s} = %v (present %v), want %v", k, got, ok, want)
		}
	}
}

// gather registers col on a pedantic registry and gathers its metrics.
func gather(t *testing.T, col *memprom.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := promclient.NewPedanticRegistry()
	if err := reg.Register(col); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestCollectorNearCache(t *testing.T) {
	be := memory.New()
	d, err := memdict.New[string](be, "near", memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := memdict.New[string](be, "plain")
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Put("a", "x")
	d.Get("a") // miss, filled
	d.Get("a") // hit
	d.Get("a") // hit
	_ = d.Put("a", "y")
	col := memprom.NewCollector()
	col.Add(d)
	col.Add(plain)
	mfs := gather(t, col)
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "memdict_near_cache_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			parts := []string{mf.GetName()}
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			got[strings.Join(parts, ",")] = v
		}
	}
	want := map[string]float64{
		"memdict_near_cache_requests_total,prefix=near,result=hit":  2,
		"memdict_near_cache_requests_total,prefix=near,result=miss": 1,
		"memdict_near_cache_evictions_total,prefix=near":            0,
		"memdict_near_cache_invalidations_total,prefix=near":        1,
		"memdict_near_cache_resets_total,prefix=near":               0,
		"memdict_near_cache_entries,prefix=near":                    0,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("near-cache series %v, want only the near-cached Dict's %d", got, len(want))
	}
}
