package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

var _ backend.MultiWriter = (*Backend)(nil)

// SetMulti stores every item as Set does, each with one SET (with PX for a
// TTL) and a new CAS token, all sent in one go-redis pipeline: one round
// trip on a standalone server; on a cluster go-redis splits the pipeline by
// master and runs the parts concurrently. An item with an empty key, a
// negative TTL or a value over the size limit is not sent and is reported
// in the returned *backend.MultiError, as is an item the server refused;
// the other items are stored. Any other error (the context is done, the
// connection is lost, the Backend is closed) wraps the matching sentinel,
// and then the outcome of each item is unknown. The call is bounded by the
// timeout (see WithTimeout); while the server is marked down it fails at
// once with an error wrapping backend.ErrUnavailable.
func (b *Backend) SetMulti(ctx context.Context, items []backend.Item) error {
	if err := b.check(ctx, "setmulti", "-"); err != nil {
		return err
	}
	if err := b.admitMulti(); err != nil {
		return b.wrap(ctx, "setmulti", "-", err)
	}
	var failed []backend.KeyError
	pipe := b.client.Pipeline()
	keys := make([]string, 0, len(items))
	cmds := make([]*goredis.StatusCmd, 0, len(items))
	for _, it := range items {
		val, ms, err := b.encodeItem("set", it)
		if err != nil {
			failed = append(failed, backend.KeyError{Key: it.Key, Err: err})
			continue
		}
		var cmd *goredis.StatusCmd
		if ms > 0 {
			cmd = goredis.NewStatusCmd(ctx, "set", it.Key, val, "px", ms)
		} else {
			cmd = goredis.NewStatusCmd(ctx, "set", it.Key, val)
		}
		_ = pipe.Process(ctx, cmd) // queues it; Exec sends it
		keys = append(keys, it.Key)
		cmds = append(cmds, cmd)
	}
	if len(cmds) > 0 {
		cmders := make([]goredis.Cmder, len(cmds))
		for i, c := range cmds {
			cmders[i] = c
		}
		kes, err := b.execMulti(ctx, pipe, "setmulti", "set", keys, cmders, nil)
		if err != nil {
			return err
		}
		failed = append(failed, kes...)
	}
	return multiError(failed)
}

// DeleteMulti removes every key as Delete does, with one DEL per key, all
// sent in one go-redis pipeline (split by master on a cluster). An absent
// key is reported in the returned *backend.MultiError with an error
// wrapping backend.ErrNotFound, as is an empty key (backend.ErrInvalidKey)
// or a DEL the server refused; the other keys are removed. Any other error
// means the outcome of each key is unknown, as for SetMulti.
func (b *Backend) DeleteMulti(ctx context.Context, keys []string) error {
	if err := b.check(ctx, "deletemulti", "-"); err != nil {
		return err
	}
	if err := b.admitMulti(); err != nil {
		return b.wrap(ctx, "deletemulti", "-", err)
	}
	var failed []backend.KeyError
	pipe := b.client.Pipeline()
	sent := make([]string, 0, len(keys))
	cmds := make([]goredis.Cmder, 0, len(keys))
	for _, k := range keys {
		if k == "" {
			failed = append(failed, backend.KeyError{Key: k,
				Err: fmt.Errorf("redis: delete: %w: empty key", backend.ErrInvalidKey)})
			continue
		}
		sent = append(sent, k)
		cmds = append(cmds, pipe.Del(ctx, k))
	}
	if len(cmds) > 0 {
		kes, err := b.execMulti(ctx, pipe, "deletemulti", "delete", sent, cmds, func(i int) error {
			if cmds[i].(*goredis.IntCmd).Val() == 0 {
				return fmt.Errorf("redis: delete %q: %w", sent[i], backend.ErrNotFound)
			}
			return nil
		})
		if err != nil {
			return err
		}
		failed = append(failed, kes...)
	}
	return multiError(failed)
}

// admitMulti returns the error a multi-write fails with at once when the
// standalone server is marked down (see WithFailureLimit); on a cluster
// go-redis splits the pipeline by master and each part fails on its own.
func (b *Backend) admitMulti() error {
	if b.single == nil {
		return nil
	}
	return b.lane0.admit()
}

// encodeItem validates an item of SetMulti as prepare does (without the
// checks SetMulti makes once for all items) and returns its stored string
// and its TTL in milliseconds.
func (b *Backend) encodeItem(op string, item backend.Item) ([]byte, int64, error) {
	if item.Key == "" {
		return nil, 0, fmt.Errorf("redis: %s: %w: empty key", op, backend.ErrInvalidKey)
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

// execMulti runs pipe, bounded by the timeout, and returns the failure of each of its
// commands (cmds[i] is of keys[i]): a command the server answered with an
// error, or one for which check, called for each command that succeeded,
// returns an error. It returns a non-nil error instead when the outcome of
// the commands is unknown: ctx is done, the Backend was closed, or a
// command failed without a reply from the server (a lost connection).
func (b *Backend) execMulti(ctx context.Context, pipe goredis.Pipeliner, op, keyOp string,
	keys []string, cmds []goredis.Cmder, check func(i int) error) ([]backend.KeyError, error) {
	what := keys[0]
	if len(keys) > 1 {
		what = fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
	}
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) {
		_, err := pipe.Exec(bctx)
		return struct{}{}, err
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && err == cerr {
			// bounded gave up waiting: the pipeline may still be
			// running, so its commands must not be read.
			return nil, fmt.Errorf("redis: %s %s: %w", op, what, err)
		}
		if errors.Is(err, backend.ErrClosed) && !errors.Is(err, goredis.ErrClosed) {
			// bounded refused to start after Close.
			return nil, fmt.Errorf("redis: %s: %w", op, backend.ErrClosed)
		}
	}
	var failed []backend.KeyError
	for i, c := range cmds {
		cerr := c.Err()
		if cerr == nil {
			if check != nil {
				if kerr := check(i); kerr != nil {
					failed = append(failed, backend.KeyError{Key: keys[i], Err: kerr})
				}
			}
			continue
		}
		var re goredis.Error
		if !errors.As(cerr, &re) || b.closed.Load() || ctx.Err() != nil {
			// No reply from the server for this command: whether it
			// (and the others) ran is unknown.
			return nil, b.wrap(ctx, op, what, cerr)
		}
		failed = append(failed, backend.KeyError{Key: keys[i], Err: b.wrap(ctx, keyOp, keys[i], cerr)})
	}
	if failed == nil && err != nil {
		// Exec failed although no command reports an error.
		return nil, b.wrap(ctx, op, what, err)
	}
	return failed, nil
}

// multiError returns nil for no failures, or a *backend.MultiError of them.
func multiError(failed []backend.KeyError) error {
	if len(failed) == 0 {
		return nil
	}
	return &backend.MultiError{Errors: failed}
}
