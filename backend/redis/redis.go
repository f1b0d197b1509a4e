package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/batch"
)

// DefaultMaxValueSize is the largest value a Backend stores unless
// WithMaxValueSize says otherwise: Redis's own limit on a string (512 MiB,
// proto-max-bulk-len) less the 11-byte header this package adds.
const DefaultMaxValueSize = 512<<20 - headerLen

// ErrAuth is wrapped by the error returned when the server refuses the
// configured credentials (WRONGPASS, NOAUTH) or denies a command to the
// ACL user (NOPERM). The error names the user, never the password.
var ErrAuth = errors.New("backend/redis: authentication failed")

// errNotFound is returned for every miss: a static error, so that a miss
// costs no allocation, that wraps backend.ErrNotFound and goredis.Nil.
var errNotFound = fmt.Errorf("redis: %w (%w)", backend.ErrNotFound, goredis.Nil)

// Backend is a backend.Backend on a Redis server or a Redis Cluster,
// through a go-redis client. It also implements backend.Lister,
// backend.StatsReporter, backend.Pinger, backend.MultiWriter (pipelined
// writes and deletes) and backend.Flusher (Flush is disabled unless enabled
// with WithFlush).
//
// A Backend is safe for concurrent use by multiple goroutines.
type Backend struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // non-nil for a cluster client
	single  *goredis.Client        // non-nil for a standalone client
	owns    bool                   // Close closes client
	closed  atomic.Bool
	cfg     config
	user    string         // ACL user, for error messages
	batcher *batch.Batcher // nil when batching is off
	gets    atomic.Int64   // Gets in flight, for the batcher's fast path
	calls   sync.WaitGroup // goroutines started by cancellable
	callsMu sync.RWMutex   // orders calls.Add before Close's calls.Wait
	closing bool           // set by Close under callsMu
}

// config holds what Options set.
type config struct {
	maxValueSize int
	flush        bool
	batch        bool
	batchOpts    batch.Options
}

// An Option configures a Backend made by New, NewCluster or NewFromClient.
type Option func(*config)

// WithMaxValueSize makes Set, Add and CompareAndSwap reject values longer
// than n bytes with backend.ErrValueTooLarge. The default, also used for
// n <= 0, is DefaultMaxValueSize.
func WithMaxValueSize(n int) Option {
	return func(c *config) {
		if n <= 0 || n > DefaultMaxValueSize {
			n = DefaultMaxValueSize
		}
		c.maxValueSize = n
	}
}

// WithFlush enables Flush, which runs FLUSHDB: it drops every key of the
// Redis database (of every master, on a cluster), including keys that other
// programs and other Dicts store there. Use it only on a database memdict
// has to itself. By default Flush returns an error wrapping
// backend.ErrNotSupported. FLUSHALL is never used.
func WithFlush(enabled bool) Option {
	return func(c *config) { c.flush = enabled }
}

// WithBatching turns the coalescing of concurrent Get calls on (the
// default) or off. With it on, a Get that finds another Get of the same
// server in flight waits for it and is sent, with the others that queued
// meanwhile, as one MGET (on a cluster: one pipeline of MGETs per hash
// slot); a lone Get is sent at once, as a plain read, so batching adds no
// latency when there is no concurrency. maxInFlight bounds the fetches in
// flight per server (0: 2) and maxBatch the keys per fetch (0: 256).
func WithBatching(enabled bool, maxInFlight, maxBatch int) Option {
	return func(c *config) {
		c.batch = enabled
		if maxInFlight > 0 {
			c.batchOpts.MaxInFlight = maxInFlight
		}
		if maxBatch > 0 {
			c.batchOpts.MaxBatch = maxBatch
		}
	}
}

// Defaults of WithBatching.
const (
	DefaultBatchInFlight = 2
	DefaultBatchSize     = 256
)

func newConfig(opts []Option) config {
	c := config{
		maxValueSize: DefaultMaxValueSize,
		batch:        true,
		batchOpts:    batch.Options{MaxInFlight: DefaultBatchInFlight, MaxBatch: DefaultBatchSize},
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// New returns a Backend on the standalone Redis server that opt describes.
// It copies opt and, in the copy, sets ContextTimeoutEnabled (so that every
// call honours its context's deadline) and DisableIdentity; it sets
// DialerRetries to 1 if it is 0 (a cache should fail fast when its server
// is down, not retry a refused dial five times) and MaxRetries to -1, no
// retries, if it is 0 (a retried Increment, Add or CompareAndSwap whose
// first attempt reached the server would be applied twice or misreported;
// set MaxRetries above 0 to accept that for transparent retries); and it
// disables maintenance notifications unless opt configures them. It does not connect:
// the first call (or Ping) does. Close closes the client it creates.
func New(opt *goredis.Options, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: New with nil options")
	}
	o := *opt
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	c := goredis.NewClient(&o)
	b := newBackend(c, options)
	b.owns = true
	b.user = o.Username
	return b, nil
}

// NewCluster returns a Backend on the Redis Cluster that opt describes
// (opt.Addrs are seed nodes; the others are discovered). It adjusts a copy
// of opt as New does. It does not connect: the first call (or Ping) does.
// Close closes the client it creates.
func NewCluster(opt *goredis.ClusterOptions, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: NewCluster with nil options")
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("redis: NewCluster with no seed addresses")
	}
	o := *opt
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	c := goredis.NewClusterClient(&o)
	b := newBackend(c, options)
	b.owns = true
	b.user = o.Username
	return b, nil
}

// NewFromClient returns a Backend that uses client, a *goredis.Client, a
// *goredis.ClusterClient or another goredis.UniversalClient (such as a
// *goredis.Ring, on which multi-gets are pipelined GETs). The caller keeps
// ownership of client: Close does not close it. For calls to honour their
// context's deadline, the client should have ContextTimeoutEnabled set.
// NewFromClient returns an error if client is nil.
func NewFromClient(client goredis.UniversalClient, options ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("redis: NewFromClient with a nil client")
	}
	b := newBackend(client, options)
	switch c := client.(type) {
	case *goredis.Client:
		b.user = c.Options().Username
	case *goredis.ClusterClient:
		b.user = c.Options().Username
	}
	return b, nil
}

func newBackend(c goredis.UniversalClient, options []Option) *Backend {
	b := &Backend{client: c, cfg: newConfig(options)}
	switch c := c.(type) {
	case *goredis.ClusterClient:
		b.cluster = c
	case *goredis.Client:
		b.single = c
	}
	if b.cfg.batch {
		// On a cluster, batchedGet groups keys by master (see group), so
		// that each master has its own fetches in flight.
		b.batcher = batch.New(b.fetch, b.cfg.batchOpts)
	}
	return b
}

// fetch is the batch.Fetch of Get: a multi-get in which a key holding a
// value this package did not write is reported as an Item with CAS 0 (real
// items never have CAS 0), so that only its own caller sees the error.
//
// A lone key is read with GET rather than MGET (the same cost), so that a
// key holding another Redis type is reported too: MGET says nil for it.
func (b *Backend) fetch(ctx context.Context, _ string, keys []string) (map[string]backend.Item, error) {
	if len(keys) != 1 {
		return b.multi(ctx, keys, true)
	}
	key := keys[0]
	s, err := b.client.Get(ctx, key).Result()
	switch {
	case err == goredis.Nil:
		return nil, nil
	case err != nil && wrongType(err):
		return map[string]backend.Item{key: {Key: key}}, nil
	case err != nil:
		return nil, b.wrap(ctx, "get", key, err)
	}
	v, cas, err := decode(key, s)
	if err != nil {
		return map[string]backend.Item{key: {Key: key}}, nil
	}
	return map[string]backend.Item{key: {Key: key, Value: v, CAS: cas}}, nil
}

// Client returns the go-redis client the Backend uses, for commands this
// package does not offer. Values the Backend stores carry an 11-byte
// header (see the package documentation).
func (b *Backend) Client() goredis.UniversalClient { return b.client }

// check returns the error a call must return before any I/O: ErrClosed
// after Close, ctx's error if ctx is done, ErrInvalidKey for an empty key
// (key "-" stands for calls without a key).
func (b *Backend) check(ctx context.Context, op, key string) error {
	if b.closed.Load() {
		return fmt.Errorf("redis: %s: %w", where(op, key), backend.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", where(op, key), err)
	}
	if key == "" {
		return fmt.Errorf("redis: %s: %w: empty key", op, backend.ErrInvalidKey)
	}
	return nil
}

// where names a call in errors: the operation and, unless it is "-", the
// key or server.
func where(op, key string) string {
	if key == "-" {
		return op
	}
	return op + " " + strconv.Quote(key)
}

// ttlArg returns ttl in whole milliseconds, rounded up, as Redis's PX and
// PEXPIRE take it; "0" means no expiry.
func ttlArg(op, key string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("redis: %s %q: %w: %v", op, key, backend.ErrInvalidTTL, ttl)
	}
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	return ms, nil
}

// Get returns the item stored under key: one GET, or, when other Gets are
// in flight (see WithBatching), a share of one MGET. A miss gives an error
// wrapping backend.ErrNotFound (and goredis.Nil); a key holding a value
// this package did not write gives one wrapping ErrForeignValue.
func (b *Backend) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := b.check(ctx, "get", key); err != nil {
		return backend.Item{}, err
	}
	if b.batcher != nil {
		// A Get with no other Get in flight goes straight to the server,
		// skipping the batcher's bookkeeping; the others queue in it. So
		// do Gets whose context can be cancelled: the batcher stops
		// waiting for them when it is.
		n := b.gets.Add(1)
		defer b.gets.Add(-1)
		if n > 1 || ctx.Done() != nil {
			return b.batchedGet(ctx, key)
		}
	}
	return b.directGet(ctx, key)
}

// batchedGet is Get through the batcher.
func (b *Backend) batchedGet(ctx context.Context, key string) (backend.Item, error) {
	it, err := b.batcher.GetGroup(ctx, b.group(ctx, key), key)
	switch {
	case err == nil && it.CAS != 0:
		return it, nil
	case err == nil:
		// A foreign value (marked by fetch): read it alone for its error.
		return b.directGet(ctx, key)
	case errors.Is(err, backend.ErrNotFound):
		return backend.Item{}, errNotFound
	case errors.Is(err, backend.ErrClosed):
		return backend.Item{}, fmt.Errorf("redis: get %q: %w", key, backend.ErrClosed)
	case b.closed.Load():
		// Close cancelled the batcher's fetch this Get was part of.
		return backend.Item{}, fmt.Errorf("redis: get %q: %w: %w", key, backend.ErrClosed, err)
	case ctx.Err() != nil:
		return backend.Item{}, fmt.Errorf("redis: get %q: %w", key, err)
	}
	return backend.Item{}, err
}

// group returns the batcher group of key: on a cluster the address of the
// master that holds it (asking with ctx, since go-redis may have to load
// the cluster's slots first), otherwise "". A key whose master is unknown
// goes to group "": its fetch then fails or is redirected by go-redis.
func (b *Backend) group(ctx context.Context, key string) string {
	if b.cluster == nil {
		return ""
	}
	if m, err := b.cluster.MasterForKey(ctx, key); err == nil {
		return m.Options().Addr
	}
	return ""
}

// directGet is Get with one GET of its own.
func (b *Backend) directGet(ctx context.Context, key string) (backend.Item, error) {
	s, err := cancellable(b, ctx, func() (string, error) { return b.client.Get(ctx, key).Result() })
	if err != nil {
		if err == goredis.Nil {
			return backend.Item{}, errNotFound
		}
		return backend.Item{}, b.wrap(ctx, "get", key, err)
	}
	v, cas, err := decode(key, s)
	if err != nil {
		return backend.Item{}, fmt.Errorf("redis: get: %w", err)
	}
	return backend.Item{Key: key, Value: v, CAS: cas}, nil
}

// GetMulti returns the items found among keys: one MGET on a standalone
// server; on a cluster, one MGET per hash slot, pipelined to every master
// at once. Keys holding values this package did not write (or values of
// another Redis type, which MGET reports as missing) are left out of the
// map; the former also make GetMulti return an error wrapping
// ErrForeignValue along with the map of the others.
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
	m, err := cancellable(b, ctx, func() (map[string]backend.Item, error) { return b.multi(ctx, keys, false) })
	if m == nil {
		m = map[string]backend.Item{}
	}
	if err != nil && err == ctx.Err() { // cancellable gave up waiting
		return m, fmt.Errorf("redis: getmulti: %w", err)
	}
	return m, err
}

// multi reads keys. With mark, a foreign value is put in the map as an Item
// with CAS 0 instead of making multi return an error.
func (b *Backend) multi(ctx context.Context, keys []string, mark bool) (map[string]backend.Item, error) {
	out := make(map[string]backend.Item, len(keys))
	var foreign []error
	add := func(ks []string, vals []any) {
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue
			}
			val, cas, err := decode(ks[i], s)
			if err != nil {
				if mark {
					out[ks[i]] = backend.Item{Key: ks[i]}
				} else {
					foreign = append(foreign, err)
				}
				continue
			}
			out[ks[i]] = backend.Item{Key: ks[i], Value: val, CAS: cas}
		}
	}
	var err error
	switch {
	case b.single != nil:
		var vals []any
		vals, err = b.client.MGet(ctx, keys...).Result()
		if err == nil {
			add(keys, vals)
		}
	case b.cluster != nil:
		err = b.getMultiCluster(ctx, keys, add)
	default:
		err = b.getMultiPipelined(ctx, keys, add)
	}
	if err != nil {
		what := keys[0]
		if len(keys) > 1 {
			what = fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
		}
		return out, b.wrap(ctx, "getmulti", what, err)
	}
	if len(foreign) > 0 {
		return out, fmt.Errorf("redis: getmulti: %w", errors.Join(foreign...))
	}
	return out, nil
}

// getMultiCluster groups keys by hash slot and sends one MGET per slot in a
// single cluster pipeline, which go-redis splits by master and runs
// concurrently.
func (b *Backend) getMultiCluster(ctx context.Context, keys []string, add func([]string, []any)) error {
	groups := make(map[uint16][]string)
	var order []uint16
	for _, k := range keys {
		s := slot(k)
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], k)
	}
	if len(order) == 1 {
		vals, err := b.client.MGet(ctx, keys...).Result()
		if err != nil {
			return err
		}
		add(keys, vals)
		return nil
	}
	pipe := b.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(order))
	for i, s := range order {
		cmds[i] = pipe.MGet(ctx, groups[s]...)
	}
	_, err := pipe.Exec(ctx)
	var firstErr error
	for i, s := range order {
		vals, cerr := cmds[i].Result()
		if cerr != nil {
			if firstErr == nil {
				firstErr = cerr
			}
			continue
		}
		add(groups[s], vals)
	}
	if firstErr == nil {
		firstErr = err
	}
	return firstErr
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
	return firstErr
}

// prepare validates a write and returns the stored string and the TTL in
// milliseconds.
func (b *Backend) prepare(ctx context.Context, op string, item backend.Item) ([]byte, int64, error) {
	if err := b.check(ctx, op, item.Key); err != nil {
		return nil, 0, err
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

// Set stores item unconditionally with one SET (with PX for a TTL), giving
// it a new CAS token.
func (b *Backend) Set(ctx context.Context, item backend.Item) error {
	val, ms, err := b.prepare(ctx, "set", item)
	if err != nil {
		return err
	}
	var cmd *goredis.StatusCmd
	if ms > 0 {
		cmd = goredis.NewStatusCmd(ctx, "set", item.Key, val, "px", ms)
	} else {
		cmd = goredis.NewStatusCmd(ctx, "set", item.Key, val)
	}
	if err := b.process(ctx, cmd); err != nil {
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
	var cmd *goredis.StatusCmd
	if ms > 0 {
		cmd = goredis.NewStatusCmd(ctx, "set", item.Key, val, "nx", "px", ms)
	} else {
		cmd = goredis.NewStatusCmd(ctx, "set", item.Key, val, "nx")
	}
	if err := b.process(ctx, cmd); err != nil {
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
	res, err := b.script(ctx, casScript, item.Key, casBytes(item.CAS), val, ms)
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
	n, err := cancellable(b, ctx, func() (int64, error) { return b.client.Del(ctx, key).Result() })
	if err != nil {
		return b.wrap(ctx, "delete", key, err)
	}
	if n == 0 {
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
	res, err := b.script(ctx, touchScript, key, casBytes(newCAS()), ms)
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
	res, err := b.script(ctx, incrScript, key, sign, strconv.FormatUint(mag, 10), casBytes(newCAS()))
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
		return 0, fmt.Errorf("redis: increment %q: unexpected script reply %v", key, res)
	case 0:
		return 0, fmt.Errorf("redis: increment %q: %w", key, backend.ErrNotFound)
	case -3:
		return 0, fmt.Errorf("redis: increment %q: %w", key, backend.ErrNotNumeric)
	default:
		return 0, scriptError("increment", key, res)
	}
}

// Close releases the Backend. It closes the go-redis client if New or
// NewCluster made it (not one given to NewFromClient). Later calls return
// errors wrapping backend.ErrClosed; a second Close returns nil.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.callsMu.Lock()
	b.closing = true
	b.callsMu.Unlock()
	if b.batcher != nil {
		b.batcher.Close()
	}
	stopTracking(b)
	var err error
	if b.owns {
		if cerr := b.client.Close(); cerr != nil && !errors.Is(cerr, goredis.ErrClosed) {
			err = fmt.Errorf("redis: close: %w", cerr)
		}
	}
	b.calls.Wait()
	return err
}

// cancellable runs fn, which does I/O with ctx, and returns its results.
// go-redis honours a context's deadline but not its cancellation: a call
// blocked on a hung server waits for its read timeout. So, when ctx can be
// cancelled, fn runs in a goroutine of its own and cancellable returns
// ctx.Err() as soon as ctx is done; fn then finishes on its own (within the
// client's read and write timeouts) and Close waits for it.
func cancellable[T any](b *Backend, ctx context.Context, fn func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return fn()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	b.callsMu.RLock()
	if b.closing {
		b.callsMu.RUnlock()
		var zero T
		return zero, fmt.Errorf("redis: %w", backend.ErrClosed)
	}
	b.calls.Add(1)
	b.callsMu.RUnlock()
	go func() {
		defer b.calls.Done()
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it finished at the same moment: prefer its result
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

// process runs cmd, cancellably.
func (b *Backend) process(ctx context.Context, cmd goredis.Cmder) error {
	_, err := cancellable(b, ctx, func() (struct{}, error) { return struct{}{}, b.client.Process(ctx, cmd) })
	return err
}

// script runs one of the Lua scripts on key, cancellably, and returns its
// array reply.
func (b *Backend) script(ctx context.Context, s *goredis.Script, key string, args ...any) ([]any, error) {
	return cancellable(b, ctx, func() ([]any, error) { return s.Run(ctx, b.client, []string{key}, args...).Slice() })
}

// code returns the status code a script replies first.
func code(res []any) int64 {
	if len(res) == 0 {
		return -100
	}
	n, ok := res[0].(int64)
	if !ok {
		return -100
	}
	return n
}

// scriptError turns a script's foreign-value reply, or any unexpected
// reply, into an error.
func scriptError(op, key string, res []any) error {
	if code(res) == -1 && len(res) == 3 {
		head, _ := res[1].(string)
		n, _ := res[2].(int64)
		e := foreignError(key, head)
		if n > int64(len(head)) {
			e = fmt.Errorf("%w: key %q holds %d bytes without memdict's header (starting %q)",
				ErrForeignValue, key, n, head)
		}
		return fmt.Errorf("redis: %s: %w", op, e)
	}
	return fmt.Errorf("redis: %s %q: unexpected script reply %v", op, key, res)
}

// wrap turns a go-redis error into one that wraps both the matching
// backend sentinel and the original error.
func (b *Backend) wrap(ctx context.Context, op, key string, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// go-redis sets the connection's deadline to ctx's: its i/o
		// timeout may come a hair before ctx reports DeadlineExceeded.
		var ne net.Error
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("redis: %s: %w", where(op, key), err)
		}
		return fmt.Errorf("redis: %s: %w (%w)", where(op, key), cerr, err)
	}
	var kind error
	switch {
	case errors.Is(err, goredis.ErrClosed), b.closed.Load():
		// Calls in flight when Close closes the connections.
		kind = backend.ErrClosed
	case goredis.IsAuthError(err), goredis.IsPermissionError(err):
		who := "the default user"
		if b.user != "" {
			who = fmt.Sprintf("user %q", b.user)
		}
		return fmt.Errorf("redis: %s: %w as %s (check the user and password): %w", where(op, key), ErrAuth, who, err)
	case tlsVerifyError(err):
		return fmt.Errorf("redis: %s: the server's TLS certificate is not trusted "+
			"(give the CA that signed it with the URL option tls_ca): %w", where(op, key), err)
	case wrongType(err):
		return fmt.Errorf("redis: %s: %w: key %q holds a Redis value of another type, not a string: %w",
			op, ErrForeignValue, key, err)
	case unavailable(err):
		kind = backend.ErrUnavailable
	}
	if kind != nil {
		return fmt.Errorf("redis: %s: %w: %w", where(op, key), kind, err)
	}
	return fmt.Errorf("redis: %s: %w", where(op, key), err)
}

// tlsVerifyError reports whether err is a failure to verify the server's
// certificate.
func tlsVerifyError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// wrongType reports a WRONGTYPE error, also one raised inside a Lua script
// (which Redis reports with another prefix).
func wrongType(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	return strings.Contains(re.Error(), "WRONGTYPE")
}

// unavailable reports whether err means the server could not be reached or
// cannot serve now (the call may succeed later).
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		goredis.IsLoadingError(err), goredis.IsClusterDownError(err), goredis.IsTryAgainError(err),
		goredis.IsMasterDownError(err), goredis.IsMaxClientsError(err):
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
