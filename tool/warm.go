package tool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
)

// Warm migration (PluginConfig.Warm): after SetPlugin or Configure moves a
// plugin to a new URL, for the Warm window a miss on the new backend reads
// the previous one and copies the item over, with its remaining TTL, as
// mcrouter's warm-up route and pymemcache's FallbackClient do. The
// previous backend stays open (it is not closed when the switch retires
// it) until the window ends.
//
// A warm is a layer on the Call model (backend.Call, backend.Do): the
// plugin's handler gives it every call of the new config version while the
// window lasts, and it performs the call on the new backend with Do,
// consulting the previous one as below. Calls of the new backend that
// find what they need cost nothing more than an atomic load and a clock
// read.
//
// Reads. Get (and GetTTL) that miss, and the keys GetMulti misses, are
// copied from the previous backend (value, client flags and remaining
// TTL) with Add (so that a value written on
// the new backend meanwhile stands), then read again from the new one:
// the caller gets the new backend's item, its CAS (for a later
// CompareAndSwap) and, over Redis, the new server's tracking of the key
// for the near cache. A GetLease on a missing key that wins the lease
// fills it from the previous backend with CompareAndSwap and the lease's
// CAS, and reads it again: one caller in the fleet copies it, as one
// would load it; the others are Busy until it is there. An item the
// previous backend holds as stale (memcached's MarkStale) is not copied:
// the caller loads a fresh one.
//
// Writes. Every write of a key (Set, Add, CompareAndSwap, Delete, Touch,
// Increment, MarkStale, SetMulti, DeleteMulti) first deletes it from the
// previous backend, then writes the new one: once written in the window, a
// key is the new backend's alone, and a later miss on the new one (the
// value evicted, expired, deleted) never brings back the previous
// backend's older value; processes still on the old configuration see a
// miss rather than a stale value. Add, Touch and Increment first copy
// the item as a read would, so that Add fails on an item the previous
// backend holds and Touch and Increment act on it. A Delete reports the
// key found if either backend had it. A copy races with a write of the
// same key only within one round trip: a copy is checked after its Add
// by reading the previous backend again, and removed from the new one if
// the item changed or went there meanwhile (a delete that came between
// the copy's read and its Add), so that a Delete in the window is never
// undone; the cost of that race is a miss, never an older value.
//
// Flush (Tool.Backend's Flusher) ends the window: there is nothing left
// to warm. A write that cannot delete the key from the previous backend
// (it is down, or times out) ends the window too, since the previous
// backend could later serve the value that write replaced. Listing keys,
// statistics, ping, locks, lease releases and tracking are the new
// backend's alone.
//
// The TTL of a copy is the one the previous backend reports
// (backend.TTLReader: memory, memcached, Redis); over a backend that cannot
// tell, the plugin's Expiration.

// warmFillers bounds the copies one GetMulti makes at once.
const warmFillers = 16

// warm is the warm-up window of a config version from the previous one.
type warm struct {
	p     *proxy
	old   held   // the previous config version, held until the window ends
	from  string // the previous URL, redacted, for PluginInfo
	until time.Time
	ttl   time.Duration // the TTL of copies whose TTL the previous backend cannot tell
	timer *time.Timer

	mu    sync.RWMutex // guards ended against acquire
	ended atomic.Bool
	// users counts the calls using the previous backend (previous). They
	// are counted here, not on the previous version's in-flight count:
	// that version is retired, and its striped count, read stripe by
	// stripe, could miss a hold taken while a release was reading it and
	// close the version under the call. The window's own hold is released
	// once the window has ended and no call uses it.
	users   atomic.Int64
	release sync.Once
}

// startWarm starts a warm of the config version that replaces old, for d
// (old is still the current version: its inflight count is raised before
// it is retired, so that it stays open).
func startWarm(p *proxy, old *configVersion, d, ttl time.Duration) *warm {
	w := &warm{p: p, old: old.hold(), from: backend.Redact(old.url), until: time.Now().Add(d), ttl: ttl}
	w.timer = time.AfterFunc(d, w.end)
	return w
}

// active reports whether the window is open.
func (w *warm) active() bool {
	return !w.ended.Load() && time.Now().Before(w.until)
}

// end closes the window: the previous backend is released (and closed
// once no call uses it). It may be called more than once.
func (w *warm) end() {
	w.mu.Lock()
	if w.ended.Load() {
		w.mu.Unlock()
		return
	}
	w.ended.Store(true)
	w.mu.Unlock()
	w.timer.Stop()
	if w.users.Load() == 0 {
		w.releaseOld()
	}
}

// releaseOld releases the window's hold on the previous version, once.
func (w *warm) releaseOld() { w.release.Do(func() { w.old.release(w.p) }) }

// previous returns the previous backend, opened if it was not yet, held
// for the caller, who must call done; ok is false if the window has
// ended or the backend cannot be opened.
func (w *warm) previous(ctx context.Context) (be backend.Backend, done func(), ok bool) {
	w.mu.RLock()
	if w.ended.Load() {
		w.mu.RUnlock()
		return nil, nil, false
	}
	w.users.Add(1)
	w.mu.RUnlock()
	done = func() {
		// Whichever of end and the last call sees the other's write
		// releases the hold: both write (ended, users) before they read.
		if w.users.Add(-1) == 0 && w.ended.Load() {
			w.releaseOld()
		}
	}
	v := w.old.v
	if b := v.be.Load(); b != nil {
		return b.be, done, true
	}
	be, err := v.open(ctx, w.p.name)
	if err != nil {
		done()
		return nil, nil, false
	}
	return be, done, true
}

// bounded is handle within the timeout of nb. A call in the window makes
// several backend calls (a write deletes the key from the previous
// backend first; a miss reads the previous backend, copies the item and
// reads the new one again), each bounded by its backend alone, while a
// Dict trusts the timeout the plugin reports (backend.Timeout: the new
// backend's) to bound each call it makes: without a deadline of its own, a
// call in the window could take several timeouts. The call gets one, the
// timeout from now, unless ctx ends sooner; an error of a call that ran
// out of it wraps backend.ErrUnavailable and says so.
func (w *warm) bounded(ctx context.Context, nb backend.Backend, c backend.Call) backend.Result {
	t := backend.Timeout(nb)
	if t <= 0 {
		return w.handle(ctx, nb, c)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= t {
		return w.handle(ctx, nb, c)
	}
	bctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	r := w.handle(bctx, nb, c)
	if r.Err != nil && bctx.Err() != nil && ctx.Err() == nil {
		r.Err = fmt.Errorf("tool: plugin %q warming up from its previous backend: the call did not end within the timeout of %v: %w: %w",
			w.p.name, t, backend.ErrUnavailable, r.Err)
	}
	return r
}

// handle performs c on nb, the new backend, as the window says (see the
// comment at the top of the file).
func (w *warm) handle(ctx context.Context, nb backend.Backend, c backend.Call) backend.Result {
	switch c.Op {
	case backend.OpGet, backend.OpGetTTL:
		r := backend.Do(ctx, nb, c)
		if errors.Is(r.Err, backend.ErrNotFound) && w.fill(ctx, nb, c.Key, nil) {
			r = backend.Do(ctx, nb, c)
		}
		return r
	case backend.OpGetMulti:
		return w.getMulti(ctx, nb, c)
	case backend.OpGetLease:
		r := backend.Do(ctx, nb, c)
		if r.Err == nil && !r.Lease.Found && r.Lease.Won && w.fill(ctx, nb, c.Key, &r.Lease) {
			r = backend.Do(ctx, nb, c)
		}
		return r
	case backend.OpAdd:
		w.fill(ctx, nb, c.Item.Key, nil)
		w.forget(ctx, c.Item.Key)
		return backend.Do(ctx, nb, c)
	case backend.OpTouch, backend.OpIncrement:
		r := backend.Do(ctx, nb, c)
		if errors.Is(r.Err, backend.ErrNotFound) && w.fill(ctx, nb, c.Key, nil) {
			r = backend.Do(ctx, nb, c)
		}
		w.forget(ctx, c.Key)
		return r
	case backend.OpSet, backend.OpCompareAndSwap:
		w.forget(ctx, c.Item.Key)
		return backend.Do(ctx, nb, c)
	case backend.OpDelete:
		had := w.forget(ctx, c.Key)
		r := backend.Do(ctx, nb, c)
		if had && errors.Is(r.Err, backend.ErrNotFound) {
			r.Err = nil // the key was there, on the previous backend
		}
		return r
	case backend.OpMarkStale:
		w.forget(ctx, c.Key)
		return backend.Do(ctx, nb, c)
	case backend.OpSetMulti:
		keys := make([]string, len(c.Items))
		for i, it := range c.Items {
			keys[i] = it.Key
		}
		w.forgetMulti(ctx, keys)
		return backend.Do(ctx, nb, c)
	case backend.OpDeleteMulti:
		w.forgetMulti(ctx, c.Keys)
		return backend.Do(ctx, nb, c)
	case backend.OpFlush:
		r := backend.Do(ctx, nb, c)
		if r.Err == nil {
			w.end()
		}
		return r
	}
	return backend.Do(ctx, nb, c)
}

// getMulti is GetMulti in the window: the keys the new backend misses are
// copied, at most warmFillers at once, and read again.
func (w *warm) getMulti(ctx context.Context, nb backend.Backend, c backend.Call) backend.Result {
	r := backend.Do(ctx, nb, c)
	failed, partial := backend.KeyErrors(r.Err)
	if r.Err != nil && !partial {
		return r
	}
	skip := make(map[string]bool, len(failed))
	for _, ke := range failed {
		skip[ke.Key] = true
	}
	var missing []string
	for _, k := range c.Keys {
		if _, ok := r.Items[k]; !ok && !skip[k] {
			skip[k] = true // once per key
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return r
	}
	var (
		mu     sync.Mutex
		filled []string
		wg     sync.WaitGroup
		sem    = make(chan struct{}, warmFillers)
	)
	for _, k := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if w.fill(ctx, nb, k, nil) {
				mu.Lock()
				filled = append(filled, k)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(filled) == 0 {
		return r
	}
	again := backend.Do(ctx, nb, backend.Call{Op: backend.OpGetMulti, Keys: filled})
	if again.Err != nil && len(again.Items) == 0 {
		return r // the misses stand
	}
	items := make(map[string]backend.Item, len(r.Items)+len(again.Items))
	for k, it := range r.Items {
		items[k] = it
	}
	for k, it := range again.Items {
		items[k] = it
	}
	r.Items = items
	r.Private = r.Private && again.Private
	return r
}

// read reads key from the previous backend ob, with its remaining TTL if
// ob can tell it, else with the plugin's Expiration.
func (w *warm) read(ctx context.Context, ob backend.Backend, key string) (backend.Item, error) {
	it, err := backend.GetTTL(ctx, ob, key)
	if backend.NotSupported(err) {
		it, err = ob.Get(ctx, key)
		it.TTL = w.ttl
	}
	return it, err
}

// fill copies key from the previous backend to nb: with Add, or with
// CompareAndSwap and the CAS of lease, a fill lease nb handed out on the
// missing key. It reports whether nb may now hold the key (copied, or
// written by someone else meanwhile): whether to read it again.
func (w *warm) fill(ctx context.Context, nb backend.Backend, key string, lease *backend.Lease) bool {
	ob, done, ok := w.previous(ctx)
	if !ok {
		return false
	}
	defer done()
	it, err := w.read(ctx, ob, key)
	if err != nil {
		return false // a miss there too, or it cannot be read: the miss stands
	}
	cp := backend.Item{Key: key, Value: it.Value, TTL: it.TTL, Flags: it.Flags}
	if lease != nil {
		cp.CAS = lease.Item.CAS
		err = nb.CompareAndSwap(ctx, cp)
	} else {
		err = nb.Add(ctx, cp)
	}
	switch {
	case errors.Is(err, backend.ErrNotStored), errors.Is(err, backend.ErrCASConflict), errors.Is(err, backend.ErrNotFound):
		return true // written (or the lease given up) meanwhile: read what is there
	case err != nil:
		return false
	}
	// Copied. A write of the key deletes it from the previous backend
	// before it writes the new one; if that happened between the read
	// above and the Add (a Delete whose removal the Add would undo), the
	// item is no longer the one read: remove the copy. This runs even if
	// the caller gives up now, within the call's deadline; a removal the
	// deadline cuts short goes on in the background (bounded by the new
	// backend's own timeout), so that the call ends in time and the copy
	// still goes.
	sctx := context.WithoutCancel(ctx)
	cctx := sctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(sctx, dl)
		defer cancel()
	}
	now, err := w.read(cctx, ob, key)
	if err == nil && now.CAS == it.CAS {
		return true
	}
	if err := nb.Delete(cctx, key); err != nil && cctx.Err() != nil {
		go func() { _ = nb.Delete(sctx, key) }()
	}
	return true
}

// forget deletes key from the previous backend before a write of it on
// the new one, and reports whether it was there. If the previous backend
// could not be asked, the window ends: it could serve, later, the value
// the write replaces.
func (w *warm) forget(ctx context.Context, key string) bool {
	ob, done, ok := w.previous(ctx)
	if !ok {
		return false
	}
	defer done()
	err := ob.Delete(ctx, key)
	switch {
	case err == nil:
		return true
	case errors.Is(err, backend.ErrNotFound):
	case ctx.Err() != nil:
		// The caller gave up; its write fails the same way.
	default:
		w.end()
	}
	return false
}

// forgetMulti is forget for several keys, with backend.DeleteMulti.
func (w *warm) forgetMulti(ctx context.Context, keys []string) {
	ob, done, ok := w.previous(ctx)
	if !ok {
		return
	}
	defer done()
	err := backend.DeleteMulti(ctx, ob, keys)
	if kes, partial := backend.KeyErrors(err); partial {
		for _, ke := range kes {
			if !errors.Is(ke.Err, backend.ErrNotFound) {
				w.end()
				return
			}
		}
		return
	}
	if err != nil && ctx.Err() == nil {
		w.end()
	}
}
