package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// prepare validates a write and returns the stored string and the TTL in
// milliseconds.
func (b *Backend) prepare(ctx context.Context, op string, item backend.Item) ([]byte, int64, error) {
	if err := b.check(ctx, op, item.Key); err != nil {
		return nil, 0, err
	}
	return b.encodeChecked(op, item)
}

// encodeChecked checks the TTL and the value's size of a write whose key
// is checked, and returns the stored string and the TTL in milliseconds.
func (b *Backend) encodeChecked(op string, item backend.Item) ([]byte, int64, error) {
	if item.Flags != 0 {
		return nil, 0, fmt.Errorf("redis: %s %q: %w: client flags %d: Redis keeps no client flags (values of Python's memcached clients, a Dict of format erp5 or python, need memcached)",
			op, item.Key, backend.ErrNotSupported, item.Flags)
	}
	ms, err := ttlArg(op, item.Key, item.TTL)
	if err != nil {
		return nil, 0, err
	}
	if len(item.Value) > b.cfg.maxValueSize {
		return nil, 0, fmt.Errorf("redis: %s %q: %w: %d bytes, limit %d",
			op, item.Key, backend.ErrValueTooLarge, len(item.Value), b.cfg.maxValueSize)
	}
	return encode(item.Value, newCAS()), ms, nil
}

// send runs cmd, the command of a call on key, through key's lane (so it
// is pipelined with the calls in flight to the same server) and returns
// its error, go-redis's or the lane's (the server is marked down, the
// timeout passed, the reply did not fit want). A context that ends first
// gives ctx.Err().
func (b *Backend) send(ctx context.Context, key string, cmd goredis.Cmder, want uint8) error {
	c := b.newCall(key)
	c.cmd, c.want = cmd, want
	c.once = true // a DEL resent after it ran finds nothing: see noRetry
	return b.sendCall(ctx, c)
}

// sendCall is send of a call with its command.
func (b *Backend) sendCall(ctx context.Context, c *call) error {
	if !b.do(ctx, c) {
		return ctx.Err()
	}
	cmd, err := c.cmd, c.err
	c.release()
	if err == nil {
		err = cmd.Err()
	}
	return err
}

// setCall returns the call of a SET of key to val (the stored string),
// with PX ms if ms > 0 and NX if nx. The value and the TTL are passed to
// go-redis through the call, which outlives the command, so that they are
// not boxed on the heap one by one.
func (b *Backend) setCall(ctx context.Context, key string, val []byte, ms int64, nx bool) *call {
	c := b.newCall(key)
	c.val, c.ms, c.want = val, ms, wantOK
	if nx {
		c.want = wantOKOrNil
	}
	// The call's own array, not a new slice: at most 6 arguments.
	args := c.argv[:3]
	args[0], args[2] = "set", (*valueArg)(c)
	if b.single != nil {
		// As in mget: a *string rather than a boxed copy of the key (a
		// cluster client needs the string to find the key's slot).
		args[1] = &c.key
	} else {
		args[1] = key
	}
	if nx {
		args = append(args, "nx")
		c.once = true // a SET NX resent after it ran is refused: see noRetry
	}
	if ms > 0 {
		args = append(args, "px", &c.ms)
	}
	c.cmd = goredis.NewStatusCmd(ctx, args...)
	return c
}

// valueArg is a call seen as the value argument of its SET: go-redis
// writes what MarshalBinary returns.
type valueArg call

// MarshalBinary returns the stored string of the SET.
func (v *valueArg) MarshalBinary() ([]byte, error) { return v.val, nil }

// script runs one of the Lua scripts on key through key's lane, as send
// does, with EVALSHA (EVAL when the server does not have the script), and
// returns its array reply, without its first element: echo, which the
// script gets as its last argument and answers first (see luaPrologue).
// echo must be new for the call (8 random bytes): a reply that does not
// start with it is another call's, a protocol error.
func (b *Backend) script(ctx context.Context, s *goredis.Script, key, echo string, args ...any) ([]any, error) {
	c := b.newCall(key)
	args = append(args, echo)
	c.cmd = goredis.NewCmd(ctx, append([]any{"evalsha", s.Hash(), 1, key}, args...)...)
	c.script, c.args, c.want = s, args, wantScript
	c.once = s != getTTLScript // a write: see noRetry
	if !b.do(ctx, c) {
		return nil, ctx.Err()
	}
	cmd, err := c.cmd.(*goredis.Cmd), c.err
	c.release()
	if err != nil {
		return nil, err
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, err
	}
	return res[1:], nil // the lane checked res[0] (call.badReply)
}

// Set stores item unconditionally with one SET (with PX for a TTL), giving
// it a new CAS token. Concurrent writes to one server share pipelines (see
// WithBatching).
func (b *Backend) Set(ctx context.Context, item backend.Item) error {
	val, ms, err := b.prepare(ctx, "set", item)
	if err != nil {
		return err
	}
	if err := b.sendCall(ctx, b.setCall(ctx, item.Key, val, ms, false)); err != nil {
		return b.wrap(ctx, "set", item.Key, err)
	}
	return nil
}

// Add stores item only if its key is absent: one SET NX. A live key gives
// an error wrapping backend.ErrNotStored.
func (b *Backend) Add(ctx context.Context, item backend.Item) error {
	val, ms, err := b.prepare(ctx, "add", item)
	if err != nil {
		return err
	}
	if err := b.sendCall(ctx, b.setCall(ctx, item.Key, val, ms, true)); err != nil {
		if err == goredis.Nil {
			return fmt.Errorf("redis: add %q: %w (key exists)", item.Key, backend.ErrNotStored)
		}
		return b.wrap(ctx, "add", item.Key, err)
	}
	return nil
}

// CompareAndSwap stores item if the key still holds the version whose CAS
// token is item.CAS, checked and written atomically by a Lua script. It
// returns errors wrapping backend.ErrCASConflict, backend.ErrNotFound or
// ErrForeignValue.
func (b *Backend) CompareAndSwap(ctx context.Context, item backend.Item) error {
	val, ms, err := b.prepare(ctx, "cas", item)
	if err != nil {
		return err
	}
	// The new token, in val's header, is the call's echo.
	res, err := b.script(ctx, casScript, item.Key, string(val[len(magic):headerLen]), casBytes(item.CAS), val, ms)
	if err != nil {
		return b.wrap(ctx, "cas", item.Key, err)
	}
	switch code(res) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("redis: cas %q: %w", item.Key, backend.ErrNotFound)
	case -2:
		return fmt.Errorf("redis: cas %q: %w", item.Key, backend.ErrCASConflict)
	default:
		return scriptError("cas", item.Key, res)
	}
}

// Delete removes key with DEL; an absent key gives an error wrapping
// backend.ErrNotFound.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx, "delete", key); err != nil {
		return err
	}
	cmd := goredis.NewIntCmd(ctx, "del", key)
	if err := b.send(ctx, key, cmd, wantBool); err != nil {
		return b.wrap(ctx, "delete", key, err)
	}
	if cmd.Val() == 0 {
		return fmt.Errorf("redis: delete %q: %w", key, backend.ErrNotFound)
	}
	return nil
}

// Touch gives key a new TTL (PEXPIRE, or PERSIST for 0) and a new CAS
// token, atomically, without rewriting the value. An absent key gives an
// error wrapping backend.ErrNotFound.
func (b *Backend) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := b.check(ctx, "touch", key); err != nil {
		return err
	}
	ms, err := ttlArg("touch", key, ttl)
	if err != nil {
		return err
	}
	tok := casBytes(newCAS()) // the new token, and the call's echo
	res, err := b.script(ctx, touchScript, key, tok, tok, ms)
	if err != nil {
		return b.wrap(ctx, "touch", key, err)
	}
	switch code(res) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("redis: touch %q: %w", key, backend.ErrNotFound)
	default:
		return scriptError("touch", key, res)
	}
}

// Increment adds delta to the decimal number stored under key, with
// memcached's rules (a decrement stops at 0, an increment wraps at 2^64,
// the TTL is kept, the CAS token changes), atomically in a Lua script. It
// returns errors wrapping backend.ErrNotFound, backend.ErrNotNumeric or
// ErrForeignValue.
func (b *Backend) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	if err := b.check(ctx, "increment", key); err != nil {
		return 0, err
	}
	sign, mag := "+", uint64(delta)
	if delta < 0 {
		sign, mag = "-", uint64(-delta) // -MinInt64 wraps to 1<<63, its magnitude
	}
	tok := casBytes(newCAS()) // the new token, and the call's echo
	res, err := b.script(ctx, incrScript, key, tok, sign, strconv.FormatUint(mag, 10), tok)
	if err != nil {
		return 0, b.wrap(ctx, "increment", key, err)
	}
	switch code(res) {
	case 1:
		if len(res) == 2 {
			if s, ok := res[1].(string); ok {
				if n, err := strconv.ParseUint(s, 10, 64); err == nil {
					return n, nil
				}
			}
		}
		return 0, scriptError("increment", key, res)
	case 0:
		return 0, fmt.Errorf("redis: increment %q: %w", key, backend.ErrNotFound)
	case -3:
		return 0, fmt.Errorf("redis: increment %q: %w", key, backend.ErrNotNumeric)
	default:
		return 0, scriptError("increment", key, res)
	}
}

// ttlArg returns ttl in whole milliseconds, rounded up, as Redis's PX and
// PEXPIRE take it; "0" means no expiry. A TTL within a millisecond of the
// largest Duration (292 years) is sent as the largest Duration's whole
// milliseconds: rounded up, it is no Duration, and servers written in Go
// (miniredis) that read it into one overflow it and drop the key.
func ttlArg(op, key string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("redis: %s %q: %w: %v", op, key, backend.ErrInvalidTTL, ttl)
	}
	// Rounded up without adding to ttl, which may be the largest Duration.
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 && ms < maxTTLms {
		ms++
	}
	return ms, nil
}

// maxTTLms is the largest Duration in whole milliseconds.
const maxTTLms = int64(math.MaxInt64 / int64(time.Millisecond))
