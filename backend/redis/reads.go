package redis

import (
	"context"
	"fmt"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key: one GET, or, when other calls to
// its server are in flight (see WithBatching), a share of one MGET in a
// pipeline. A miss gives an error wrapping backend.ErrNotFound (and
// goredis.Nil); a key holding a value this package did not write gives one
// wrapping ErrForeignValue; a server that does not answer within the
// timeout, or is marked down, one wrapping backend.ErrUnavailable.
//
// The returned Value shares the memory go-redis read the reply into, made
// for this call alone: a read copies the value once, from the socket's
// buffer, and the Value is the caller's own (see PrivateReads).
func (b *Backend) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := b.check(ctx, "get", key); err != nil {
		return backend.Item{}, err
	}
	c := b.newCall(key)
	c.get = true
	if !b.do(ctx, c) {
		return backend.Item{}, fmt.Errorf("redis: get %q: %w", key, ctx.Err())
	}
	it, err, final := c.item, c.err, c.final
	c.release()
	switch {
	case err == nil:
		return it, nil
	case final:
		return backend.Item{}, err
	}
	return backend.Item{}, b.wrap(ctx, "get", key, err)
}

// PrivateReads reports true: the Value of every Get is the memory go-redis
// read that call's reply into (a buffer it makes for each bulk string; a
// Get batched into an MGET has its own element), which neither go-redis nor
// the Backend keeps (backend.PrivateReader), so a memdict.Dict[[]byte]
// hands it over without copying it.
func (b *Backend) PrivateReads() bool { return true }

var _ backend.PrivateReader = (*Backend)(nil)
