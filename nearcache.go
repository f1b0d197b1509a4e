package memdict

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/maypok86/otter/v2"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/compress"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/keyspace"
)

// The near cache.
//
// A near-cached Dict keeps the values it read in an otter cache (W-TinyLFU
// admission and eviction: a scan of cold keys does not push the hot ones
// out) keyed by the Dict key. Each entry remembers the settings and the
// namespace generation it was read under, so a hit is only taken when they
// are the view's: a Clear (a new generation) or a change of settings makes
// every older entry a miss without touching it.
//
// Invalidation. Every near cache belongs to a nearGroup: the near caches of
// this process on one backend and one tracking prefix (the namespace
// without its generation, "<site>:<prefix>:"). A write through any Dict of
// the group drops the key from every member at once. If the backend is a
// backend.Invalidator (Redis, CLIENT TRACKING), the group tracks its prefix
// and the server's reports drop keys too; when the reporting connection is
// lost or set up anew, every member is emptied.
//
// A read that misses races with invalidations: it may read the old value
// from the backend, then an invalidation of the key arrives (and finds
// nothing to drop), then the read stores the old value. So every key hashes
// to one of nearStripes sequence numbers that each invalidation bumps; a
// read notes the number before it goes to the backend and its value is
// dropped again if the number moved before the value was in place.

// NearCache configures the in-process tier that WithNearCache puts in
// front of a Dict's backend. The zero value holds up to
// DefaultNearCacheEntries entries and relies on server invalidation alone,
// which only Redis offers: over another backend MaxStale must be set.
type NearCache struct {
	// MaxEntries bounds the number of entries; 0 means
	// DefaultNearCacheEntries, unless MaxBytes is set, in which case only
	// MaxBytes bounds the cache.
	MaxEntries int
	// MaxBytes bounds the memory held, counted as each entry's key length
	// plus its encoded value length plus NearCacheEntryOverhead; 0 means
	// no byte bound. With both bounds, every entry counts as at least
	// MaxBytes/MaxEntries bytes, so that neither bound is passed.
	MaxBytes int64
	// MaxStale is the longest time an entry is used after it was read
	// from the backend; after that the next read goes to the backend
	// again. It bounds how stale a value may be when the backend cannot
	// report changes (memcached, memory, miniredis). (An entry is never
	// served past the expiry its value carries: see WithNearCache.) 0
	// means no limit, which New accepts only over a backend that reports
	// changes (backend.Invalidator, or a wrapper of one: see
	// WithNearCache for a Tool's plugin that moves). Over
	// Redis, a value read while the tracking connection is down, or from
	// a server that refuses CLIENT TRACKING (miniredis, Redis before 6),
	// is only kept if MaxStale is set, and then for MaxStale at most.
	// A MaxStale of 16ms or more is measured on hits with a clock of
	// MaxStale/16 resolution that counts entries stale one tick early, so
	// the bound holds unless the process's timers run late.
	MaxStale time.Duration
	// ShareValues declares that callers never modify the values they get
	// (or the memory those values point to), so hits may return the
	// cached value itself for every type V. See WithNearCache for what is
	// shared without it.
	ShareValues bool
	// Now is the clock MaxStale is measured with; nil means time.Now. It
	// is meant for tests with a fake clock (memory.FakeClock.Now).
	Now func() time.Time
}

// Defaults and accounting of the near cache.
const (
	// DefaultNearCacheEntries is the entry bound of a near cache whose
	// MaxEntries and MaxBytes are both 0.
	DefaultNearCacheEntries = 10000
	// NearCacheEntryOverhead is what an entry counts against MaxBytes on
	// top of its key and encoded value.
	NearCacheEntryOverhead = 96
)

// WithNearCache keeps the values the Dict reads in the process, so that
// reading a hot key again costs neither a round trip nor, for most value
// types, a decode. It is bounded by nc.MaxEntries and nc.MaxBytes, and
// its admission policy (W-TinyLFU, from github.com/maypok86/otter) keeps
// frequently read keys in place while a scan of many keys read once
// passes through.
//
// Coherence. The Dict's own writes — Put, Store, Add, PutMulti, Delete,
// Remove, Update, Tx.Commit, GetOrLoad's store — drop the key from its near
// cache, and from those of the other near-cached Dicts of this process on
// the same backend, site id and prefix, before they return; Clear makes
// every entry a miss. Writes by other processes are seen:
//   - over Redis (a backend.Invalidator), within the time the server takes
//     to report them on the tracking connection (CLIENT TRACKING with
//     BCAST and the Dict's prefix): on loopback, a median of tens of
//     microseconds and a 99th percentile of a few milliseconds, measured
//     on a busy 2-core machine; losing that connection empties the near cache (one that
//     goes silent counts as lost after three seconds without an answer
//     to its PINGs), and it fills again once tracking is back. Redis
//     reports no change for SWAPDB: operations that swap databases need
//     nc.MaxStale, or a value read before the swap is served until it is
//     evicted;
//   - over memcached and the memory backend, which cannot report changes,
//     within nc.MaxStale, which must then be set.
//
// Through a wrapper (backend.Wrap, a Tool's plugin) the near cache tracks
// the backend under it. When that backend changes (a Tool's SetPlugin
// moves the plugin), the near cache is emptied and tracks the new one; if
// the new one cannot report changes, a near cache with MaxStale 0 keeps
// nothing, so that every read goes to the backend, until the plugin moves
// to one that can, and one with MaxStale serves values at most that old.
//
// A Clear made elsewhere is seen over Redis as soon as the server reports
// the new generation (the generation keys are tracked too), and over other
// backends within the Dict's GenerationRefresh, as without a near cache.
// Every value written with a TTL carries its expiry in its envelope, and
// the near cache honours it: an entry is a miss from then on. A value's
// TTL changed in the backend behind the Dict's back (a Touch by another
// program) is not seen before MaxStale.
//
// The Dicts of this process that near-cache one backend, site id and
// prefix share one tracking registration; over Redis, a near-cached Dict
// whose prefix covers a tracked one (prefix "a" after site "a") makes the
// tracking connections start anew, which empties every near cache on that
// backend once.
//
// Value safety. A hit never lets a caller change the cached copy: for
// strings, numbers, booleans, and arrays and structs made only of those
// (and time.Time), found by reflection once in New, hits share the cached
// decoded value, which cannot be changed through a copy; for []byte, a hit
// returns a fresh copy; for every other type (pointers, slices, maps,
// interfaces, structs holding them) a hit decodes the cached bytes again,
// which costs what a decode costs but no round trip. Set nc.ShareValues to
// share values of any type when callers treat them as read-only.
//
// Keys too long for the backend, which are stored under a hash of the
// key, are not near-cached.
//
// WithNearCache returns an error from New if a bound is negative, or if
// MaxStale is 0 over a backend that cannot report changes.
//
// WithNearCache replaces the near cache of the Dict's settings
// (Settings.NearCache), if any: a Tool's plugin may give its Dicts one.
func WithNearCache(nc NearCache) Option {
	return func(o *options) error {
		if err := nc.validate(); err != nil {
			return fmt.Errorf("WithNearCache: %w", err)
		}
		o.near, o.noNear = &nc, false
		return nil
	}
}

// WithoutNearCache gives the Dict no near cache, even if its settings
// (Settings.NearCache: a Tool's plugin's near cache) give it one.
func WithoutNearCache() Option {
	return func(o *options) error {
		o.near, o.noNear = nil, true
		return nil
	}
}

// validate returns an error naming a negative bound.
func (nc NearCache) validate() error {
	switch {
	case nc.MaxEntries < 0:
		return fmt.Errorf("MaxEntries %d is negative", nc.MaxEntries)
	case nc.MaxBytes < 0:
		return fmt.Errorf("MaxBytes %d is negative", nc.MaxBytes)
	case nc.MaxStale < 0:
		return fmt.Errorf("MaxStale %v is negative", nc.MaxStale)
	}
	return nil
}

// NearCacheStats counts a near cache's work. They are zero for a Dict
// without one.
type NearCacheStats struct {
	// Enabled says the Dict has a near cache.
	Enabled bool
	// Hits counts reads answered by the near cache (also counted in
	// Stats.Hits); Misses counts the reads that went to the backend.
	Hits, Misses uint64
	// Evictions counts entries dropped to stay within the bounds.
	Evictions uint64
	// Invalidations counts entries dropped because their key was written
	// (here or, as the server reported, elsewhere).
	Invalidations uint64
	// Resets counts the times the near cache was emptied at once: the
	// tracking connection was lost or set up anew, or the server flushed.
	Resets uint64
	// Entries is the number of entries held now (an estimate).
	Entries int
	// Bytes is the memory the entries hold now, counted as MaxBytes
	// counts it (key, encoded value and NearCacheEntryOverhead per
	// entry), whether or not MaxBytes is set.
	Bytes int64
}

// nearMetrics are a Dict's near-cache counters.
type nearMetrics struct {
	misses, evictions, invalidations, resets atomic.Uint64 // hits: metrics.nearHit (striped)
	bytes                                    atomic.Int64  // held now
}

// nearWeight is what an entry of key holding n bytes counts against
// MaxBytes.
func nearWeight(key string, n int) int64 {
	return int64(len(key)) + int64(n) + NearCacheEntryOverhead
}

// copyMode says what a hit returns.
type copyMode uint8

const (
	shareValue copyMode = iota // the cached value itself
	redecode                   // a decode of the cached bytes
)

// nearEntry is one cached value.
type nearEntry[V any] struct {
	s   *Settings // the settings and
	gen uint64    // generation it was read under
	at  int64     // when it was read, clock ns
	v   V         // the decoded value (shareValue)
	raw []byte    // the stored bytes, envelope included (redecode)
	n   int       // len of the stored bytes, for MaxBytes
	// The envelope's times, as deadlines on the clock of hits (0: none),
	// and its stale flag.
	exp, fresh int64
	stale      bool
}

// nearStripes is the number of invalidation sequence numbers.
const nearStripes = 64

// nearCache is a Dict's near cache. It is safe for concurrent use.
type nearCache[V any] struct {
	c        *otter.Cache[string, *nearEntry[V]]
	maxStale int64            // ns; 0: none
	now      func() int64     // the clock of fills
	hitNow   func() int64     // the clock of hits: now, or a coarse one
	slack    int64            // how far hitNow may lag now, ns
	wall     func() time.Time // the Dict's clock of envelope times
	mode     copyMode
	m        *nearMetrics
	seed     maphash.Seed
	seqs     [nearStripes]atomic.Uint64

	be     backend.Backend
	bindMu sync.Mutex
	group  atomic.Pointer[nearGroup]
	onGen  func(key string) // generationKeyChanged; set by setupNear
}

// generationKeyChanged marks the Dict's view stale if key is its
// generation key ("" for any), so that its next call reads the
// generation again.
func (nc *nearCache[V]) generationKeyChanged(key string) {
	if nc.onGen != nil {
		nc.onGen(key)
	}
}

// newNearCache makes the near cache of a Dict of V over be.
func newNearCache[V any](be backend.Backend, cfg NearCache, kind valueKind, m *nearMetrics) (*nearCache[V], error) {
	if cfg.MaxStale == 0 {
		_, inv := be.(backend.Invalidator)
		if _, wrapper := be.(backend.Handler); !inv && !wrapper {
			return nil, errCannotTrack(nil)
		}
	}
	nc := &nearCache[V]{maxStale: int64(cfg.MaxStale), m: m, seed: maphash.MakeSeed(), be: be, now: mono, hitNow: mono}
	switch {
	case cfg.Now != nil:
		now := cfg.Now
		nc.now = func() int64 { return now().UnixNano() }
		nc.hitNow = nc.now
	case cfg.MaxStale >= coarseMin:
		// Hits read a coarse clock, kept by a timer while hits come, and
		// count an entry stale one tick early, so MaxStale still holds.
		cc := &coarseClock{tick: cfg.MaxStale / coarseTicks}
		nc.hitNow = cc.read
		nc.maxStale -= int64(cc.tick)
		nc.slack = int64(cc.tick)
	}
	switch {
	case cfg.ShareValues || kind == kindString:
		nc.mode = shareValue
	case kind == kindBytes:
		nc.mode = redecode
	case immutable(reflect.TypeFor[V]()):
		nc.mode = shareValue
	default:
		nc.mode = redecode
	}
	o := &otter.Options[string, *nearEntry[V]]{
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *nearEntry[V]]) {
			// Every cause: replacement, invalidation, eviction.
			m.bytes.Add(-nearWeight(e.Key, e.Value.n))
			if e.Cause == otter.CauseOverflow {
				m.evictions.Add(1)
			}
		},
	}
	entries, bytes := cfg.MaxEntries, cfg.MaxBytes
	if entries == 0 && bytes == 0 {
		entries = DefaultNearCacheEntries
	}
	if bytes == 0 {
		o.MaximumSize = entries
	} else {
		var floor uint64
		if entries > 0 {
			floor = uint64(bytes) / uint64(entries)
		}
		o.MaximumWeight = uint64(bytes)
		o.Weigher = func(key string, e *nearEntry[V]) uint32 {
			w := uint64(len(key)) + uint64(e.n) + NearCacheEntryOverhead
			return uint32(min(max(w, floor), 1<<32-1))
		}
	}
	c, err := otter.New(o)
	if err != nil {
		return nil, err
	}
	nc.c = c
	return nc, nil
}

// The coarse clock. Reading the clock costs a third of a hit, so a near
// cache with a MaxStale of at least coarseMin reads, on hits, a clock
// that a timer sets every MaxStale/coarseTicks while hits come in; after a
// tick without hits the timer stops, and the next hit reads the real
// clock and starts it again. A pending timer is no goroutine.
const (
	coarseMin   = 16 * time.Millisecond
	coarseTicks = 16
)

type coarseClock struct {
	tick   time.Duration
	now    atomic.Int64
	active atomic.Bool
	used   atomic.Bool
	mu     sync.Mutex
}

// read returns the coarse time, at most one tick (and the timer's delay)
// behind the real one.
func (cc *coarseClock) read() int64 {
	if cc.active.Load() {
		if !cc.used.Load() {
			cc.used.Store(true)
		}
		return cc.now.Load()
	}
	now := mono()
	cc.mu.Lock()
	if !cc.active.Load() {
		cc.now.Store(now)
		cc.used.Store(true)
		cc.active.Store(true)
		time.AfterFunc(cc.tick, cc.advance)
	}
	cc.mu.Unlock()
	return now
}

// advance is the timer's function.
func (cc *coarseClock) advance() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.used.Swap(false) {
		cc.active.Store(false)
		return
	}
	cc.now.Store(mono())
	time.AfterFunc(cc.tick, cc.advance)
}

// immutable reports whether no value of type t can be changed through a
// copy of it: it holds no pointer, slice, map, channel, function or
// interface (time.Time, whose only pointer is to an immutable Location,
// counts as immutable).
func immutable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return immutable(t.Elem())
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return true
		}
		for i := range t.NumField() {
			if !immutable(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// stripe returns the sequence number of key.
func (nc *nearCache[V]) stripe(key string) *atomic.Uint64 {
	return &nc.seqs[maphash.String(nc.seed, key)%nearStripes]
}

// get returns key's cached value in view vw, if there is one that is
// neither too old (MaxStale) nor expired.
func (nc *nearCache[V]) get(d *Dict[V], vw *view, key string) (V, bool) {
	return nc.lookup(d, vw, key, false)
}

// lookup is get; with fresh, it also misses a stale entry (past its fresh
// time, or marked stale), for GetOrLoad.
func (nc *nearCache[V]) lookup(d *Dict[V], vw *view, key string, fresh bool) (V, bool) {
	var zero V
	e, ok := nc.c.GetIfPresent(key)
	if !ok || e.s != vw.s || e.gen != vw.gen || (fresh && e.stale) {
		return zero, false
	}
	if nc.maxStale > 0 || e.exp != 0 || (fresh && e.fresh != 0) {
		now := nc.hitNow()
		if (nc.maxStale > 0 && now-e.at > nc.maxStale) || (e.exp != 0 && now >= e.exp) || (fresh && e.fresh != 0 && now >= e.fresh) {
			return zero, false
		}
	}
	if nc.mode == shareValue {
		return e.v, true
	}
	v, ok, err := d.decode(vw, key, false, backend.Item{Value: e.raw})
	if err != nil || !ok {
		return zero, false
	}
	return v, true
}

// fillToken is what a read that missed notes before it goes to the
// backend.
type fillToken struct {
	seq uint64
	ok  bool // the value may be kept
	at  int64
}

// begin is called before a read of key goes to the backend.
func (nc *nearCache[V]) begin(vw *view, key string) fillToken {
	g := nc.bind(vw)
	t := fillToken{seq: nc.stripe(key).Load()}
	t.ok = nc.maxStale > 0 || (g != nil && g.live())
	if t.ok && nc.maxStale > 0 {
		t.at = nc.now()
	}
	return t
}

// fill keeps the value v (stored as raw) that a read of key begun with t
// found, unless key was invalidated since; stale says the backend
// reported the item marked stale (backend.Item.Stale), as its envelope
// may also say.
func (nc *nearCache[V]) fill(vw *view, key string, t fillToken, v V, raw []byte, stale bool) {
	if !t.ok {
		return
	}
	e := &nearEntry[V]{s: vw.s, gen: vw.gen, at: t.at, n: len(raw), stale: stale}
	h, payload, err := envelope.Parse(raw)
	if err == nil && h.Compressed && nc.mode == shareValue {
		// The entry holds the decoded value, not raw: weigh what the
		// payload decompressed to (MaxBytes bounds the memory held).
		if size, ok := compress.Size(payload); ok {
			e.n = max(e.n, size)
		}
	}
	if err == nil && h.Meta != (envelope.Meta{}) {
		e.stale = e.stale || h.Stale
		if h.HasTime() {
			// Deadlines on the clock of hits, which may lag by slack,
			// measured from the wall clock to the nanosecond (its whole
			// milliseconds would keep an entry up to one past its time).
			now, wall := nc.now(), nc.wall()
			if h.Expiry != 0 {
				e.exp = nc.deadline(now, wall, h.Expiry)
			}
			if h.FreshUntil != 0 {
				e.fresh = nc.deadline(now, wall, h.FreshUntil)
			}
		}
	}
	if nc.mode == shareValue {
		e.v = v
	} else {
		e.raw = raw
	}
	st := nc.stripe(key)
	if st.Load() != t.seq {
		return
	}
	nc.m.bytes.Add(nearWeight(key, e.n)) // before the replaced entry's deletion takes its own off
	nc.c.Set(key, e)
	if st.Load() != t.seq {
		// An invalidation came in between: it may have missed the entry.
		nc.c.Invalidate(key)
	}
}

// deadline returns the time on the clock of hits (now is that of fills,
// whose wall clock reads wall) of the envelope time ms, Unix milliseconds,
// counted slack early: at least 1, and at most the largest int64 (a time
// beyond the clock's range).
func (nc *nearCache[V]) deadline(now int64, wall time.Time, ms int64) int64 {
	left := int64(time.UnixMilli(ms).Sub(wall)) // Sub saturates
	switch {
	case left > 0 && now > math.MaxInt64-left:
		return math.MaxInt64
	case left < 0 && now < math.MinInt64-left+nc.slack:
		return 1
	}
	return max(now+left-nc.slack, 1)
}

// invalidate drops key.
func (nc *nearCache[V]) invalidate(key string) {
	nc.stripe(key).Add(1)
	if _, ok := nc.c.Invalidate(key); ok {
		nc.m.invalidations.Add(1)
	}
}

// reset drops every entry.
func (nc *nearCache[V]) reset() {
	for i := range nc.seqs {
		nc.seqs[i].Add(1)
	}
	nc.c.InvalidateAll()
	nc.m.resets.Add(1)
}

// bind makes the near cache a member of the group of vw's tracking prefix
// and returns that group.
func (nc *nearCache[V]) bind(vw *view) *nearGroup {
	return nc.bindPrefix(trackPrefix(vw.ns))
}

// bindPrefix is bind for a tracking prefix.
func (nc *nearCache[V]) bindPrefix(prefix string) *nearGroup {
	if g := nc.group.Load(); g != nil && g.prefix == prefix {
		return g
	}
	nc.bindMu.Lock()
	defer nc.bindMu.Unlock()
	if g := nc.group.Load(); g != nil && g.prefix == prefix {
		return g
	}
	if old := nc.group.Load(); old != nil {
		old.leave(nc)
		nc.reset()
	}
	g := joinGroup(nc.be, prefix, nc)
	nc.group.Store(g)
	return g
}

// unbind leaves the near cache's group; it runs when the Dict is
// collected.
func (nc *nearCache[V]) unbind() {
	nc.bindMu.Lock()
	defer nc.bindMu.Unlock()
	if g := nc.group.Swap(nil); g != nil {
		g.leave(nc)
	}
}

// trackPrefix returns the part of namespace ns that does not change with
// the generation: "<site>:<prefix>:" of "<site>:<prefix>:<gen>:". A hashed
// namespace ("#<hash>:") hides the generation in its hash, so it is its own
// tracking prefix.
func trackPrefix(ns string) string {
	if strings.HasPrefix(ns, "#") || len(ns) < 2 {
		return ns
	}
	i := strings.LastIndexByte(ns[:len(ns)-1], ':')
	return ns[:i+1]
}

// dictKey returns the Dict key of backend key bkey under tracking prefix
// prefix, or false if bkey is no data key there (a hashed key, whose
// original the near cache never holds, or another namespace's key).
func dictKey(prefix, bkey string) (string, bool) {
	rest, ok := strings.CutPrefix(bkey, prefix)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(prefix, "#") {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return "", false
		}
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "#") {
		return "", false
	}
	key, err := keyspace.Unescape(rest)
	return key, err == nil
}

// nearMember is a near cache of any value type, as a group sees it.
type nearMember interface {
	invalidate(key string)
	reset()
	// generationKeyChanged is told of a change of a namespace
	// generation key (see Clear).
	generationKeyChanged(key string)
}

// nearGroup holds this process's near caches on one backend and tracking
// prefix, and the backend's tracking of the prefix.
type nearGroup struct {
	key     groupKey
	prefix  string
	members atomic.Pointer[[]nearMember] // copy on write, under groups.mu
	tr      backend.Tracking             // nil if the backend does not track
	trErr   error                        // why tr is nil
	genTr   backend.Tracking             // of the generation keys
}

type groupKey struct {
	be     backend.Backend
	prefix string
}

// groups holds every nearGroup, by backend and prefix.
var groups struct {
	mu sync.Mutex
	m  map[groupKey]*nearGroup
}

// joinGroup adds m to the group of (be, prefix), making the group (and
// starting the backend's tracking) if it is the first member.
func joinGroup(be backend.Backend, prefix string, m nearMember) *nearGroup {
	groups.mu.Lock()
	defer groups.mu.Unlock()
	k := groupKey{prefix: prefix}
	if reflect.TypeOf(be).Comparable() {
		k.be = be
	}
	g := groups.m[k]
	if g == nil || k.be == nil {
		g = &nearGroup{key: k, prefix: prefix}
		g.members.Store(&[]nearMember{})
		g.tr, g.trErr = backend.Track(context.Background(), be, prefix, g.onInvalidation)
		if g.tr != nil {
			// A Clear elsewhere writes the generation key: track it
			// too, so that it is seen at once rather than at the
			// next GenerationRefresh.
			g.genTr, _ = backend.Track(context.Background(), be, genKeyPrefix, g.onGenInvalidation)
		}
		if k.be != nil {
			if groups.m == nil {
				groups.m = make(map[groupKey]*nearGroup)
			}
			groups.m[k] = g
		}
	}
	ms := append(append([]nearMember(nil), *g.members.Load()...), m)
	g.members.Store(&ms)
	return g
}

// leave removes m from g, and g, with its tracking, when it is empty.
func (g *nearGroup) leave(m nearMember) {
	groups.mu.Lock()
	defer groups.mu.Unlock()
	old := *g.members.Load()
	ms := make([]nearMember, 0, len(old))
	for _, x := range old {
		if x != m {
			ms = append(ms, x)
		}
	}
	g.members.Store(&ms)
	if len(ms) == 0 {
		if g.key.be != nil && groups.m[g.key] == g {
			delete(groups.m, g.key)
		}
		if g.tr != nil {
			g.tr.Stop()
		}
		if g.genTr != nil {
			g.genTr.Stop()
		}
	}
}

// genKeyPrefix starts every generation key (keyspace.MetaKey with name
// "gen") that is not hashed.
const genKeyPrefix = "#!gen:"

// onGenInvalidation applies a report of changed generation keys.
func (g *nearGroup) onGenInvalidation(inv backend.Invalidation) {
	for _, m := range *g.members.Load() {
		if inv.All {
			m.generationKeyChanged("")
			continue
		}
		for _, k := range inv.Keys {
			m.generationKeyChanged(k)
		}
	}
}

// live reports whether the backend reports the changes of the group's
// keys now.
func (g *nearGroup) live() bool { return g.tr != nil && g.tr.Live() }

// invalidate drops key from every member.
func (g *nearGroup) invalidate(key string) {
	for _, m := range *g.members.Load() {
		m.invalidate(key)
	}
}

// onInvalidation applies a report of the backend.
func (g *nearGroup) onInvalidation(inv backend.Invalidation) {
	if inv.All {
		for _, m := range *g.members.Load() {
			m.reset()
		}
		return
	}
	for _, bk := range inv.Keys {
		if k, ok := dictKey(g.prefix, bk); ok {
			g.invalidate(k)
		}
	}
}

// nearInvalidate drops key from the near caches of the Dict's group, after
// a write of key (successful or not: its outcome may be unknown).
func (d *Dict[V]) nearInvalidate(key string) {
	if d.near == nil {
		return
	}
	if vw := d.view.Load(); vw != nil {
		if !vw.python { // a Python format is served without the near cache
			d.near.bind(vw).invalidate(key)
		}
		return
	}
	d.near.invalidate(key)
}

// nearReset empties the Dict's own near cache (after its Clear).
func (d *Dict[V]) nearReset() {
	if d.near != nil {
		d.near.c.InvalidateAll()
	}
}

// nearStats returns the near-cache counters.
func (d *Dict[V]) nearStats() NearCacheStats {
	if d.near == nil {
		return NearCacheStats{}
	}
	m := d.near.m
	return NearCacheStats{
		Enabled: true, Hits: d.m.nearHits(), Misses: m.misses.Load(), Evictions: m.evictions.Load(),
		Invalidations: m.invalidations.Load(), Resets: m.resets.Load(), Entries: d.near.c.EstimatedSize(),
		Bytes: max(m.bytes.Load(), 0),
	}
}

// setupNear gives d the near cache cfg describes.
//
// source names where cfg comes from, for errors: "WithNearCache", or the
// settings.
func (d *Dict[V]) setupNear(cfg *NearCache, source string) error {
	if cfg == nil {
		return nil
	}
	c := *cfg
	if c.Now == nil && d.lease.clock != nil {
		c.Now = d.lease.clock // WithClock: one clock for the Dict's times
	}
	nc, err := newNearCache[V](d.be, c, d.kind, &d.m.near)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	nc.wall = d.lease.now
	if cfg.MaxStale == 0 {
		// Join the group now, so that tracking starts before the first
		// read and a backend that refuses it is an error here. The
		// prefix does not depend on the generation unless the namespace
		// is hashed: such a Dict joins generation 0's group, which tells
		// whether the backend can track, and moves to its generation's at
		// its first read. (Skipping the check for a hashed namespace let a
		// Tool's plugin, which is a wrapper whatever its backend, give a
		// near cache that kept nothing over memcached.)
		st := d.settings.load()
		ns := keyspace.Namespace(st.SiteID, d.prefix, 0, st.MaxKeyLen)
		if g := nc.bindPrefix(trackPrefix(ns)); g.tr == nil || !g.tr.Supported() {
			nc.unbind()
			return fmt.Errorf("%s: %w", source, errCannotTrack(g.trErr))
		}
	}
	// The group holds nc, so nc must not hold d: the Dict would never be
	// collected.
	wd := weak.Make(d)
	nc.onGen = func(key string) {
		d := wd.Value()
		if d == nil {
			return
		}
		if key != "" && key != d.metaKey(d.settings.load()) {
			return
		}
		d.genReports.Add(1) // before the mark: see installRead
		if v := d.view.Load(); v != nil {
			v.stale.Store(true)
		}
	}
	d.near = nc
	runtime.AddCleanup(d, func(nc *nearCache[V]) { nc.unbind() }, nc)
	return nil
}

// errCannotTrack is the error of a near cache with MaxStale 0 over a
// backend that cannot report changes; cause, if not nil, says why.
func errCannotTrack(cause error) error {
	const msg = "MaxStale is 0, which needs a backend that reports the changes other clients make (Redis), but this one cannot: set MaxStale, the staleness the Dict may serve"
	if cause != nil {
		return fmt.Errorf(msg+" (%w)", cause)
	}
	return fmt.Errorf(msg+": %w", backend.ErrNotSupported)
}

// lookupNear is lookup for a near-cached Dict.
func (d *Dict[V]) lookupNear(b *bound, vw *view, key string) (V, bool, error) {
	ctx := b.parent
	nc := d.near
	if v, ok := nc.get(d, vw, key); ok {
		d.m.nearHit(1)
		d.noteNear(ctx, 1, 0)
		return v, true, nil
	}
	d.m.near.misses.Add(1)
	d.noteNear(ctx, 0, 1)
	var zero V
	bkey, hashed := vw.key(key)
	t := nc.begin(vw, key)
	it, err := d.be.Get(b.next(), bkey)
	if err != nil {
		if err == backend.ErrNotFound || errors.Is(err, backend.ErrNotFound) {
			d.m.miss(opGet)
			return zero, false, nil
		}
		return zero, false, d.m.fail(ctx, opGet, key, b.check(err))
	}
	v, ok, err := d.decode(vw, key, hashed, it)
	switch {
	case err != nil:
		return zero, false, d.m.fail(ctx, opGet, key, err)
	case !ok:
		d.m.miss(opGet)
		return zero, false, nil
	}
	if !hashed {
		// Shared values are immutable (or declared so); otherwise the
		// cache keeps the bytes and v is the caller's own.
		nc.fill(vw, key, t, v, it.Value, it.Stale)
	}
	return v, true, nil
}

// nearGetMulti answers what it can of a GetMulti from the near cache: it
// returns the hits, the keys left for the backend and their fill tokens.
// Hits count as get calls that hit.
func (d *Dict[V]) nearGetMulti(vw *view, keys []string) (map[string]V, []string, map[string]fillToken) {
	nc := d.near
	var hits map[string]V
	rest := make([]string, 0, len(keys))
	tokens := make(map[string]fillToken, len(keys))
	for _, k := range keys {
		if _, seen := tokens[k]; seen {
			continue
		}
		if _, seen := hits[k]; seen {
			continue
		}
		if v, ok := nc.get(d, vw, k); ok {
			if hits == nil {
				hits = make(map[string]V)
			}
			hits[k] = v
			continue
		}
		tokens[k] = nc.begin(vw, k)
		rest = append(rest, k)
	}
	// The hits are get calls, timed (if one of them is to be) at once.
	d.m.end(opGet, d.m.startN(opGet, len(hits)))
	d.m.nearHit(uint64(len(hits)))
	d.m.near.misses.Add(uint64(len(rest)))
	return hits, rest, tokens
}
