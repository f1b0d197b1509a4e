package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

var _ backend.Locker = (*Backend)(nil)

// Locks (backend.Locker), which memdict's GetOrLoad takes through
// backend.TryLock and backend.Unlock so that one caller in a fleet fills a
// key. A lock is a key like any other this package writes: its value is the
// header and the token, so Get reads a lock's token, and a lock taken by
// backend.TryLock's Add fallback (through a wrapper that hides Locker) is
// the same string. Both calls are single-key commands: they go through the
// key's lane like Add and CompareAndSwap (pipelined, bounded by the
// timeout, refused while the server is marked down) and work on a cluster,
// where the lock key's master serves them.

// TryLock takes the lock key with token for ttl if key is absent, with one
// SET NX PX (ttl rounded up to a millisecond), and reports whether it did.
// A key that exists, a lock or any other value, gives false and no error.
// ttl must be positive and token non-empty.
func (b *Backend) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if err := b.check(ctx, "trylock", key); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("redis: trylock %q: %w: lock TTL %v must be positive", key, backend.ErrInvalidTTL, ttl)
	}
	if token == "" {
		return false, fmt.Errorf("redis: trylock %q: empty token", key)
	}
	val, ms, err := b.prepare(ctx, "trylock", backend.Item{Key: key, Value: []byte(token), TTL: ttl})
	if err != nil {
		return false, err
	}
	if err := b.sendCall(ctx, b.setCall(ctx, key, val, ms, true)); err != nil {
		if errors.Is(err, goredis.Nil) {
			return false, nil // NX: the key exists
		}
		return false, b.wrap(ctx, "trylock", key, err)
	}
	return true, nil
}

// Unlock deletes the lock key if it still holds token, checked and deleted
// atomically by a Lua script, and reports whether it did. A lock that
// expired, was taken by another token, or a key holding a value TryLock did
// not write is left alone: false and no error.
func (b *Backend) Unlock(ctx context.Context, key, token string) (bool, error) {
	if err := b.check(ctx, "unlock", key); err != nil {
		return false, err
	}
	if token == "" {
		return false, fmt.Errorf("redis: unlock %q: empty token", key)
	}
	res, err := b.script(ctx, unlockScript, key, casBytes(newCAS()), token)
	if err != nil {
		return false, b.wrap(ctx, "unlock", key, err)
	}
	switch code(res) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	default:
		return false, scriptError("unlock", key, res)
	}
}
