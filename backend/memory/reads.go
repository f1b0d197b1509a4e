package memory

import (
	"context"

	"github.com/memdict/memdict/backend"
)

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
	it := backend.Item{Key: e.key, Value: e.value, CAS: e.cas, Flags: e.flags}
	sh.mu.Unlock()
	return it, nil
}
