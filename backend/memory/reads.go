package memory

import (
	"context"
	"time"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key, with its value and CAS token. The
// value shares memory with the Store and must not be modified. A missing or
// expired key gives backend.ErrNotFound, an invalid one
// backend.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string) (backend.Item, error) {
	return s.get(ctx, key, false)
}

// GetTTL reads key as Get does, with the time the item has left to live
// in the Item's TTL (0: it does not expire): backend.TTLReader, which the
// Tool's warm migration uses to copy items with their remaining TTL.
func (s *Store) GetTTL(ctx context.Context, key string) (backend.Item, error) {
	return s.get(ctx, key, true)
}

// get is Get, and GetTTL if withTTL.
func (s *Store) get(ctx context.Context, key string, withTTL bool) (backend.Item, error) {
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
	it := backend.Item{Key: e.key, Value: e.value, CAS: e.cas, Flags: e.flags}
	if withTTL && e.expires != never {
		it.TTL = time.Duration(max(e.expires-s.now(), 1))
	}
	sh.mu.Unlock()
	return it, nil
}

var _ backend.TTLReader = (*Store)(nil)
