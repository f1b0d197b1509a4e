package memory

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The store proper: shards, their LRU lists, expiry and eviction.

const (
	numShards = 32 // a power of two
	// never is the expiry of an item without TTL.
	never = math.MaxInt64
	// sweepPerWrite is how many expired items each write may reclaim from
	// the cold end of its shard.
	sweepPerWrite = 2
)

// entry is one item, and a node of its shard's LRU list.
type entry struct {
	key   string
	value []byte
	// expires is the time the item expires, as nanoseconds since the
	// Store's epoch; never if it does not.
	expires int64
	cas     uint64
	flags   uint32 // client flags (backend.Item.Flags)
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
