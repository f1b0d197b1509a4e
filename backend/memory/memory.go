// Package memory is an in-process memdict backend with memcached's
// semantics: TTL expiry, CAS tokens, Add, Increment, memcached's key rules
// and item size limit, and an optional LRU bound on memory.
//
// It serves two purposes: it is the backend a program uses when it has no
// cache server (memdict's embedded default), and it is a trustworthy fake
// for unit tests, whose clock a test controls with a FakeClock:
//
//	clock := memory.NewFakeClock(time.Now())
//	store := memory.New(memory.WithClock(clock))
//	... store an item with a TTL of one minute ...
//	clock.Advance(time.Minute) // the item is now gone
//
// The package registers the URL scheme "mem" with backend.Register, so that
// after
//
//	import _ "github.com/memdict/memdict/backend/memory"
//
// backend.Open(ctx, "mem://") opens a new, empty Store. The URL takes the
// query parameters max_bytes, max_item_size and max_key_len, with the
// meanings of WithMaxBytes, WithMaxItemSize and WithMaxKeyLen; any other
// parameter is an error.
//
// # Semantics
//
// A Store follows the backend.Backend contract as memcached 1.6 does:
//
//   - An item stored with TTL d at time t is gone from time t+d on (by the
//     Store's Clock); TTL 0 never expires; a negative TTL is ErrInvalidTTL.
//     TTLs are kept to the nanosecond, not rounded to seconds as memcached
//     does.
//   - Every Set, Add, CompareAndSwap and Increment gives the item a new CAS
//     token, unique across the Store. Touch does not: like memcached 1.6's
//     touch and gat commands it changes only the expiry, so a CAS token read
//     before a Touch still matches after it.
//   - Increment works on values that are 1 to 20 ASCII decimal digits and
//     fit in a uint64; anything else, including an empty value, is
//     ErrNotNumeric. This is stricter than memcached, which also accepts
//     surrounding whitespace and a leading '+', so that code tested against
//     a Store does not come to rely on either. The result is stored as
//     decimal text, without the trailing spaces memcached 1.6 leaves when a
//     decrement shortens a number in place ("10" decremented reads "9 ").
//   - Keys must be non-empty, at most WithMaxKeyLen bytes (250 by default)
//     and free of bytes 0x00-0x20 and 0x7f, as memcached requires; other keys
//     give ErrInvalidKey.
//   - Values may be at most WithMaxItemSize bytes (1 MiB by default); a
//     larger one gives ErrValueTooLarge and leaves the previous value alone.
//
// # Memory
//
// A Store accounts each item as len(key)+len(value)+ItemOverhead bytes. With
// WithMaxBytes, a write that takes the total over the bound evicts least
// recently used items (reads, writes and touches count as use) until it fits
// again. The order is exact but for one shortcut: as memcached does not bump
// an item read again within a minute, a Store does not move an item that is
// read while still among the most recently used eighth of its items.
//
// Expired items are removed when they are next looked up; in addition each
// write removes up to two expired items from the cold end of its shard (the
// least recently used items, or least recently written when the Store is
// unbounded), so that a Store whose keys are never read again still sheds
// them over time.
//
// Values are not copied: a write keeps the caller's slice (which the caller
// gives up, per the backend.Item contract) and a read returns the stored
// slice, which must not be modified. A hit on Get allocates nothing.
package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/decimal"
)

const (
	// ItemOverhead is the number of bytes a Store accounts for each item on
	// top of the lengths of its key and value, standing for the bookkeeping
	// an item costs.
	ItemOverhead = 48
	// DefaultMaxItemSize is the largest value a Store accepts by default:
	// 1 MiB, like memcached's default -I.
	DefaultMaxItemSize = 1 << 20
	// DefaultMaxKeyLen is the longest key a Store accepts by default: 250
	// bytes, like memcached.
	DefaultMaxKeyLen = 250
)

const (
	numShards = 32 // a power of two
	// never is the expiry of an item without TTL.
	never = math.MaxInt64
	// sweepPerWrite is how many expired items each write may reclaim from
	// the cold end of its shard.
	sweepPerWrite = 2
)

// An Option configures a Store made by New.
type Option func(*config)

type config struct {
	clock       Clock
	maxBytes    int64
	maxItemSize int
	maxKeyLen   int
}

// WithClock makes the Store read the time from clock instead of the system
// clock. A nil clock, or a nil *FakeClock, means the system clock.
func WithClock(clock Clock) Option {
	if fc, ok := clock.(*FakeClock); ok && fc == nil {
		clock = nil
	}
	return func(c *config) { c.clock = clock }
}

// WithMaxBytes bounds the memory the Store accounts for its items (see
// ItemOverhead) to n bytes, evicting least recently used items to stay
// within it. An item larger than n on its own is rejected with
// ErrValueTooLarge. Zero or a negative n (the default) means no bound.
func WithMaxBytes(n int64) Option {
	return func(c *config) { c.maxBytes = max(n, 0) }
}

// WithMaxItemSize sets the largest value, in bytes, that the Store accepts;
// larger ones give backend.ErrValueTooLarge. Zero means DefaultMaxItemSize
// (1 MiB); a negative n means no limit other than WithMaxBytes.
func WithMaxItemSize(n int) Option {
	return func(c *config) { c.maxItemSize = n }
}

// WithMaxKeyLen sets the longest key, in bytes, that the Store accepts;
// longer ones give backend.ErrInvalidKey. Zero means DefaultMaxKeyLen (250,
// memcached's limit); a negative n means no limit.
func WithMaxKeyLen(n int) Option {
	return func(c *config) { c.maxKeyLen = n }
}

// entry is one item, and a node of its shard's LRU list.
type entry struct {
	key   string
	value []byte
	// expires is the time the item expires, as nanoseconds since the
	// Store's epoch; never if it does not.
	expires int64
	cas     uint64
	// stamp orders entries by recency across shards; kept only when the
	// Store is bounded.
	stamp      uint64
	prev, next *entry
}

func (e *entry) size() int64 { return int64(len(e.key)+len(e.value)) + ItemOverhead }

// shardStats are counters kept under the shard's lock.
type shardStats struct {
	getHits, getMisses, getExpired uint64
	cmdSet, cmdTouch, totalItems   uint64
	touchHits, touchMisses         uint64
	deleteHits, deleteMisses       uint64
	incrHits, incrMisses           uint64
	decrHits, decrMisses           uint64
	casHits, casMisses, casBadval  uint64
	evictions, reclaimed           uint64
}

type shard struct {
	mu sync.Mutex
	// items is nil once the Store is closed.
	items map[string]*entry
	// root anchors the LRU list: root.next is the most recently used
	// entry, root.prev the least.
	root entry
	// tailStamp is the stamp of root.prev (math.MaxUint64 if the shard is
	// empty), readable without the lock; kept only when the Store is
	// bounded.
	tailStamp atomic.Uint64
	stats     shardStats
	_         [64]byte // keep shards on separate cache lines
}

// Store is an in-memory backend.Backend. It also implements backend.Lister,
// backend.StatsReporter, backend.Flusher and backend.Pinger.
//
// A Store is safe for concurrent use by multiple goroutines. Create one with
// New; the zero value is not usable.
type Store struct {
	// Set by New, then only read.
	seed        maphash.Seed
	clock       Clock
	systemClock bool // clock is systemClock
	epoch       time.Time
	maxBytes    int64
	maxItemSize int // < 0: no limit
	maxKeyLen   int // < 0: no limit
	closed      atomic.Bool
	_           [64]byte

	shards [numShards]shard

	used   atomic.Int64  // accounted bytes
	_      [56]byte      //
	count  atomic.Int64  // items held, including expired ones not yet removed
	_      [56]byte      //
	casSeq atomic.Uint64 // last CAS token given
	_      [56]byte      //
	tick   atomic.Uint64 // last recency stamp given
}

// Compile-time checks that Store has the interfaces it promises.
var (
	_ backend.Backend       = (*Store)(nil)
	_ backend.Lister        = (*Store)(nil)
	_ backend.StatsReporter = (*Store)(nil)
	_ backend.Flusher       = (*Store)(nil)
	_ backend.Pinger        = (*Store)(nil)
)

// New returns an empty Store configured by opts.
func New(opts ...Option) *Store {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.clock == nil {
		c.clock = systemClock{}
	}
	if c.maxItemSize == 0 {
		c.maxItemSize = DefaultMaxItemSize
	}
	if c.maxKeyLen == 0 {
		c.maxKeyLen = DefaultMaxKeyLen
	}
	s := &Store{
		seed:        maphash.MakeSeed(),
		clock:       c.clock,
		maxBytes:    c.maxBytes,
		maxItemSize: c.maxItemSize,
		maxKeyLen:   c.maxKeyLen,
	}
	_, s.systemClock = s.clock.(systemClock)
	s.epoch = s.clock.Now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.items = make(map[string]*entry)
		sh.root.next, sh.root.prev = &sh.root, &sh.root
		sh.tailStamp.Store(math.MaxUint64)
	}
	return s
}

// now returns the Store's clock as nanoseconds since its epoch. On the
// system clock it reads only the monotonic clock (time.Since's fast path).
func (s *Store) now() int64 {
	if s.systemClock {
		return int64(time.Since(s.epoch))
	}
	return int64(s.clock.Now().Sub(s.epoch))
}

// expiry returns the expiry of an item written at now with TTL ttl >= 0.
func expiry(now int64, ttl time.Duration) int64 {
	if ttl == 0 {
		return never
	}
	if now > 0 && int64(ttl) > never-1-now {
		return never - 1 // saturate: far future, but still a TTL
	}
	return now + int64(ttl)
}

func (s *Store) shardFor(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&(numShards-1)]
}

// Shard list and map operations; the caller holds sh.mu.

func (sh *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (sh *shard) pushFront(e *entry) {
	e.prev = &sh.root
	e.next = sh.root.next
	sh.root.next.prev = e
	sh.root.next = e
}

// read marks e as recently read: it moves e to the front of the LRU list
// when the Store is bounded. An unbounded Store keeps its lists in write
// order, which is all sweeping needs, so that reads write nothing to the
// entry.
//
// An entry still among the most recent eighth of the Store's items is not
// moved again (much as memcached bumps an item at most once a minute): the
// order is then approximate among recent items, but reads under parallel
// load do not all write the Store's shared recency counter.
func (s *Store) read(sh *shard, e *entry) {
	if s.maxBytes > 0 {
		if s.tick.Load()-e.stamp < uint64(max(s.count.Load(), 0)/8) {
			return
		}
		s.use(sh, e)
	}
}

// use moves e to the front of its shard's LRU list.
func (s *Store) use(sh *shard, e *entry) {
	if sh.root.next != e {
		sh.unlink(e)
		sh.pushFront(e)
	}
	if s.maxBytes > 0 {
		e.stamp = s.tick.Add(1)
		s.fixTail(sh)
	}
}

func (s *Store) fixTail(sh *shard) {
	if t := sh.root.prev; t != &sh.root {
		sh.tailStamp.Store(t.stamp)
	} else {
		sh.tailStamp.Store(math.MaxUint64)
	}
}

// remove drops e from the shard and the Store's accounting.
func (s *Store) remove(sh *shard, e *entry) {
	delete(sh.items, e.key)
	sh.unlink(e)
	e.prev, e.next = nil, nil
	s.used.Add(-e.size())
	s.count.Add(-1)
	if s.maxBytes > 0 {
		s.fixTail(sh)
	}
}

// live returns the unexpired entry under key, or nil if there is none. An
// expired entry is removed, and expired reports that there was one.
func (s *Store) live(sh *shard, key string) (e *entry, expired bool) {
	e = sh.items[key]
	if e != nil && e.expires != never && s.now() >= e.expires {
		s.remove(sh, e)
		sh.stats.reclaimed++
		return nil, true
	}
	return e, false
}

// sweep removes up to sweepPerWrite expired entries from the cold end of
// the shard, sparing keep.
func (s *Store) sweep(sh *shard, now int64, keep *entry) {
	e := sh.root.prev
	for i := 0; i < sweepPerWrite && e != &sh.root; i++ {
		prev := e.prev
		if e != keep && e.expires != never && now >= e.expires {
			s.remove(sh, e)
			sh.stats.reclaimed++
		}
		e = prev
	}
}

// Errors.

func opErr(op string, err error) error {
	return fmt.Errorf("memory: %s: %w", op, err)
}

// keyErr wraps err, a backend sentinel, with op and key. (A Get miss
// returns backend.ErrNotFound bare: it is frequent and must not allocate.)
func keyErr(op, key string, err error) error {
	return fmt.Errorf("memory: %s %s: %w", op, quoteKey(key), err)
}

// quoteKey quotes key for an error message, shortening a long one.
func quoteKey(key string) string {
	const maxShown = 64
	if len(key) <= maxShown {
		return strconv.Quote(key)
	}
	return strconv.Quote(key[:maxShown]) + "... (" + strconv.Itoa(len(key)) + " bytes)"
}

// checkKey returns a wrapped backend.ErrInvalidKey if key is not one
// memcached accepts, or nil.
func (s *Store) checkKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("memory: %s: %w: empty key", op, backend.ErrInvalidKey)
	}
	if s.maxKeyLen >= 0 && len(key) > s.maxKeyLen {
		return fmt.Errorf("memory: %s: %w: key %s is longer than %d bytes", op, backend.ErrInvalidKey, quoteKey(key), s.maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("memory: %s: %w: key %s has byte %#02x at offset %d (spaces and control bytes are not allowed)",
				op, backend.ErrInvalidKey, quoteKey(key), c, i)
		}
	}
	return nil
}

// enter checks what every method checks first: that the Store is open and
// ctx is not done.
func (s *Store) enter(ctx context.Context, op string) error {
	if s.closed.Load() {
		return opErr(op, backend.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return opErr(op, err)
	}
	return nil
}

// Get returns the item stored under key, with its value and CAS token. The
// value shares memory with the Store and must not be modified. A missing or
// expired key gives backend.ErrNotFound, an invalid one
// backend.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := s.enter(ctx, "get"); err != nil {
		return backend.Item{}, err
	}
	sh := s.shardFor(key)
	sh.mu.Lock()
	if sh.items == nil {
		sh.mu.Unlock()
		return backend.Item{}, opErr("get", backend.ErrClosed)
	}
	e, expired := s.live(sh, key)
	if e == nil {
		sh.stats.getMisses++
		if expired {
			sh.stats.getExpired++
		}
		sh.mu.Unlock()
		// Only stored keys were validated; a miss may be a bad key.
		if err := s.checkKey("get", key); err != nil {
			return backend.Item{}, err
		}
		return backend.Item{}, backend.ErrNotFound
	}
	sh.stats.getHits++
	s.read(sh, e)
	it := backend.Item{Key: e.key, Value: e.value, CAS: e.cas}
	sh.mu.Unlock()
	return it, nil
}

// GetMulti returns the live items among keys, keyed by key; missing keys
// are absent from the map. An invalid key fails the whole call with
// backend.ErrInvalidKey (and a nil map), as memcached's multi-get does.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := s.enter(ctx, "get multi"); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := s.checkKey("get multi", k); err != nil {
			return nil, err
		}
	}
	m := make(map[string]backend.Item, len(keys))
	for _, k := range keys {
		sh := s.shardFor(k)
		sh.mu.Lock()
		if sh.items == nil {
			sh.mu.Unlock()
			return m, opErr("get multi", backend.ErrClosed)
		}
		if e, _ := s.live(sh, k); e != nil {
			sh.stats.getHits++
			s.read(sh, e)
			m[k] = backend.Item{Key: e.key, Value: e.value, CAS: e.cas}
		} else {
			sh.stats.getMisses++
		}
		sh.mu.Unlock()
	}
	return m, nil
}

type writeMode int

const (
	modeSet writeMode = iota
	modeAdd
	modeCAS
)

var modeOps = [...]string{modeSet: "set", modeAdd: "add", modeCAS: "compare and swap"}

// Set stores item unconditionally, taking ownership of item.Value. It
// returns backend.ErrInvalidKey, backend.ErrInvalidTTL or
// backend.ErrValueTooLarge (leaving any previous value in place) for an item
// it cannot store.
func (s *Store) Set(ctx context.Context, item backend.Item) error {
	return s.write(ctx, item, modeSet)
}

// Add stores item only if its key holds no live value; otherwise it returns
// backend.ErrNotStored and changes nothing. Errors are otherwise as for Set.
func (s *Store) Add(ctx context.Context, item backend.Item) error {
	return s.write(ctx, item, modeAdd)
}

// CompareAndSwap stores item only if its key still holds the version whose
// CAS token is item.CAS. It returns backend.ErrNotFound if the key holds no
// live value and backend.ErrCASConflict if it was written since the token
// was read (a Touch does not count). Errors are otherwise as for Set.
func (s *Store) CompareAndSwap(ctx context.Context, item backend.Item) error {
	return s.write(ctx, item, modeCAS)
}

func (s *Store) write(ctx context.Context, item backend.Item, mode writeMode) error {
	op := modeOps[mode]
	if err := s.enter(ctx, op); err != nil {
		return err
	}
	key := item.Key
	if err := s.checkKey(op, key); err != nil {
		return err
	}
	if item.TTL < 0 {
		return fmt.Errorf("memory: %s %s: %w: %v", op, quoteKey(key), backend.ErrInvalidTTL, item.TTL)
	}
	if s.maxItemSize >= 0 && len(item.Value) > s.maxItemSize {
		return fmt.Errorf("memory: %s %s: %w: %d bytes, limit %d", op, quoteKey(key), backend.ErrValueTooLarge, len(item.Value), s.maxItemSize)
	}
	size := int64(len(key)+len(item.Value)) + ItemOverhead
	if s.maxBytes > 0 && size > s.maxBytes {
		return fmt.Errorf("memory: %s %s: %w: item takes %d bytes, more than the store's bound of %d", op, quoteKey(key), backend.ErrValueTooLarge, size, s.maxBytes)
	}
	now := s.now()
	sh := s.shardFor(key)
	sh.mu.Lock()
	if sh.items == nil {
		sh.mu.Unlock()
		return opErr(op, backend.ErrClosed)
	}
	e := sh.items[key]
	if e != nil && e.expires != never && now >= e.expires {
		s.remove(sh, e)
		sh.stats.reclaimed++
		e = nil
	}
	switch mode {
	case modeAdd:
		if e != nil {
			s.read(sh, e) // memcached bumps the item on a failed add
			sh.mu.Unlock()
			return keyErr(op, key, backend.ErrNotStored)
		}
	case modeCAS:
		if e == nil {
			sh.stats.casMisses++
			sh.mu.Unlock()
			return keyErr(op, key, backend.ErrNotFound)
		}
		if e.cas != item.CAS {
			sh.stats.casBadval++
			sh.mu.Unlock()
			return keyErr(op, key, backend.ErrCASConflict)
		}
		sh.stats.casHits++
	}
	var delta int64
	if e == nil {
		e = &entry{key: key}
		sh.items[key] = e
		sh.pushFront(e)
		s.count.Add(1)
		delta = size
	} else {
		delta = int64(len(item.Value) - len(e.value))
	}
	e.value = item.Value
	e.expires = expiry(now, item.TTL)
	e.cas = s.casSeq.Add(1)
	if delta != 0 {
		s.used.Add(delta)
	}
	s.use(sh, e)
	sh.stats.cmdSet++
	sh.stats.totalItems++
	s.sweep(sh, now, e)
	sh.mu.Unlock()
	s.fit()
	return nil
}

// fit evicts least recently used items until the Store is within its bound.
// The caller holds no shard lock.
func (s *Store) fit() {
	if s.maxBytes <= 0 {
		return
	}
	for s.used.Load() > s.maxBytes {
		var victim *shard
		oldest := uint64(math.MaxUint64)
		for i := range s.shards {
			if t := s.shards[i].tailStamp.Load(); t < oldest {
				oldest, victim = t, &s.shards[i]
			}
		}
		if victim == nil {
			return
		}
		victim.mu.Lock()
		if victim.items == nil {
			victim.mu.Unlock()
			return
		}
		if e := victim.root.prev; e != &victim.root && s.used.Load() > s.maxBytes {
			if e.expires != never && s.now() >= e.expires {
				victim.stats.reclaimed++
			} else {
				victim.stats.evictions++
			}
			s.remove(victim, e)
		}
		victim.mu.Unlock()
	}
}

// Delete removes key. It returns backend.ErrNotFound if the key held no
// live value.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.enter(ctx, "delete"); err != nil {
		return err
	}
	if err := s.checkKey("delete", key); err != nil {
		return err
	}
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.items == nil {
		return opErr("delete", backend.ErrClosed)
	}
	e, _ := s.live(sh, key)
	if e == nil {
		sh.stats.deleteMisses++
		return keyErr("delete", key, backend.ErrNotFound)
	}
	sh.stats.deleteHits++
	s.remove(sh, e)
	return nil
}

// Touch gives key a new TTL (0: never expires) without changing its value
// or its CAS token, and marks it as recently used. It returns
// backend.ErrNotFound if the key holds no live value and
// backend.ErrInvalidTTL if ttl is negative.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.enter(ctx, "touch"); err != nil {
		return err
	}
	if err := s.checkKey("touch", key); err != nil {
		return err
	}
	if ttl < 0 {
		return fmt.Errorf("memory: touch %s: %w: %v", quoteKey(key), backend.ErrInvalidTTL, ttl)
	}
	now := s.now()
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.items == nil {
		return opErr("touch", backend.ErrClosed)
	}
	sh.stats.cmdTouch++
	e, _ := s.live(sh, key)
	if e == nil {
		sh.stats.touchMisses++
		return keyErr("touch", key, backend.ErrNotFound)
	}
	sh.stats.touchHits++
	e.expires = expiry(now, ttl)
	s.use(sh, e)
	return nil
}

// Increment adds delta to the decimal number stored under key and returns
// the result; a negative delta decrements, stopping at 0, and an increment
// wraps around at 2^64. The item keeps its TTL and gets a new CAS token. It
// returns backend.ErrNotFound if the key holds no live value and
// backend.ErrNotNumeric if the value is not 1 to 20 decimal digits fitting
// in a uint64.
func (s *Store) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	if err := s.enter(ctx, "increment"); err != nil {
		return 0, err
	}
	if err := s.checkKey("increment", key); err != nil {
		return 0, err
	}
	sh := s.shardFor(key)
	sh.mu.Lock()
	if sh.items == nil {
		sh.mu.Unlock()
		return 0, opErr("increment", backend.ErrClosed)
	}
	e, _ := s.live(sh, key)
	if e == nil {
		if delta < 0 {
			sh.stats.decrMisses++
		} else {
			sh.stats.incrMisses++
		}
		sh.mu.Unlock()
		return 0, keyErr("increment", key, backend.ErrNotFound)
	}
	n, ok := decimal.ParseUint(e.value)
	if !ok {
		sh.mu.Unlock()
		return 0, fmt.Errorf("memory: increment %s: %w", quoteKey(key), backend.ErrNotNumeric)
	}
	if delta >= 0 {
		sh.stats.incrHits++
		n += uint64(delta) // wraps at 2^64, as memcached's incr
	} else {
		sh.stats.decrHits++
		if d := uint64(-delta); d >= n { // -MinInt64 wraps to 2^63, the right magnitude
			n = 0
		} else {
			n -= d
		}
	}
	old := len(e.value)
	e.value = strconv.AppendUint(make([]byte, 0, 20), n, 10) // never modify a stored slice
	if d := int64(len(e.value) - old); d != 0 {
		s.used.Add(d)
	}
	e.cas = s.casSeq.Add(1)
	s.use(sh, e)
	sh.mu.Unlock()
	s.fit()
	return n, nil
}

// Close drops every item and makes every later call return
// backend.ErrClosed. A second Close returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.items = nil
		sh.root.next, sh.root.prev = &sh.root, &sh.root
		sh.tailStamp.Store(math.MaxUint64)
		sh.mu.Unlock()
	}
	s.used.Store(0)
	s.count.Store(0)
	return nil
}

// Keys yields the live keys that start with prefix, each once, in no
// particular order. It takes a snapshot of one shard at a time, so keys
// written while it runs may or may not be seen. A done ctx or a closed
// Store ends the sequence with a final ("", err) pair.
func (s *Store) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var keys []string
		for i := range s.shards {
			if err := s.enter(ctx, "keys"); err != nil {
				yield("", err)
				return
			}
			sh := &s.shards[i]
			keys = keys[:0]
			sh.mu.Lock()
			if sh.items == nil {
				sh.mu.Unlock()
				yield("", opErr("keys", backend.ErrClosed))
				return
			}
			now := s.now()
			for k, e := range sh.items {
				if strings.HasPrefix(k, prefix) && (e.expires == never || now < e.expires) {
					keys = append(keys, k)
				}
			}
			sh.mu.Unlock()
			for _, k := range keys {
				if !yield(k, nil) {
					return
				}
			}
		}
	}
}

// Len returns the number of live (unexpired) items in the Store, or 0 once
// it is closed. It scans every item, so it is meant for tests.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		for _, e := range sh.items {
			if e.expires == never || now < e.expires {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Bytes returns the number of bytes the Store accounts for the items it
// holds (see ItemOverhead), including expired items not yet removed.
func (s *Store) Bytes() int64 { return s.used.Load() }

// Flush removes every item. It returns backend.ErrClosed after Close.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.enter(ctx, "flush"); err != nil {
		return err
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.items == nil {
			sh.mu.Unlock()
			return opErr("flush", backend.ErrClosed)
		}
		for _, e := range sh.items {
			s.remove(sh, e)
		}
		sh.mu.Unlock()
	}
	return nil
}

// Ping returns nil while the Store is open, backend.ErrClosed after Close,
// or an error wrapping ctx.Err() if ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	return s.enter(ctx, "ping")
}

// ServerStats returns one NodeStats, with Addr "memory", holding counters
// named as memcached's "stats" command names them: curr_items and bytes
// (including expired items not yet removed), limit_maxbytes (0 when
// unbounded), item_size_max, total_items, cmd_get, cmd_set, cmd_touch,
// get_hits, get_misses, get_expired, touch_hits, touch_misses, delete_hits,
// delete_misses, incr_hits, incr_misses, decr_hits, decr_misses, cas_hits,
// cas_misses, cas_badval, evictions, reclaimed, time and uptime (by the
// Store's clock). It returns backend.ErrClosed after Close.
func (s *Store) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	if err := s.enter(ctx, "server stats"); err != nil {
		return nil, err
	}
	var t shardStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st := sh.stats
		sh.mu.Unlock()
		t.getHits += st.getHits
		t.getMisses += st.getMisses
		t.getExpired += st.getExpired
		t.cmdSet += st.cmdSet
		t.cmdTouch += st.cmdTouch
		t.totalItems += st.totalItems
		t.touchHits += st.touchHits
		t.touchMisses += st.touchMisses
		t.deleteHits += st.deleteHits
		t.deleteMisses += st.deleteMisses
		t.incrHits += st.incrHits
		t.incrMisses += st.incrMisses
		t.decrHits += st.decrHits
		t.decrMisses += st.decrMisses
		t.casHits += st.casHits
		t.casMisses += st.casMisses
		t.casBadval += st.casBadval
		t.evictions += st.evictions
		t.reclaimed += st.reclaimed
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	now := s.clock.Now()
	itemMax := int64(s.maxItemSize)
	if itemMax < 0 {
		itemMax = 0
	}
	stats := map[string]string{
		"curr_items":     i(s.count.Load()),
		"bytes":          i(s.used.Load()),
		"limit_maxbytes": i(s.maxBytes),
		"item_size_max":  i(itemMax),
		"total_items":    u(t.totalItems),
		"cmd_get":        u(t.getHits + t.getMisses),
		"cmd_set":        u(t.cmdSet),
		"cmd_touch":      u(t.cmdTouch),
		"get_hits":       u(t.getHits),
		"get_misses":     u(t.getMisses),
		"get_expired":    u(t.getExpired),
		"touch_hits":     u(t.touchHits),
		"touch_misses":   u(t.touchMisses),
		"delete_hits":    u(t.deleteHits),
		"delete_misses":  u(t.deleteMisses),
		"incr_hits":      u(t.incrHits),
		"incr_misses":    u(t.incrMisses),
		"decr_hits":      u(t.decrHits),
		"decr_misses":    u(t.decrMisses),
		"cas_hits":       u(t.casHits),
		"cas_misses":     u(t.casMisses),
		"cas_badval":     u(t.casBadval),
		"evictions":      u(t.evictions),
		"reclaimed":      u(t.reclaimed),
		"time":           i(now.Unix()),
		"uptime":         i(int64(now.Sub(s.epoch) / time.Second)),
	}
	return []backend.NodeStats{{Addr: "memory", Stats: stats}}, nil
}
