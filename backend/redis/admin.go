package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// scanCount is the COUNT hint of each SCAN call.
const scanCount = 1000

// The bound of one server's SCAN iteration, which a server that never
// ends it would otherwise make endless (and make Keys's map of the keys
// seen grow with it). Redis visits each bucket of its table once per
// iteration and returns the keys it holds then, so an iteration returns
// about as many keys as the server holds (DBSIZE) even while keys come and
// go; a page holds COUNT keys or covers 10 x COUNT buckets, and the table
// has at most 10 buckets a key while it can shrink. A server that returns
// more than twice the keys it says it holds, or makes more than 4 pages per
// COUNT keys, past the slack below, is refused. DBSIZE is asked only
// when the slack is spent, and again each time the bound is passed (the
// server may have grown meanwhile).
const scanSlackKeys = 10 * scanCount

// scanSlackPages is the pages allowed besides those the keys need: room
// for a table left large by keys deleted while it could not shrink (during
// a fork). (A variable for the tests.)
var scanSlackPages int64 = 1 << 16

// The slowest pace at which one server's SCAN iteration may go, past the
// timeout's slack: minScanKeyRate keys a second and a page each
// scanPageTime, added up (each key returned earns 0.5 ms, each page 250
// ms). A server that sends its pages each just within the timeout would
// otherwise hold a listing whose ctx has no deadline (memdict keys) for as
// long as the bound on its pages lets it (4 x DBSIZE / COUNT + 65,536
// pages: ~18 h at the default 1 s timeout); it now fails a few pages
// after it fell a timeout behind. A real redis-server lists ~800,000
// keys a second over loopback, and pages without matching keys in ~0.3
// ms (TestKeysScanRealServerPace): the page's share is for round trips
// over long links, where a prefix that matches few keys makes the pages
// come one a round trip. One that keeps exactly this pace with no keys
// is still held for the bound on its pages: ~4.5 h for the slack of
// 65,536. (Variables for the tests.)
var (
	minScanKeyRate int64 = 2000
	scanPageTime         = 250 * time.Millisecond
)

// maxDBSize caps what DBSIZE may say, so that the bounds do not overflow
// (far above any server).
const maxDBSize = 1 << 40

// maxPlausibleDBSize is the largest DBSIZE believed: the 2^32 keys Redis
// documents as what an instance can hold (its FAQ). A server that says it
// holds more is bounded as one that refuses DBSIZE.
const maxPlausibleDBSize = 1 << 32

// maxUnsizedScanKeys bounds the keys (repeats and all) one server's SCAN
// iteration may return when its size is unknown: it refuses DBSIZE, or
// says more than maxPlausibleDBSize. Its iteration cannot be checked
// against what it holds, and would otherwise be bounded by ctx alone:
// with a context without deadline (memdict keys), a server returning 1,000
// new keys a page filled the map of keys seen at ~500,000 keys a second
// (1.47M keys, 136 MiB in 3 s), without end. 4M keys of Redis's usual
// sizes take a few hundred MiB in that map. (A variable for the tests.)
var maxUnsizedScanKeys int64 = 1 << 22

// scanBound counts one server's SCAN iteration against what it holds.
type scanBound struct {
	// size is the largest DBSIZE the server said; -1: its size is
	// unknown (it refused DBSIZE, or said more than maxPlausibleDBSize).
	size    int64
	claimed int64 // what DBSIZE said past maxPlausibleDBSize, if it did
	keys    int64 // keys returned, repeats and all
	pages   int64
}

// over reports whether the iteration went past the bound of size keys,
// or past maxUnsizedScanKeys when the size is unknown.
func (sb *scanBound) over() bool {
	size := sb.size
	if size < 0 {
		if sb.keys > maxUnsizedScanKeys {
			return true
		}
		size = maxUnsizedScanKeys / 2
	}
	return sb.keys > 2*size+scanSlackKeys || sb.pages > 4*size/scanCount+scanSlackPages
}

// countPage counts a page of n keys. Past the bound it asks the server's
// DBSIZE again, and returns an error if the iteration is still past it
// (or if DBSIZE fails other than by a refusal, which makes the size
// unknown).
func (b *Backend) countPage(ctx context.Context, n *goredis.Client, sb *scanBound, keys int) error {
	sb.keys += int64(keys)
	sb.pages++
	if !sb.over() {
		return nil
	}
	addr := n.Options().Addr
	if sb.size >= 0 {
		size, err := bounded(b, ctx, func(ctx context.Context) (int64, error) { return n.DBSize(ctx).Result() })
		var re goredis.Error
		switch {
		case errors.As(err, &re) && !errors.Is(err, ErrProtocol):
			// A server that refuses DBSIZE (renamed, or denied by an
			// ACL) is listed up to maxUnsizedScanKeys.
			sb.size = -1
		case err != nil:
			return fmt.Errorf("dbsize %s: %w", addr, err)
		case size > maxPlausibleDBSize:
			sb.size, sb.claimed = -1, min(size, maxDBSize)
		default:
			sb.size = max(sb.size, size)
		}
		if !sb.over() {
			return nil
		}
	}
	switch {
	case sb.claimed > 0:
		return &protoError{Addr: addr, Msg: fmt.Sprintf("SCAN returned %d keys in %d pages of one iteration, more than the %d "+
			"listed of a server whose size is unknown: its DBSIZE, %d, is more than a Redis server holds", sb.keys, sb.pages, maxUnsizedScanKeys, sb.claimed)}
	case sb.size < 0:
		return fmt.Errorf("scan %s: %w: SCAN returned %d keys in %d pages of one iteration, more than the %d listed of a server "+
			"that refuses DBSIZE (its size unknown, an iteration that never ends cannot be told from a large one)",
			addr, backend.ErrUnavailable, sb.keys, sb.pages, maxUnsizedScanKeys)
	}
	return &protoError{Addr: addr, Msg: fmt.Sprintf("SCAN returned %d keys in %d pages of one iteration, "+
		"more than the %d keys DBSIZE says the server holds allow: it never ends the iteration", sb.keys, sb.pages, sb.size)}
}

// nodes returns a client per server: the one server of a standalone
// client, every master (masters true) or every node of a cluster, every
// shard of a Ring, those its heartbeat marked down included (see
// ringNodes). unseen holds the addresses of a Ring's shards marked down
// that the Backend has no client for: callers report each as not reached.
func (b *Backend) nodes(ctx context.Context, masters bool) (out []*goredis.Client, unseen []string, err error) {
	var mu sync.Mutex
	collect := func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		out = append(out, c)
		mu.Unlock()
		return nil
	}
	switch c := b.client.(type) {
	case *goredis.Client:
		out = []*goredis.Client{c}
	case *goredis.ClusterClient:
		if masters {
			err = c.ForEachMaster(ctx, collect)
		} else {
			err = c.ForEachShard(ctx, collect)
		}
	case *goredis.Ring:
		err = c.ForEachShard(ctx, collect)
		if err == nil {
			out, unseen = b.ringNodes(out)
		}
	default:
		return nil, nil, fmt.Errorf("%w: per-server commands on a %T", backend.ErrNotSupported, b.client)
	}
	if err != nil {
		return nil, nil, err
	}
	return out, unseen, nil
}

// ringShard records n, the client of a Ring's shard, in b.ringShards.
func (b *Backend) ringShard(n *goredis.Client) {
	b.ringMu.Lock()
	if b.ringShards != nil {
		b.ringShards[n.Options().Addr] = n
	}
	b.ringMu.Unlock()
}

// seenShard records n, the client of a Ring's shard that go-redis gave the
// Backend, if it is not the one recorded for its address. On a Ring given
// to NewFromClient, such a client is one of a shard that was down then
// (go-redis's ForEachShard skipped it): it is guarded from now on (see
// hookSeen). b.ringMu must be held.
func (b *Backend) seenShard(n *goredis.Client) {
	addr := n.Options().Addr
	if b.ringShards[addr] == n {
		return
	}
	b.ringShards[addr] = n
	if b.hookSeen {
		n.AddHook(b.guard)
	}
}

// ringNodes completes up, the clients of the Ring's shards that are up
// (Ring.ForEachShard), with the shards its heartbeat marked down: go-redis
// skips those (its ForEachShard, GetShardClients), and a listing, stats
// or a flush made of the others would leave them out without a word. It
// returns the clients of all the shards the Backend knows of (the up ones
// first), and the addresses of those marked down it has no client for
// (down since before NewFromClient, and not seen up since). A shard
// SetAddrs removed has its client closed: callers skip a shard whose
// client answers goredis.ErrClosed (see removedShard). One removed while
// the Backend had no client for it is still named as not reached.
func (b *Backend) ringNodes(up []*goredis.Client) (all []*goredis.Client, unseen []string) {
	live := make(map[string]bool, len(up))
	for _, n := range up {
		live[n.Options().Addr] = true
	}
	all = up
	b.ringMu.Lock()
	for _, n := range up {
		b.seenShard(n)
	}
	var down []*goredis.Client
	for addr, n := range b.ringShards {
		switch {
		case live[addr]:
		case n == nil:
			unseen = append(unseen, addr)
		default:
			down = append(down, n)
		}
	}
	b.ringMu.Unlock()
	slices.SortFunc(down, func(x, y *goredis.Client) int { return strings.Compare(x.Options().Addr, y.Options().Addr) })
	slices.Sort(unseen)
	return append(all, down...), unseen
}

// removedShard reports whether err, from a Ring shard's client n, says
// that go-redis closed n: SetAddrs removed the shard from the Ring (the
// Backend itself is open). It forgets n, so that the shard is no longer
// listed.
func (b *Backend) removedShard(n *goredis.Client, err error) bool {
	if b.ring == nil || !errors.Is(err, goredis.ErrClosed) || b.closed.Load() {
		return false
	}
	b.ringMu.Lock()
	if b.ringShards[n.Options().Addr] == n {
		delete(b.ringShards, n.Options().Addr)
	}
	b.ringMu.Unlock()
	return true
}

// unseenShard is the error of a Ring's shard at addr that the Ring's
// heartbeat marked down and the Backend has no client for.
func unseenShard(addr string) error {
	return fmt.Errorf("shard %s: %w: the Ring's heartbeat marked it down and the Backend has no client of it: not reached",
		addr, backend.ErrUnavailable)
}

// scanPage is one SCAN reply.
type scanPage struct {
	keys []string
	next uint64
}

// escapeGlob escapes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// Keys yields the live keys that start with prefix, each once, with
// SCAN MATCH <prefix>* (the prefix glob-escaped) on the server, or on every
// master of a cluster in turn. Keys of any Redis type are listed, including
// values this package did not write. A failure is yielded as a final
// ("", err) pair. A server whose SCAN never ends its iteration fails it
// with an error wrapping ErrProtocol that names the server: one whose
// cursor comes back within the iteration (it cycles), or that returns more
// than twice the keys its DBSIZE says it holds, or more pages than they
// need, past a slack of 10,000 keys and 65,536 pages (DBSIZE is asked only
// then). A server whose size is unknown, because it refuses DBSIZE or says
// it holds more than the 2^32 keys a Redis server can, is listed up to
// 4,194,304 keys (repeats and all) in one iteration: past them, the
// listing fails with an error that names the server and the count,
// wrapping backend.ErrUnavailable (DBSIZE refused) or ErrProtocol (DBSIZE
// absurd). Each SCAN page is read with bounds of its own (at most
// max(10 x COUNT, 10,000) keys of at most 64 MiB in all, a cursor of at
// most 20 digits): a reply that is not such a page is a protocol error
// naming the server, and its connection is closed. Each server's
// iteration must also keep up a pace, whatever ctx: past the timeout,
// 2,000 keys a second and 4 pages a second, added up; one that falls
// behind (its pages trickle, each within the timeout) fails with an error
// wrapping backend.ErrUnavailable that names it and the pace. On a Ring,
// every shard is listed, those its heartbeat marked down included (go-redis
// skips them; see ringNodes), and a shard the Backend has no client of
// (marked down since before NewFromClient) ends the listing, after the
// others' keys, with an error wrapping backend.ErrUnavailable that names
// it.
func (b *Backend) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if b.closed.Load() {
			yield("", fmt.Errorf("redis: keys %q: %w", prefix, backend.ErrClosed))
			return
		}
		if err := ctx.Err(); err != nil {
			yield("", fmt.Errorf("redis: keys %q: %w", prefix, err))
			return
		}
		var unseen []string
		nodes, err := bounded(b, ctx, func(ctx context.Context) (nodes []*goredis.Client, err error) {
			nodes, unseen, err = b.nodes(ctx, true)
			return nodes, err
		})
		if err != nil {
			yield("", b.wrap(ctx, "keys", prefix, err))
			return
		}
		pattern := escapeGlob(prefix) + "*"
		seen := make(map[string]struct{})
		for _, n := range nodes {
			var cursor uint64
			// A full iteration never gives a cursor twice (Redis's
			// cursor grows in bit-reversed order until it wraps to 0; a
			// cluster's per-slot cursors pair it with the slot, which
			// only grows): a cursor that comes back is a server that
			// cycles and never ends the iteration. Brent's algorithm
			// finds the cycle within twice its length and start, in
			// constant memory: saved is the cursor at the last power of
			// two, steps the pages since.
			var saved, steps, power uint64 = 0, 0, 1
			var sb scanBound
			// The iteration must keep up a pace (see minScanKeyRate): each
			// page is due by start + earned, and within the timeout.
			start, earned := time.Now(), b.cfg.timeout
			for {
				paced := start.Add(earned)
				pctx, cancel := context.WithDeadline(ctx, paced)
				page, err := bounded(b, pctx, func(ctx context.Context) (scanPage, error) {
					return scanOnce(ctx, n, cursor, pattern, scanCount)
				})
				cancel()
				keys, next := page.keys, page.next
				if err != nil && ctx.Err() == nil && !time.Now().Before(paced) {
					err = fmt.Errorf("scan %s: %w: SCAN too slow: %d keys in %d pages in %v of waiting for them, under the pace of %d keys "+
						"and %d pages a second past the first %v: %w", n.Options().Addr, backend.ErrUnavailable,
						sb.keys, sb.pages, time.Since(start).Round(time.Millisecond), minScanKeyRate,
						time.Second/scanPageTime, b.cfg.timeout, err)
					yield("", b.wrap(ctx, "keys", prefix, err))
					return
				}
				earned += scanPageTime + time.Duration(len(keys))*time.Second/time.Duration(minScanKeyRate)
				if err != nil {
					if b.removedShard(n, err) {
						break
					}
					if addr := n.Options().Addr; backend.ServerOf(err) != addr {
						err = fmt.Errorf("scan %s: %w", addr, err) // name the server once
					}
					yield("", b.wrap(ctx, "keys", prefix, err))
					return
				}
				if err := b.countPage(ctx, n, &sb, len(keys)); err != nil {
					yield("", b.wrap(ctx, "keys", prefix, err))
					return
				}
				// The time the caller takes with the keys is not the
				// server's: the pace counts only the time waiting for it.
				yielded := time.Now()
				for _, k := range keys {
					if !strings.HasPrefix(k, prefix) {
						continue // defensive: the pattern is escaped
					}
					if _, dup := seen[k]; dup {
						continue
					}
					seen[k] = struct{}{}
					if !yield(k, nil) {
						return
					}
				}
				start = start.Add(time.Since(yielded))
				if next == 0 {
					break
				}
				if next == saved {
					addr := n.Options().Addr
					yield("", b.wrap(ctx, "keys", prefix, &protoError{Addr: addr,
						Msg: fmt.Sprintf("SCAN gave cursor %d twice in one iteration: it cycles and never ends the iteration", next)}))
					return
				}
				if steps++; steps == power {
					saved, steps, power = next, 0, power*2
				}
				cursor = next
			}
		}
		if len(unseen) > 0 {
			errs := make([]error, len(unseen))
			for i, addr := range unseen {
				errs[i] = unseenShard(addr)
			}
			yield("", b.wrap(ctx, "keys", prefix, errors.Join(errs...)))
		}
	}
}

// ServerStats returns the INFO of every server (every node of a cluster,
// replicas included), one NodeStats per server, parsed into name/value
// pairs ("used_memory", "keyspace_hits", "db0", ...). A server that does
// not answer has its Err set; ServerStats returns an error only when the
// servers cannot be enumerated. On a Ring every shard has its NodeStats,
// those its heartbeat marked down included (a shard the Backend has no
// client of has Err set, wrapping backend.ErrUnavailable).
func (b *Backend) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	if err := b.check(ctx, "stats", "-"); err != nil {
		return nil, err
	}
	st, err := bounded(b, ctx, func(bctx context.Context) ([]backend.NodeStats, error) { return b.serverStats(bctx) })
	if err != nil && err == ctx.Err() { // bounded gave up waiting
		return nil, b.wrap(ctx, "stats", "-", err)
	}
	return st, err
}

func (b *Backend) serverStats(ctx context.Context) ([]backend.NodeStats, error) {
	nodes, unseen, err := b.nodes(ctx, false)
	if err != nil {
		return nil, b.wrap(ctx, "stats", "-", err)
	}
	out := make([]backend.NodeStats, len(nodes), len(nodes)+len(unseen))
	removed := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			ns := backend.NodeStats{Addr: b.nodeAddr(n)}
			defer func() {
				if r := recover(); r != nil {
					out[i] = backend.NodeStats{Addr: ns.Addr, Err: b.wrap(ctx, "info", ns.Addr, panicError(ns.Addr, r))}
				}
			}()
			info, err := n.Info(ctx).Result()
			if err != nil {
				removed[i] = b.removedShard(n, err)
				ns.Err = b.wrap(ctx, "info", ns.Addr, err)
			} else {
				ns.Stats = parseInfo(info)
			}
			out[i] = ns
		})
	}
	wg.Wait()
	kept := out[:0]
	for i, ns := range out {
		if !removed[i] {
			kept = append(kept, ns)
		}
	}
	out = kept
	for _, addr := range unseen {
		out = append(out, backend.NodeStats{Addr: addr, Err: b.wrap(ctx, "info", addr, unseenShard(addr))})
	}
	return out, nil
}

// parseInfo parses INFO's "name:value" lines, skipping "# Section" lines.
func parseInfo(info string) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// Flush runs FLUSHDB on the server, or on every master of a cluster or
// shard of a Ring (a shard not reached is named in the error), dropping every key of the database, other programs' keys included. It is
// disabled unless the Backend was made with WithFlush(true) (URL option
// allow_flush=true): otherwise it returns an error wrapping
// backend.ErrNotSupported. It never runs FLUSHALL.
func (b *Backend) Flush(ctx context.Context) error {
	if err := b.check(ctx, "flush", "-"); err != nil {
		return err
	}
	if !b.cfg.flush {
		return fmt.Errorf("redis: flush: %w: it would FLUSHDB a database other programs may share; "+
			"enable it with WithFlush(true) or the URL option allow_flush=true", backend.ErrNotSupported)
	}
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) { return struct{}{}, b.flush(bctx) })
	if err != nil && err == ctx.Err() { // bounded gave up waiting
		return b.wrap(ctx, "flush", "-", err)
	}
	return err
}

func (b *Backend) flush(ctx context.Context) error {
	nodes, unseen, err := b.nodes(ctx, true)
	if err != nil {
		return b.wrap(ctx, "flush", "-", err)
	}
	var errs []error
	for _, n := range nodes {
		if err := n.FlushDB(ctx).Err(); err != nil && !b.removedShard(n, err) {
			errs = append(errs, b.wrap(ctx, "flush", n.Options().Addr, err))
		}
	}
	for _, addr := range unseen {
		errs = append(errs, b.wrap(ctx, "flush", addr, unseenShard(addr)))
	}
	return errors.Join(errs...)
}

// Ping sends PING to the server, or to every node of a cluster or shard
// of a Ring (those its heartbeat marked down included), and returns nil if
// all answer, or an error naming each one that does not.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.check(ctx, "ping", "-"); err != nil {
		return err
	}
	_, err := bounded(b, ctx, func(bctx context.Context) (struct{}, error) { return struct{}{}, b.ping(bctx) })
	if err != nil && err == ctx.Err() { // bounded gave up waiting
		return b.wrap(ctx, "ping", "-", err)
	}
	return err
}

func (b *Backend) ping(ctx context.Context) error {
	nodes, unseen, err := b.nodes(ctx, false)
	if err != nil {
		if errors.Is(err, backend.ErrNotSupported) {
			if err := b.client.Ping(ctx).Err(); err != nil {
				return b.wrap(ctx, "ping", "-", err)
			}
			return nil
		}
		return b.wrap(ctx, "ping", "-", err)
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					errs[i] = b.wrap(ctx, "ping", n.Options().Addr, panicError(n.Options().Addr, r))
				}
			}()
			if err := n.Ping(ctx).Err(); err != nil && !b.removedShard(n, err) {
				errs[i] = b.wrap(ctx, "ping", n.Options().Addr, err)
			}
		})
	}
	wg.Wait()
	for _, addr := range unseen {
		errs = append(errs, b.wrap(ctx, "ping", addr, unseenShard(addr)))
	}
	return errors.Join(errs...)
}

// nodeAddr names n, a client of b.nodes, in statistics: its address, or
// on Redis Sentinel the master's name.
func (b *Backend) nodeAddr(n *goredis.Client) string {
	if b.sentinel != nil {
		return b.lane0.addr
	}
	return n.Options().Addr
}

// Describe implements backend.Describer, without I/O: the system "redis"
// and one server, with go-redis's pool statistics (connections open, and
// idle in the pool). The server is the address of a standalone server;
// on a cluster, whose pools go-redis sums over the nodes, the seed
// addresses joined by commas; on Redis Sentinel "master NAME (sentinel)";
// "" for a client given to NewFromClient of another kind. On a Ring, one
// server per shard, by address, each with its own client's pool
// statistics: the shards that are up, and those its heartbeat marked down
// that the Backend knows of (see ringNodes; a shard SetAddrs removed stays
// listed, with no connections, until Keys, ServerStats, Ping or Flush
// finds its client closed). The connections the near cache's tracking
// holds are not counted.
func (b *Backend) Describe() backend.Description {
	var addr string
	switch {
	case b.ring != nil:
		return b.describeRing()
	case b.sentinel != nil:
		addr = b.lane0.addr
	case b.single != nil:
		addr = b.single.Options().Addr
	case b.cluster != nil:
		addr = strings.Join(b.cluster.Options().Addrs, ",")
	}
	st := b.client.PoolStats()
	return backend.Description{System: "redis", Servers: []backend.ServerConns{{Addr: addr, Open: int(st.TotalConns), Idle: int(st.IdleConns)}}}
}

// describeRing is Describe on a Ring.
func (b *Backend) describeRing() backend.Description {
	// The shards that are up (no I/O).
	up := b.ring.GetShardClients()
	all, unseen := b.ringNodes(up)
	d := backend.Description{System: "redis", Servers: make([]backend.ServerConns, 0, len(all)+len(unseen))}
	for _, n := range all {
		st := n.PoolStats()
		d.Servers = append(d.Servers, backend.ServerConns{Addr: n.Options().Addr, Open: int(st.TotalConns), Idle: int(st.IdleConns)})
	}
	for _, addr := range unseen {
		d.Servers = append(d.Servers, backend.ServerConns{Addr: addr})
	}
	slices.SortFunc(d.Servers, func(x, y backend.ServerConns) int { return strings.Compare(x.Addr, y.Addr) })
	return d
}
