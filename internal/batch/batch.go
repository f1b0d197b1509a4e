// Package batch coalesces concurrent single-key reads into multi-key fetches.
//
// A Batcher sits in front of a backend's multi-get (memcached's "gets k1 k2
// ...", Redis's MGET). Keys belong to groups, typically the server that holds
// them; each group has a limit on how many fetches may be in flight at once.
// A caller whose group has a free slot sends its key at once, in its own
// goroutine when its context cannot be cancelled (or Options.ContextAware
// says the fetch heeds it), so a lone caller pays no added latency. While
// every slot of a group is busy, further callers queue;
// as soon as a fetch returns, the goroutine that ran it sends everything
// queued (up to Options.MaxBatch keys, duplicates sent once) as the next
// fetch. Many goroutines thus share round trips instead of each paying one.
//
// Each caller gets its own item, a miss (backend.ErrNotFound) or the error of
// the fetch that carried its key. A caller whose context ends stops waiting at
// once and returns an error wrapping ctx.Err(); the fetch it was part of goes
// on for the other callers. Close fails queued callers with backend.ErrClosed
// and waits for the fetches it started, so no goroutine outlives it.
//
// The package knows nothing of a particular backend: the fetch function and
// the grouping are supplied by the driver.
package batch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/memdict/memdict/backend"
)

// Fetch reads keys, all of one group, in one request. It returns the items
// found, keyed by key; absent keys are misses. On error the map may hold the
// items that were read before the failure; the error is given to the callers
// of every other key of the fetch.
//
// Fetch must return within a bounded time on its own (a driver's I/O
// timeout): callers stop waiting when their context ends, but Close waits for
// running fetches. The ctx passed is the lone caller's own (when it cannot be
// cancelled) or the Batcher's, which Close cancels.
type Fetch func(ctx context.Context, group string, keys []string) (map[string]backend.Item, error)

// Options tune a Batcher. The zero value is usable.
type Options struct {
	// Group maps a key to its group, for example the address of the server
	// that holds it. Used by Get; nil puts every key in one group "".
	Group func(key string) string
	// MaxInFlight is the number of fetches that may run at once for one
	// group. Zero means 2.
	MaxInFlight int
	// MaxBatch is the largest number of distinct keys sent in one fetch.
	// Zero means 256.
	MaxBatch int
	// FetchOne, if set, reads a single key instead of Fetch when a fetch
	// would carry one key only (a lone caller, the common case at low
	// load), saving Fetch's map. It returns backend.ErrNotFound (or an error
	// wrapping it) for a miss.
	FetchOne func(ctx context.Context, group, key string) (backend.Item, error)
	// ContextAware says that Fetch and FetchOne return promptly, with an
	// error wrapping ctx.Err(), when the ctx they are given ends. A lone
	// caller then runs its fetch in its own goroutine with its own context
	// even when that context can be cancelled; otherwise only callers whose
	// context can never be cancelled do, and the others hand their fetch to
	// a new goroutine so as to be able to stop waiting.
	ContextAware bool
}

// Default values of Options fields left zero.
const (
	DefaultMaxInFlight = 2
	DefaultMaxBatch    = 256
)

// Batcher coalesces concurrent Get calls into fetches. It is safe for
// concurrent use by multiple goroutines.
type Batcher struct {
	fetch    Fetch
	fetchOne func(ctx context.Context, group, key string) (backend.Item, error)
	ctxAware bool
	groupOf  func(string) string
	inflight int
	maxBatch int

	ctx    context.Context // cancelled by Close; passed to worker fetches
	cancel context.CancelFunc
	wg     sync.WaitGroup // running workers

	mu     sync.RWMutex
	groups map[string]*group
	closed bool
}

type group struct {
	name     string
	mu       sync.Mutex
	inflight int       // fetches running
	queue    []*waiter // callers waiting for a slot; non-empty only when inflight == max
}

type result struct {
	item backend.Item
	err  error
}

type waiter struct {
	key       string
	ch        chan result // buffered 1: delivery never blocks
	abandoned atomic.Bool // the caller stopped waiting
}

// New returns a Batcher that reads through fetch.
func New(fetch Fetch, opts Options) *Batcher {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Batcher{
		fetch:    fetch,
		fetchOne: opts.FetchOne,
		ctxAware: opts.ContextAware,
		groupOf:  opts.Group,
		inflight: opts.MaxInFlight,
		maxBatch: opts.MaxBatch,
		ctx:      ctx,
		cancel:   cancel,
		groups:   make(map[string]*group),
	}
}

// Get returns the item stored under key, read alone or together with keys
// other goroutines asked for at the same time. A miss gives
// backend.ErrNotFound; a failed fetch gives the error Fetch returned; a
// context that ends first gives an error wrapping ctx.Err(); after Close,
// backend.ErrClosed.
func (b *Batcher) Get(ctx context.Context, key string) (backend.Item, error) {
	g := ""
	if b.groupOf != nil {
		g = b.groupOf(key)
	}
	return b.GetGroup(ctx, g, key)
}

// GetGroup is Get for a caller that already knows key's group (for example a
// driver that has picked the server). It ignores Options.Group.
func (b *Batcher) GetGroup(ctx context.Context, groupName, key string) (backend.Item, error) {
	if err := ctx.Err(); err != nil {
		return backend.Item{}, fmt.Errorf("batch: get: %w", err)
	}
	g, err := b.group(groupName)
	if err != nil {
		return backend.Item{}, err
	}
	g.mu.Lock()
	if g.inflight < b.inflight {
		g.inflight++
		g.mu.Unlock()
		if ctx.Done() == nil || b.ctxAware {
			// Nothing can interrupt this caller, or the fetch itself
			// heeds its context: run the fetch in the caller's own
			// goroutine, at the cost of a plain single-key read.
			it, err := b.one(ctx, groupName, key)
			b.release(g)
			return it, err
		}
		w := newWaiter(key)
		if !b.startWorker(g, []*waiter{w}) {
			return backend.Item{}, backend.ErrClosed
		}
		return b.wait(ctx, w)
	}
	w := newWaiter(key)
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	return b.wait(ctx, w)
}

// waiters recycles waiters whose result was received: a waiter is handed
// to exactly one fetch, which sends exactly one result, so once its caller
// has received it nothing refers to it any more. Abandoned waiters are not
// recycled (their result may still arrive).
var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan result, 1)} }}

func newWaiter(key string) *waiter {
	w := waiters.Get().(*waiter)
	w.key = key
	return w
}

func recycle(w *waiter) {
	w.key = ""
	waiters.Put(w)
}

func (b *Batcher) wait(ctx context.Context, w *waiter) (backend.Item, error) {
	if ctx.Done() == nil {
		r := <-w.ch
		recycle(w)
		return r.item, r.err
	}
	select {
	case r := <-w.ch:
		recycle(w)
		return r.item, r.err
	case <-ctx.Done():
		w.abandoned.Store(true)
		// The result may have arrived at the same moment; prefer it.
		select {
		case r := <-w.ch:
			return r.item, r.err
		default:
		}
		return backend.Item{}, fmt.Errorf("batch: get %q: %w", w.key, ctx.Err())
	}
}

// group returns the named group, creating it, or ErrClosed.
func (b *Batcher) group(name string) (*group, error) {
	b.mu.RLock()
	g, ok := b.groups[name]
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return nil, backend.ErrClosed
	}
	if ok {
		return g, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	if g, ok = b.groups[name]; !ok {
		g = &group{name: name}
		b.groups[name] = g
	}
	return g, nil
}

// release gives back a slot taken by an inline fetch. If callers queued
// meanwhile, the slot passes to a worker that serves them.
func (b *Batcher) release(g *group) {
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.inflight--
		g.mu.Unlock()
		return
	}
	batch := b.takeLocked(g)
	g.mu.Unlock()
	if len(batch) == 0 {
		b.releaseEmpty(g)
		return
	}
	b.startWorker(g, batch)
}

// releaseEmpty gives back a slot when the queue held only abandoned callers.
func (b *Batcher) releaseEmpty(g *group) {
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
}

// takeLocked removes up to maxBatch distinct keys' waiters from g's queue,
// dropping abandoned ones. g.mu must be held.
func (b *Batcher) takeLocked(g *group) []*waiter {
	var batch []*waiter
	n := 0
	distinct := 0
	var seen map[string]struct{}
	for n < len(g.queue) {
		w := g.queue[n]
		if w.abandoned.Load() {
			n++
			continue
		}
		if distinct >= b.maxBatch {
			if seen == nil {
				seen = make(map[string]struct{}, len(batch))
				for _, x := range batch {
					seen[x.key] = struct{}{}
				}
			}
			if _, dup := seen[w.key]; !dup {
				break
			}
		}
		batch = append(batch, w)
		distinct++ // an upper bound of distinct keys, exact enough for a limit
		n++
	}
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	return batch
}

// startWorker runs batch, then whatever queues behind it, in a new
// goroutine that holds one of g's slots until the queue is empty. It reports
// false, failing batch with ErrClosed and giving the slot back, if the
// Batcher is closed.
func (b *Batcher) startWorker(g *group, batch []*waiter) bool {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		deliverErr(batch, backend.ErrClosed)
		b.releaseEmpty(g)
		return false
	}
	b.wg.Add(1)
	b.mu.RUnlock()
	go b.work(g, batch)
	return true
}

func (b *Batcher) work(g *group, batch []*waiter) {
	defer b.wg.Done()
	for {
		b.run(g.name, batch)
		if len(batch) > 1 {
			// The callers just answered are runnable now; many will ask
			// again at once. Let them queue before taking the next batch,
			// rather than sending a small batch and making them wait for it.
			runtime.Gosched()
		}
		g.mu.Lock()
		if len(g.queue) == 0 || b.ctx.Err() != nil {
			g.inflight--
			queue := g.queue
			g.queue = nil
			g.mu.Unlock()
			// Only non-empty after Close, which fails queued callers itself;
			// make sure nobody waits forever if they raced.
			deliverErr(queue, backend.ErrClosed)
			return
		}
		batch = b.takeLocked(g)
		g.mu.Unlock()
	}
}

// one reads a single key with FetchOne, or Fetch.
func (b *Batcher) one(ctx context.Context, groupName, key string) (backend.Item, error) {
	if b.fetchOne != nil {
		return b.fetchOne(ctx, groupName, key)
	}
	items, err := b.fetch(ctx, groupName, []string{key})
	if it, ok := items[key]; ok {
		return it, nil
	}
	if err != nil {
		return backend.Item{}, err
	}
	return backend.Item{}, backend.ErrNotFound
}

// run fetches the keys of batch and delivers each waiter its result.
func (b *Batcher) run(groupName string, batch []*waiter) {
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		it, err := b.one(b.ctx, groupName, batch[0].key)
		batch[0].ch <- result{it, err}
		return
	}
	keys := make([]string, 0, len(batch))
	seen := make(map[string]struct{}, len(batch))
	for _, w := range batch {
		if _, dup := seen[w.key]; !dup {
			seen[w.key] = struct{}{}
			keys = append(keys, w.key)
		}
	}
	items, err := b.fetch(b.ctx, groupName, keys)
	for _, w := range batch {
		var r result
		if it, ok := items[w.key]; ok {
			r.item = it
		} else if err != nil {
			r.err = err
		} else {
			r.err = backend.ErrNotFound
		}
		w.ch <- r
	}
}

func deliverErr(ws []*waiter, err error) {
	for _, w := range ws {
		select {
		case w.ch <- result{err: err}:
		default:
		}
	}
}

// Close makes later Get calls return backend.ErrClosed, fails the callers
// still queued with backend.ErrClosed, cancels the context of running
// fetches and waits for them to return. A second Close returns nil.
func (b *Batcher) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	groups := make([]*group, 0, len(b.groups))
	for _, g := range b.groups {
		groups = append(groups, g)
	}
	b.mu.Unlock()
	b.cancel()
	for _, g := range groups {
		g.mu.Lock()
		queue := g.queue
		g.queue = nil
		g.mu.Unlock()
		deliverErr(queue, backend.ErrClosed)
	}
	b.wg.Wait()
	return nil
}

// Queued returns the number of callers waiting in the named group's queue
// (including ones whose context has ended and that are not yet dropped).
// It is meant for tests and statistics.
func (b *Batcher) Queued(groupName string) int {
	b.mu.RLock()
	g := b.groups[groupName]
	b.mu.RUnlock()
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// InFlight returns the number of fetches running for the named group.
func (b *Batcher) InFlight(groupName string) int {
	b.mu.RLock()
	g := b.groups[groupName]
	b.mu.RUnlock()
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight
}
