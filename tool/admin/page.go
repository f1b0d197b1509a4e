package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

// pageData is what the page shows (render.go writes it).
type pageData struct {
	Base     string // the mount point, "/admin/"
	Flash    *flash
	SignedIn bool
	CSRF     string
	SiteID   string
	Plugins  []pluginView
	Dicts    []dictView
	Codecs   []string
	Form     keyForm
	Now      string
	Uptime   string
}

type pluginView struct {
	tool.PluginInfo
	URLText    string
	Expiration string
	ExpSeconds int64
	Ping       pingResult
	Nodes      []nodeSummary
	StatsError string
	MaxKeyText string
	MaxValText string
	WarmText   string // the warm-up setting, or the window in progress
	WarmValue  string // the form's value of warm
}

// pingResult is the outcome of one ping.
type pingResult struct {
	OK      bool
	Latency string
	Error   string
}

// dictView is one row of the Dict metrics: the program's Dicts of one
// plugin and prefix, or the key tester's.
type dictView struct {
	Plugin, Prefix, Source                     string
	Count                                      int
	Hits, Misses, Sets, Deletes, Errors, Loads string
	HitRatio, GetLatency                       string
}

func newDictView(plugin, prefix, source string, count int, st memdict.Stats) dictView {
	dv := dictView{
		Plugin: plugin, Prefix: prefix, Source: source, Count: count,
		Hits: groupUint(st.Hits), Misses: groupUint(st.Misses), Sets: groupUint(st.Sets),
		Deletes: groupUint(st.Deletes), Errors: groupUint(st.Errors), Loads: groupUint(st.Loads),
		HitRatio: ratioText(st.Hits, st.Hits+st.Misses), GetLatency: "-",
	}
	for _, o := range st.Ops {
		if o.Op == "get" && o.Latency.Count > 0 {
			dv.GetLatency = latencyText(o.Latency.Quantile(0.5)) + " / " + latencyText(o.Latency.Quantile(0.99))
		}
	}
	return dv
}

// render writes the page with f at its top.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, f *flash) {
	d := pageData{Base: base(r), Flash: f, SiteID: h.t.SiteID(), Codecs: codec.Names(),
		Now: time.Now().UTC().Format("2006-01-02 15:04:05 UTC")}
	if _, ss := h.currentSession(r); ss != nil {
		h.mu.Lock()
		d.SignedIn, d.CSRF, d.Form = true, ss.csrf, ss.form
		h.mu.Unlock()
	}
	infos := h.t.Plugins()
	d.Plugins = make([]pluginView, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() { d.Plugins[i] = h.pluginView(r.Context(), info) })
	}
	wg.Wait()
	if d.Form.Plugin == "" && len(infos) > 0 {
		d.Form.Plugin = tool.DefaultPlugin
	}
	for _, di := range h.t.Dicts() {
		d.Dicts = append(d.Dicts, newDictView(di.Plugin, di.Prefix, "program", di.Count, di.Stats))
	}
	h.mu.Lock()
	for _, k := range h.dictKeys {
		ds := h.dicts[k]
		d.Dicts = append(d.Dicts, newDictView(ds.info.Name, ds.prefix, "key tester", 1, ds.stats()))
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if _, err := io.WriteString(w, d.html()); err != nil {
		h.log.Debug("memdict admin: page", "error", err) // the browser went away
	}
}

// pluginView pings a plugin and reads its servers' statistics.
func (h *Handler) pluginView(ctx context.Context, info tool.PluginInfo) pluginView {
	v := pluginView{PluginInfo: info, URLText: displayURL(info), Expiration: expirationText(info.Expiration),
		ExpSeconds: int64(info.Expiration / time.Second), MaxKeyText: limitText(info.MaxKeyLen), MaxValText: limitText(info.MaxValueLen),
		WarmText: warmText(info), WarmValue: "0"}
	if info.Warm > 0 {
		v.WarmValue = info.Warm.String()
	}
	if v.Codec == "" {
		v.Codec = codec.Default().Name()
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	v.Ping = h.ping(ctx, info)
	be, err := h.t.Backend(ctx, info.Path)
	if err != nil {
		v.StatsError = h.scrub(err.Error())
		return v
	}
	nodes, err := backend.ServerStats(ctx, be)
	if err != nil {
		v.StatsError = h.scrub(err.Error())
		if errors.Is(err, backend.ErrNotSupported) {
			v.StatsError = "this backend reports no statistics"
		}
		return v
	}
	for _, n := range nodes {
		sm := summarize(n)
		sm.Error = h.scrub(sm.Error)
		v.Nodes = append(v.Nodes, sm)
	}
	return v
}

// ping checks that a plugin's servers answer.
func (h *Handler) ping(ctx context.Context, info tool.PluginInfo) pingResult {
	start := time.Now()
	be, err := h.t.Backend(ctx, info.Path)
	if err == nil {
		err = backend.Ping(ctx, be)
	}
	if err != nil {
		return pingResult{Error: h.scrub(err.Error())}
	}
	return pingResult{OK: true, Latency: latencyText(time.Since(start))}
}

// warmText describes a plugin's warm-up: the window in progress, or the
// setting.
func warmText(info tool.PluginInfo) string {
	switch {
	case !info.WarmUntil.IsZero():
		return fmt.Sprintf("warming up from %s until %s", info.WarmFrom, info.WarmUntil.UTC().Format("2006-01-02 15:04:05 UTC"))
	case info.Warm > 0:
		return fmt.Sprintf("%v after a change of URL", info.Warm)
	}
	return "none"
}
