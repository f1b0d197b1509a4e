package redis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key: one GET, or, when other calls to
// its server are in flight (see WithBatching), a share of one MGET in a
// pipeline. A miss gives an error wrapping backend.ErrNotFound (and
// goredis.Nil); a key holding a value this package did not write gives one
// wrapping ErrForeignValue; a server that does not answer within the
// timeout, or is marked down, one wrapping backend.ErrUnavailable.
//
// The returned Value is the memory the reply was read into, for this
// call alone: a read copies the value once, from the socket's buffer, and
// the Value is the caller's own (see PrivateReads). On a standalone
// server it comes from a pool of buffers (rawread.go) that a Dict returns
// it to once decoded; a caller that keeps it keeps it.
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

// GetTTL reads key as Get does, with its remaining TTL in the Item's TTL
// (0: it does not expire): backend.TTLReader, with which the Tool's warm
// migration copies items. The value and its PTTL are read together by a
// Lua script, one round trip, pipelined like the other scripts.
func (b *Backend) GetTTL(ctx context.Context, key string) (backend.Item, error) {
	if err := b.check(ctx, "get_ttl", key); err != nil {
		return backend.Item{}, err
	}
	res, err := b.script(ctx, getTTLScript, key, casBytes(newCAS()))
	if err != nil {
		return backend.Item{}, b.wrap(ctx, "get_ttl", key, err)
	}
	switch code(res) {
	case 0:
		return backend.Item{}, fmt.Errorf("redis: get_ttl %q: %w", key, backend.ErrNotFound)
	case 1:
		// {1, the stored string, its PTTL}: the lane checked its shape
		// (scriptReplies); checked again before indexing.
		if len(res) != 3 {
			break
		}
		s, ok := res[1].(string)
		pttl, ok2 := res[2].(int64)
		if !ok || !ok2 {
			break
		}
		v, cas, err := decode(key, s)
		if err != nil {
			return backend.Item{}, fmt.Errorf("redis: get_ttl: %w", err)
		}
		if err := b.owners.check(b.addr(), key, cas); err != nil {
			return backend.Item{}, err
		}
		it := backend.Item{Key: key, Value: v, CAS: cas}
		switch {
		case pttl > math.MaxInt64/int64(time.Millisecond):
			// An expiry beyond the largest Duration (a PEXPIREAT
			// centuries ahead, or a hostile reply): the largest, not
			// the product's overflow, negative or short.
			it.TTL = math.MaxInt64
		case pttl > 0:
			it.TTL = time.Duration(pttl) * time.Millisecond
		case pttl == 0 || pttl == -2:
			it.TTL = time.Millisecond // expiring now
		}
		return it, nil
	}
	return backend.Item{}, scriptError("get_ttl", key, res)
}

var _ backend.TTLReader = (*Backend)(nil)

// PrivateReads reports true: the Value of every Get is the memory that
// call's reply was read into (a buffer of its own for each value, a Get
// batched into an MGET too), which neither go-redis nor the Backend keeps
// (backend.PrivateReader), so a memdict.Dict[[]byte] hands it over
// without copying it. So are GetMulti's Values, each an element of an
// MGET reply.
func (b *Backend) PrivateReads() bool { return true }

var _ backend.PrivateReader = (*Backend)(nil)
