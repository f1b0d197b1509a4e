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
	Cached   bool // the servers' status is the shared one of visitors not signed in
}

type pluginView struct {
	tool.PluginInfo
	URLText    string
	Expiration string
	ExpSeconds int64
	serverStatus
	MaxKeyText string
	MaxValText string
	WarmText   string // the warm-up setting, or the window in progress
	WarmValue  string // the form's value of warm
}

// serverStatus is what a plugin's servers said: whether they answer,
// and their statistics.
type serverStatus struct {
	Ping       pingResult
	Nodes      []nodeSummary
	StatsError string
}

// statusSet is the servers' status of every plugin, read at one time.
type statusSet struct {
	at     time.Time
	byName map[string]serverStatus // by statusKey
}

// statusKey names the servers a status was read from: a plugin and its URL.
func statusKey(info tool.PluginInfo) string { return info.Path + "\x00" + info.URL }

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
	d := pageData{Base: base(r), Flash: f, SiteID: h.t.SiteID(), Codecs: codec.Names()}
	if _, ss := h.currentSession(r); ss != nil {
		h.mu.Lock()
		d.SignedIn, d.CSRF, d.Form = true, ss.csrf, ss.form
		h.mu.Unlock()
	}
	infos := h.t.Plugins()
	st := h.status(r.Context(), infos, d.SignedIn)
	d.Now, d.Cached = st.at.UTC().Format("2006-01-02 15:04:05 UTC"), !d.SignedIn
	d.Plugins = make([]pluginView, len(infos))
	for i, info := range infos {
		d.Plugins[i] = newPluginView(info, st.byName[statusKey(info)])
	}
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

// status returns the servers' status of the plugins infos, read one
// page at a time. A signed-in page (fresh) shows a status read after it
// asked for it: signed-in pages loaded at once share one read, instead of
// each reaching every plugin's servers at the same time. A page for a
// visitor who is not signed in shows the one read last if it is less than
// statusTTL old, and reads it otherwise: pages loaded by anyone who
// reaches the handler do not each reach every plugin's servers. Either
// shows the one read last only if it covers infos.
func (h *Handler) status(ctx context.Context, infos []tool.PluginInfo, fresh bool) *statusSet {
	asked := h.now()
	select {
	case h.statusTurn <- struct{}{}:
	case <-ctx.Done(): // the visitor went away: nothing is shown
		return &statusSet{at: h.now()}
	}
	defer func() { <-h.statusTurn }()
	h.mu.Lock()
	last := h.lastStatus
	h.mu.Unlock()
	recent := last != nil && h.now().Sub(last.at) < statusTTL
	if fresh {
		recent = last != nil && !last.at.Before(asked)
	}
	if recent {
		covers := true
		for _, info := range infos {
			if _, ok := last.byName[statusKey(info)]; !ok {
				covers = false
				break
			}
		}
		if covers {
			return last
		}
	}
	if fresh {
		return h.readStatus(ctx, infos)
	}
	// Read for every later visitor: not cut short by this one leaving.
	return h.readStatus(context.WithoutCancel(ctx), infos)
}

// readStatus pings the plugins infos and reads their servers'
// statistics, all at once, and keeps the outcome for status unless ctx
// ended meanwhile.
func (h *Handler) readStatus(ctx context.Context, infos []tool.PluginInfo) *statusSet {
	st := &statusSet{at: h.now(), byName: make(map[string]serverStatus, len(infos))}
	ss := make([]serverStatus, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() { ss[i] = h.serverStatus(ctx, info) })
	}
	wg.Wait()
	for i, info := range infos {
		st.byName[statusKey(info)] = ss[i]
	}
	if ctx.Err() != nil {
		// A signed-in visitor left while it was read: what it says is
		// that visitor's leaving, not the servers' status.
		return st
	}
	h.mu.Lock()
	if h.lastStatus == nil || !st.at.Before(h.lastStatus.at) {
		h.lastStatus = st
	}
	h.mu.Unlock()
	return st
}

// newPluginView is the card of a plugin with its servers' status.
func newPluginView(info tool.PluginInfo, st serverStatus) pluginView {
	v := pluginView{PluginInfo: info, URLText: displayURL(info), Expiration: expirationText(info.Expiration),
		ExpSeconds: int64(info.Expiration / time.Second), MaxKeyText: limitText(info.MaxKeyLen), MaxValText: limitText(info.MaxValueLen),
		WarmText: warmText(info), WarmValue: "0", serverStatus: st}
	if info.Warm > 0 {
		v.WarmValue = info.Warm.String()
	}
	if v.Codec == "" {
		v.Codec = codec.Default().Name()
	}
	return v
}

// serverStatus pings a plugin and reads its servers' statistics.
func (h *Handler) serverStatus(ctx context.Context, info tool.PluginInfo) serverStatus {
	var v serverStatus
	ctx, cancel := context.WithTimeout(ctx, h.pingTimeout)
	defer cancel()
	v.Ping = h.ping(ctx, info)
	be, err := h.t.Backend(ctx, info.Path)
	if err != nil {
		v.StatsError = h.scrub(err.Error())
		return v
	}
	nodes, err := backend.ServerStats(ctx, be)
	if err != nil && len(nodes) == 0 || errors.Is(err, backend.ErrNotSupported) {
		v.StatsError = h.scrub(err.Error())
		if errors.Is(err, backend.ErrNotSupported) {
			v.StatsError = "this backend reports no statistics"
		}
		return v
	}
	// A read cut short by the timeout (which a ping that got no answer
	// used up) returns the servers it asked too, each with its own error
	// naming its address, where the call's error names none ("memcached:
	// stats: context deadline exceeded"): those are shown.
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
