package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

var _ backend.MultiWriter = (*Backend)(nil)

// GetMulti returns the items found among keys: one MGET on a standalone
// server; on a cluster, one MGET per hash slot, pipelined to every master
// at once; on a Ring, one MGET per shard, sent to every shard at once.
// Keys holding values this package did not write are left out of the map
// and named in a *backend.MultiError (their errors wrap ErrForeignValue);
// keys of another Redis type, which MGET reports as missing, are misses.
// On a cluster or a Ring, the keys of a master (a shard) that does not
// answer, or of a master (a shard) marked down, are named in the
// *backend.MultiError too (their errors wrap backend.ErrUnavailable and
// name it), with what the others hold in the map; and if ctx ends (its
// deadline, a cancellation) while some masters have answered and others
// not, GetMulti returns at once what those that answered hold, naming
// each key of the others with an error wrapping ctx's and naming the
// master. A standalone server that does not answer fails the whole call,
// as does a ctx that ends before any master answered.
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
	if ctx.Done() != nil {
		// bounded runs the read in a goroutine that ends on its own after
		// the call when ctx ends first: by then keys is the caller's again.
		keys = slices.Clone(keys)
	}
	g := &gather{b: b, out: make(map[string]backend.Item, len(keys))}
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) {
		return struct{}{}, b.multi(bctx, keys, g)
	})
	if cerr := ctx.Err(); cerr != nil && err == cerr {
		// bounded stopped waiting: the read may still be running, so only
		// the parts it finished are taken (see gather.seal). Only a
		// cluster's or a Ring's read has parts: a standalone server's is
		// one MGET, and that of another client one pipeline, which adds
		// the keys it could not read as misses, so it fails as a whole.
		if b.cluster != nil || isRing(b.client) {
			if m, failed, ok := g.seal(cerr); ok {
				return m, multiError(failed)
			}
		}
		return map[string]backend.Item{}, b.wrap(ctx, "getmulti", keysWhat(keys), err)
	}
	// The read has ended: g is the caller's alone.
	if err == nil && g.fatal != nil {
		return map[string]backend.Item{}, b.wrap(ctx, "getmulti", keysWhat(keys), g.fatal)
	}
	if err == nil && g.wrong != nil {
		return map[string]backend.Item{}, b.wrap(ctx, "getmulti", keysWhat(keys), g.wrong)
	}
	if err == nil && g.late && !g.answered {
		// The caller's deadline came before any master answered, as
		// when bounded stops waiting (see gather.seal).
		return map[string]backend.Item{}, b.wrap(ctx, "getmulti", keysWhat(keys), context.DeadlineExceeded)
	}
	if err != nil {
		return g.out, b.wrap(ctx, "getmulti", keysWhat(keys), err)
	}
	return g.out, multiError(g.failed)
}

// isRing reports whether c is a Ring, whose GetMulti is read in parts.
func isRing(c goredis.UniversalClient) bool {
	_, ok := c.(*goredis.Ring)
	return ok
}

// keysWhat names keys in an error: the first and how many more.
func keysWhat(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
}

// gather holds what a GetMulti has read: the items found, the keys that
// could not be read. On a cluster (a Ring) each master's (shard's)
// pipeline adds its part when it ends, concurrently. A caller whose ctx
// ends before such a read does seals it: it takes the parts of the masters
// that answered, and the pipelines still running add nothing more (their
// commands are read only by their own goroutine, once they are done).
type gather struct {
	b      *Backend
	mu     sync.Mutex
	out    map[string]backend.Item
	failed []backend.KeyError // foreign values; keys of a master that failed or is down
	wrong  error              // a value that is another key's: the whole read fails
	fatal  error              // the Backend was closed under the read, or a panic: the whole read fails
	// parts holds, on a cluster or a Ring, each server's share of the
	// read, those not done yet not answered; answered says some keys
	// were read.
	parts    []part
	answered bool
	sealed   bool
	late     bool // a master's keys were not read by the caller's deadline (callerTimedOut)
}

// add decodes the values read for ks (vals[i] is of ks[i]: a string, or
// nil for a miss). The caller holds g.mu.
func (g *gather) add(ks []string, vals []any) {
	g.answered = true
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // a miss (checked by mgetValues)
		}
		val, cas, err := decode(ks[i], s)
		if err != nil {
			g.failed = append(g.failed, backend.KeyError{Key: ks[i], Err: fmt.Errorf("redis: getmulti: %w", err)})
			continue
		}
		if err := g.b.owners.check(g.b.addr(), ks[i], cas); err != nil {
			g.wrong = err
			continue
		}
		g.out[ks[i]] = backend.Item{Key: ks[i], Value: val, CAS: cas}
	}
}

// seal ends the read for a caller whose ctx ended with cerr: it returns
// the items of the masters that answered and the keys that could not be
// read, each key of a master that has not answered with an error wrapping
// cerr and naming the master, and true; or false if the read fails as a
// whole (nothing was read, a value was another key's, the Backend was
// closed).
func (g *gather) seal(cerr error) (map[string]backend.Item, []backend.KeyError, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sealed = true
	if !g.answered || g.wrong != nil || g.fatal != nil {
		return nil, nil, false
	}
	failed := g.failed
	for _, p := range g.parts {
		if p.done {
			continue
		}
		for _, mg := range p.mgets {
			for _, k := range mg.keys {
				failed = append(failed, backend.KeyError{Key: k,
					Err: fmt.Errorf("redis: get %q: server %s had not answered when the context ended: %w", k, p.addr, cerr)})
			}
		}
	}
	return g.out, failed, true
}

// multi reads keys into g. It returns an error if the read as a whole
// failed.
func (b *Backend) multi(ctx context.Context, keys []string, g *gather) error {
	switch {
	case b.single != nil:
		if err := b.lane0.admit(); err != nil {
			return err
		}
		vals, err := b.mgetChunked(ctx, keys)
		if terr := transportErr(err); callerTimedOut(ctx, terr) {
			// The caller's own deadline, shorter than the timeout: that
			// is no failure of the server, which is asked instead.
			b.lane0.askServer()
		} else {
			b.lane0.record(terr)
		}
		if err != nil {
			return err
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.sealed {
			g.add(keys, vals)
		}
		return nil
	case b.cluster != nil:
		return b.getMultiCluster(ctx, keys, g)
	}
	if ring, ok := b.client.(*goredis.Ring); ok {
		return b.getMultiRing(ctx, ring, keys, g)
	}
	return b.getMultiPipelined(ctx, keys, g)
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

// part is one server's share of a GetMulti on a cluster or a Ring: the
// MGETs of its keys (on a cluster one per hash slot, which an MGET cannot
// span; each of up to maxMGetKeys keys), sent in one pipeline of their
// own, run concurrently with the other servers' (see execPipe: with one
// pipeline for all, a server that does not answer would fail the other
// servers' MGETs too).
type part struct {
	addr  string
	lane  *lane // the master's (the shard's), for its health
	pipe  goredis.Pipeliner
	mgets []partMGet
	done  bool // its outcome is in the gather, or it was not sent (under gather.mu)
}

// partMGet is one MGET of a part.
type partMGet struct {
	keys []string
	cmd  *goredis.SliceCmd
	part int // the index of its part, while the parts are made
}

// keyIn is a key and the group it is read in (its hash slot on a
// cluster, its shard's index on a Ring), for sorting.
type keyIn struct {
	group int
	key   string
}

// groupKeys returns the MGETs that read keys: keys sorted by their group
// (group(k) for each key), in runs of one group each and of up to
// maxMGetKeys keys, in order of group; each MGET's part is its group. The
// runs share one array.
func groupKeys(keys []string, group func(string) (int, error)) ([]partMGet, error) {
	in := make([]keyIn, len(keys))
	for i, k := range keys {
		g, err := group(k)
		if err != nil {
			return nil, err
		}
		in[i] = keyIn{g, k}
	}
	slices.SortStableFunc(in, func(a, b keyIn) int { return cmp.Compare(a.group, b.group) })
	sorted := make([]string, len(in))
	for i := range in {
		sorted[i] = in[i].key
	}
	var mgets []partMGet
	for i := 0; i < len(in); {
		j := i + 1
		for j < len(in) && in[j].group == in[i].group && j-i < maxMGetKeys {
			j++
		}
		mgets = append(mgets, partMGet{keys: sorted[i:j:j], part: in[i].group})
		i = j
	}
	return mgets, nil
}

// getMultiCluster reads keys on a cluster: one MGET per hash slot, in
// one pipeline per master (see part). The keys of a master marked down
// are not sent; they and the keys of an MGET that failed are added to g's
// failures, and an MGET that failed counts as a failure of its master.
// Each master's part goes into g as soon as its pipeline ends.
func (b *Backend) getMultiCluster(ctx context.Context, keys []string, g *gather) error {
	mgets, err := groupKeys(keys, func(k string) (int, error) { return int(slot(k)), nil })
	if err != nil {
		return err
	}
	var parts []part
	for i := range mgets {
		mg := &mgets[i]
		l, err := b.lane(ctx, mg.keys[0])
		if err != nil {
			return err // no slot map: the cluster is unreachable
		}
		p := slices.IndexFunc(parts, func(p part) bool { return p.lane == l })
		if p < 0 {
			p = len(parts)
			parts = append(parts, part{addr: l.addr, lane: l})
		}
		mg.part = p
	}
	// Each master's MGETs contiguous, as run needs.
	slices.SortStableFunc(mgets, func(a, b partMGet) int { return cmp.Compare(a.part, b.part) })
	g.refuseDown(parts, mgets, func(int) goredis.Pipeliner { return b.client.Pipeline() })
	g.run(ctx, parts, mgets)
	return nil
}

// refuseDown marks done each part whose server is marked down and adds
// its keys (mgets holds each part's MGETs) to g's failures, with the
// error the lane refuses calls with; it gives each other part i the
// pipeline pipe(i).
func (g *gather) refuseDown(parts []part, mgets []partMGet, pipe func(i int) goredis.Pipeliner) {
	var refused []backend.KeyError
	for i := range parts {
		if err := parts[i].lane.admit(); err != nil {
			parts[i].done = true
			for _, mg := range mgets {
				if mg.part == i {
					for _, k := range mg.keys {
						refused = append(refused, backend.KeyError{Key: k, Err: fmt.Errorf("redis: get %q: %w", k, err)})
					}
				}
			}
			continue
		}
		parts[i].pipe = pipe(i)
	}
	if refused != nil {
		g.mu.Lock()
		g.failed = append(g.failed, refused...)
		g.mu.Unlock()
	}
}

// getMultiRing reads keys on a Ring: one MGET (per maxMGetKeys keys) per
// shard, in one pipeline per shard, on the shard's own client (see part):
// go-redis's Ring pipeline, also split by shard, sets one error on all
// its commands. As on a cluster, the keys of a shard marked down are not
// sent; they and the keys of an MGET that failed are added to g's
// failures, and an MGET that failed counts as a failure of its shard.
// Each shard's part goes into g as soon as its pipeline ends.
func (b *Backend) getMultiRing(ctx context.Context, ring *goredis.Ring, keys []string, g *gather) error {
	var parts []part
	var clients []*goredis.Client // of each part
	index := make(map[*goredis.Client]int)
	mgets, err := groupKeys(keys, func(k string) (int, error) {
		c, err := ring.GetShardClientForKey(k)
		if err != nil {
			return 0, err // no shard is up, or the Ring is closed
		}
		i, ok := index[c]
		if !ok {
			l, err := b.nodeLane(c)
			if err != nil {
				return 0, err // closed
			}
			i = len(parts)
			index[c] = i
			parts = append(parts, part{addr: l.addr, lane: l})
			clients = append(clients, c)
		}
		return i, nil
	})
	if err != nil {
		return err
	}
	g.refuseDown(parts, mgets, func(i int) goredis.Pipeliner { return clients[i].Pipeline() })
	g.run(ctx, parts, mgets)
	return nil
}

// run sends the MGETs of each part not done, which mgets holds in order
// of part, in its pipeline, the parts' pipelines concurrently, and adds
// each part's outcome to g as soon as its pipeline ends (see finish).
func (g *gather) run(ctx context.Context, parts []part, mgets []partMGet) {
	var sent []*part
	for i := 0; i < len(mgets); {
		j := i + 1
		for j < len(mgets) && mgets[j].part == mgets[i].part {
			j++
		}
		p := &parts[mgets[i].part]
		p.mgets = mgets[i:j:j]
		i = j
		if p.done {
			continue // refused
		}
		for k := range p.mgets {
			p.mgets[k].cmd = p.pipe.MGet(ctx, p.mgets[k].keys...)
		}
		sent = append(sent, p)
	}
	g.mu.Lock()
	g.parts = parts
	g.mu.Unlock()
	concurrently(len(sent), func(i int) {
		p := sent[i]
		execPipe(ctx, p.addr, p.pipe)
		g.finish(ctx, p)
	})
}

// finish takes the replies of p's pipeline, which has ended: only its own
// goroutine reads its commands.
func (g *gather) finish(ctx context.Context, p *part) {
	b := g.b
	defer func() {
		if r := recover(); r != nil {
			g.mu.Lock() // not held: its Unlock was deferred later, so ran first
			if g.fatal == nil {
				g.fatal = panicError(p.addr, r)
			}
			g.mu.Unlock()
		}
	}()
	var outcome error
	var failed []backend.KeyError
	var closed error
	late := false     // the caller's deadline ended the read
	var unread []bool // of each MGET, if some were not read (seal reads p.mgets)
	for i, mg := range p.mgets {
		vals, err := mg.cmd.Result()
		if err == goredis.Nil {
			err = &protoError{Addr: p.addr, Msg: "MGET answered a null"}
		} else if err == nil {
			err = mgetValues(p.addr, len(mg.keys), vals)
		}
		if terr := transportErr(err); terr != nil {
			outcome = terr
		}
		if err != nil {
			if unread == nil {
				unread = make([]bool, len(p.mgets))
			}
			unread[i] = true
			if b.closed.Load() {
				closed = err
				continue
			}
			if callerTimedOut(ctx, err) {
				// As if the caller had stopped waiting (see seal).
				late = true
				for _, k := range mg.keys {
					failed = append(failed, backend.KeyError{Key: k, Err: fmt.Errorf("redis: get %q: server %s had not answered when the context ended: %w (%w)",
						k, p.addr, context.DeadlineExceeded, err)})
				}
				continue
			}
			if transportErr(err) != nil {
				err = fmt.Errorf("%w: server %s: %w", backend.ErrUnavailable, p.addr, err)
			}
			for _, k := range mg.keys {
				// Not b.wrap(ctx, ...): ctx is bounded's (see
				// callerTimedOut for the caller's deadline).
				failed = append(failed, backend.KeyError{Key: k, Err: b.wrap(context.Background(), "get", k, err)})
			}
			continue
		}
	}
	// Counted even when the caller has left: a master that hangs is to
	// be marked down whoever waited for it. But not when the caller's
	// deadline, sooner than the timeout, cut its read short: that says
	// nothing of the master (a Get is bounded by the timeout whatever
	// the caller's deadline), and one merely slower than the caller
	// wants would be marked down for every caller; the master is asked
	// instead (askServer).
	switch {
	case late: // outcome is the caller's deadline (callerTimedOut)
		p.lane.askServer()
	default:
		p.lane.record(outcome)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sealed {
		return
	}
	p.done = true
	g.late = g.late || late
	if closed != nil && g.fatal == nil {
		g.fatal = closed
	}
	g.failed = append(g.failed, failed...)
	for i, mg := range p.mgets {
		if unread == nil || !unread[i] {
			g.add(mg.keys, mg.cmd.Val())
		}
	}
}

// execPipe runs pipe, whose commands are all for the server at addr; a
// panic (in go-redis, on a reply it could not handle) is recovered and
// set as the error of each of its commands.
func execPipe(ctx context.Context, addr string, pipe goredis.Pipeliner) {
	cmds := pipe.Cmds() // Exec forgets them
	defer func() {
		if r := recover(); r != nil {
			perr := panicError(addr, r)
			for _, c := range cmds {
				c.SetErr(perr)
			}
		}
	}()
	_, _ = pipe.Exec(ctx)
}

// concurrently runs fn(0) to fn(n-1) at once, each in a goroutine of its
// own (one alone in the caller's), and returns when all have returned.
func concurrently(n int, fn func(int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// execPerMaster runs the pipeline of each lane of a cluster (a Ring),
// each holding the commands of one master (shard) only, concurrently (see
// execPipe); each command carries its own error. Separate pipelines,
// because go-redis retries a pipeline whose master did not answer, finds
// its deadline passed and then sets the context's error on every command
// of the pipeline, including those other masters answered.
func execPerMaster(ctx context.Context, lanes []*lane, pipes map[*lane]goredis.Pipeliner) {
	concurrently(len(lanes), func(i int) { execPipe(ctx, lanes[i].addr, pipes[lanes[i]]) })
}

// getMultiPipelined sends one GET per key in a pipeline, for clients other
// than those of a standalone server, a cluster or a Ring, which may not
// run MGET across their servers.
func (b *Backend) getMultiPipelined(ctx context.Context, keys []string, g *gather) error {
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
	g.mu.Lock()
	if !g.sealed {
		g.add(keys, vals)
	}
	g.mu.Unlock()
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
// trip on a standalone server; on a cluster one pipeline per master (on a
// Ring per shard), run concurrently. An item with an empty key, a negative TTL or a value over
// the size limit is not sent and is reported in the returned
// *backend.MultiError, as is an item the server refused; the other items
// are stored. Any other error (the context is done, the connection is
// lost, a server did not answer, the Backend is closed) wraps the matching
// sentinel, and then the outcome of each item is unknown. The call is
// bounded by the timeout (see WithTimeout); while the server is marked
// down it fails at once with an error wrapping backend.ErrUnavailable. On
// a cluster (a Ring), the items of a master (shard) marked down are not
// sent and are named in the *backend.MultiError (wrapping
// backend.ErrUnavailable), the other masters' items are stored; a master
// that does not answer counts as a failure of that master (see
// WithFailureLimit).
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
// sent in one go-redis pipeline (one per master on a cluster, per shard on
// a Ring). An absent key is reported in the returned *backend.MultiError
// with an error wrapping backend.ErrNotFound, as is an empty key
// (backend.ErrInvalidKey), a DEL the server refused or, on a cluster (a
// Ring), a key of a master (shard) marked down (backend.ErrUnavailable,
// not sent); the other keys are removed. Any
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
		// A DEL resent after it ran finds nothing: see noRetry.
		cmds = append(cmds, noRetry{goredis.NewIntCmd(ctx, "del", k)})
	}
	if len(cmds) > 0 {
		kes, err := b.execMulti(ctx, "deletemulti", "delete", sent, cmds, func(i int) error {
			switch n := cmds[i].(noRetry).Cmder.(*goredis.IntCmd).Val(); n {
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

// execMulti runs cmds in a pipeline (one per master on a cluster, per
// shard on a Ring, see serverWrites), bounded by the timeout, and returns
// the failure of each of its commands (cmds[i] is of keys[i]): a command
// the server answered with an error, one for which check, called for each
// command that succeeded, returns an error, or one not sent because its
// cluster master (Ring shard) is marked down. It returns a non-nil error instead when the outcome of
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
	var lanes []*lane // on a cluster (a Ring), the lane of each command; nil if not sent
	var refused []error
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) {
		if b.cluster != nil || b.ring != nil {
			var err error
			lanes, refused, err = b.serverWrites(bctx, keys, cmds)
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
	if lanes == nil && (b.cluster != nil || b.ring != nil) && err != nil {
		// No slot map (no shard up): nothing was sent.
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

// serverWrites sends cmds (cmds[i] writes keys[i]) on a cluster (a Ring)
// in one pipeline per master (shard), run concurrently (see
// execPerMaster), except the commands of a master marked down, which are
// not sent. It returns the lane of each command, the error each command
// not sent was refused with (nil for the others), and an error if nothing
// was sent because the slot map could not be had (no shard of the Ring is
// up). The outcome of each master's pipeline counts for its health: a
// master that does not answer is marked down after failureLimit failures,
// and then refused at once.
func (b *Backend) serverWrites(ctx context.Context, keys []string, cmds []goredis.Cmder) ([]*lane, []error, error) {
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
			if b.ring == nil {
				// A Ring's keys of one slot may be on different shards.
				bySlot[s] = l
			}
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
		if callerTimedOut(ctx, err) {
			l.askServer() // the caller's deadline: see askServer
		} else {
			l.record(err)
		}
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
