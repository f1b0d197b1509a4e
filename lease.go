package memdict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/keyspace"
)

// Logical expiry, stale-while-revalidate and fleet-wide fills.
//
// Every value written with a TTL carries its hard expiry in its envelope
// (and, with WithStaleWhileRevalidate, the end of its fresh time), so that
// a store that ignores TTLs never serves an expired value and every
// backend knows when an entry went stale. GetOrLoad (loader.go) uses the
// backend's fill leases (backend.Leaser) or a lock key per data key
// (backend.TryLock) to let one caller in the whole fleet load a missing or
// stale value.

// Defaults of GetOrLoad across processes.
const (
	// DefaultLeaseTTL is how long a fill lease lasts by default (see
	// WithLeaseTTL).
	DefaultLeaseTTL = 10 * time.Second
	// DefaultNegativeTTL is how long GetOrLoad caches the absence of a
	// value by default (see WithNegativeTTL).
	DefaultNegativeTTL = 10 * time.Second
)

// WithStaleWhileRevalidate makes entries stale-while-revalidate: an entry
// is fresh for its TTL, then stale for d more, during which GetOrLoad
// returns it at once while exactly one caller, fleet-wide, reloads it in
// the background; the backend keeps it for TTL+d. Over memcached's meta
// protocol the server also hands one caller an early refresh when less
// than d of that time remains, which here is the same moment. Entries
// without a TTL are never stale by time. Get, Lookup and GetMulti return a
// stale entry as a hit; only GetOrLoad revalidates. 0, the default, turns
// it off; d must not be negative.
func WithStaleWhileRevalidate(d time.Duration) Option {
	return durationOption("WithStaleWhileRevalidate", d, func(o *options) { o.swr = d })
}

// WithLeaseTTL sets how long a fill lease lasts (default
// DefaultLeaseTTL): a GetOrLoad caller that wins the right to load a key
// holds it that long at most (over memcached, whose TTLs are whole
// seconds and get one more, up to a second longer), so a winner that dies
// or hangs lets another caller take over after d; it is also the longest
// a caller waiting for another's load goes without trying to win again,
// and the time limit of a background refresh. 0 means the default; d must
// not be negative.
func WithLeaseTTL(d time.Duration) Option {
	return durationOption("WithLeaseTTL", d, func(o *options) { o.leaseTTL = d })
}

// WithNegativeTTL sets how long GetOrLoad caches the absence of a value,
// reported by a loader error wrapping ErrNoValue (default
// DefaultNegativeTTL, and never longer than the Dict's default TTL when
// that is shorter and not 0). 0 turns negative caching off: every call
// then asks the loader again. d must not be negative.
func WithNegativeTTL(d time.Duration) Option {
	return durationOption("WithNegativeTTL", d, func(o *options) { o.negTTL = &d })
}

// durationOption is an Option that refuses a negative d, naming the
// option, and otherwise calls set.
func durationOption(name string, d time.Duration, set func(*options)) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%s(%v): negative duration", name, d)
		}
		set(o)
		return nil
	}
}

// WithClock sets the clock of logical expiry and freshness (default
// time.Now): the times written in entries' envelopes and compared when they
// are read. It is meant for tests, with a fake clock that moves along with
// the backend's (memory.FakeClock.Now); a near cache without its own
// NearCache.Now reads it too, and so does the limit on how often the
// writes of a Dict whose generation add was refused try it again.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("WithClock(nil)")
		}
		o.clock = now
		return nil
	}
}

// entryState says what a stored entry is when it is read.
type entryState uint8

const (
	entryNone   entryState = iota // no entry: absent, expired, or another key's
	entryFresh                    // a value within its fresh time
	entryStale                    // a value past its fresh time, or marked stale
	entryAbsent                   // a cached absence (negative caching)
)

// leaseState is a Dict's configuration and state of logical expiry and
// fleet-wide fills.
type leaseState struct {
	swr      time.Duration
	leaseTTL time.Duration
	negTTL   time.Duration
	clock    func() time.Time // nil: time.Now

	leaser    backend.Leaser // nil if the backend has none
	leaserOff atomic.Bool    // the backend said its server cannot lease
	// asked says the backend is a wrapper (backend.Handler), whose
	// abilities may change (a Tool's plugin moves to another server):
	// leaser then asks it at every call, and a call that finds no lease
	// falls back to the key's lock for that call only.
	asked bool

	refreshMu  sync.Mutex
	refreshing map[string]struct{} // keys refreshed in the background now
}

// setup configures ls from the options of New.
func (ls *leaseState) setup(be backend.Backend, o *options) {
	ls.swr, ls.leaseTTL, ls.clock = o.swr, o.leaseTTL, o.clock
	if ls.leaseTTL == 0 {
		ls.leaseTTL = DefaultLeaseTTL
	}
	ls.negTTL = DefaultNegativeTTL
	if o.negTTL != nil {
		ls.negTTL = *o.negTTL
	}
	ls.leaser, _ = be.(backend.Leaser)
	if _, ok := be.(backend.Handler); ok {
		ls.leaser, ls.asked = askLeaser{be}, true
	}
}

// askLeaser is the backend.Leaser of a wrapper: each call asks it through
// package backend's functions.
type askLeaser struct{ be backend.Backend }

func (a askLeaser) GetLease(ctx context.Context, key string, o backend.LeaseOptions) (backend.Lease, error) {
	return backend.GetLease(ctx, a.be, key, o)
}

func (a askLeaser) ReleaseLease(ctx context.Context, l backend.Lease) error {
	return backend.ReleaseLease(ctx, a.be, l)
}

func (a askLeaser) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	return backend.MarkStale(ctx, a.be, key, ttl)
}

// now reads the Dict's clock.
func (ls *leaseState) now() time.Time {
	if ls.clock != nil {
		return ls.clock()
	}
	return time.Now()
}

// nowMs reads the Dict's clock in Unix milliseconds.
func (ls *leaseState) nowMs() int64 { return ls.now().UnixMilli() }

// ceilMs returns t in Unix milliseconds, rounded up.
func ceilMs(t time.Time) int64 { return t.Add(time.Millisecond - 1).UnixMilli() }

// state returns what an entry with meta m is now.
func (ls *leaseState) state(m envelope.Meta) entryState {
	var now int64
	if m.HasTime() {
		now = ls.nowMs()
		if m.Expired(now) {
			return entryNone
		}
	}
	switch {
	case m.Absent && m.Stale:
		return entryNone // an invalidated absence: GetOrLoad loads again
	case m.Absent:
		return entryAbsent
	case m.IsStale(now):
		return entryStale
	}
	return entryFresh
}

// meta returns the envelope meta of a value written now with TTL ttl, and
// the TTL to give the backend: ttl, plus the stale-while-revalidate
// window when there is one (at most the largest Duration).
func (ls *leaseState) meta(ttl time.Duration) (envelope.Meta, time.Duration) {
	if ttl <= 0 {
		return envelope.Meta{}, ttl
	}
	fresh := ls.now().Add(ttl)
	if ls.swr <= 0 {
		return envelope.Meta{Expiry: ceilMs(fresh)}, ttl
	}
	bttl := ttl + ls.swr
	if bttl < ttl {
		bttl = math.MaxInt64 // saturate: a TTL of the largest Duration stays valid
	}
	return envelope.Meta{FreshUntil: ceilMs(fresh), Expiry: ceilMs(fresh.Add(ls.swr))}, bttl
}

// staleFor is how long an invalidated entry lives at most: the longer of
// the stale-while-revalidate window and the lease TTL.
func (ls *leaseState) staleFor() time.Duration { return max(ls.swr, ls.leaseTTL) }

// negativeTTL returns the TTL of a cached absence under settings s (0:
// none).
func (ls *leaseState) negativeTTL(s *Settings) time.Duration {
	if s.TTL > 0 && s.TTL < ls.negTTL {
		return s.TTL
	}
	return ls.negTTL
}

// leaserOf returns the backend's Leaser, unless it has none or said its
// server cannot lease.
func (ls *leaseState) leaserOf() backend.Leaser {
	if ls.leaser == nil || ls.leaserOff.Load() {
		return nil
	}
	return ls.leaser
}

// notLeasing reports whether err says the backend cannot lease, and if so
// makes the Dict use locks from now on (a wrapper is asked again at its
// next call).
func (ls *leaseState) notLeasing(err error) bool {
	if backend.NotSupported(err) {
		if !ls.asked {
			ls.leaserOff.Store(true)
		}
		return true
	}
	return false
}

// startRefresh claims the background refresh of key for this process; it
// returns false if one is running.
func (ls *leaseState) startRefresh(key string) bool {
	ls.refreshMu.Lock()
	defer ls.refreshMu.Unlock()
	if _, busy := ls.refreshing[key]; busy {
		return false
	}
	if ls.refreshing == nil {
		ls.refreshing = make(map[string]struct{})
	}
	ls.refreshing[key] = struct{}{}
	return true
}

// endRefresh gives up the claim of startRefresh.
func (ls *leaseState) endRefresh(key string) {
	ls.refreshMu.Lock()
	delete(ls.refreshing, key)
	ls.refreshMu.Unlock()
}

// lockKey returns the key of the fill lock of the data key bkey.
func (vw *view) lockKey(bkey string) string { return keyspace.LeaseKey(bkey, vw.s.MaxKeyLen) }

// reframeRetries bounds the compare-and-swap retries of Invalidate and
// Touch.
const reframeRetries = 20

// Invalidate marks key's entry stale rather than deleting it, so that a
// burst of GetOrLoad calls after a change to the source of truth does not
// fall through to the loader: GetOrLoad then returns the stale value at
// once while exactly one caller, fleet-wide, reloads it (whether or not
// the Dict has WithStaleWhileRevalidate). Get, Lookup and GetMulti keep
// returning the stale value as a hit until it is reloaded or expires; only
// GetOrLoad revalidates. The stale entry lives at most the longer of the
// stale-while-revalidate window and the lease TTL, and its own expiry if
// that is sooner. (A value without expiry that fills the size limit has
// no room in its envelope for that expiry: only the backend's TTL then
// ends it, which a store that ignores TTLs does not.)
//
// Over memcached's meta protocol (backend.Leaser) the server marks the
// item stale (md with I), and the stale entry may live up to a second
// more than said above (memcached's TTLs are whole seconds and get one
// more); over other backends Invalidate rewrites the entry's envelope
// with compare-and-swap. Invalidating an absent key is not an error: it
// returns nil.
func (d *Dict[V]) Invalidate(ctx context.Context, key string) (err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "invalidate", key, 1)
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opInvalidate)
	defer d.m.end(opInvalidate, t0)
	b := bound{parent: ctx}
	defer b.end()
	if err := d.invalidate(&b, key); err != nil {
		return d.m.fail(ctx, opInvalidate, key, b.check(err))
	}
	return nil
}

func (d *Dict[V]) invalidate(bd *bound, key string) error {
	vw, err := d.currentWrite(bd)
	if err != nil {
		return err
	}
	if vw.python {
		return d.notAvailable(vw.s, "Invalidate")
	}
	bkey, hashed := vw.key(key)
	defer d.nearInvalidate(key)
	staleFor := d.lease.staleFor()
	if l := d.lease.leaserOf(); l != nil && !hashed {
		// A hashed key's entry may be another key's: only its envelope
		// tells, so it takes the envelope's path.
		err := l.MarkStale(bd.next(), bkey, staleFor)
		switch {
		case err == nil, errors.Is(err, backend.ErrNotFound):
			return nil
		case !d.lease.notLeasing(err):
			return err
		}
	}
	bd.begin() // a read and a compare-and-swap, or more
	for range reframeRetries {
		it, err := d.be.Get(bd.next(), bkey)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		h, _, err := envelope.Parse(it.Value)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDecode, err)
		}
		if hashed && string(h.Key) != key {
			return nil // another key's value
		}
		now := d.lease.now()
		if h.Expired(now.UnixMilli()) {
			return nil
		}
		m := h.Meta
		m.Stale = true
		if exp := ceilMs(now.Add(staleFor)); m.Expiry == 0 || exp < m.Expiry {
			m.Expiry = exp
		}
		b, err := envelope.Reframe(it.Value, m)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDecode, err)
		}
		ttl := max(time.UnixMilli(m.Expiry).Sub(now), time.Millisecond)
		// An entry without expiry gains one, which takes a few bytes: a
		// value at the size limit has no room for them, and then keeps
		// no expiry in its envelope (the stale flag takes no room); the
		// backend's TTL still ends it.
		bare := func() ([]byte, error) {
			bm := m
			bm.Expiry = h.Expiry
			return envelope.Reframe(it.Value, bm)
		}
		if len(b) > len(it.Value) && vw.checkSize(len(b)) != nil {
			if b, err = bare(); err != nil {
				return fmt.Errorf("%w: %w", ErrDecode, err)
			}
		}
		err = d.be.CompareAndSwap(bd.next(), backend.Item{Key: bkey, Value: b, TTL: ttl, CAS: it.CAS})
		if errors.Is(err, backend.ErrValueTooLarge) && len(b) > len(it.Value) {
			if b, err = bare(); err != nil {
				return fmt.Errorf("%w: %w", ErrDecode, err)
			}
			err = d.be.CompareAndSwap(bd.next(), backend.Item{Key: bkey, Value: b, TTL: ttl, CAS: it.CAS})
		}
		switch {
		case err == nil, errors.Is(err, backend.ErrNotFound):
			return nil
		case !errors.Is(err, backend.ErrCASConflict):
			return err
		}
		d.m.retries.Add(1)
	}
	return fmt.Errorf("%w: gave up after %d retries", ErrCASConflict, reframeRetries)
}

// touchEnvelope is Touch for a value whose envelope carries times, or is
// to carry them: it rewrites the envelope with the new expiry. It returns
// done false, with nothing done, when a plain backend Touch is enough (the
// value carries no times and gets none, or is not framed by memdict) or
// is all there is (the value carries no times and has no room for them).
func (d *Dict[V]) touchEnvelope(bd *bound, vw *view, key, bkey string, hashed bool, ttl time.Duration) (done bool, err error) {
	for range reframeRetries {
		it, err := d.be.Get(bd.next(), bkey)
		if err != nil {
			return true, err
		}
		h, _, err := envelope.Parse(it.Value)
		if err != nil {
			return false, nil // not ours: the backend's Touch will do
		}
		if hashed && string(h.Key) != key {
			return true, fmt.Errorf("memdict: touch: %w", backend.ErrNotFound)
		}
		switch d.lease.state(h.Meta) {
		case entryNone, entryAbsent:
			return true, fmt.Errorf("memdict: touch: %w", backend.ErrNotFound)
		}
		if !h.HasTime() && ttl == 0 {
			return false, nil
		}
		m, bttl := d.lease.meta(ttl)
		// The entry stays stale: marked in its envelope, or by the
		// server (memcached's md with I), whose mark the rewrite clears
		// and the envelope then carries.
		m.Stale = h.Stale || it.Stale
		b, err := envelope.Reframe(it.Value, m)
		if err != nil {
			return true, fmt.Errorf("%w: %w", ErrDecode, err)
		}
		// A value without times that fills the size limit has no room
		// for them: the backend's TTL alone then ends it, as after
		// Invalidate.
		grows := !h.HasTime() && len(b) > len(it.Value)
		if grows && vw.checkSize(len(b)) != nil {
			d.nearInvalidate(key)
			return false, nil
		}
		err = d.be.CompareAndSwap(bd.next(), backend.Item{Key: bkey, Value: b, TTL: bttl, CAS: it.CAS})
		d.nearInvalidate(key)
		if grows && errors.Is(err, backend.ErrValueTooLarge) {
			return false, nil
		}
		if !errors.Is(err, backend.ErrCASConflict) {
			return true, err
		}
		d.m.retries.Add(1)
	}
	return true, fmt.Errorf("%w: gave up after %d retries", ErrCASConflict, reframeRetries)
}
