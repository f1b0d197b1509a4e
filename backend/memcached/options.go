package memcached

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults of the Client options.
const (
	DefaultTimeout       = 500 * time.Millisecond
	DefaultConns         = 2
	DefaultMaxIdleConns  = 16
	DefaultMaxValueLen   = 1 << 20
	DefaultItemSizeMax   = defaultItemSizeMax
	DefaultFailureLimit  = 3
	DefaultRetryInterval = 2 * time.Second
	DefaultAutoEjectTTL  = time.Minute

	// DefaultMaxValueSize is the former name of DefaultMaxValueLen.
	//
	// Deprecated: use DefaultMaxValueLen.
	DefaultMaxValueSize = DefaultMaxValueLen
)

// Option configures a Client made by New.
type Option func(*config)

type config struct {
	timeout       time.Duration
	conns         int
	maxIdleConns  int
	maxValueSize  int64
	itemSizeMax   int64
	failureLimit  int
	retryInterval time.Duration
	autoEject     bool
	autoEjectTTL  time.Duration
	resolveEvery  time.Duration
	resolver      Resolver
	tls           *tls.Config
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	hash          string
	errs          []error
	hook          func(where string) // tests only: see Client.testPoint
}

func defaultConfig() config {
	return config{
		timeout:       DefaultTimeout,
		conns:         DefaultConns,
		maxIdleConns:  DefaultMaxIdleConns,
		maxValueSize:  DefaultMaxValueLen,
		itemSizeMax:   DefaultItemSizeMax,
		failureLimit:  DefaultFailureLimit,
		retryInterval: DefaultRetryInterval,
		autoEjectTTL:  DefaultAutoEjectTTL,
		hash:          "md5",
	}
}

func (c *config) validate() error {
	if c.timeout <= 0 {
		c.errs = append(c.errs, fmt.Errorf("timeout %v: must be positive", c.timeout))
	}
	if c.conns < 1 || c.conns > 64 {
		c.errs = append(c.errs, fmt.Errorf("connections per server %d: must be from 1 to 64", c.conns))
	}
	if c.itemSizeMax < 1024 {
		c.errs = append(c.errs, fmt.Errorf("item size max %d: must be at least 1024", c.itemSizeMax))
	}
	if c.maxIdleConns < 1 {
		c.errs = append(c.errs, fmt.Errorf("max idle connections %d: must be at least 1", c.maxIdleConns))
	}
	if c.maxValueSize < 0 {
		c.errs = append(c.errs, fmt.Errorf("max value length %d: must not be negative", c.maxValueSize))
	}
	if c.failureLimit < 0 {
		c.errs = append(c.errs, fmt.Errorf("failure limit %d: must not be negative", c.failureLimit))
	}
	if c.failureLimit > 0 && c.retryInterval <= 0 {
		c.errs = append(c.errs, fmt.Errorf("retry interval %v: must be positive", c.retryInterval))
	}
	if c.autoEject && c.failureLimit == 0 {
		c.errs = append(c.errs, errors.New("auto_eject with failure limit 0: servers are never marked down, so never ejected"))
	}
	if c.autoEjectTTL <= 0 {
		c.errs = append(c.errs, fmt.Errorf("auto-eject TTL %v: must be positive", c.autoEjectTTL))
	}
	if c.resolveEvery < 0 {
		c.errs = append(c.errs, fmt.Errorf("resolve interval %v: must not be negative (0: names are not resolved again)", c.resolveEvery))
	}
	if c.hash != "fnv1a_64" && c.hash != "md5" {
		c.errs = append(c.errs, fmt.Errorf("hash %q: want fnv1a_64 or md5", c.hash))
	}
	if len(c.errs) > 0 {
		return fmt.Errorf("memcached: %w", errors.Join(c.errs...))
	}
	return nil
}

// WithTimeout bounds every call, from the moment it is made: queueing
// behind other calls, connecting and the reply included (default
// DefaultTimeout, 500ms).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Timeout returns the bound of one call (WithTimeout), for
// backend.Timeouter.
func (c *Client) Timeout() time.Duration { return c.cfg.timeout }

// WithConns sets the number of pipelined connections per server (default
// DefaultConns, 2; at most 64). Every call to a server goes through them,
// however many goroutines make calls: more connections spread the
// server's work over more of its threads (memcached -t), fewer make
// larger batches per write.
func WithConns(n int) Option { return func(c *config) { c.conns = n } }

// WithMaxIdleConns sets the number of idle connections kept per server by
// the text-protocol engine, used for servers without meta commands
// (default DefaultMaxIdleConns, 16). Servers with meta commands use
// WithConns connections instead.
func WithMaxIdleConns(n int) Option { return func(c *config) { c.maxIdleConns = n } }

// WithMaxValueLen sets the longest value accepted, in bytes (default
// DefaultMaxValueLen, 1 MiB, memcached's -I default). Longer values fail
// with backend.ErrValueTooLarge before anything is sent. Values must also
// fit the server's item_size_max with memcached's item overhead (see the
// package documentation). URL parameter: max_value_length.
func WithMaxValueLen(n int) Option { return func(c *config) { c.maxValueSize = int64(n) } }

// WithMaxValueSize is the former name of WithMaxValueLen.
//
// Deprecated: use WithMaxValueLen.
func WithMaxValueSize(n int64) Option { return func(c *config) { c.maxValueSize = n } }

// WithItemSizeMax sets the item size limit (memcached's -I) assumed for a
// server that does not say its own: a text-only server or a proxy such as
// nutcracker (default DefaultItemSizeMax, 1 MiB). For the size check of
// writes, servers with meta commands report theirs at connect, which wins.
// It is also, with WithMaxValueLen, the bound of the values the client
// reads: a reply declaring a value larger than both fails with
// ErrProtocol before anything is allocated for it, whatever item_size_max
// the server reports (see "Value sizes" in the package documentation).
func WithItemSizeMax(n int64) Option { return func(c *config) { c.itemSizeMax = n } }

// WithFailureLimit sets how many consecutive failures mark a server down
// (default 3); 0 never marks servers down.
func WithFailureLimit(n int) Option { return func(c *config) { c.failureLimit = n } }

// WithRetryInterval sets how long a server stays marked down before a call
// probes it again (default 2s).
func WithRetryInterval(d time.Duration) Option { return func(c *config) { c.retryInterval = d } }

// WithAutoEject, with on, takes a server that is marked down out of the
// ketama ring, as nutcracker's auto_eject_hosts does: its keys then live on
// the other servers (each key on the server the ring without it gives,
// the other servers' keys staying where they are) until it answers again,
// and then move back. Without it (the default) the keys of a server
// marked down fail fast. A server that comes back is flushed (flush_all)
// before it is put back, whether or not it restarted, and writes made
// on a stand-in server get a TTL of at most WithAutoEjectTTL: see
// "Auto-eject" in the package documentation for what that guards against
// and why it makes auto-eject a choice for servers that memdict's clients
// own. URL parameter: auto_eject.
func WithAutoEject(on bool) Option { return func(c *config) { c.autoEject = on } }

// WithAutoEjectTTL bounds the TTL of a write made, with auto-eject, on a
// server that stands in for an ejected one (default DefaultAutoEjectTTL,
// one minute), and with it how long after a server comes back it can be
// ejected again (its keys fail fast meanwhile): d rounded up to whole
// seconds, one second more for memcached's clock, and the timeout, so no
// value written on a stand-in outlives the next ejection. URL parameter:
// auto_eject_ttl.
func WithAutoEjectTTL(d time.Duration) Option { return func(c *config) { c.autoEjectTTL = d } }

// WithResolveInterval makes the Client resolve the host names of its
// servers again every d (default 0: never; the system resolver is then
// asked at each connect, as net.Dial does). A server whose name resolves
// to new addresses keeps its place on the ring (the ring hashes the names
// as configured) and moves its connections: new ones go to the new
// address, and the old ones are closed once the requests on them are
// answered. A failed lookup keeps the addresses known. URL parameter:
// resolve_interval.
func WithResolveInterval(d time.Duration) Option { return func(c *config) { c.resolveEvery = d } }

// Resolver looks up the addresses of host (without its port), as
// net.Resolver.LookupHost does.
type Resolver func(ctx context.Context, host string) ([]string, error)

// WithResolver sets the resolver that WithResolveInterval uses (default
// net.DefaultResolver.LookupHost): for tests, or a discovery service of
// the program's own.
func WithResolver(r Resolver) Option { return func(c *config) { c.resolver = r } }

// WithBatching is kept for source compatibility and does nothing: every
// call is pipelined by the connection engine, which batches concurrent
// calls without a setting.
//
// Deprecated: the engine pipelines every call; use WithConns to tune it.
func WithBatching(on bool, maxInFlight, maxBatch int) Option { return func(*config) {} }

// WithHash sets the key hash of the ketama ring: "md5" (the default,
// nutcracker's "hash: md5") or "fnv1a_64" (nutcracker's own default
// "hash: fnv1a_64"). Use the same as the nutcracker or other clients that
// share the servers. md5 is the default because fnv1a_64, as twemproxy
// implements it, is weak: keys that differ only in their last bytes
// (user:1, user:2, ...) — as the keys of one Dict do — can crowd onto one
// server. Choose fnv1a_64 only to share servers with a nutcracker left at
// its default.
func WithHash(name string) Option { return func(c *config) { c.hash = name } }

// WithDialer makes the Client open its connections with dial instead of
// a net.Dialer: through a proxy, a tunnel, a network namespace, or a
// fault injector in tests. dial receives "tcp" and a server's
// "host:port", and a context that ends at the timeout (WithTimeout) or
// when the Client is closed; with WithTLS, the TLS handshake runs over the
// connection it returns. nil means net.Dialer's DialContext. It has no URL
// parameter.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.dial = dial }
}

// WithTLS makes the Client talk TLS with cfg (memcached started with
// -Z/--enable-ssl). When cfg.ServerName is empty each server's host is
// used.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }
