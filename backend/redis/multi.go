package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

var _ backend.MultiWriter = (*Backend)(nil)

// GetMulti returns the items found among keys: one MGET on a standalone
// server; on a cluster, one MGET per hash slot, pipelined to every master
// at once. Keys holding values this package did not write are left out of
// the map and named in a *backend.MultiError (their errors wrap
// ErrForeignValue); keys of another Redis type, which MGET reports as
// missing, are misses. On a cluster, the keys of a master that is marked
// down or does not answer are named in the *backend.MultiError too (their
// errors wrap backend.ErrUnavailable), with what the other masters hold in
// the map. A standalone server that does not answer fails the whole call.
func (b *Backend) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if len(keys) == 0 {
		if err := b.check(ctx, "getmulti", "-"); err != nil {
			return map[string]backend.Item{}, err
		}
		return map[string]backend.Item{}, nil
	}
	for _, k := range keys {
		if err := b.check(ctx, "getmulti", k); err != nil {
			return map[string]backend.Item{}, err
		}
	}
	type res struct {
		m      map[string]backend.Item
		failed []backend.KeyError
	}
	r, err := bounded(b, ctx, func(bctx context.Context) (res, error) {
		var r res
		var err error
		r.m, r.failed, err = b.multi(bctx, keys)
		return r, err
	})
	m := r.m
	if m == nil {
		m = map[string]backend.Item{}
	}
	if err != nil {
		return m, b.wrap(ctx, "getmulti", keysWhat(keys), err)
	}
	return m, multiError(r.failed)
}

// keysWhat names keys in an error: the first and how many more.
func keysWhat(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
}

// multi reads keys. It returns the items found, the keys that could not be
// read (foreign values; keys of a cluster master that failed) and an error
// if the read as a whole failed.
func (b *Backend) multi(ctx context.Context, keys []string) (map[string]backend.Item, []backend.KeyError, error) {
	out := make(map[string]backend.Item, len(keys))
	var failed []backend.KeyError
	var wrong error // a value that is another key's: the whole read fails
	add := func(ks []string, vals []any) {
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // a miss (checked by mgetValues)
			}
			val, cas, err := decode(ks[i], s)
			if err != nil {
				failed = append(failed, backend.KeyError{Key: ks[i], Err: fmt.Errorf("redis: getmulti: %w", err)})
				continue
			}
			if err := b.owners.check(b.addr(), ks[i], cas); err != nil {
				wrong = err
				continue
			}
			out[ks[i]] = backend.Item{Key: ks[i], Value: val, CAS: cas}
		}
	}
	var err error
	switch {
	case b.single != nil:
		if err := b.lane0.admit(); err != nil {
			return out, nil, err
		}
		var vals []any
		vals, err = b.mgetChunked(ctx, keys)
		b.lane0.record(transportErr(err))
		if err == nil {
			add(keys, vals)
		}
	case b.cluster != nil:
		var kes []backend.KeyError
		kes, err = b.getMultiCluster(ctx, keys, add)
		failed = append(failed, kes...)
	default:
		err = b.getMultiPipelined(ctx, keys, add)
	}
	if err == nil && wrong != nil {
		return map[string]backend.Item{}, nil, wrong
	}
	return out, failed, err
}

// maxMGetKeys is the most keys one MGET reads: a GetMulti of more sends
// several MGETs in one pipeline, so that no reply announces more elements
// than the guard accepts (see respScanner) and no MGET holds the server
// long.
const maxMGetKeys = 1 << 14

// mgetChunked reads keys on a standalone server: one MGET, or one per
// maxMGetKeys keys in one pipeline. It returns a value (a string) or nil
// for each key.
func (b *Backend) mgetChunked(ctx context.Context, keys []string) ([]any, error) {
	if len(keys) <= maxMGetKeys {
		vals, err := b.client.MGet(ctx, keys...).Result()
		if err == goredis.Nil {
			err = &protoError{Addr: b.addr(), Msg: "MGET answered a null"}
		}
		if err != nil {
			return nil, err
		}
		return vals, mgetValues(b.addr(), len(keys), vals)
	}
	pipe := b.client.Pipeline()
	var cmds []*goredis.SliceCmd
	for i := 0; i < len(keys); i += maxMGetKeys {
		cmds = append(cmds, pipe.MGet(ctx, keys[i:min(i+maxMGetKeys, len(keys))]...))
	}
	if _, err := pipe.Exec(ctx); err == goredis.Nil {
		return nil, &protoError{Addr: b.addr(), Msg: "MGET answered a null"}
	} else if err != nil {
		return nil, err
	}
	vals := make([]any, 0, len(keys))
	for i, c := range cmds {
		v := c.Val()
		if err := mgetValues(b.addr(), min(maxMGetKeys, len(keys)-i*maxMGetKeys), v); err != nil {
			return nil, err
		}
		vals = append(vals, v...)
	}
	return vals, nil
}

// mgetValues checks the reply to an MGET of n keys: n values, each a
// string or a null. Anything else is a protocol error.
func mgetValues(addr string, n int, vals []any) error {
	if len(vals) != n {
		return &protoError{Addr: addr, Msg: fmt.Sprintf("MGET of %d keys answered %d values", n, len(vals))}
	}
	for _, v := range vals {
		switch v.(type) {
		case nil, string:
		default:
			return &protoError{Addr: addr, Msg: fmt.Sprintf("MGET answered a value of type %T", v)}
		}
	}
	return nil
}

// getMultiCluster groups keys by hash slot and sends one MGET per slot,
// in one cluster pipeline per master, the masters' pipelines run
// concurrently (see execPerMaster: with one pipeline for all, a master
// that does not answer would fail the other masters' MGETs too). The
// keys of a master marked down are not sent; they and the keys of an MGET
// that failed are returned as KeyErrors, and count as a failure of their
// master.
func (b *Backend) getMultiCluster(ctx context.Context, keys []string, add func([]string, []any)) ([]backend.KeyError, error) {
	type group struct {
		keys []string
		lane *lane
		cmd  *goredis.SliceCmd
	}
	groups := make(map[uint16]*group)
	var order []*group
	var failed []backend.KeyError
	for _, k := range keys {
		s := slot(k)
		g := groups[s]
		if g == nil || len(g.keys) == maxMGetKeys {
			l, err := b.lane(ctx, k)
			if err != nil {
				return nil, err // no slot map: the cluster is unreachable
			}
			g = &group{lane: l}
			groups[s] = g
			order = append(order, g)
		}
		g.keys = append(g.keys, k)
	}
	pipes := make(map[*lane]goredis.Pipeliner)
	var lanes []*lane // the keys of pipes, in order
	for _, g := range order {
		if err := g.lane.admit(); err != nil {
			for _, k := range g.keys {
				failed = append(failed, backend.KeyError{Key: k, Err: fmt.Errorf("redis: get %q: %w", k, err)})
			}
			continue
		}
		pipe := pipes[g.lane]
		if pipe == nil {
			pipe = b.client.Pipeline()
			pipes[g.lane] = pipe
			lanes = append(lanes, g.lane)
		}
		g.cmd = pipe.MGet(ctx, g.keys...)
	}
	if len(lanes) == 0 {
		return failed, nil
	}
	execPerMaster(ctx, lanes, pipes)
	outcome := make(map[*lane]error)
	for _, g := range order {
		if g.cmd == nil {
			continue
		}
		vals, err := g.cmd.Result()
		if err == goredis.Nil {
			err = &protoError{Addr: g.lane.addr, Msg: "MGET answered a null"}
		} else if err == nil {
			err = mgetValues(g.lane.addr, len(g.keys), vals)
		}
		if terr := transportErr(err); terr != nil || outcome[g.lane] == nil {
			outcome[g.lane] = terr
		}
		if err != nil {
			if b.closed.Load() {
				return nil, err
			}
			if transportErr(err) != nil {
				err = fmt.Errorf("%w: server %s: %w", backend.ErrUnavailable, g.lane.addr, err)
			}
			for _, k := range g.keys {
				// Not b.wrap(ctx, ...): ctx's deadline is the driver's
				// timeout, not the caller's.
				failed = append(failed, backend.KeyError{Key: k, Err: b.wrap(context.Background(), "get", k, err)})
			}
			continue
		}
		add(g.keys, vals)
	}
	for l, err := range outcome {
		l.record(err)
	}
	return failed, nil
}

// execPerMaster runs the pipeline of each lane of a cluster, each
// holding the commands of one master only, concurrently; each command
// carries its own error. Separate pipelines, because go-redis retries a
// pipeline whose master did not answer, finds its deadline passed and
// then sets the context's error on every command of the pipeline,
// including those other masters answered.
func execPerMaster(ctx context.Context, lanes []*lane, pipes map[*lane]goredis.Pipeliner) {
	exec := func(l *lane) {
		pipe := pipes[l]
		cmds := pipe.Cmds() // Exec forgets them
		defer func() {
			if r := recover(); r != nil {
				perr := panicError(l.addr, r)
				for _, c := range cmds {
					c.SetErr(perr)
				}
			}
		}()
		_, _ = pipe.Exec(ctx)
	}
	if len(lanes) == 1 {
		exec(lanes[0])
		return
	}
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(func() { exec(l) })
	}
	wg.Wait()
}

// getMultiPipelined sends one GET per key in a pipeline, for clients (such
// as a Ring) that cannot run MGET across shards.
func (b *Backend) getMultiPipelined(ctx context.Context, keys []string, add func([]string, []any)) error {
	pipe := b.client.Pipeline()
	cmds := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	_, err := pipe.Exec(ctx)
	if err == goredis.Nil {
		err = nil
	}
	var firstErr error
	vals := make([]any, len(keys))
	for i, c := range cmds {
		s, cerr := c.Result()
		switch {
		case cerr == nil:
			vals[i] = s
		case cerr == goredis.Nil:
		default:
			if firstErr == nil {
				firstErr = cerr
			}
		}
	}
	add(keys, vals)
	if firstErr == nil {
		firstErr = err
	}
	if errors.Is(firstErr, goredis.Nil) {
		firstErr = nil
	}
	return firstErr
}

// SetMulti stores every item as Set does, each with one SET (with PX for a
// TTL) and a new CAS token, all sent in one go-redis pipeline: one round
// trip on a standalone server; on a cluster one pipeline per master, run
// concurrently. An item with an empty key, a negative TTL or a value over
// the size limit is not sent and is reported in the returned
// *backend.MultiError, as is an item the server refused; the other items
// are stored. Any other error (the context is done, the connection is
// lost, a server did not answer, the Backend is closed) wraps the matching
// sentinel, and then the outcome of each item is unknown. The call is
// bounded by the timeout (see WithTimeout); while the server is marked
// down it fails at once with an error wrapping backend.ErrUnavailable. On
// a cluster, the items of a master marked down are not sent and are named
// in the *backend.MultiError (wrapping backend.ErrUnavailable), the other
// masters' items are stored; a master that does not answer counts as a
// failure of that master (see WithFailureLimit).
func (b *Backend) SetMulti(ctx context.Context, items []backend.Item) error {
	if err := b.check(ctx, "setmulti", "-"); err != nil {
		return err
	}
	if err := b.admitMulti(); err != nil {
		return b.wrap(ctx, "setmulti", "-", err)
	}
	var failed []backend.KeyError
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
		keys = append(keys, it.Key)
		cmds = append(cmds, cmd)
	}
	if len(cmds) > 0 {
		cmders := make([]goredis.Cmder, len(cmds))
		for i, c := range cmds {
			cmders[i] = c
		}
		kes, err := b.execMulti(ctx, "setmulti", "set", keys, cmders, func(i int) error {
			if v := cmds[i].Val(); v != "OK" {
				return &protoError{Addr: b.addr(), Msg: fmt.Sprintf("SET answered %.40q, not OK", v)}
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

// DeleteMulti removes every key as Delete does, with one DEL per key, all
// sent in one go-redis pipeline (one per master on a cluster). An absent
// key is reported in the returned *backend.MultiError with an error
// wrapping backend.ErrNotFound, as is an empty key (backend.ErrInvalidKey),
// a DEL the server refused or, on a cluster, a key of a master marked
// down (backend.ErrUnavailable, not sent); the other keys are removed. Any
// other error means the outcome of each key is unknown, as for SetMulti.
func (b *Backend) DeleteMulti(ctx context.Context, keys []string) error {
	if err := b.check(ctx, "deletemulti", "-"); err != nil {
		return err
	}
	if err := b.admitMulti(); err != nil {
		return b.wrap(ctx, "deletemulti", "-", err)
	}
	var failed []backend.KeyError
	sent := make([]string, 0, len(keys))
	cmds := make([]goredis.Cmder, 0, len(keys))
	for _, k := range keys {
		if k == "" {
			failed = append(failed, backend.KeyError{Key: k,
				Err: fmt.Errorf("redis: delete: %w: empty key", backend.ErrInvalidKey)})
			continue
		}
		sent = append(sent, k)
		cmds = append(cmds, goredis.NewIntCmd(ctx, "del", k))
	}
	if len(cmds) > 0 {
		kes, err := b.execMulti(ctx, "deletemulti", "delete", sent, cmds, func(i int) error {
			switch n := cmds[i].(*goredis.IntCmd).Val(); n {
			case 0:
				return fmt.Errorf("redis: delete %q: %w", sent[i], backend.ErrNotFound)
			case 1:
				return nil
			default:
				return &protoError{Addr: b.addr(), Msg: fmt.Sprintf("DEL of one key answered %d", n)}
			}
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
// execMulti admits each master's part on its own.
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
	return b.encodeChecked(op, item)
}

// execMulti runs cmds in a pipeline (one per master on a cluster, see
// clusterWrites), bounded by the timeout, and returns the failure of each
// of its commands (cmds[i] is of keys[i]): a command the server answered
// with an error, one for which check, called for each command that
// succeeded, returns an error, or one not sent because its cluster master
// is marked down. It returns a non-nil error instead when the outcome of
// the commands is unknown: ctx is done, the Backend was closed, a command
// failed without a reply from the server (a lost connection, a server
// that did not answer), or a reply did not fit its command (check
// returned an error wrapping ErrProtocol).
func (b *Backend) execMulti(ctx context.Context, op, keyOp string,
	keys []string, cmds []goredis.Cmder, check func(i int) error) ([]backend.KeyError, error) {
	what := keys[0]
	if len(keys) > 1 {
		what = fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
	}
	var lanes []*lane // on a cluster, the lane of each command; nil if not sent
	var refused []error
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) {
		if b.cluster != nil {
			var err error
			lanes, refused, err = b.clusterWrites(bctx, keys, cmds)
			return struct{}{}, err
		}
		pipe := b.client.Pipeline()
		for _, c := range cmds {
			_ = pipe.Process(bctx, c) // queues it; Exec sends it
		}
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
	if lanes == nil && b.cluster != nil && err != nil {
		// No slot map: nothing was sent.
		return nil, b.wrap(ctx, op, what, err)
	}
	var failed []backend.KeyError
	for i, c := range cmds {
		if refused != nil && refused[i] != nil {
			failed = append(failed, backend.KeyError{Key: keys[i], Err: fmt.Errorf("redis: %s %q: %w", keyOp, keys[i], refused[i])})
			continue
		}
		cerr := c.Err()
		if cerr == goredis.Nil {
			// SET and DEL never answer a null.
			return nil, b.wrap(ctx, op, what, &protoError{Addr: b.addr(), Msg: "a null answered " + keyOp})
		}
		if cerr == nil {
			if check != nil {
				if kerr := check(i); errors.Is(kerr, ErrProtocol) {
					return nil, b.wrap(ctx, op, what, kerr)
				} else if kerr != nil {
					failed = append(failed, backend.KeyError{Key: keys[i], Err: kerr})
				}
			}
			continue
		}
		var re goredis.Error
		if !errors.As(cerr, &re) || b.closed.Load() || ctx.Err() != nil {
			// No reply from the server for this command: whether it
			// (and the others) ran is unknown.
			if lanes != nil && lanes[i] != nil && !b.closed.Load() && ctx.Err() == nil {
				cerr = fmt.Errorf("%w: server %s: %w", backend.ErrUnavailable, lanes[i].addr, cerr)
			}
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

// clusterWrites sends cmds (cmds[i] writes keys[i]) on a cluster in one
// pipeline per master, run concurrently (see execPerMaster), except the
// commands of a master marked down, which are not sent. It returns the
// lane of each command, the error each command not sent was refused with
// (nil for the others), and an error if nothing was sent because the
// slot map could not be had. The outcome of each master's pipeline counts
// for its health: a master that does not answer is marked down after
// failureLimit failures, and then refused at once.
func (b *Backend) clusterWrites(ctx context.Context, keys []string, cmds []goredis.Cmder) ([]*lane, []error, error) {
	lanes := make([]*lane, len(cmds))
	var refused []error
	pipes := make(map[*lane]goredis.Pipeliner)
	var order []*lane
	bySlot := make(map[uint16]*lane)
	for i, k := range keys {
		s := slot(k)
		l := bySlot[s]
		if l == nil {
			var err error
			if l, err = b.lane(ctx, k); err != nil {
				return nil, nil, err // no slot map: the cluster is unreachable
			}
			bySlot[s] = l
		}
		lanes[i] = l
		if err := l.admit(); err != nil {
			if refused == nil {
				refused = make([]error, len(cmds))
			}
			refused[i] = err
			continue
		}
		pipe := pipes[l]
		if pipe == nil {
			pipe = b.client.Pipeline()
			pipes[l] = pipe
			order = append(order, l)
		}
		_ = pipe.Process(ctx, cmds[i]) // queues it; Exec sends it
	}
	if len(order) == 0 {
		return lanes, refused, nil
	}
	execPerMaster(ctx, order, pipes)
	outcome := make(map[*lane]error, len(order))
	for i, c := range cmds {
		if refused != nil && refused[i] != nil {
			continue
		}
		if terr := transportErr(c.Err()); terr != nil || outcome[lanes[i]] == nil {
			outcome[lanes[i]] = terr
		}
	}
	for l, err := range outcome {
		l.record(err)
	}
	return lanes, refused, nil
}

// multiError returns nil for no failures, or a *backend.MultiError of them.
func multiError(failed []backend.KeyError) error {
	if len(failed) == 0 {
		return nil
	}
	return &backend.MultiError{Errors: failed}
}
