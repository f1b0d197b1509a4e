package memdict

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/envelope"
)

// flightGroup runs one load per key at a time and hands its result to
// every caller that asked for the key meanwhile (a minimal singleflight).
type flightGroup[V any] struct {
	mu sync.Mutex
	m  map[string]*flight[V]
}

// flight is one load in progress.
type flight[V any] struct {
	done    chan struct{} // closed when v and err are set
	v       V
	err     error
	waiters int // callers waiting for it, guarded by the group's mu
	// handoff carries a fill lease that a caller of this process won
	// while the flight's leader waited for another's fill: the leader
	// then loads with it.
	handoff chan backend.Lease
	// abandoned says the flight failed because its leader's context
	// ended: a waiter whose own context is live tries again instead of
	// taking the leader's error. Set before done is closed.
	abandoned bool
}

// GetOrLoad returns the value stored under key; on a miss it calls load,
// stores its result with the Dict's default TTL (or the TTL option's) and
// returns it.
//
// One caller per key runs load at a time, in this process and across the
// processes sharing the backend: the others that miss meanwhile wait for
// its result instead of calling load too, so a popular key that expires
// causes one load, not a stampede. Within the process, waiters share the
// result of one flight. Across processes, the caller that loads holds a
// fill lease: over memcached's meta protocol (backend.Leaser) the server
// hands it out with the read itself; elsewhere it is a lock key taken with
// backend.TryLock. Callers of other processes wait with a short, growing,
// jittered backoff and read again, until the value is there or the lease
// has expired (its winner died or hung: see WithLeaseTTL) and they win it
// themselves. The fill is conditional: a Store or Remove of the key made
// while load ran is newer than its result, which then is not stored over
// it (under a lock, a missing key is held meanwhile by a placeholder that
// every read sees as no entry), and a load that outlasts the lease TTL
// may find its lease gone and store nothing. A waiter whose ctx is done
// stops waiting with ctx's error.
// A caller whose ctx is live is not failed by another's: when the caller
// that waits or loads for the whole process stops because its own ctx is
// done, the callers that joined it try again; and a read that fails
// because ctx is done returns ctx's error rather than calling load as an
// outage would. load receives the context of the caller that runs it; it
// must not call GetOrLoad for the same key, which would wait for itself.
//
// A stale entry — past its fresh time under WithStaleWhileRevalidate, or
// marked stale by Invalidate — is returned at once, and exactly one
// caller fleet-wide reloads it in the background (with a context that
// keeps ctx's values but not its cancellation, bounded by the lease TTL);
// a failed background load leaves the stale entry in place and is passed
// to the WithErrorHandler function. Get, Lookup and GetMulti return stale
// entries as hits; only GetOrLoad revalidates.
//
// If load returns an error wrapping ErrNoValue, the key has no value:
// GetOrLoad caches the absence for the negative TTL (WithNegativeTTL) and
// returns an *OpError of op "load" wrapping ErrNoValue to that caller, to
// every waiter, and to later callers while the absence is cached, without
// calling load. Get, Lookup, GetMulti, Keys and All see a cached absence
// as a miss.
//
// If load fails otherwise, its error is returned to that caller and to
// every waiter, as an *OpError of op "load", and nothing is stored. A
// backend failure on the read is treated as a miss, and a failure to
// store the loaded value does not fail the call: GetOrLoad then returns
// the loaded value and a nil error, so that an outage of the cache
// degrades to calling load. Such failures are counted in Stats and logged
// (WithLogger) and passed to the WithErrorHandler function. On a Dict
// whose writes are refused (ErrWriteRefused: it reads a namespace whose
// generation it could not store, from a Redis replica or as an ACL user
// that may only read; see Clear), a miss calls load without taking the key's fill lock,
// a write the server would refuse too, and returns its value and a nil
// error; the store it cannot make is reported once, as any failed store
// is. Callers of other processes do not wait for such a load.
//
// What bounds what: the time GetOrLoad spends in the backend — the read,
// taking the fill lease or lock, and the fill — is bounded by the Dict's
// timeout (WithTimeout) as a whole, taken when GetOrLoad is called. The
// loader's own time is not counted (load gets ctx itself, without that
// deadline), nor is the wait for another caller's load, which ctx and
// the lease TTL bound (each read of that wait is bounded by the
// backend). A fill that runs out of time is counted and reported as a
// failed store; giving back a lease or lock then goes on in the
// background, bounded by the backend's timeout.
func (d *Dict[V]) GetOrLoad(ctx context.Context, key string, load func(ctx context.Context, key string) (V, error), opts ...ItemOption) (_ V, err error) {
	if load == nil || d.be == nil {
		var zero V
		if d.be == nil {
			// It would degrade to calling load, as on a cache failure.
			return zero, &OpError{Op: "getorload", Key: key, Err: errNotMade}
		}
		return zero, &OpError{Op: "getorload", Key: key, Err: errors.New("nil load function")}
	}
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "getorload", key, 1)
		defer func() { ob.done(hitOr(ob.hit), err) }()
	}
	b := bound{parent: ctx}
	defer b.end()
	for {
		v, again, err := d.getOrLoad(&b, key, load, opts)
		if !again {
			return v, err
		}
	}
}

// getOrLoad is one try of GetOrLoad, within the call's bound b; again
// says the caller joined a flight whose leader gave up when its context
// ended, and should try again.
func (d *Dict[V]) getOrLoad(b *bound, key string, load func(ctx context.Context, key string) (V, error), opts []ItemOption) (V, bool, error) {
	if s := d.settings.load(); d.lease.swr > 0 && s.Format.python() {
		// The Dict was made in memdict's format, which its settings left.
		var zero V
		return zero, false, d.m.fail(b.parent, opLoad, key, d.notAvailable(s, "GetOrLoad with stale-while-revalidate"))
	}
	t0 := d.m.start(opGet)
	r := d.readForLoad(b, key, true, true)
	d.m.end(opGet, t0)
	if ob := d.observing(b.parent); ob != nil {
		ob.hit = r.st == entryFresh || r.st == entryStale
	}
	switch r.st {
	case entryFresh:
		if r.lease.Won {
			// Early refresh (memcached's R flag): this caller refreshes.
			d.refreshAsync(b, key, load, opts, r.vw, leaseFiller(r.lease))
		}
		return r.v, false, nil
	case entryStale:
		d.revalidate(b, key, load, opts, r.vw, r.leased && !r.marked, r.lease)
		return r.v, false, nil
	case entryAbsent:
		var zero V
		return zero, false, &OpError{Op: "load", Key: key, Err: ErrNoValue}
	}
	if r.err != nil && d.onError != nil {
		d.onError(r.err)
	}
	return d.load(b, key, load, opts, r)
}

// readResult is what GetOrLoad's read found.
type readResult[V any] struct {
	v  V
	st entryState
	vw *view // nil if the namespace generation could not be read
	// lease is the outcome of the read when it was a GetLease (leased).
	lease  backend.Lease
	leased bool
	// err is a failure of the read, which counts as a miss; overwrite
	// says the entry exists but cannot be decoded, so a load replaces it.
	err       error
	overwrite bool
	// cas is the CAS of the item read (0: none was found), with which a
	// fill under the key's lock writes only if nobody wrote meanwhile.
	cas uint64
	// marked says a stale entry is marked stale (Invalidate), by the
	// server (memcached's md with I) or in its envelope, rather than
	// stale by time: the server's lease does not say who refreshes it.
	marked bool
}

// readForLoad reads key for GetOrLoad, within the bound b of the call:
// from the near cache (if near and it holds a fresh entry), else with
// GetLease over a backend.Leaser (if lease), else with Get. It counts a
// miss or a failure in Stats.
func (d *Dict[V]) readForLoad(b *bound, key string, near, lease bool) readResult[V] {
	var r readResult[V]
	ctx := b.parent
	vw, err := d.currentFill(b)
	if err != nil {
		r.err = d.m.fail(ctx, opGet, key, err)
		return r
	}
	r.vw = vw
	var t fillToken
	bkey, hashed, err := vw.bkey(key)
	if err != nil {
		r.err = d.m.fail(ctx, opGet, key, err)
		return r
	}
	// The Python formats have no near cache, and no lease: memcached's
	// lease placeholder would be an empty value to Python's clients.
	near, lease = near && !vw.python, lease && !vw.python
	nc := d.near
	if nc != nil && near {
		if v, ok := nc.lookup(d, vw, key, true); ok {
			d.m.nearHit(1)
			d.noteNear(ctx, 1, 0)
			r.v, r.st = v, entryFresh
			return r
		}
		d.m.near.misses.Add(1)
		d.noteNear(ctx, 0, 1)
		if !hashed {
			t = nc.begin(vw, key)
		}
	}
	// A miss makes more backend calls (a lock, the fill): they share the
	// call's timeout with this read.
	b.begin()
	var raw []byte
	var flags uint32
	if l := d.lease.leaserOf(); l != nil && lease {
		lease, err := l.GetLease(b.next(), bkey, backend.LeaseOptions{TTL: d.lease.leaseTTL, RefreshWithin: d.lease.swr})
		switch {
		case err == nil:
			r.lease, r.leased = lease, true
			if !lease.Found {
				d.m.miss(opGet)
				return r
			}
			raw, flags, r.cas = lease.Item.Value, lease.Item.Flags, lease.Item.CAS
		case d.lease.notLeasing(err):
		default:
			r.err = d.m.fail(ctx, opGet, key, b.check(err))
			return r
		}
	}
	private, marked := false, r.lease.Stale
	if !r.leased {
		it, priv, err := d.get(b.next(), bkey)
		if err != nil {
			if errors.Is(err, backend.ErrNotFound) {
				d.m.miss(opGet)
			} else {
				r.err = d.m.fail(ctx, opGet, key, b.check(err))
			}
			return r
		}
		raw, flags, r.cas, private, marked = it.Value, it.Flags, it.CAS, priv, it.Stale
	}
	// A value the near cache will keep is not handed over as it is: the
	// caller may modify its own.
	private = private && !(nc != nil && near && !hashed)
	v, st, err := d.decodeEntry(vw, key, hashed, raw, flags, private)
	switch {
	case err != nil:
		r.err, r.overwrite = d.m.fail(ctx, opGet, key, err), true
		return r
	case st == entryFresh && marked:
		st = entryStale
	case st == entryAbsent && marked:
		st = entryNone // an invalidated absence: load again
	case st == entryStale && !marked && r.leased:
		// Stale by time, or marked in the envelope (Invalidate of a
		// hashed key, Touch of an item the server marked stale): only
		// the latter takes the key's lock to refresh (see revalidate).
		if h, _, err := envelope.Parse(raw); err == nil && h.Stale {
			marked = true
		}
	}
	r.marked = st == entryStale && marked
	if st == entryNone && r.leased && !r.lease.Won && !r.lease.Busy {
		// The server holds an entry that is none to us (expired by its
		// envelope before the server's whole-second TTL ran out, another
		// key's value): it hands out no lease for it, so fill it under
		// the key's lock.
		r.leased = false
	}
	r.v, r.st = v, st
	switch st {
	case entryFresh:
		if nc != nil && near && !hashed {
			nc.fill(vw, key, t, v, raw, false)
		}
	case entryStale:
	default:
		d.m.miss(opGet)
	}
	return r
}

// filler says how a load's result is written: with CompareAndSwap and the
// CAS of a fill lease; under a lock, with CompareAndSwap and the CAS of the
// item read after the lock was won (a stale entry's) or of the placeholder
// written then (see hold), or with Add if there is neither, and then the
// release of the lock; or (neither lease nor lock) with Set.
//
// A fill under a lock is conditional because the lock only keeps other
// fills out: a Store or Remove made while the loader ran is newer than the
// loaded value and must not be overwritten by it. A Store changes the CAS;
// a Remove deletes the item swapped, which is why a missing key is held
// with a placeholder (an Add would find the removed key free).
type filler struct {
	lease          backend.Lease
	leased         bool // fill with lease
	lockKey, token string
	cond           bool   // fill with Add (cas 0) or CompareAndSwap
	cas            uint64 // the CAS of the item read or held under the lock
}

// lockFiller is the filler of the lock lockKey taken with token, after a
// read (under the lock) that found the item of CAS cas, or none (0).
func lockFiller(lockKey, token string, cas uint64) filler {
	return filler{lockKey: lockKey, token: token, cond: true, cas: cas}
}

// leaseFiller is the filler of a lease won.
func leaseFiller(l backend.Lease) filler { return filler{lease: l, leased: true} }

// release gives up the lease or lock without filling.
func (d *Dict[V]) release(b *bound, f filler) {
	switch {
	case f.leased && f.lease.Won:
		if l := d.lease.leaser; l != nil {
			d.cleanup(b, func(ctx context.Context) error { return l.ReleaseLease(ctx, f.lease) })
		}
	case f.token != "":
		d.unlock(b, f)
	}
}

// unlock releases the lock of f.
func (d *Dict[V]) unlock(b *bound, f filler) {
	d.cleanup(b, func(ctx context.Context) error {
		_, err := backend.Unlock(ctx, d.be, f.lockKey, f.token)
		return err
	})
}

// cleanup runs fn, the release of a lease or lock the call holds, with the
// caller's context less its cancellation (a release is due whatever ends
// the caller's wait): within the call's deadline if it has one, and, if
// that runs out first, again in the background, bounded by the backend's
// own timeout, so that the lease or lock does not outlive the call by its
// TTL while the call still ends in time.
func (d *Dict[V]) cleanup(b *bound, fn func(context.Context) error) {
	ctx := context.WithoutCancel(b.parent)
	dl, ok := b.deadline()
	if !ok {
		_ = fn(ctx)
		return
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	err := fn(dctx)
	cancel()
	if err != nil && dctx.Err() != nil {
		go func() {
			defer d.contain(ctx, "")
			defer func() {
				// A panic of the release (a middleware's bug) in this
				// goroutine, which no caller waits for, is reported
				// rather than ending the program: the lease or lock
				// expires with its TTL, as when the release fails.
				if p := recover(); p != nil && d.onError != nil {
					d.onError(fmt.Errorf("%w: releasing a lease or lock: %v", ErrLoaderPanicked, p))
				}
			}()
			_ = fn(ctx)
		}()
	}
}

// write stores it, as f says, and reports a failure to the error handler
// (the load's result is returned whatever happens to the write).
func (d *Dict[V]) write(b *bound, key string, it backend.Item, f filler) {
	t0 := d.m.start(opPut)
	written := false
	defer func() {
		if !written {
			// The write panicked (a backend's or a middleware's bug): give
			// the lease or lock up before the panic goes on, or every
			// caller of the fleet waits for it to expire (the lease TTL).
			d.release(b, f)
		}
	}()
	var err error
	if f.leased {
		it.CAS = f.lease.Item.CAS
		err = d.be.CompareAndSwap(b.next(), it)
		if errors.Is(err, backend.ErrCASConflict) || errors.Is(err, backend.ErrNotFound) {
			err = nil // written or removed meanwhile: the newer state stands
		}
	} else if f.cond {
		if f.cas != 0 {
			it.CAS = f.cas
			err = d.be.CompareAndSwap(b.next(), it)
			if errors.Is(err, backend.ErrCASConflict) || errors.Is(err, backend.ErrNotFound) {
				err = nil // written or removed meanwhile: the newer state stands
			}
		} else {
			err = d.be.Add(b.next(), it)
			if errors.Is(err, backend.ErrNotStored) {
				err = nil // written meanwhile: the newer value stands
			}
		}
		if errors.Is(err, backend.ErrNotSupported) {
			err = d.be.Set(b.next(), it)
		}
	} else {
		err = d.be.Set(b.next(), it)
	}
	written = true
	d.nearInvalidate(key)
	if f.token != "" {
		d.unlock(b, f)
	}
	if err != nil {
		d.report(b.parent, opPut, key, b.check(err))
	}
	d.m.end(opPut, t0)
}

// loadFill runs load for key and writes its result (or the absence it
// reports) as f says, or releases f's lease or lock if it fails. The load
// runs with the caller's context, and its time is not counted against the
// call's timeout (b pauses); the fill is.
func (d *Dict[V]) loadFill(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, f filler) (V, error) {
	var zero V
	ctx := b.parent
	handed := false // f went to write or release, which give it up
	defer func() {
		if !handed {
			d.release(b, f) // the load, or the value's encoding, panicked
		}
	}()
	t0 := d.m.start(opLoad)
	b.pause()
	v, err := load(ctx, key)
	b.resume()
	d.m.end(opLoad, t0)
	if err != nil {
		if errors.Is(err, ErrNoValue) {
			if ttl := d.lease.negativeTTL(vw.s); ttl > 0 && !vw.python {
				it, ierr := d.absentItem(vw, key, ttl)
				handed = true
				if ierr == nil {
					d.write(b, key, it, f)
				} else {
					d.release(b, f)
				}
			} else {
				handed = true
				d.release(b, f)
			}
			return zero, &OpError{Op: "load", Key: key, Err: err}
		}
		handed = true
		d.release(b, f)
		return zero, d.m.fail(ctx, opLoad, key, err)
	}
	it, err := d.itemIn(vw, key, v, opts)
	handed = true
	if err != nil {
		d.release(b, f)
		d.report(ctx, opPut, key, err)
		return v, nil
	}
	d.write(b, key, it, f)
	return v, nil
}

// absentItem is the item of a cached absence of key for ttl: an envelope
// with the absent flag, an expiry and no payload.
func (d *Dict[V]) absentItem(vw *view, key string, ttl time.Duration) (backend.Item, error) {
	if err := vw.writable(d.prefix); err != nil {
		return backend.Item{}, err
	}
	return d.emptyItem(vw, key, envelope.Meta{Expiry: ceilMs(d.lease.now().Add(ttl)), Absent: true}, ttl)
}

// placeholderItem is the item with which a fill under the key's lock holds
// a missing key (see hold) for the lease TTL: an absence marked stale, an
// entry that every reader sees as none (as an invalidated cached absence:
// a miss to Get, Lookup, GetMulti, Keys, All, Update and the near cache, a
// load to GetOrLoad).
func (d *Dict[V]) placeholderItem(vw *view, key string) (backend.Item, error) {
	ttl := d.lease.leaseTTL
	return d.emptyItem(vw, key, envelope.Meta{Expiry: ceilMs(d.lease.now().Add(ttl)), Absent: true, Stale: true}, ttl)
}

// emptyItem is the item of key whose envelope carries m and no payload,
// stored for ttl.
func (d *Dict[V]) emptyItem(vw *view, key string, m envelope.Meta, ttl time.Duration) (backend.Item, error) {
	bkey, hashed := vw.key(key)
	n := envelope.SizeMeta(key, hashed, m)
	if err := vw.checkSize(n); err != nil {
		return backend.Item{}, err
	}
	return backend.Item{Key: bkey, Value: envelope.AppendMeta(make([]byte, 0, n), vw.codecID, key, hashed, m), TTL: ttl}, nil
}

// load is GetOrLoad's miss path: the in-process flight, whose leader
// loads once for every caller of this process. again says this caller
// waited for a flight that its leader abandoned (its context ended) and
// should try again.
func (d *Dict[V]) load(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, r readResult[V]) (_ V, again bool, _ error) {
	ctx := b.parent
	g := &d.flights
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		f.waiters++
		handed := !r.lease.Won
		if !handed {
			// This caller won the fleet's lease, but the flight's
			// leader waits for another's fill: it is this one.
			select {
			case f.handoff <- r.lease:
				handed = true
			default:
			}
		}
		g.mu.Unlock()
		if !handed {
			d.release(b, leaseFiller(r.lease))
		}
		// Waiting for another caller's load is not counted against the
		// call's timeout, as its own load would not be.
		b.pause()
		defer b.resume()
		select {
		case <-f.done:
			if f.abandoned && ctx.Err() == nil {
				return f.v, true, f.err
			}
			return f.v, false, f.err
		case <-ctx.Done():
			var zero V
			return zero, false, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
		}
	}
	f := &flight[V]{done: make(chan struct{}), handoff: make(chan backend.Lease, 1)}
	if g.m == nil {
		g.m = make(map[string]*flight[V])
	}
	g.m[key] = f
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished {
			f.err = &OpError{Op: "load", Key: key, Err: ErrLoaderPanicked}
		}
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
		select {
		case l := <-f.handoff: // a lease handed over too late
			d.release(b, leaseFiller(l))
		default:
		}
	}()
	f.v, f.err = d.fleetLoad(b, key, load, opts, r, f.handoff)
	f.abandoned = f.err != nil && ctx.Err() != nil
	finished = true
	return f.v, false, f.err
}

// fleetLoad is the flight leader's work: win the fleet's lease (or lock)
// and load, or wait for the winner's value.
func (d *Dict[V]) fleetLoad(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, r readResult[V], handoff chan backend.Lease) (V, error) {
	var zero V
	ctx := b.parent
	if r.err != nil && ctx.Err() != nil {
		return zero, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
	}
	if r.vw == nil || r.err != nil || r.overwrite || r.vw.python {
		// In a Python format, the fleet has no lock key to meet at.
		return d.loadDirect(b, key, load, opts)
	}
	vw := r.vw
	if vw.refused != nil && !r.leased {
		// This client may not write (a Redis replica's READONLY, an ACL
		// user's NOPERM: see view.refused): the key's lock is a write the
		// server refuses too, which failed and was reported before the
		// load, and then the fill's refusal again, two errors a miss. Load,
		// and report the store that cannot be made once (loadFill).
		return d.loadFill(b, key, load, opts, vw, filler{})
	}
	bkey, _ := vw.key(key)
	lockKey := vw.lockKey(bkey)
	w := backoff{giveUp: d.lease.now().Add(2 * d.lease.leaseTTL)}
	for {
		if r.leased {
			if r.lease.Won {
				return d.loadFill(b, key, load, opts, vw, leaseFiller(r.lease))
			}
		} else {
			token := backend.NewLockToken()
			won, err := backend.TryLock(b.next(), d.be, lockKey, token, d.lease.leaseTTL)
			if err != nil && ctx.Err() != nil {
				return zero, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
			}
			if err != nil {
				d.report(ctx, opLoad, key, b.check(err))
				return d.loadDirect(b, key, load, opts)
			}
			if won {
				return d.lockedLoad(b, key, load, opts, vw, lockFiller(lockKey, token, 0))
			}
		}
		// Another caller fills the key: wait, and read again. The wait,
		// and the reads and locks it makes (each bounded by the backend),
		// are not counted against the call's timeout, as the load this
		// caller waits for would not be.
		if !d.lease.now().Before(w.giveUp) {
			// Nobody filled it for two lease TTLs: stop waiting.
			return d.loadDirect(b, key, load, opts)
		}
		b.pause()
		select {
		case l := <-handoff:
			r.lease, r.leased = l, true
			continue
		case <-w.next():
		case <-ctx.Done():
			return zero, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
		}
		r = d.readForLoad(b, key, false, true)
		switch r.st {
		case entryFresh:
			if r.lease.Won {
				d.refreshAsync(b, key, load, opts, vw, leaseFiller(r.lease))
			}
			return r.v, nil
		case entryStale:
			d.revalidate(b, key, load, opts, r.vw, r.leased && !r.marked, r.lease)
			return r.v, nil
		case entryAbsent:
			return zero, &OpError{Op: "load", Key: key, Err: ErrNoValue}
		}
		if r.err != nil && ctx.Err() != nil {
			// Not an outage: this caller's time is up.
			return zero, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
		}
		if r.err != nil || r.overwrite {
			if r.err != nil && d.onError != nil {
				d.onError(r.err)
			}
			return d.loadDirect(b, key, load, opts)
		}
	}
}

// holdTries is how many times lockedLoad holds a missing key with a
// placeholder when writes keep beating it to the key.
const holdTries = 3

// lockedLoad is GetOrLoad's load under the key's lock f, just won. It
// reads the key again, since someone may have filled it since our read,
// and loads if it is still missing; a missing key (or an entry that is
// none to us: expired, an invalidated absence, a crashed loader's
// placeholder) is first held with a placeholder (see hold), whose CAS the
// fill then swaps, so that a Store or a Remove made while the loader runs
// stands.
func (d *Dict[V]) lockedLoad(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, f filler) (V, error) {
	var zero V
	handed := false // the lock went to release, refreshAsync or loadFill
	defer func() {
		if !handed {
			// The read or the placeholder panicked (a backend's or a
			// middleware's bug): unlock before the panic goes on, or
			// every caller of the fleet waits for the lock to expire.
			d.release(b, f)
		}
	}()
	for try := 1; ; try++ {
		r := d.readForLoad(b, key, false, false)
		f.cas = r.cas
		switch r.st {
		case entryFresh:
			handed = true
			d.release(b, f)
			return r.v, nil
		case entryStale:
			handed = true
			d.refreshAsync(b, key, load, opts, vw, f)
			return r.v, nil
		case entryAbsent:
			handed = true
			d.release(b, f)
			return zero, &OpError{Op: "load", Key: key, Err: ErrNoValue}
		}
		if r.err == nil && !r.overwrite && try <= holdTries {
			cas, err := d.hold(b, vw, key, r.cas)
			if errors.Is(err, errHoldRaced) {
				continue // written meanwhile: read it
			}
			if err == nil {
				f.cas = cas
			}
			// Otherwise (a backend without Add or CompareAndSwap, a
			// failure) fill as before, with Add or a swap of what was read.
		}
		handed = true
		return d.loadFill(b, key, load, opts, vw, f)
	}
}

// errHoldRaced says hold found the key written since it was read.
var errHoldRaced = errors.New("memdict: the key was written meanwhile")

// hold writes the placeholder of key (placeholderItem) where a read under
// the key's lock found no item (cas 0: with Add) or an entry that is none
// to us (of CAS cas: with CompareAndSwap), and returns the placeholder's
// CAS, read back (a backend's writes return none): the read checks that
// the key holds the placeholder still. It returns errHoldRaced if the key
// was written or removed since it was read.
//
// A placeholder is left in place when its load fails or its loader dies:
// it is none to every reader, and expires with the lease TTL. A load that
// outlasts the lease TTL finds it gone and stores nothing, as over
// memcached's leases.
func (d *Dict[V]) hold(b *bound, vw *view, key string, cas uint64) (uint64, error) {
	it, err := d.placeholderItem(vw, key)
	if err != nil {
		return 0, err
	}
	want := bytes.Clone(it.Value) // the backend owns it.Value
	if cas == 0 {
		err = d.be.Add(b.next(), it)
	} else {
		it.CAS = cas
		err = d.be.CompareAndSwap(b.next(), it)
	}
	switch {
	case errors.Is(err, backend.ErrNotStored), errors.Is(err, backend.ErrCASConflict), errors.Is(err, backend.ErrNotFound):
		return 0, errHoldRaced
	case err != nil:
		return 0, err
	}
	got, err := d.be.Get(b.next(), it.Key)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return 0, errHoldRaced
	case err != nil:
		return 0, err
	case !bytes.Equal(got.Value, want):
		return 0, errHoldRaced
	}
	return got.CAS, nil
}

// loadDirect loads without a lease or lock and stores the result:
// GetOrLoad's path when the backend cannot coordinate (a failure, a value
// it cannot decode, a fill nobody made for two lease TTLs). The store is
// conditional on the key still holding what loadDirect read before the
// load, as a fill under a lock is, unless that read failed or found a
// value it cannot decode.
func (d *Dict[V]) loadDirect(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption) (V, error) {
	ctx := b.parent
	vw, err := d.current(b)
	if err != nil {
		// The generation cannot be read: load, and try storing anyway
		// (store reports its own failure).
		t0 := d.m.start(opLoad)
		b.pause()
		v, err := load(ctx, key)
		b.resume()
		d.m.end(opLoad, t0)
		if err != nil {
			if errors.Is(err, ErrNoValue) {
				return v, &OpError{Op: "load", Key: key, Err: err}
			}
			return v, d.m.fail(ctx, opLoad, key, err)
		}
		if err := d.store(b, key, v, opts); err != nil && d.onError != nil {
			d.onError(err)
		}
		return v, nil
	}
	// A flight of another Dict or process may have stored the value since
	// our miss: look again before loading. The fill is conditional on
	// what this read found, as under a lock (see filler): an Add where
	// the key was missing, a swap of its CAS where it held an entry that
	// is none to us, so that a Store made while the loader runs stands.
	// Only an entry that cannot be read (or a failed read) is overwritten.
	r := d.readForLoad(b, key, true, false)
	switch r.st {
	case entryFresh, entryStale:
		return r.v, nil
	case entryAbsent:
		var zero V
		return zero, &OpError{Op: "load", Key: key, Err: ErrNoValue}
	}
	f := filler{}
	if r.err == nil && !r.overwrite {
		f = filler{cond: true, cas: r.cas}
	}
	return d.loadFill(b, key, load, opts, vw, f)
}

// revalidate starts the background refresh of a stale entry r read, if
// this caller wins it. An entry in memcached's early-refresh window
// (stale by time, not marked; leased says the read was a GetLease of
// such an entry) is refreshed by the caller the server picked with the
// lease of the read. Any other stale entry (marked stale by the server
// or in its envelope, or read without a lease) is refreshed by the
// caller that takes the key's lock: memcached hands the lease of an item
// marked stale (Invalidate) to whichever read comes first, plain Gets
// included, so that lease cannot say who refreshes. The lock is tried in
// the background, so that a stale read costs one round trip; a process
// that lost it does not try again for lostHoldoff.
func (d *Dict[V]) revalidate(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, leased bool, lease backend.Lease) {
	if vw == nil {
		return
	}
	if leased && !lease.Stale {
		if lease.Won {
			d.refreshAsync(b, key, load, opts, vw, leaseFiller(lease))
		}
		return
	}
	if !d.lease.startRefresh(key) {
		return // this process refreshes it already, or lost the lock a moment ago
	}
	ctx, end := d.background(b.parent, key)
	go func() {
		defer d.contain(ctx, key)
		defer end()
		d.lockedRefresh(ctx, key, load, opts, vw)
	}()
}

// background returns the context of a background refresh of key that the
// caller of ctx starts: ctx's values (its trace span among them) without
// its cancellation, so that the refresh outlives the call, observed as an
// operation "refresh" of its own if the Dict is observed; and the function
// to call when the refresh ends.
func (d *Dict[V]) background(ctx context.Context, key string) (context.Context, func()) {
	ctx = context.WithoutCancel(ctx)
	if d.obs == nil {
		return ctx, func() {}
	}
	ctx, ob := d.observe(ctx, "refresh", key, 1)
	return ctx, func() { ob.done(okOr(ob.err), ob.err) }
}

// lostHoldoff is how long a process that lost the lock of a stale entry's
// refresh waits before it tries again (if the entry is still stale then:
// the winner died, or the entry was marked stale anew). It is at most the
// lease TTL.
const lostHoldoff = 50 * time.Millisecond

// lockedRefresh is revalidate's background work: take the key's lock,
// read the entry again (another caller may have refreshed it between our
// read and the lock), and reload it if it is still stale.
func (d *Dict[V]) lockedRefresh(ctx context.Context, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view) {
	bkey, _ := vw.key(key)
	f := lockFiller(vw.lockKey(bkey), backend.NewLockToken(), 0)
	b := bound{parent: ctx}
	defer b.end()
	locked, handed := false, false
	defer func() {
		if handed {
			return
		}
		// A backend call panicked (a middleware's bug) in this goroutine
		// of the Dict's, which no caller waits for: reported as a panic
		// of the refresh's loader is (refreshNow), rather than ending
		// the program; the lock and the key's refresh are given up.
		if p := recover(); p != nil {
			if locked {
				func() {
					defer func() { _ = recover() }() // the lock expires with the lease TTL
					d.release(&b, f)
				}()
			}
			d.lease.endRefresh(key)
			d.report(ctx, opLoad, key, fmt.Errorf("%w: %v", ErrLoaderPanicked, p))
		}
	}()
	won, err := backend.TryLock(ctx, d.be, f.lockKey, f.token, d.lease.leaseTTL)
	if err != nil || !won {
		handed = true
		// Before the report, whose error handler may panic (contain):
		// the key's refresh is not left claimed for good.
		time.AfterFunc(min(lostHoldoff, d.lease.leaseTTL), func() { d.lease.endRefresh(key) })
		if err != nil {
			d.report(ctx, opLoad, key, err)
		}
		return
	}
	locked = true
	r := d.readForLoad(&b, key, false, true)
	if r.leased && r.lease.Won && r.st != entryStale {
		d.release(&b, leaseFiller(r.lease)) // a lease on a key gone meanwhile
	}
	if r.st != entryStale || r.vw == nil {
		// Refreshed, removed or unreadable since: nothing to do.
		d.release(&b, f)
		d.lease.endRefresh(key)
		return
	}
	f.cas = r.cas
	handed = true
	d.refreshNow(ctx, key, load, opts, r.vw, f)
}

// refreshAsync reloads key in the background with the lease or lock f,
// unless this process refreshes it already (f is then released, within
// the bound b of the call).
func (d *Dict[V]) refreshAsync(b *bound, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, f filler) {
	if !d.lease.startRefresh(key) {
		if f.token != "" {
			d.release(b, f)
		}
		return
	}
	d.runRefresh(b.parent, key, load, opts, vw, f)
}

// runRefresh runs the refresh claimed with startRefresh in the
// background.
func (d *Dict[V]) runRefresh(ctx context.Context, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, f filler) {
	ctx, end := d.background(ctx, key)
	go func() {
		defer d.contain(ctx, key)
		defer end()
		d.refreshNow(ctx, key, load, opts, vw, f)
	}()
}

// refreshNow reloads key with the lease or lock f, bounded by the lease
// TTL, and ends the claim of startRefresh.
func (d *Dict[V]) refreshNow(ctx context.Context, key string, load func(context.Context, string) (V, error), opts []ItemOption, vw *view, f filler) {
	defer d.lease.endRefresh(key)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.lease.leaseTTL)
	defer cancel()
	ob := d.observing(ctx)
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("%w: %v", ErrLoaderPanicked, p)
			d.report(rctx, opLoad, key, err)
			if ob != nil {
				ob.err = err
			}
		}
	}()
	b := bound{parent: rctx} // bounded by the lease TTL, not a caller's timeout
	if _, err := d.loadFill(&b, key, load, opts, vw, f); err != nil && !errors.Is(err, ErrNoValue) {
		if ob != nil {
			ob.err = err
		}
		if d.onError != nil {
			d.onError(err)
		}
	}
}

// contain is deferred first by each goroutine a Dict starts for
// GetOrLoad's background work (a refresh, the release of a lease or lock
// that ran out of the call's time), which no caller waits for. The
// panics of the loader and of the backend calls are recovered within that
// work and reported with ErrLoaderPanicked; one that still escapes is a
// panic of a callback the work calls: the WithErrorHandler function (in
// such a report, too), the Observer's end of the "refresh" operation, a
// logger's handler. As net/http does with a handler's panic, contain
// recovers it rather than let it end the program, which no caller could
// prevent: it is counted in Stats, logged (WithLogger) and passed to the
// error handler, as an error wrapping ErrLoaderPanicked; a panic of the
// logging or of the error handler there is dropped.
func (d *Dict[V]) contain(ctx context.Context, key string) {
	p := recover()
	if p == nil {
		return
	}
	defer func() { _ = recover() }()
	err := d.m.fail(ctx, opLoad, key, fmt.Errorf("%w: a callback of GetOrLoad's background work (the error handler, the Observer, the logger) panicked: %v", ErrLoaderPanicked, p))
	if d.onError != nil {
		d.onError(err)
	}
}

// report counts and logs a failure that GetOrLoad returns to no caller
// (a background refresh, a store after a load, a lock it could not take)
// and passes it to the WithErrorHandler function.
func (d *Dict[V]) report(ctx context.Context, o op, key string, err error) {
	err = d.m.fail(ctx, o, key, err)
	if d.onError != nil {
		d.onError(err)
	}
}

// backoff is the wait of a caller for another's fill: from 2ms, doubling
// up to 50ms, each wait jittered by ±25%.
type backoff struct {
	wait   time.Duration
	giveUp time.Time
}

const (
	backoffFirst = 2 * time.Millisecond
	backoffMax   = 50 * time.Millisecond
)

// next returns a channel that fires after the next wait.
func (b *backoff) next() <-chan time.Time {
	if b.wait == 0 {
		b.wait = backoffFirst
	} else {
		b.wait = min(2*b.wait, backoffMax)
	}
	j := b.wait/2 + rand.N(b.wait)/2 + b.wait/4 // wait ±25%
	return time.After(j)
}
