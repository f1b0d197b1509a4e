package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/memdict/memdict"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	memprom "github.com/memdict/memdict/metrics/prometheus"
	"github.com/memdict/memdict/tool"
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
				if m.GetLabel()[0].GetValue() == "get" && m.GetLabel()[2].GetValue() == "users" && m.GetHistogram().GetSampleCount() != 2 {
					t.Errorf("get histogram count = %d, want 2", m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	for _, n := range []string{"memdict_operations_total", "memdict_operation_duration_seconds"} {
		if !found[n] {
			t.Errorf("metric %s missing", n)
		}
	}
	if found["memdict_update_conflicts_total"] {
		t.Error("memdict_update_conflicts_total exported for Dicts that never updated")
	}
	for k, want := range map[string]float64{
		"op=get,plugin=,prefix=users,result=hit":   1,
		"op=get,plugin=,prefix=users,result=miss":  1,
		"op=get,plugin=,prefix=users,result=error": 0,
		"op=put,plugin=,prefix=users,result=ok":    1,
		"op=delete,plugin=,prefix=users,result=ok": 1,
		"op=incr,plugin=,prefix=hits,result=ok":    1,
	} {
		if got, ok := ops[k]; !ok || got != want {
			t.Errorf("memdict_operations_total{%s} = %v (present %v), want %v", k, got, ok, want)
		}
	}
	// Operations that never happened have no series.
	for k := range ops {
		if strings.HasPrefix(k, "op=add,") || strings.HasPrefix(k, "op=clear,") || strings.HasPrefix(k, "op=put,plugin=,prefix=hits") {
			t.Errorf("memdict_operations_total{%s} exported for an operation that never happened", k)
		}
	}
	if len(ops) != 3+2+3+2 { // get, put, delete of users; incr of hits
		t.Errorf("%d series of memdict_operations_total: %v", len(ops), ops)
	}
}

// The duration histogram counts every operation, though the latency of
// only one in 64 is measured.
// A prefix that is not UTF-8 is exported with its stray bytes written
// \xNN: as it was, it made MustNewConstMetric panic, and the scrape
// failed with no memdict metric at all.
func TestCollectorPrefixNotUTF8(t *testing.T) {
	bad, err := memdict.New[string](memory.New(), "users\xff")
	if err != nil {
		t.Fatal(err)
	}
	good, err := memdict.New[string](memory.New(), "good")
	if err != nil {
		t.Fatal(err)
	}
	bad.Get("a")
	good.Get("a")
	col := memprom.NewCollector()
	col.Add(bad)
	col.Add(good)
	prefixes := map[string]bool{}
	for _, mf := range gather(t, col) {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "prefix" {
					prefixes[l.GetValue()] = true
				}
			}
		}
	}
	if !prefixes[`users\xff`] || !prefixes["good"] || len(prefixes) != 2 {
		t.Fatalf("prefixes exported: %v", prefixes)
	}
}

func TestCollectorCountsEveryOperation(t *testing.T) {
	d, err := memdict.New[string](memory.New(), "users")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		d.Get("a")
	}
	col := memprom.NewCollector()
	col.Add(d)
	var found bool
	for _, mf := range gather(t, col) {
		if mf.GetName() != "memdict_operation_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			found = true
			if h.GetSampleCount() != 20 || h.GetSampleSum() <= 0 {
				t.Errorf("histogram %v: count %d, sum %v, want 20 and more than 0", m.GetLabel(), h.GetSampleCount(), h.GetSampleSum())
			}
			b := h.GetBucket()
			if len(b) != len(memprom.DefaultBuckets) || b[len(b)-1].GetCumulativeCount() != 20 {
				t.Errorf("buckets %v", b)
			}
		}
	}
	if !found {
		t.Fatal("no duration histogram")
	}
}

// WithBuckets chooses the histogram's bounds among memdict's.
func TestCollectorBuckets(t *testing.T) {
	d, err := memdict.New[string](memory.New(), "b", memdict.WithLatencySampling(1))
	if err != nil {
		t.Fatal(err)
	}
	d.Get("a")
	col := memprom.NewCollector(memprom.WithBuckets(time.Second, 90*time.Microsecond, time.Millisecond, time.Hour))
	col.Add(d)
	for _, mf := range gather(t, col) {
		if mf.GetName() != "memdict_operation_duration_seconds" {
			continue
		}
		var got []float64
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			got = append(got, b.GetUpperBound())
		}
		// 90µs rounds up to 100µs; an hour is past every bound.
		if want := []float64{0.0001, 0.001, 1}; !slices.Equal(got, want) {
			t.Fatalf("bounds %v, want %v", got, want)
		}
	}
}

// Two Dicts of a Tool after twenty calls, one of them near-cached, and
// the connections of their plugin: at most 80 lines in a scrape.
func TestCollectorToolScrape(t *testing.T) {
	mc := testserver.Memcached(t)
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{
		"sessions": {URL: "memcached://" + mc.Addr},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	users, err := tool.Dict[string](tl, "users", "sessions", memdict.WithNearCache(memdict.NearCache{MaxStale: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	carts, err := tool.Dict[int](tl, "carts", "sessions")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_ = users.Put(fmt.Sprint("u", i), "x")
	}
	for i := range 7 {
		users.Get(fmt.Sprint("u", i%4))
	}
	for i := range 4 {
		_ = carts.Put(fmt.Sprint("c", i), i)
		carts.Get(fmt.Sprint("c", i+1))
	}
	_ = carts.Delete("c0")
	_ = carts.Delete("c9")

	col := memprom.NewCollector()
	col.AddTool(tl)
	reg := promclient.NewPedanticRegistry()
	reg.MustRegister(col)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "memdict_") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 80 {
		t.Errorf("%d memdict_ lines, want at most 80:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	t.Logf("%d memdict_ lines", len(lines))
	for _, want := range []string{
		`memdict_operations_total{op="get",plugin="sessions",prefix="users",result="hit"} 6`,
		`memdict_operation_duration_seconds_count{op="get",plugin="sessions",prefix="carts"} 4`,
		`memdict_operations_total{op="delete",plugin="sessions",prefix="carts",result="not_found"} 1`,
		`memdict_near_cache_requests_total{plugin="sessions",prefix="users",result="hit"} 3`,
		`memdict_near_cache_entries{plugin="sessions",prefix="users"} 3`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %s in\n%s", want, strings.Join(lines, "\n"))
		}
	}
	conns := slices.IndexFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, `memdict_connections{plugin="sessions",server="`+mc.Addr+`"} `) && !strings.HasSuffix(l, " 0")
	})
	if conns < 0 {
		t.Errorf("no connections to %s in\n%s", mc.Addr, strings.Join(lines, "\n"))
	}
	runtime.KeepAlive(users)
	runtime.KeepAlive(carts)
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
		"memdict_near_cache_requests_total,plugin=,prefix=near,result=hit":  2,
		"memdict_near_cache_requests_total,plugin=,prefix=near,result=miss": 1,
		"memdict_near_cache_evictions_total,plugin=,prefix=near":            0,
		"memdict_near_cache_invalidations_total,plugin=,prefix=near":        1,
		"memdict_near_cache_resets_total,plugin=,prefix=near":               0,
		"memdict_near_cache_entries,plugin=,prefix=near":                    0,
		"memdict_near_cache_bytes,plugin=,prefix=near":                      0,
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
