package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key: one GET, or, when other calls to
// its server are in flight (see WithBatching), a share of one MGET in a
// pipeline. A miss gives an error wrapping backend.ErrNotFound (and
// goredis.Nil); a key holding a value this package did not write gives one
// wrapping ErrForeignValue; a server that does not answer within the
// timeout, or is marked down, one wrapping backend.ErrUnavailable.
//
// The returned Value shares the memory go-redis read the reply into: a
// read copies the value once, from the socket's buffer.
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
	add := func(ks []string, vals []any) {
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue
			}
			val, cas, err := decode(ks[i], s)
			if err != nil {
				failed = append(failed, backend.KeyError{Key: ks[i], Err: fmt.Errorf("redis: getmulti: %w", err)})
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
		vals, err = b.client.MGet(ctx, keys...).Result()
		b.lane0.record(transportErr(err))
		if err == nil && len(vals) != len(keys) {
			err = fmt.Errorf("MGET of %d keys answered %d values", len(keys), len(vals))
		}
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
	return out, failed, err
}

// getMultiCluster groups keys by hash slot and sends one MGET per slot in a
// single cluster pipeline, which go-redis splits by master and runs
// concurrently. The keys of a master marked down are not sent; they and
// the keys of an MGET that failed are returned as KeyErrors, and count as
// a failure of their master.
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
		if g == nil {
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
	pipe := b.client.Pipeline()
	sent := 0
	for _, g := range order {
		if err := g.lane.admit(); err != nil {
			for _, k := range g.keys {
				failed = append(failed, backend.KeyError{Key: k, Err: fmt.Errorf("redis: get %q: %w", k, err)})
			}
			continue
		}
		g.cmd = pipe.MGet(ctx, g.keys...)
		sent++
	}
	if sent == 0 {
		return failed, nil
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	outcome := make(map[*lane]error)
	for _, g := range order {
		if g.cmd == nil {
			continue
		}
		vals, err := g.cmd.Result()
		if err == nil && len(vals) != len(g.keys) {
			err = fmt.Errorf("MGET of %d keys answered %d values", len(g.keys), len(vals))
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
