package tool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// ErrUnknownPlugin is wrapped by the error for a plugin path that names no
// configured plugin.
var ErrUnknownPlugin = errors.New("tool: unknown plugin")

// Tool holds named plugins, each a backend URL with the defaults of the
// Dicts made from it, as ERP5's portal_memcached does. Dicts of one plugin
// share one backend (one connection pool), opened on first use.
//
// A Tool can be reconfigured while in use (SetPlugin, Configure): Dicts
// handed out earlier follow the change. A Tool is safe for concurrent use
// by multiple goroutines.
type Tool struct {
	mu      sync.RWMutex
	siteID  string
	plugins map[string]*plugin
	closed  bool

	mw        []backend.Middleware // WithMiddleware's, around every plugin's backend
	pending   sync.WaitGroup       // retired backends not yet closed
	handedOut dictRegistry         // the Dicts Dict handed out, for Dicts
	errMu     sync.Mutex
	errs      []error // errors of closing retired backends
}

// plugin is one configured plugin. cfg is guarded by Tool.mu.
type plugin struct {
	name     string
	cfg      PluginConfig // URL normalized; "" for a supplied backend
	supplied bool         // the current backend was supplied by WithBackend
	settings *memdict.SharedSettings
	proxy    *proxy
}

// An Option configures a Tool in New, Load or FromEnv.
type Option func(*toolOptions)

type toolOptions struct {
	backends map[string]backend.Backend
	mw       []backend.Middleware
}

// WithBackend makes the plugin name use be, an already open backend,
// instead of opening its URL; a plugin the configuration does not define
// is added with DefaultPluginConfig's settings. The Tool does not close be:
// its caller does, after closing the Tool. It lets tests and programs share
// one backend between several Tools (with different site ids, say).
func WithBackend(name string, be backend.Backend) Option {
	return func(o *toolOptions) {
		if o.backends == nil {
			o.backends = map[string]backend.Backend{}
		}
		o.backends[PluginName(name)] = be
	}
}

// WithMiddleware puts mw around the backend of every plugin, as
// backend.Wrap does: each middleware sees every call of the plugin's
// Dicts, and of users of Tool.Backend, optional abilities included, before
// the plugin's current backend performs it, and keeps seeing them across
// SetPlugin and Configure. It is where instrumentation of a whole Tool
// (metrics, logs, traces) and value transforms go. Several WithMiddleware
// add up, in order: the first middleware sees each call first.
func WithMiddleware(mw ...backend.Middleware) Option {
	return func(o *toolOptions) { o.mw = append(o.mw, mw...) }
}

// New returns a Tool configured by cfg; the default plugin is added if cfg
// lacks it. No backend is opened yet. New returns the problems of cfg as
// Config.Validate does.
func New(cfg Config, opts ...Option) (*Tool, error) {
	var o toolOptions
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.withDefault()
	for name, be := range o.backends {
		if be == nil {
			return nil, &ConfigError{Plugin: name, Err: errors.New("WithBackend: nil backend")}
		}
		pc, ok := cfg.Plugins[name]
		if !ok {
			pc = DefaultPluginConfig("")
		}
		if pc.URL == "" {
			pc.URL = DefaultURL // only to pass the check; not opened
		}
		cfg.Plugins[name] = pc
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tool{siteID: cfg.SiteID, plugins: make(map[string]*plugin, len(cfg.Plugins)), mw: o.mw}
	for name, pc := range cfg.Plugins {
		pc.URL, _ = normalizeURL(pc.URL)
		s, err := pc.settings(cfg.SiteID)
		if err != nil {
			return nil, &ConfigError{Plugin: name, Field: fieldCodec, Err: err}
		}
		sh, err := memdict.NewSharedSettings(s)
		if err != nil {
			return nil, &ConfigError{Plugin: name, Err: err}
		}
		var v *configVersion
		p := &plugin{name: name, cfg: pc, settings: sh}
		if be, ok := o.backends[name]; ok {
			p.cfg.URL, p.supplied = "", true
			v = newConfigVersion("", be, false)
		} else {
			v = newConfigVersion(pc.URL, nil, true)
		}
		p.proxy = newProxy(name, v, &t.pending, t.recordCloseErr, t.mw)
		t.plugins[name] = p
	}
	return t, nil
}

// Load returns a Tool configured by the file path (see LoadConfig).
func Load(path string, opts ...Option) (*Tool, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

// FromEnv returns a Tool configured by the environment (see
// ConfigFromEnv): MEMDICT_CONFIG, MEMDICT_URL and MEMDICT_SITE_ID. With
// none of them set, its default plugin is the in-memory backend.
func FromEnv(opts ...Option) (*Tool, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

func (t *Tool) recordCloseErr(err error) {
	t.errMu.Lock()
	t.errs = append(t.errs, err)
	t.errMu.Unlock()
}

// PluginName returns the plugin name a path designates: "" and ERP5's
// name of the default plugin (ERP5DefaultPlugin) give DefaultPlugin, and
// ERP5's PathPrefix is removed ("portal_memcached/x" gives "x"). It does
// not check that the plugin exists.
func PluginName(path string) string {
	if path == "" {
		return DefaultPlugin
	}
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimPrefix(path, PathPrefix)
	if path == ERP5DefaultPlugin {
		return DefaultPlugin
	}
	return path
}

// PluginPath returns the path of the plugin named name, as the Tool
// reports it (PluginInfo.Path): the name itself. ERP5's form,
// PathPrefix + name, designates the same plugin.
func PluginPath(name string) string { return name }

// lookup returns the plugin path designates. t.mu must be held.
func (t *Tool) lookup(path string) (*plugin, error) {
	if t.closed {
		return nil, fmt.Errorf("tool: plugin path %q: %w", path, backend.ErrClosed)
	}
	p, ok := t.plugins[PluginName(path)]
	if !ok {
		names := make([]string, 0, len(t.plugins))
		for _, p := range t.sortedLocked() {
			names = append(names, PluginPath(p.name))
		}
		return nil, fmt.Errorf("%w %q (configured: %s)", ErrUnknownPlugin, path, strings.Join(names, ", "))
	}
	return p, nil
}

// sortedLocked returns the plugins by order, then name. t.mu must be held.
func (t *Tool) sortedLocked() []*plugin {
	ps := make([]*plugin, 0, len(t.plugins))
	for _, p := range t.plugins {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *plugin) int {
		return cmp.Or(cmp.Compare(a.cfg.Order, b.cfg.Order), cmp.Compare(a.name, b.name))
	})
	return ps
}

// Dict returns a Dict of V values under keyPrefix in the plugin that
// pluginPath names ("" for the default plugin). It is ERP5's
// portal_memcached.getMemcachedDict(key_prefix, plugin_path):
//
//	getMemcachedDict("my_first_test", "portal_memcached/default_memcached_plugin")
//	tool.Dict[int](t, "my_first_test", "portal_memcached/default_memcached_plugin")
//
// The Dict takes its site id, expiration, limits, codec, near cache and
// format from the Tool and the plugin, and follows later changes of them
// (SetPlugin, Configure), but for the options opts gives it, which take
// precedence, for this Dict only:
//
//   - options that set one setting (memdict.WithDefaultTTL, WithCodec,
//     WithMaxValueLen, WithMaxKeyLen, WithGenerationRefresh,
//     WithGenerationTTL, WithSiteID, WithFormat) override the plugin's value of that setting: the Dict
//     keeps it when the plugin changes, and follows the plugin for the
//     others;
//   - memdict.WithNearCache replaces the plugin's near cache
//     (PluginConfig.NearCache), and memdict.WithoutNearCache removes it;
//     a plugin's near cache is taken when the Dict is made;
//   - the options plugins do not set (WithStaleWhileRevalidate,
//     WithNegativeTTL, WithLeaseTTL, WithErrorHandler, WithLogger, ...)
//     apply as they do in memdict.New.
//
// So the precedence is: the Dict's options, then the plugin's
// configuration, then memdict's defaults. memdict.WithSettings cannot
// apply: the Dict's settings are its plugin's.
//
// The Dict reaches every ability of the plugin's current backend (leases
// or lock keys, batched writes, server-assisted invalidation for the near
// cache, private reads, servers named in errors), asked at each call, so
// that it follows the plugin to another backend. Dict opens no
// connection, except that a near cache that relies on the server's
// reports (MaxStale 0) opens the plugin's backend to register with it.
// The Tool keeps track of the Dict (without keeping it alive) so that
// Dicts reports its metrics.
//
// Dict returns an error wrapping ErrUnknownPlugin, naming the path and
// listing the configured plugins, for an unknown path; one wrapping
// backend.ErrClosed after Close; one naming the plugin and the option for
// an option that cannot apply.
func Dict[V any](t *Tool, keyPrefix, pluginPath string, opts ...memdict.Option) (*memdict.Dict[V], error) {
	t.mu.RLock()
	p, err := t.lookup(pluginPath)
	t.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	opts = append([]memdict.Option{memdict.WithSettings(p.settings)}, opts...)
	d, err := memdict.New[V](p.proxy.be, keyPrefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("tool: Dict %q of plugin %q: %w", keyPrefix, p.name, err)
	}
	track(&t.handedOut, p.name, d)
	return d, nil
}

// PluginInfo describes a plugin, for listings and admin pages.
type PluginInfo struct {
	// Name is the plugin's name ("default").
	Name string
	// Path is its path, as PluginPath gives it: its name. (ERP5's form,
	// "portal_memcached/<name>", designates it too.)
	Path string
	// PluginConfig is its configuration, with the URL's password, if any,
	// replaced by "xxxxx" (backend.Redact), and the codec's and format's
	// names filled in ("msgpack" and "memdict" for the defaults). URL is ""
	// for a backend supplied with WithBackend.
	PluginConfig
	// SiteID is the Tool's site id, which the plugin's Dicts use.
	SiteID string
	// Open reports whether its backend is open.
	Open bool
	// WarmFrom is, while the plugin warms up after a change of URL
	// (PluginConfig.Warm), its previous URL (redacted), and WarmUntil
	// the end of the window; both are zero otherwise.
	WarmFrom  string
	WarmUntil time.Time
}

func (t *Tool) infoLocked(p *plugin) PluginInfo {
	pc := p.cfg
	if pc.URL != "" {
		pc.URL = backend.Redact(pc.URL)
	}
	if c, err := codecByName(pc.Codec); err == nil {
		pc.Codec = c.Name()
	}
	if pc.Format == "" {
		pc.Format = memdict.FormatMemdict
	}
	info := PluginInfo{Name: p.name, Path: PluginPath(p.name), PluginConfig: pc, SiteID: t.siteID, Open: p.proxy.opened()}
	if w := p.proxy.cur.Load().warm.Load(); w != nil && w.active() {
		info.WarmFrom, info.WarmUntil = w.from, w.until
		if info.WarmFrom == "" {
			info.WarmFrom = "(backend supplied by the program)"
		}
	}
	return info
}

// Plugins returns every plugin, sorted by Order, then by name. After Close
// it returns none.
func (t *Tool) Plugins() []PluginInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return nil
	}
	var out []PluginInfo
	for _, p := range t.sortedLocked() {
		out = append(out, t.infoLocked(p))
	}
	return out
}

// Plugin returns the plugin path names, or an error as Dict does.
func (t *Tool) Plugin(path string) (PluginInfo, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, err := t.lookup(path)
	if err != nil {
		return PluginInfo{}, err
	}
	return t.infoLocked(p), nil
}

// SiteID returns the Tool's site id.
func (t *Tool) SiteID() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.siteID
}

// Backend returns the backend of the plugin path names, opening it with
// ctx if it is not open yet. It is the backend the plugin's Dicts use, a
// *backend.Wrapped: it follows the plugin's reconfiguration, and has every
// optional ability (backend.Pinger, StatsReporter, Lister, Flusher,
// MultiWriter, Leaser, Locker, Invalidator, Locator), each of which is
// asked of the plugin's current backend at the call and gives an error
// wrapping backend.ErrNotSupported when that backend lacks it (package
// backend's functions then fall back). Its Close does nothing: the Tool
// closes its backends. Backend returns an error as Dict does, or the error
// of opening the backend.
func (t *Tool) Backend(ctx context.Context, path string) (backend.Backend, error) {
	t.mu.RLock()
	p, err := t.lookup(path)
	t.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	h, _, err := p.proxy.acquire(ctx)
	if err != nil {
		return nil, err
	}
	h.release(p.proxy)
	return p.proxy.be, nil
}

// Describe returns what the backend of the plugin path names says of
// itself (backend.Describe: the kind of server, the servers and the
// connections to each), without opening it: the zero Description if it is
// not open yet, if it cannot tell, or if path names no plugin. Metrics
// exporters read the connections there.
func (t *Tool) Describe(path string) backend.Description {
	t.mu.RLock()
	p, err := t.lookup(path)
	t.mu.RUnlock()
	if err != nil {
		return backend.Description{}
	}
	return backend.Describe(p.proxy.be)
}

// SetPlugin changes the configuration of the plugin path names, or adds a
// plugin if there is none of that name. Dicts handed out earlier follow the
// change from their next call on.
//
// A new URL is opened (with ctx) before the switch, so that a URL the
// driver refuses is an error that changes nothing; then calls go to the new
// backend, calls in flight finish on the old one, and the old one is closed
// once they have returned. No call fails because of the switch, but a
// CompareAndSwap with a token read from the old backend conflicts
// (backend.ErrCASConflict), as after another client's write: a Dict's
// Update or GetOrLoad fill that straddles the switch reads the new
// backend again instead of writing there a value computed from the old
// one's. An empty URL, or the plugin's redacted URL as Plugin returns
// it, keeps the current URL (and password), so that an admin page can
// change the other settings without knowing the password.
//
// With cfg.Warm set, a change of URL starts a warm-up window of that
// length: a miss on the new backend reads the previous one (kept open
// meanwhile) and copies the item over with its remaining TTL, and every
// write of a key deletes it from the previous backend first, so that
// Dicts find the values cached before the switch instead of missing them
// all at once, and never a value older than one written since (see
// PluginConfig.Warm). Without it the new backend starts empty.
//
// Changing the codec, the format or the maximum key length (or, with
// Configure, the site id) changes how values and keys are written: values
// stored before then read as misses, as after a cache flush.
//
// SetPlugin is atomic: on error nothing changes. It returns a
// *ConfigError for an invalid cfg, the error of opening the new URL, or an
// error wrapping backend.ErrClosed after Close.
func (t *Tool) SetPlugin(ctx context.Context, path string, cfg PluginConfig) error {
	name := PluginName(path)
	if err := checkName(name); err != nil {
		return &ConfigError{Plugin: name, Err: err}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("tool: SetPlugin %q: %w", path, backend.ErrClosed)
	}
	ch, err := t.prepareLocked(ctx, name, cfg, t.siteID)
	if err != nil {
		return err
	}
	t.commitLocked(ch)
	return nil
}

// change is a prepared plugin change: checked, its new backend (if any)
// already open.
type change struct {
	p        *plugin // nil for a new plugin
	name     string
	cfg      PluginConfig
	settings memdict.Settings
	version  *configVersion // nil: keep the current backend
}

// prepareLocked checks cfg for plugin name and opens its backend if its
// URL changes. t.mu must be held.
func (t *Tool) prepareLocked(ctx context.Context, name string, cfg PluginConfig, siteID string) (*change, error) {
	p := t.plugins[name]
	if p != nil && (cfg.URL == "" || (cfg.URL == backend.Redact(p.cfg.URL) && p.cfg.URL != "")) {
		cfg.URL = p.cfg.URL
	}
	keep := p != nil && cfg.URL == p.cfg.URL
	errs := cfg.check("", name, nil)
	if keep && p.supplied {
		// A backend supplied with WithBackend has no URL to check.
		errs = slices.DeleteFunc(errs, func(err error) bool {
			var ce *ConfigError
			return errors.As(err, &ce) && ce.Field == fieldURL
		})
	} else if len(errs) == 0 {
		cfg.URL, _ = normalizeURL(cfg.URL)
		keep = p != nil && cfg.URL == p.cfg.URL
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s, err := cfg.settings(siteID)
	if err != nil {
		return nil, &ConfigError{Plugin: name, Field: fieldCodec, Err: err}
	}
	if err := s.Validate(); err != nil {
		return nil, &ConfigError{Plugin: name, Err: err}
	}
	ch := &change{p: p, name: name, cfg: cfg, settings: s}
	if !keep {
		be, err := backend.Open(ctx, cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("tool: plugin %q: %w", name, err)
		}
		ch.version = newConfigVersion(cfg.URL, be, true)
		if p != nil {
			// Tokens of the backend it replaces are not this one's.
			ch.version.salt = newSalt()
		}
	}
	return ch, nil
}

// commitLocked applies a prepared change. t.mu must be held.
func (t *Tool) commitLocked(ch *change) {
	if ch.p == nil {
		sh, _ := memdict.NewSharedSettings(ch.settings) // validated in prepare
		p := &plugin{name: ch.name, cfg: ch.cfg, settings: sh}
		p.proxy = newProxy(ch.name, ch.version, &t.pending, t.recordCloseErr, t.mw)
		t.plugins[ch.name] = p
		return
	}
	p := ch.p
	p.cfg = ch.cfg
	if ch.version != nil {
		p.supplied = false
		if cur := p.proxy.cur.Load(); ch.cfg.Warm > 0 && cur.dead == nil {
			ch.version.warm.Store(startWarm(p.proxy, cur, ch.cfg.Warm, ch.cfg.Expiration))
		}
		p.proxy.swap(ch.version)
	}
	// The settings change after the backend: a Dict that sees the new
	// settings reads its namespace generation (memdict.Dict.Clear) again,
	// and then from the new backend. Store always installs a new value, so
	// Dicts read it again even if only the URL changed.
	_ = p.settings.Store(ch.settings) // validated in prepare
}

// abort closes the backends a prepared change opened.
func (ch *change) abort() {
	if ch.version != nil {
		if b := ch.version.be.Load(); b != nil {
			_ = b.be.Close()
		}
	}
}

// Configure replaces the whole configuration of a live Tool: its site id
// and its plugins, as SetPlugin does for each of cfg's plugins (the default
// plugin is added if cfg lacks it). Plugins that cfg does not name are
// removed: calls of their Dicts fail with an error wrapping
// backend.ErrClosed. Configure is atomic: every new URL is opened first,
// and on error nothing changes. A plugin supplied with WithBackend keeps
// its backend if its configuration in cfg has an empty URL.
func (t *Tool) Configure(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefault()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("tool: Configure: %w", backend.ErrClosed)
	}
	var (
		changes []*change
		errs    []error
	)
	for _, name := range sortedNames(cfg.Plugins) {
		if err := checkName(name); err != nil {
			errs = append(errs, &ConfigError{Plugin: name, Err: err})
			continue
		}
		ch, err := t.prepareLocked(ctx, name, cfg.Plugins[name], cfg.SiteID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		changes = append(changes, ch)
	}
	if len(errs) > 0 {
		for _, ch := range changes {
			ch.abort()
		}
		return errors.Join(errs...)
	}
	t.siteID = cfg.SiteID
	for _, ch := range changes {
		t.commitLocked(ch)
	}
	for name, p := range t.plugins {
		if _, ok := cfg.Plugins[name]; !ok {
			p.proxy.swap(deadConfigVersion(fmt.Errorf("tool: plugin %q was removed: %w", name, backend.ErrClosed)))
			delete(t.plugins, name)
		}
	}
	return nil
}

// RemovePlugin removes the plugin path names; calls of its Dicts then fail
// with an error wrapping backend.ErrClosed, and its backend is closed once
// the calls in flight have returned. The default plugin cannot be removed.
// Dicts of a removed plugin stay unusable even if a plugin of the same name
// is added again: make new ones.
// RemovePlugin returns an error as Dict does for an unknown path.
func (t *Tool) RemovePlugin(path string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.lookup(path)
	if err != nil {
		return err
	}
	if p.name == DefaultPlugin {
		return fmt.Errorf("tool: RemovePlugin %q: the default plugin cannot be removed", path)
	}
	p.proxy.swap(deadConfigVersion(fmt.Errorf("tool: plugin %q was removed: %w", p.name, backend.ErrClosed)))
	delete(t.plugins, p.name)
	return nil
}

// Close closes every backend the Tool opened (not those supplied with
// WithBackend), after waiting for the calls in flight on them to return.
// Afterwards Dict, Backend and SetPlugin return an error wrapping
// backend.ErrClosed, and so do calls of Dicts handed out earlier. Close
// returns the errors of closing backends (joined), including those of
// backends retired by earlier reconfigurations; a second Close returns nil.
func (t *Tool) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, p := range t.plugins {
		p.proxy.swap(deadConfigVersion(errPluginClosed(p.name)))
	}
	t.mu.Unlock()
	t.pending.Wait()
	t.errMu.Lock()
	defer t.errMu.Unlock()
	err := errors.Join(t.errs...)
	t.errs = nil
	return err
}
