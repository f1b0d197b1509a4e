package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memdict/memdict/backend"
)

var _ backend.Locker = (*Store)(nil)

// TryLock stores token under key for ttl if key holds no live value, and
// reports whether it did (a held lock is false, nil), in one step under
// the key's lock: the backend.Locker of memdict's fleet-wide fills. The
// lock is an ordinary item: Get reads it and it expires with ttl, which
// must be positive.
func (s *Store) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("memory: try lock %s: %w: lock TTL %v must be positive", quoteKey(key), backend.ErrInvalidTTL, ttl)
	}
	if token == "" {
		return false, fmt.Errorf("memory: try lock %s: empty token", quoteKey(key))
	}
	err := s.write(ctx, backend.Item{Key: key, Value: []byte(token), TTL: ttl}, modeAdd)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, backend.ErrNotStored):
		return false, nil
	}
	return false, err
}

// Unlock deletes key if it holds token, and reports whether it did; a
// lock that expired or holds another token is left alone (false, nil).
// The check and the delete are one step.
func (s *Store) Unlock(ctx context.Context, key, token string) (bool, error) {
	if err := s.enter(ctx, "unlock"); err != nil {
		return false, err
	}
	if err := s.checkKey("unlock", key); err != nil {
		return false, err
	}
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.items == nil {
		return false, opErr("unlock", backend.ErrClosed)
	}
	e, _ := s.live(sh, key)
	if e == nil || string(e.value) != token {
		return false, nil
	}
	sh.stats.deleteHits++
	s.remove(sh, e)
	return true, nil
}
