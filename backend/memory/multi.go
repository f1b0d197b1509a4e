package memory

import (
	"context"

	"github.com/memdict/memdict/backend"
)

var _ backend.MultiWriter = (*Store)(nil)

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
			m[k] = backend.Item{Key: e.key, Value: e.value, CAS: e.cas, Flags: e.flags}
		} else {
			sh.stats.getMisses++
		}
		sh.mu.Unlock()
	}
	return m, nil
}

// SetMulti stores every item as Set does, trying each even when some fail.
// It returns nil, a *backend.MultiError naming the items that failed, or
// the error of a done ctx or a closed Store (then nothing was stored).
func (s *Store) SetMulti(ctx context.Context, items []backend.Item) error {
	if err := s.enter(ctx, "set multi"); err != nil {
		return err
	}
	return backend.SetEach(ctx, s, items)
}

// DeleteMulti removes every key as Delete does, trying each even when some
// fail; absent keys are reported in the *backend.MultiError with
// backend.ErrNotFound.
func (s *Store) DeleteMulti(ctx context.Context, keys []string) error {
	if err := s.enter(ctx, "delete multi"); err != nil {
		return err
	}
	return backend.DeleteEach(ctx, s, keys)
}
