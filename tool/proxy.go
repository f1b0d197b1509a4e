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
// call to the plugin's current backend generation, so that the Tool can
// switch the plugin to another backend while Dicts are in use: calls in
// flight finish on the old backend, which is closed when the last of them
// returns. The hot path takes no lock: one atomic load of the generation,
// and an atomic increment and decrement of its in-flight counter.
type proxy struct {
	name string
	cur  atomic.Pointer[generation]
	// pending counts retired generations not yet closed; Tool.Close waits
	// for it.
	pending *sync.WaitGroup
	// closeErr receives the error of closing a generation.
	closeErr func(error)
}

// generation is one backend of a plugin: the backend opened from one URL
// (lazily, on first use), or one supplied by the program.
type generation struct {
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

func newGeneration(url string, be backend.Backend, owned bool) *generation {
	g := &generation{url: url, owned: owned, closed: make(chan struct{})}
	if be != nil {
		g.be.Store(&backendBox{be})
	}
	return g
}

func deadGeneration(err error) *generation {
	g := &generation{dead: err, closed: make(chan struct{})}
	close(g.closed)
	return g
}

func newProxy(name string, g *generation, pending *sync.WaitGroup, closeErr func(error)) *proxy {
	p := &proxy{name: name, pending: pending, closeErr: closeErr}
	p.cur.Store(g)
	return p
}

// acquire returns the current generation's backend, with the generation's
// in-flight count raised; the caller must call release.
func (p *proxy) acquire(ctx context.Context) (*generation, backend.Backend, error) {
	for {
		g := p.cur.Load()
		if g.dead != nil {
			return nil, nil, g.dead
		}
		g.inflight.Add(1)
		if p.cur.Load() != g {
			// Switched between the load and the increment: the retiring
			// side may have seen no call in flight. Try the new one.
			g.release(p)
			continue
		}
		if b := g.be.Load(); b != nil {
			return g, b.be, nil
		}
		be, err := g.open(ctx, p.name)
		if err != nil {
			g.release(p)
			return nil, nil, err
		}
		return g, be, nil
	}
}

// open opens g's backend, once; a failure is remembered for
// openRetryDelay so that a down server is not dialed by every call.
func (g *generation) open(ctx context.Context, name string) (backend.Backend, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.be.Load(); b != nil {
		return b.be, nil
	}
	if g.lastErr != nil && time.Since(g.lastTry) < openRetryDelay {
		return nil, g.lastErr
	}
	be, err := backend.Open(ctx, g.url)
	if err != nil {
		err = fmt.Errorf("tool: plugin %q: %w: %w", name, backend.ErrUnavailable, err)
		if ctx.Err() == nil {
			g.lastErr, g.lastTry = err, time.Now()
		}
		return nil, err
	}
	g.lastErr = nil
	g.be.Store(&backendBox{be})
	return be, nil
}

// release lowers g's in-flight count and closes g if it is retired and
// this was the last call in flight.
func (g *generation) release(p *proxy) {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.closeOnce.Do(func() { go g.close(p) })
	}
}

// close closes g's backend if the Tool owns it. It runs once per retired
// generation.
func (g *generation) close(p *proxy) {
	defer p.pending.Done()
	defer close(g.closed)
	if b := g.be.Load(); b != nil && g.owned {
		if err := b.be.Close(); err != nil && p.closeErr != nil {
			p.closeErr(fmt.Errorf("tool: plugin %q: close %s: %w", p.name, backend.Redact(g.url), err))
		}
	}
}

// swap makes next the current generation and retires the previous one,
// which is closed once its calls in flight have returned. It returns the
// previous generation.
func (p *proxy) swap(next *generation) *generation {
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

// Backend methods. Each one acquires the current generation for the
// duration of the call.

func (p *proxy) Get(ctx context.Context, key string) (backend.Item, error) {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return backend.Item{}, err
	}
	defer g.release(p)
	return be.Get(ctx, key)
}

func (p *proxy) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer g.release(p)
	return be.GetMulti(ctx, keys)
}

func (p *proxy) Set(ctx context.Context, item backend.Item) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return be.Set(ctx, item)
}

func (p *proxy) Add(ctx context.Context, item backend.Item) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return be.Add(ctx, item)
}

func (p *proxy) CompareAndSwap(ctx context.Context, item backend.Item) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return be.CompareAndSwap(ctx, item)
}

func (p *proxy) Delete(ctx context.Context, key string) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return be.Delete(ctx, key)
}

func (p *proxy) Touch(ctx context.Context, key string, ttl time.Duration) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return be.Touch(ctx, key, ttl)
}

func (p *proxy) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer g.release(p)
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
		g, be, err := p.acquire(ctx)
		if err != nil {
			yield("", err)
			return
		}
		defer g.release(p)
		for k, err := range backend.Keys(ctx, be, prefix) {
			if !yield(k, p.named(err)) {
				return
			}
		}
	}
}

// ServerStats implements backend.StatsReporter with backend.ServerStats.
func (p *proxy) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer g.release(p)
	st, err := backend.ServerStats(ctx, be)
	return st, p.named(err)
}

// Flush implements backend.Flusher with backend.Flush.
func (p *proxy) Flush(ctx context.Context) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return p.named(backend.Flush(ctx, be))
}

// Ping implements backend.Pinger with backend.Ping.
func (p *proxy) Ping(ctx context.Context) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return p.named(backend.Ping(ctx, be))
}

// SetMulti implements backend.MultiWriter with backend.SetMulti: the
// current backend's SetMulti, or one Set per item.
func (p *proxy) SetMulti(ctx context.Context, items []backend.Item) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return backend.SetMulti(ctx, be, items)
}

// DeleteMulti implements backend.MultiWriter with backend.DeleteMulti.
func (p *proxy) DeleteMulti(ctx context.Context, keys []string) error {
	g, be, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer g.release(p)
	return backend.DeleteMulti(ctx, be, keys)
}

// named prefixes an error saying the backend lacks an ability with the
// plugin's name; other errors are the backend's own.
func (p *proxy) named(err error) error {
	if err != nil && errors.Is(err, backend.ErrNotSupported) {
		return fmt.Errorf("tool: plugin %q: %w", p.name, err)
	}
	return err
}

// opened reports whether the current generation's backend is open.
func (p *proxy) opened() bool {
	g := p.cur.Load()
	return g.dead == nil && g.be.Load() != nil
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
)
