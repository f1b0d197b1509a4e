package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/memdict/memdict/backend"
)

// Backend is a backend.Backend on a Redis server, a Redis Cluster, a
// Redis Ring or the master Redis Sentinel names, through a go-redis
// client. It also implements backend.Lister,
// backend.StatsReporter, backend.Pinger, backend.MultiWriter (pipelined
// writes and deletes) and backend.Flusher (Flush is disabled unless enabled
// with WithFlush).
//
// Concurrent single-key calls are pipelined (see WithBatching), every call
// is bounded by the timeout (see WithTimeout), and a server that stops
// answering is marked down and probed (see WithFailureLimit).
//
// A Backend is safe for concurrent use by multiple goroutines.
type Backend struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // non-nil for a cluster client
	ring    *goredis.Ring          // non-nil for a Ring
	single  *goredis.Client        // non-nil for a standalone client
	owns    bool                   // Close closes client
	// doneCtx: the client retries a command that failed (its
	// MaxRetries), after a backoff it sleeps on the command's context,
	// so a flush's context must be done at its deadline (see flush).
	doneCtx bool
	closed  atomic.Bool
	cfg     config
	user    string // ACL user, for error messages

	// guard guards the connections (conn.go); rawDial is the dialer it
	// wraps, for the tracker's own connections (nil: the client's).
	guard   *guard
	rawDial func(context.Context, string, string) (net.Conn, error)
	owners  *owners // the key each token read lately was read under (owners.go)

	sentinel *sentinels // non-nil on Redis Sentinel (sentinel.go)

	// Pipelining and health (pipeline.go, health.go): one lane per
	// server; lane0 on a standalone server (or another client), lanes by
	// master address on a cluster, by shard address on a Ring.
	lane0       *lane
	lanesMu     sync.RWMutex
	lanes       map[string]*lane
	lanesClosed bool

	// ringShards holds every shard of a Ring the Backend knows of, by
	// address, with its client (nil for a shard marked down when the
	// Backend was made, until it is seen up): the shards of
	// RingOptions.Addrs and those the Ring made since. The Ring's own
	// ForEachShard skips the shards its heartbeat marked down, and a
	// listing or stats made of it would silently leave them out (see
	// ringNodes).
	ringMu     sync.Mutex
	ringShards map[string]*goredis.Client
	// hookSeen: the Ring was given to NewFromClient, which hooks the
	// guard on the shards it can reach; a shard's client the Backend
	// sees later for the first time (down then) is hooked then too.
	hookSeen bool

	stop    chan struct{}  // closed by Close: probes end
	calls   sync.WaitGroup // goroutines started by spawn and bounded
	callsMu sync.RWMutex   // orders calls.Add before Close's calls.Wait
	closing bool           // set by Close under callsMu
}

// Interfaces the Backend implements.
var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.Lister        = (*Backend)(nil)
	_ backend.StatsReporter = (*Backend)(nil)
	_ backend.Flusher       = (*Backend)(nil)
	_ backend.Pinger        = (*Backend)(nil)
)

// New returns a Backend on the standalone Redis server that opt describes.
// It copies opt and, in the copy, sets ContextTimeoutEnabled (so that every
// call honours its deadline on the socket) and DisableIdentity; it caps
// PoolTimeout and DialTimeout at the Backend's timeout (WithTimeout); it
// wraps the Dialer (go-redis's default one if opt has none, with the TLS
// handshake bounded too) so that every connection is guarded: replies are
// validated before go-redis reads them, connections are reset when
// closed, and the handshake is pipelined with the first command (see the
// package documentation, "Untrusted replies"); it sets
// DialerRetries to 1 if it is 0 (a cache should fail fast when its server
// is down, not retry a refused dial five times) and MaxRetries to -1, no
// retries, if it is 0 (set MaxRetries above 0 for transparent retries of
// reads and Sets: the writes that must not run twice are never resent, see
// NewFromClient); and it
// disables maintenance notifications unless opt configures them. It does not connect:
// the first call (or Ping) does. Close closes the client it creates.
func New(opt *goredis.Options, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: New with nil options")
	}
	cfg := newConfig(options)
	o := *opt
	clientFields{&o.ContextTimeoutEnabled, &o.DisableIdentity, &o.PoolTimeout, &o.DialTimeout,
		&o.DialerRetries, &o.MaxRetries, &o.MaintNotificationsConfig}.adjust(cfg.timeout)
	g, raw := guardDialer(cfg, &o.Dialer, o.DialTimeout, o.TLSConfig,
		o.OnConnect == nil && o.CredentialsProvider == nil && o.CredentialsProviderContext == nil && o.StreamingCredentialsProvider == nil)
	b := ownedBackend(goredis.NewClient(&o), cfg, o.Username)
	b.guard, b.rawDial = g, raw
	return b, nil
}

// guardDialer replaces *dialer (nil: go-redis's default, made of timeout
// and tc) with one that guards its connections; pipeline allows the
// handshake to be pipelined. It returns the guard and the dialer it
// wraps.
func guardDialer(cfg config, dialer *func(context.Context, string, string) (net.Conn, error),
	timeout time.Duration, tc *tls.Config, pipeline bool) (*guard, func(context.Context, string, string) (net.Conn, error)) {
	g := newGuard(cfg.maxValueSize)
	g.pipeline, g.all = pipeline, true
	raw := *dialer
	if raw == nil {
		raw = netDialer(timeout, tc)
	}
	*dialer = g.dialer(raw)
	return g, raw
}

// NewCluster returns a Backend on the Redis Cluster that opt describes
// (opt.Addrs are seed nodes; the others are discovered). It adjusts a copy
// of opt as New does and, if MinRetryBackoff is 0, sets it to -1, no
// backoff: go-redis's cluster client retries a command that timed out (on
// another attempt bounded by the same, spent, deadline), and sleeping
// before that attempt would only make the call overrun the timeout. It
// does not connect: the first call (or Ping) does. Close closes the client
// it creates.
func NewCluster(opt *goredis.ClusterOptions, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: NewCluster with nil options")
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("redis: NewCluster with no seed addresses")
	}
	cfg := newConfig(options)
	o := *opt
	clientFields{&o.ContextTimeoutEnabled, &o.DisableIdentity, &o.PoolTimeout, &o.DialTimeout,
		&o.DialerRetries, &o.MaxRetries, &o.MaintNotificationsConfig}.adjust(cfg.timeout)
	if o.MinRetryBackoff == 0 {
		o.MinRetryBackoff = -1
	}
	g, raw := guardDialer(cfg, &o.Dialer, o.DialTimeout, o.TLSConfig,
		o.OnConnect == nil && o.CredentialsProvider == nil && o.CredentialsProviderContext == nil)
	b := ownedBackend(goredis.NewClusterClient(&o), cfg, o.Username)
	b.guard, b.rawDial = g, raw
	return b, nil
}

// NewRing returns a Backend on a Redis Ring: the shards opt.Addrs names
// (name => address), over which go-redis spreads the keys by consistent
// hashing of the shard names, each shard marked down and probed on its own
// (see WithFailureLimit), a multi-get sending one MGET per shard. It
// adjusts a copy of opt as NewCluster does, and guards every connection of
// every shard from its first dial (the commands', the heartbeat's, those of
// shards SetAddrs adds later), which NewFromClient cannot do for a Ring's
// shards down when it runs: opt's Dialer (go-redis's default one if nil)
// is wrapped, and opt's NewClient (NewClient if nil) is given each shard's
// options with maintenance notifications disabled unless configured. The
// heartbeat, if opt has no HeartbeatFn, is go-redis's PING bounded by the
// timeout (go-redis's waits up to ReadTimeout on a shard that hangs). It
// does not connect: the first call (or Ping) does. Close closes the Ring it
// creates. It returns an error for nil options, no shard, a shard with no
// address, or two shards at one address.
func NewRing(opt *goredis.RingOptions, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: NewRing with nil options")
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("redis: NewRing with no shards")
	}
	names := make(map[string]string, len(opt.Addrs))
	for _, name := range slices.Sorted(maps.Keys(opt.Addrs)) {
		addr := opt.Addrs[name]
		if addr == "" {
			return nil, fmt.Errorf("redis: NewRing: shard %q has no address", name)
		}
		if other, ok := names[addr]; ok {
			return nil, fmt.Errorf("redis: NewRing: shards %q and %q are both at %s", other, name, addr)
		}
		names[addr] = name
	}
	cfg := newConfig(options)
	o := *opt
	o.Addrs = maps.Clone(opt.Addrs)
	var maint *maintnotifications.Config // per shard, in NewClient below
	clientFields{&o.ContextTimeoutEnabled, &o.DisableIdentity, &o.PoolTimeout, &o.DialTimeout,
		&o.DialerRetries, &o.MaxRetries, &maint}.adjust(cfg.timeout)
	if o.MinRetryBackoff == 0 {
		o.MinRetryBackoff = -1
	}
	if o.HeartbeatFn == nil {
		o.HeartbeatFn = func(ctx context.Context, n *goredis.Client) bool {
			ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			err := n.Ping(ctx).Err()
			return err == nil || errors.Is(err, goredis.ErrPoolTimeout)
		}
	}
	g, raw := guardDialer(cfg, &o.Dialer, o.DialTimeout, o.TLSConfig,
		o.OnConnect == nil && o.CredentialsProvider == nil && o.CredentialsProviderContext == nil && o.StreamingCredentialsProvider == nil)
	// go-redis makes the shards' clients in goredis.NewRing, before the
	// Backend exists: they are recorded here and handed to it after.
	var (
		mu    sync.Mutex
		b     *Backend
		early []*goredis.Client
	)
	newClient := o.NewClient
	if newClient == nil {
		newClient = goredis.NewClient
	}
	o.NewClient = func(co *goredis.Options) *goredis.Client {
		if co.MaintNotificationsConfig == nil {
			co.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		}
		n := newClient(co)
		mu.Lock()
		defer mu.Unlock()
		if b == nil {
			early = append(early, n)
		} else {
			b.ringShard(n)
		}
		return n
	}
	ring := goredis.NewRing(&o)
	mu.Lock()
	defer mu.Unlock()
	b = ownedBackend(ring, cfg, o.Username)
	b.guard, b.rawDial = g, raw
	for _, n := range early {
		b.ringShard(n)
	}
	return b, nil
}

// clientFields points at the fields of a goredis.Options,
// goredis.ClusterOptions, goredis.RingOptions or goredis.FailoverOptions
// that New, NewCluster, NewRing and NewSentinel adjust alike.
type clientFields struct {
	contextTimeoutEnabled, disableIdentity *bool
	poolTimeout, dialTimeout               *time.Duration
	dialerRetries, maxRetries              *int
	maint                                  **maintnotifications.Config
}

// adjust applies New's rules to the fields f points at: context timeouts
// and DisableIdentity on, PoolTimeout and DialTimeout capped at timeout,
// one dial attempt and no retries unless set, maintenance notifications
// off unless configured.
func (f clientFields) adjust(timeout time.Duration) {
	*f.contextTimeoutEnabled = true
	*f.disableIdentity = true
	for _, d := range []*time.Duration{f.poolTimeout, f.dialTimeout} {
		if *d <= 0 || *d > timeout {
			*d = timeout
		}
	}
	if *f.dialerRetries == 0 {
		*f.dialerRetries = 1
	}
	if *f.maxRetries == 0 {
		*f.maxRetries = -1
	}
	if *f.maint == nil {
		*f.maint = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
}

// ownedBackend returns a Backend on client, which New, NewCluster,
// NewRing or NewSentinel created for it with user's credentials: Close closes it.
func ownedBackend(client goredis.UniversalClient, cfg config, user string) *Backend {
	b := newBackend(client, cfg)
	b.owns = true
	b.user = user
	return b
}

// NewFromClient returns a Backend that uses client, a *goredis.Client, a
// *goredis.ClusterClient or another goredis.UniversalClient (such as a
// *goredis.Ring, on which a multi-get sends one MGET per shard, and each
// shard is marked down and probed on its own: see WithFailureLimit). The caller keeps
// ownership of client: Close does not close it. For calls to be bounded by
// the timeout on the socket, the client must have ContextTimeoutEnabled
// set, and a PoolTimeout and a DialTimeout no longer than the timeout.
//
// On a *goredis.Client, NewFromClient adds a dial hook (AddHook) that
// guards the connections the client dials from then on, until Close: their
// replies are validated before go-redis reads them and they are reset
// when closed (see the package documentation, "Untrusted replies"). On a
// *goredis.ClusterClient it adds the hook to the nodes the client creates
// from then on; on a *goredis.Ring, to the shards it has that are up and
// those it creates from then on, and to a shard down at the time when the
// Backend first sees it up (go-redis gives no way to reach a down shard's
// client; the connections its heartbeat dialed to the shard meanwhile stay
// unguarded). Connections dialed before, those of nodes the cluster client
// already had, and those of other clients are not guarded, and no
// handshake is pipelined: give the options to New, NewCluster or NewRing
// for all of it. NewFromClient returns an error if client is nil.
//
// A client made with MaxRetries 0 retries a failed command 3 times
// (go-redis's default; -1 means none). The Backend has go-redis send its
// writes that must not run twice (Increment, Add, CompareAndSwap, Delete,
// TryLock, Unlock, Touch) at most once, whatever MaxRetries: if the reply
// of one is lost (the connection drops), the call fails with an error
// (its outcome unknown) rather than resending it, which would add an
// Increment's delta twice or report an Add that stored its value as not
// stored. Sets, and the other reads, are retried as the client says; a
// standalone server's single-key Gets, which the Backend reads into
// buffers of its own, are not resent either: a lost reply fails the Get
// (ErrUnavailable), which may simply be called again.
func NewFromClient(client goredis.UniversalClient, options ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("redis: NewFromClient with a nil client")
	}
	cfg := newConfig(options)
	b := newBackend(client, cfg)
	b.guard = newGuard(cfg.maxValueSize)
	switch c := client.(type) {
	case *goredis.Client:
		b.user = c.Options().Username
		c.AddHook(b.guard)
	case *goredis.ClusterClient:
		b.user = c.Options().Username
		c.OnNewNode(func(n *goredis.Client) { n.AddHook(b.guard) })
	case *goredis.Ring:
		// A Ring made its shards' clients when it was made: those up now
		// are hooked here, those it makes later (SetAddrs) when made,
		// those down now when the Backend first sees them (seenShard).
		// go-redis gives no other way to guard a Ring it made (NewRing
		// makes one guarded from the first dial), and unguarded, one
		// reply announcing 1 GiB made go-redis allocate it.
		b.user = c.Options().Username
		b.hookSeen = true
		c.OnNewNode(func(n *goredis.Client) {
			n.AddHook(b.guard)
			b.ringShard(n)
		})
		_ = c.ForEachShard(context.Background(), func(_ context.Context, n *goredis.Client) error {
			n.AddHook(b.guard)
			b.ringShard(n)
			return nil
		})
	}
	return b, nil
}

func newBackend(c goredis.UniversalClient, cfg config) *Backend {
	b := &Backend{client: c, cfg: cfg, stop: make(chan struct{}), owners: newOwners()}
	// go-redis's options, once in a client, say retries with a
	// MaxRetries above 0 (-1 and 0 say none, by type); a client of
	// another kind may retry.
	switch c := c.(type) {
	case *goredis.ClusterClient:
		b.cluster = c
		b.lanes = make(map[string]*lane)
		b.doneCtx = c.Options().MaxRetries > 0
	case *goredis.Ring:
		b.ring = c
		b.lanes = make(map[string]*lane)
		b.ringShards = make(map[string]*goredis.Client)
		for _, addr := range c.Options().Addrs {
			b.ringShards[addr] = nil
		}
		b.doneCtx = c.Options().MaxRetries > 0
	case *goredis.Client:
		b.single = c
		b.lane0 = &lane{b: b, addr: c.Options().Addr}
		b.doneCtx = c.Options().MaxRetries > 0
	default:
		b.lane0 = &lane{b: b, addr: fmt.Sprintf("%T", c)}
		b.doneCtx = true
	}
	return b
}

// Client returns the go-redis client the Backend uses, for commands this
// package does not offer. Values the Backend stores carry an 11-byte
// header (see the package documentation).
func (b *Backend) Client() goredis.UniversalClient { return b.client }

// Close releases the Backend: it fails the calls still queued with
// backend.ErrClosed, stops the probes of servers marked down, closes the
// go-redis client if New, NewCluster, NewRing or NewSentinel made it (not
// one given to NewFromClient), and waits for the goroutines it started. Later calls
// return errors wrapping backend.ErrClosed; a second Close returns nil.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.callsMu.Lock()
	b.closing = true
	b.callsMu.Unlock()
	close(b.stop)
	if b.guard != nil {
		b.guard.off.Store(true)
	}
	b.closeLanes()
	stopTracking(b)
	if b.sentinel != nil {
		b.sentinel.close()
	}
	var err error
	if b.owns {
		if cerr := b.client.Close(); cerr != nil && !errors.Is(cerr, goredis.ErrClosed) {
			err = fmt.Errorf("redis: close: %w", cerr)
		}
	}
	b.calls.Wait()
	return err
}

// closeLanes closes every lane: their queued calls fail with ErrClosed.
func (b *Backend) closeLanes() {
	b.lanesMu.Lock()
	b.lanesClosed = true
	ls := make([]*lane, 0, len(b.lanes)+1)
	for _, l := range b.lanes {
		ls = append(ls, l)
	}
	b.lanesMu.Unlock()
	if b.lane0 != nil {
		ls = append(ls, b.lane0)
	}
	for _, l := range ls {
		l.closeLane()
	}
}
