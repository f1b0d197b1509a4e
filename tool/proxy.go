package tool

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
)

// openRetryDelay is how long a failed open is remembered: calls in that
// time get its error instead of trying again.
const openRetryDelay = time.Second

// proxy is the backend.Backend a plugin's Dicts hold. It forwards every
// call to the backend of the plugin's current config version, so that the
// Tool can switch the plugin to another backend while Dicts are in use:
// calls in flight finish on the old backend, which is closed when the last
// of them returns. The hot path takes no lock: one atomic load of the
// config version, and an atomic increment and decrement of its in-flight
// counter.
type proxy struct {
	name string
	cur  atomic.Pointer[configVersion]
	// pending counts retired config versions not yet closed; Tool.Close
	// waits for it.
	pending *sync.WaitGroup
	// closeErr receives the error of closing a config version.
	closeErr func(error)
}

// configVersion is one version of a plugin's backend configuration: the
// backend opened from one URL (lazily, on first use), or one supplied by
// the program. A reconfiguration that changes the plugin's URL makes a new
// one. (Not to be confused with a Dict's namespace generation.)
type configVersion struct {
	url   string // "" for a supplied backend
	owned bool   // the Tool opened the backend and must close it
	dead  error  // if set, every call fails with it (after Close)

	inflight atomic.Int64
	retired  atomic.Bool
	be       atomic.Pointer[backendBox]

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

func newProxy(name string, v *configVersion, pending *sync.WaitGroup, closeErr func(error)) *proxy {
	p := &proxy{name: name, pending: pending, closeErr: closeErr}
	p.cur.Store(v)
	return p
}

// acquire returns the current config version's backend, with the config version's
// in-flight count raised; the caller must call release.
func (p *proxy) acquire(ctx context.Context) (*configVersion, backend.Backend, error) {
	for {
		v := p.cur.Load()
		if v.dead != nil {
			return nil, nil, v.dead
		}
		v.inflight.Add(1)
		if p.cur.Load() != v {
			// Switched between the load and the increment: the retiring
			// side may have seen no call in flight. Try the new one.
			v.release(p)
			continue
		}
		if b := v.be.Load(); b != nil {
			return v, b.be, nil
		}
		be, err := v.open(ctx, p.name)
		if err != nil {
			v.release(p)
			return nil, nil, err
		}
		return v, be, nil
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

// release lowers v's in-flight count and closes v if it is retired and
// this was the last call in flight.
func (v *configVersion) release(p *proxy) {
	if v.inflight.Add(-1) == 0 && v.retired.Load() {
		v.closeOnce.Do(func() { go v.close(p) })
	}
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
// which is closed once its calls in flight have returned. It returns the
// previous config version.
func (p *proxy) swap(next *configVersion) *configVersion {
	old := p.cur.Swap(next)
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

// Backend methods. Each one acquires the current config version for the
// duration of the call.

func (p *proxy) Get(ctx context.Context, key string) (backend.Item, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return backend.Item{}, err
	}
	defer v.release(p)
	return be.Get(ctx, key)
}

func (p *proxy) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer v.release(p)
	return be.GetMulti(ctx, keys)
}

func (p *proxy) Set(ctx context.Context, item backend.Item) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return be.Set(ctx, item)
}

func (p *proxy) Add(ctx context.Context, item backend.Item) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return be.Add(ctx, item)
}

func (p *proxy) CompareAndSwap(ctx context.Context, item backend.Item) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return be.CompareAndSwap(ctx, item)
}

func (p *proxy) Delete(ctx context.Context, key string) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return be.Delete(ctx, key)
}

func (p *proxy) Touch(ctx context.Context, key string, ttl time.Duration) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return be.Touch(ctx, key, ttl)
}

func (p *proxy) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer v.release(p)
	return be.Increment(ctx, key, delta)
}

// Close does nothing: the Tool owns the plugin's backends and closes them
// in Tool.Close. A Dict's user closing its backend must not cut off the
// plugin's other Dicts.
func (p *proxy) Close() error { return nil }

// Optional interfaces: forwarded to the current backend through package
// backend's helpers, which say what happens when it lacks them
// (backend.ErrNotSupported, except for MultiWriter, which falls back to
// one call per key). An error saying so names the plugin.

// Keys implements backend.Lister with backend.Keys.
func (p *proxy) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		v, be, err := p.acquire(ctx)
		if err != nil {
			yield("", err)
			return
		}
		defer v.release(p)
		for k, err := range backend.Keys(ctx, be, prefix) {
			if !yield(k, p.named(err)) {
				return
			}
		}
	}
}

// ServerStats implements backend.StatsReporter with backend.ServerStats.
func (p *proxy) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer v.release(p)
	st, err := backend.ServerStats(ctx, be)
	return st, p.named(err)
}

// Flush implements backend.Flusher with backend.Flush.
func (p *proxy) Flush(ctx context.Context) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return p.named(backend.Flush(ctx, be))
}

// Ping implements backend.Pinger with backend.Ping.
func (p *proxy) Ping(ctx context.Context) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return p.named(backend.Ping(ctx, be))
}

// SetMulti implements backend.MultiWriter with backend.SetMulti: the
// current backend's SetMulti, or one Set per item.
func (p *proxy) SetMulti(ctx context.Context, items []backend.Item) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return backend.SetMulti(ctx, be, items)
}

// DeleteMulti implements backend.MultiWriter with backend.DeleteMulti.
func (p *proxy) DeleteMulti(ctx context.Context, keys []string) error {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return backend.DeleteMulti(ctx, be, keys)
}

// Timeout implements backend.Timeouter with backend.Timeout on the
// current backend (opening it if it is not open yet; 0 if that fails, or
// the plugin is removed or closed).
func (p *proxy) Timeout() time.Duration {
	v, be, err := p.acquire(context.Background())
	if err != nil {
		return 0
	}
	defer v.release(p)
	return backend.Timeout(be)
}

// named prefixes an error saying the backend lacks an ability with the
// plugin's name; other errors are the backend's own.
func (p *proxy) named(err error) error {
	if err != nil && errors.Is(err, backend.ErrNotSupported) {
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

var (
	_ backend.Backend       = (*proxy)(nil)
	_ backend.Lister        = (*proxy)(nil)
	_ backend.StatsReporter = (*proxy)(nil)
	_ backend.Flusher       = (*proxy)(nil)
	_ backend.Pinger        = (*proxy)(nil)
	_ backend.MultiWriter   = (*proxy)(nil)
	_ backend.Timeouter     = (*proxy)(nil)
)

// GetLease implements backend.Leaser with the current backend's Leaser;
// over a backend without one it fails with backend.ErrNotSupported, and
// memdict's GetOrLoad then coordinates fills with the key's lock (a Dict
// decides once, at its first lease).
func (p *proxy) GetLease(ctx context.Context, key string, o backend.LeaseOptions) (backend.Lease, error) {
	v, l, err := p.leaser(ctx)
	if err != nil {
		return backend.Lease{}, err
	}
	defer v.release(p)
	return l.GetLease(ctx, key, o)
}

// ReleaseLease implements backend.Leaser with the current backend's.
func (p *proxy) ReleaseLease(ctx context.Context, lease backend.Lease) error {
	v, l, err := p.leaser(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return l.ReleaseLease(ctx, lease)
}

// MarkStale implements backend.Leaser with the current backend's.
func (p *proxy) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	v, l, err := p.leaser(ctx)
	if err != nil {
		return err
	}
	defer v.release(p)
	return l.MarkStale(ctx, key, ttl)
}

// leaser acquires the current config version and its backend's Leaser;
// the caller releases the version. Over a backend without leases it
// fails with an error wrapping backend.ErrNotSupported that names the
// plugin, and acquires nothing.
func (p *proxy) leaser(ctx context.Context) (*configVersion, backend.Leaser, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	l, ok := be.(backend.Leaser)
	if !ok {
		v.release(p)
		return nil, nil, p.named(fmt.Errorf("backend: leases: %w", backend.ErrNotSupported))
	}
	return v, l, nil
}

// TryLock implements backend.Locker with backend.TryLock on the current
// backend.
func (p *proxy) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer v.release(p)
	return backend.TryLock(ctx, be, key, token, ttl)
}

// Unlock implements backend.Locker with backend.Unlock on the current
// backend.
func (p *proxy) Unlock(ctx context.Context, key, token string) (bool, error) {
	v, be, err := p.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer v.release(p)
	return backend.Unlock(ctx, be, key, token)
}
