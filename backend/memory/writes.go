package memory

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/decimal"
)

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
	if s.maxValueLen >= 0 && len(item.Value) > s.maxValueLen {
		return fmt.Errorf("memory: %s %s: %w: %d bytes, limit %d", op, quoteKey(key), backend.ErrValueTooLarge, len(item.Value), s.maxValueLen)
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
	e.value, e.flags = item.Value, item.Flags
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
