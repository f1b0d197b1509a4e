package memory

import (
	"context"
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
)

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
	maxValueLen int // < 0: no limit
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
	if c.maxValueLen == 0 {
		c.maxValueLen = DefaultMaxValueLen
	}
	if c.maxKeyLen == 0 {
		c.maxKeyLen = DefaultMaxKeyLen
	}
	s := &Store{
		seed:        maphash.MakeSeed(),
		clock:       c.clock,
		maxBytes:    c.maxBytes,
		maxValueLen: c.maxValueLen,
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
