package tool

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/stripe"
)

// openRetryDelay is how long a failed open is remembered: calls in that
// time get its error instead of trying again.
const openRetryDelay = time.Second

// proxy switches a plugin's backend. The backend a plugin's Dicts hold is
// its be, built with backend.WrapFunc on handle: every call, of a
// Backend method or of an optional ability, goes (through the Tool's
// middleware) to handle, which hands it to the backend of the plugin's
// current config version with backend.Do. So the plugin's backend has
// every ability its current backend has, asked per call, and the Tool can
// switch the plugin to another backend while Dicts are in use: calls in
// flight finish on the old backend, which is closed when the last of them
// returns. The hot path takes no lock: one atomic load of the config
// version, and an atomic increment and decrement of its in-flight counter.
type proxy struct {
	name string
	be   *backend.Wrapped
	cur  atomic.Pointer[configVersion]
	// pending counts retired config versions not yet closed; Tool.Close
	// waits for it.
	pending *sync.WaitGroup
	// closeErr receives the error of closing a config version.
	closeErr func(error)

	// trMu guards trackings and serializes their moves.
	trMu      sync.Mutex
	trackings map[*proxyTracking]struct{}
}

// configVersion is one version of a plugin's backend configuration: the
// backend opened from one URL (lazily, on first use), or one supplied by
// the program. A reconfiguration that changes the plugin's URL makes a new
// one. (Not to be confused with a Dict's namespace generation.)
type configVersion struct {
	url   string // "" for a supplied backend
	owned bool   // the Tool opened the backend and must close it
	dead  error  // if set, every call fails with it (after Close)
	// salt tells the CAS tokens of this version's backend from those of
	// the others (see saltCAS); 0 for a plugin's first version.
	salt uint64

	// inflight counts the calls using it (and a warm window's hold on
	// it). Every call through the plugin raises and lowers it, so it is
	// striped: one shared counter would be a cache line that every core
	// writes twice per call.
	inflight stripe.Counter
	retired  atomic.Bool
	be       atomic.Pointer[backendBox]
	warm     atomic.Pointer[warm] // set while it warms up from the previous version (warm.go)

	mu      sync.Mutex // serializes opening
	lastErr error
	lastTry time.Time

	closeOnce sync.Once
	closed    chan struct{} // closed once the backend is closed
}

type backendBox struct{ be backend.Backend }

func newConfigVersion(url string, be backend.Backend, owned bool) *configVersion {
	v := &configVersion{url: url, owned: owned, closed: make(chan struct{})}
	if be != nil {
		v.be.Store(&backendBox{be})
	}
	return v
}

func deadConfigVersion(err error) *configVersion {
	v := &configVersion{dead: err, closed: make(chan struct{})}
	close(v.closed)
	return v
}

func newProxy(name string, v *configVersion, pending *sync.WaitGroup, closeErr func(error), mw []backend.Middleware) *proxy {
	p := &proxy{name: name, pending: pending, closeErr: closeErr, trackings: map[*proxyTracking]struct{}{}}
	p.cur.Store(v)
	p.be = backend.WrapFunc(p.handle, mw...)
	return p
}

// held is a config version held for a call: its in-flight count raised
// until release.
type held struct {
	v *configVersion
	t stripe.Ticket
}

// hold raises v's in-flight count.
func (v *configVersion) hold() held { return held{v, v.inflight.Add(1)} }

// release lowers the in-flight count of h's config version and closes it
// if it is retired and this was the last call in flight.
func (h held) release(p *proxy) {
	v := h.v
	v.inflight.Done(h.t, 1)
	// Whichever of swap and the last release sees the other's write closes
	// it: both write (retired, the count) before they read.
	if v.retired.Load() && v.inflight.Load() == 0 {
		v.closeOnce.Do(func() { go v.close(p) })
	}
}

// acquire returns the current config version, held, and its backend; the
// caller must release it.
func (p *proxy) acquire(ctx context.Context) (held, backend.Backend, error) {
	for {
		v := p.cur.Load()
		if v.dead != nil {
			return held{}, nil, v.dead
		}
		h := v.hold()
		if p.cur.Load() != v {
			// Switched between the load and the increment: the retiring
			// side may have seen no call in flight. Try the new one.
			h.release(p)
			continue
		}
		if b := v.be.Load(); b != nil {
			return h, b.be, nil
		}
		be, err := v.open(ctx, p.name)
		if err != nil {
			h.release(p)
			return held{}, nil, err
		}
		return h, be, nil
	}
}

// open opens v's backend, once; a failure is remembered for
// openRetryDelay so that a down server is not dialed by every call.
func (v *configVersion) open(ctx context.Context, name string) (backend.Backend, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.be.Load(); b != nil {
		return b.be, nil
	}
	if v.lastErr != nil && time.Since(v.lastTry) < openRetryDelay {
		return nil, v.lastErr
	}
	be, err := backend.Open(ctx, v.url)
	if err != nil {
		err = fmt.Errorf("tool: plugin %q: %w: %w", name, backend.ErrUnavailable, err)
		if ctx.Err() == nil {
			v.lastErr, v.lastTry = err, time.Now()
		}
		return nil, err
	}
	v.lastErr = nil
	v.be.Store(&backendBox{be})
	return be, nil
}

// close closes v's backend if the Tool owns it. It runs once per retired
// config version.
func (v *configVersion) close(p *proxy) {
	defer p.pending.Done()
	defer close(v.closed)
	if b := v.be.Load(); b != nil && v.owned {
		if err := b.be.Close(); err != nil && p.closeErr != nil {
			p.closeErr(fmt.Errorf("tool: plugin %q: close %s: %w", p.name, backend.Redact(v.url), err))
		}
	}
}

// swap makes next the current config version and retires the previous one,
// which is closed once its calls in flight have returned; the plugin's
// trackings move to next's backend. It returns the previous config
// version.
func (p *proxy) swap(next *configVersion) *configVersion {
	p.trMu.Lock()
	defer p.trMu.Unlock()
	old := p.cur.Swap(next)
	if old != nil {
		if w := old.warm.Load(); w != nil {
			w.end() // a retired version warms up no more
		}
	}
	var be backend.Backend
	if b := next.be.Load(); b != nil && next.dead == nil {
		be = b.be
	}
	for tr := range p.trackings {
		tr.move(be)
	}
	if old == nil || old.dead != nil {
		return old
	}
	p.pending.Add(1)
	old.retired.Store(true)
	if old.inflight.Load() == 0 {
		old.closeOnce.Do(func() { go old.close(p) })
	}
	return old
}

// handle performs a call on the plugin's current backend, with backend.Do,
// which uses the ability the call asks for if that backend has it and
// says ErrNotSupported otherwise; the caller (package backend's functions,
// a Dict) falls back then. The config version is acquired for the
// duration of the call.
func (p *proxy) handle(ctx context.Context, c backend.Call) backend.Result {
	switch {
	case c.Op == backend.OpClose:
		// The Tool owns the plugin's backends and closes them in
		// Tool.Close: a Dict's user closing its backend must not cut off
		// the plugin's other Dicts.
		return backend.Result{}
	case c.Op == backend.OpKeys:
		return backend.Result{Keys: p.keys(ctx, c.Prefix)}
	case c.Op == backend.OpTrack:
		return p.track(ctx, c)
	case c.Op == backend.OpTimeout:
		return p.timeout(ctx, c)
	case c.Op.Property():
		// No I/O (ServerFor), so no need to open the backend: one that
		// is not open yet has named no server in an error.
		if v := p.cur.Load(); v.dead == nil {
			if b := v.be.Load(); b != nil {
				return backend.Do(ctx, b.be, c)
			}
		}
		return backend.Result{}
	}
	h, be, err := p.acquire(ctx)
	if err != nil {
		return backend.Result{Err: err}
	}
	defer h.release(p)
	salt := h.v.salt
	if salt != 0 {
		switch c.Op {
		case backend.OpCompareAndSwap:
			c.Item.CAS = saltCAS(c.Item.CAS, salt)
		case backend.OpReleaseLease:
			c.Lease.Item.CAS = saltCAS(c.Lease.Item.CAS, salt)
		}
	}
	var r backend.Result
	if w := h.v.warm.Load(); w != nil && w.active() {
		r = w.bounded(ctx, be, c)
	} else {
		r = backend.Do(ctx, be, c)
	}
	switch c.Op {
	case backend.OpServerStats, backend.OpFlush, backend.OpPing:
		r.Err = p.named(r.Err)
	}
	if salt != 0 {
		switch c.Op {
		case backend.OpGet, backend.OpGetTTL:
			r.Item.CAS = saltCAS(r.Item.CAS, salt)
		case backend.OpGetMulti:
			for k, it := range r.Items {
				it.CAS = saltCAS(it.CAS, salt)
				r.Items[k] = it
			}
		case backend.OpGetLease:
			r.Lease.Item.CAS = saltCAS(r.Lease.Item.CAS, salt)
		}
	}
	return r
}

// saltCAS maps a CAS token of a config version's backend to the token
// the plugin hands out, and back (it is its own inverse): the token XOR
// the version's salt, 0 staying 0 (no token) and the salt itself staying
// the salt (which XOR would make 0). A caller's read-modify-write spans
// several calls, which may straddle a switch (SetPlugin, Configure): an
// Update that read the old backend, or a fill that won its lease or lock
// there, then does its CompareAndSwap on the new one, where the same
// token (memcached's and the memory store's count from 1 on each server)
// names another write: the swap succeeded, storing a value computed from
// the old backend's over the new one's. Salted, a token meets the backend
// it came from, or is one that backend has not handed out: the swap fails
// as a conflict, and the caller reads again, from the new backend.
func saltCAS(cas, salt uint64) uint64 {
	if cas == 0 || cas == salt {
		return cas
	}
	return cas ^ salt
}

// newSalt returns the salt of a config version that replaces another.
func newSalt() uint64 {
	for {
		if s := rand.Uint64(); s != 0 {
			return s
		}
	}
}

// timeoutOpenMax bounds the open that asking a plugin's timeout makes.
const timeoutOpenMax = time.Second

// timeout answers OpTimeout: the timeout of the current backend, opened
// if it is not yet. A Dict asks it before its first call, to bound that
// call; answering 0 (none) for a backend not open yet left the first
// call, and the view of a Dict in a Python format, without a bound. The
// open is the one the call would make next, within timeoutOpenMax; if it
// fails, the answer is 0 and the call meets the open's error.
func (p *proxy) timeout(ctx context.Context, c backend.Call) backend.Result {
	if v := p.cur.Load(); v.dead == nil {
		if b := v.be.Load(); b != nil {
			return backend.Do(ctx, b.be, c)
		}
	}
	octx, cancel := context.WithTimeout(ctx, timeoutOpenMax)
	defer cancel()
	h, be, err := p.acquire(octx)
	if err != nil {
		return backend.Result{}
	}
	defer h.release(p)
	return backend.Do(ctx, be, c)
}

// keys lists the keys under prefix of the current backend, which stays
// acquired while the iteration runs.
func (p *proxy) keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		h, be, err := p.acquire(ctx)
		if err != nil {
			yield("", err)
			return
		}
		defer h.release(p)
		for k, err := range backend.Keys(ctx, be, prefix) {
			if !yield(k, p.named(err)) {
				return
			}
		}
	}
}

// named prefixes an error saying the backend lacks an ability with the
// plugin's name; other errors are the backend's own. It is used for the
// abilities a caller asks for by name (listing keys, statistics, flush,
// ping); the others have fallbacks, and their errors are not seen.
func (p *proxy) named(err error) error {
	if backend.NotSupported(err) {
		return fmt.Errorf("tool: plugin %q: %w", p.name, err)
	}
	return err
}

// opened reports whether the current config version's backend is open.
func (p *proxy) opened() bool {
	v := p.cur.Load()
	return v.dead == nil && v.be.Load() != nil
}

// errPluginClosed is what calls return after Tool.Close.
func errPluginClosed(name string) error {
	return fmt.Errorf("tool: plugin %q: the Tool is closed: %w", name, backend.ErrClosed)
}

// Tracking through a plugin.

// track implements backend.Invalidator for the plugin: it registers a
// tracking that follows the plugin's backend. Over a backend that cannot
// track keys the registration is made all the same, not Supported nor
// Live, and becomes so if the plugin moves to one that can.
func (p *proxy) track(ctx context.Context, c backend.Call) backend.Result {
	if c.OnInvalidation == nil {
		return backend.Result{Err: fmt.Errorf("tool: plugin %q: track: nil function", p.name)}
	}
	for {
		h, be, err := p.acquire(ctx)
		if err != nil {
			return backend.Result{Err: err}
		}
		p.trMu.Lock()
		if p.cur.Load() != h.v {
			// Switched meanwhile: register on the new version.
			p.trMu.Unlock()
			h.release(p)
			continue
		}
		tr := &proxyTracking{prefix: c.Prefix, fn: c.OnInvalidation, p: p}
		err = tr.attach(ctx, be)
		if err != nil && !backend.NotSupported(err) {
			p.trMu.Unlock()
			h.release(p)
			return backend.Result{Err: err}
		}
		p.trackings[tr] = struct{}{}
		p.trMu.Unlock()
		h.release(p)
		return backend.Result{Tracking: tr}
	}
}

// proxyTracking is a backend.Tracking through a plugin. It tracks its
// prefix on the plugin's current backend; when the plugin moves to another
// backend (SetPlugin, Configure) it stops tracking on the old one,
// reports every key as changed (Invalidation.All: the values read from
// the old backend are not the new one's) and tracks on the new one, or,
// if that one cannot, stops being Supported and Live until the plugin
// moves to one that can.
type proxyTracking struct {
	prefix string
	fn     func(backend.Invalidation)
	p      *proxy

	cur atomic.Pointer[innerTracking] // nil: not tracking

	mu      sync.Mutex // serializes fn; guards seq and stopped
	seq     uint64     // bumped at each attach: reports of older ones are dropped
	stopped bool
}

// innerTracking is the registration on one backend.
type innerTracking struct{ tr backend.Tracking }

// Live implements backend.Tracking.
func (t *proxyTracking) Live() bool {
	in := t.cur.Load()
	return in != nil && in.tr.Live()
}

// Supported implements backend.Tracking.
func (t *proxyTracking) Supported() bool {
	in := t.cur.Load()
	return in != nil && in.tr.Supported()
}

// Stop implements backend.Tracking.
func (t *proxyTracking) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	in := t.cur.Swap(nil)
	t.mu.Unlock()
	if in != nil {
		in.tr.Stop()
	}
	t.p.trMu.Lock()
	delete(t.p.trackings, t)
	t.p.trMu.Unlock()
}

// attach stops tracking on the previous backend, if any, and starts on be
// (none if be is nil). It returns the error of be's Track.
func (t *proxyTracking) attach(ctx context.Context, be backend.Backend) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.seq++
	seq := t.seq
	old := t.cur.Swap(nil)
	t.mu.Unlock()
	if old != nil {
		old.tr.Stop()
	}
	if be == nil {
		return nil
	}
	tr, err := backend.Track(ctx, be, t.prefix, func(inv backend.Invalidation) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped && t.seq == seq {
			t.fn(inv)
		}
	})
	if tr == nil {
		return err
	}
	t.mu.Lock()
	if t.stopped || t.seq != seq {
		t.mu.Unlock()
		tr.Stop() // outside mu: Stop may wait for a report that waits for mu
		return nil
	}
	t.cur.Store(&innerTracking{tr})
	t.mu.Unlock()
	return err
}

// move makes the tracking follow the plugin to be (nil: a backend that is
// not open, or none) and reports every key as changed.
func (t *proxyTracking) move(be backend.Backend) {
	_ = t.attach(context.Background(), be)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.fn(backend.Invalidation{All: true})
	}
}
