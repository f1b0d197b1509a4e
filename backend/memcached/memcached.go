// Package memcached is memdict's memcached driver: a backend.Backend over
// one or more memcached servers, built on github.com/bradfitz/gomemcache.
//
// Open it from a URL once the package is imported:
//
//	import _ "github.com/memdict/memdict/backend/memcached"
//
//	be, err := backend.Open(ctx, "memcached://10.0.0.1:11211,10.0.0.2:11211?timeout=200ms")
//
// or with New and functional options. Every URL parameter is listed in the
// URL section below; an unknown one is an error.
//
// # URL
//
// memcached://host1:port1,host2:port2?param=value&... for plain TCP, and
// memcacheds://... for TLS (the same as memcached://...?tls=true). A host
// without a port means port 11211. Parameters:
//
//	timeout=500ms            bound on every call, connecting included
//	max_idle_conns=16        idle connections kept per server
//	max_value_size=1048576   larger values fail with backend.ErrValueTooLarge
//	failure_limit=3          consecutive failures that mark a server down (0: never)
//	retry_interval=2s        how long a server stays marked down
//	batch=true               coalesce concurrent Gets into multi-gets
//	batch_inflight=1         concurrent fetches per server when batching
//	batch_max_keys=256       keys per coalesced fetch
//	hash=md5                 key hash of the ketama ring: md5 or fnv1a_64 (see WithHash)
//	tls=false                use TLS (implied by memcacheds://)
//	tls_ca=/path/ca.pem      CA certificates (PEM) to verify servers; default: system roots
//	tls_cert=, tls_key=      client certificate and key (PEM), for servers that ask for one
//	tls_server_name=         name to verify the servers' certificates against; default: the host
//	tls_insecure_skip_verify=false  do not verify certificates (testing only)
//
// # Servers and keys
//
// With several servers each key lives on one of them, chosen by ketama
// consistent hashing exactly as twemproxy/nutcracker computes it with
// "distribution: ketama" and "hash: md5" (the default here), or its own
// default "hash: fnv1a_64" with hash=fnv1a_64 (servers named by
// "host:port" as written, or by host alone for port 11211). A Client and a
// nutcracker over the same server list and hash therefore agree on where
// every key lives, and adding a fifth server to four moves about a fifth of
// the keys. md5 is the default because twemproxy's fnv1a_64 crowds keys
// that differ only in their last bytes onto few servers.
//
// # Failures
//
// A server that fails failure_limit times in a row (connection refused,
// timeout, connection closed, garbage answer) is marked down for
// retry_interval: calls for its keys then fail at once with an error
// wrapping backend.ErrUnavailable, without touching the network. After the
// interval one call is let through as a probe; if it succeeds the server is
// up again, otherwise it stays down for another interval. Keys are not moved
// to other servers meanwhile, as nutcracker does by default
// (auto_eject_hosts: false): a missing server means misses, never stale
// values. Errors from gomemcache are mapped to the backend sentinels
// (memcache.ErrCacheMiss to backend.ErrNotFound, and so on) by an error
// whose Unwrap returns both, so errors.Is works with either.
//
// # Contexts
//
// gomemcache takes no context. The driver bounds every call by the timeout
// on its own, connecting included (gomemcache would otherwise re-arm its
// deadline for each step of a call, so a server trickling its reply could
// hold a call for many timeouts). A call whose context can be cancelled
// does its I/O in a separate goroutine and waits for it or for the
// context, whichever ends first: a cancelled or expired context, even one
// with a deadline shorter than the timeout, returns promptly with an error
// wrapping ctx.Err(). The abandoned I/O finishes in the background within
// the timeout (the Backend contract gives the driver the item's Value, and
// keys are immutable strings, so it may keep using them) and Close waits
// for it. A context that can never be cancelled, such as
// context.Background() (which memdict's Dict.Get uses), skips the extra
// goroutine: that is the fastest path.
//
// # Batching and the read path
//
// Concurrent Gets for keys on the same server are coalesced: while
// batch_inflight requests to a server are running, further Gets queue and
// go out together as one "gets k1 k2 ..." as soon as a request returns.
// Many goroutines thus share round trips; a lone caller is sent at once, in
// its own goroutine when its context cannot be cancelled.
//
// Reads (Get and GetMulti) do not go through gomemcache, which allocates a
// request, an item, a key and a header string per value and starts a
// goroutine per server for GetMulti: the driver sends "gets" itself on a
// pool of max_idle_conns connections per server and parses the reply with
// no allocation beyond the result map and the values. Small values of one
// reply share 8 KiB buffers, so a value kept for long keeps its buffer
// alive. Writes, Delete, Touch and Increment go through gomemcache, and so
// do reads when batch=false.
//
// # Extra abilities
//
// Client implements backend.Lister (with "lru_crawler metadump"),
// backend.StatsReporter ("stats" on every server), backend.Flusher
// ("flush_all" on every server, or FlushNode for one) and backend.Pinger
// ("version"). These admin commands use short-lived connections of their
// own. Keys holds the Client open while it iterates: do not Close the
// Client from inside the loop.
//
// Client also implements backend.MultiWriter, which memdict's Tx.Commit
// uses: SetMulti and DeleteMulti pipeline the "set" or "delete" commands
// of each server on one connection of the read path's pool (the servers
// in parallel), so that a commit of a hundred keys takes about one round
// trip per server. Each call is bounded by the timeout as a whole.
package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/batch"
)

// Defaults of the Client options.
const (
	DefaultTimeout       = 500 * time.Millisecond
	DefaultMaxIdleConns  = 16
	DefaultMaxValueSize  = 1 << 20
	DefaultFailureLimit  = 3
	DefaultRetryInterval = 2 * time.Second
	DefaultBatchInFlight = 1
	DefaultBatchMaxKeys  = 256

	// maxKeyLen is memcached's key length limit.
	maxKeyLen = 250
	// relativeTTLMax is the largest expiration memcached reads as relative
	// seconds; larger numbers are absolute Unix times.
	relativeTTLMax = 60 * 60 * 24 * 30
)

// Client is a memcached backend over one or more servers. It implements
// backend.Backend, backend.Lister, backend.StatsReporter, backend.Flusher
// and backend.Pinger, and is safe for concurrent use by multiple
// goroutines.
type Client struct {
	cfg     config
	mc      *memcache.Client
	ring    *ketama
	nodes   []*node
	byAddr  map[string]*node
	batcher *batch.Batcher
	dialer  *dialer

	closed atomic.Bool
	active atomic.Int64 // calls and background goroutines in progress
}

// New returns a Client over the servers at addrs ("host:port"; a host alone
// means port 11211). It resolves no names and opens no connection: a server
// that cannot be reached shows in the first calls to it. It returns an
// error for an empty list, a malformed address, a duplicate, or an invalid
// option.
func New(addrs []string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("memcached: no server address given")
	}
	c := &Client{
		cfg:    cfg,
		byAddr: make(map[string]*node, len(addrs)),
		dialer: &dialer{timeout: cfg.timeout, tls: cfg.tls},
	}
	names := make([]string, len(addrs))
	netAddrs := make([]net.Addr, len(addrs))
	for i, a := range addrs {
		host, port, err := splitAddr(a)
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort(host, port)
		if c.byAddr[addr] != nil {
			return nil, fmt.Errorf("memcached: server %s listed twice", addr)
		}
		n := &node{addr: addr, limit: cfg.failureLimit, interval: cfg.retryInterval,
			idle: make(chan *mconn, cfg.maxIdleConns)}
		c.nodes = append(c.nodes, n)
		c.byAddr[addr] = n
		names[i] = ketamaName(host, port)
		netAddrs[i] = tcpAddr(addr)
	}
	hash := hashKey
	if cfg.hash == "md5" {
		hash = hashMD5
	}
	c.ring = newKetama(names, nil, netAddrs, hash)
	c.mc = memcache.NewFromSelector(c.ring)
	c.mc.Timeout = cfg.timeout
	c.mc.MaxIdleConns = cfg.maxIdleConns
	c.mc.DialContext = c.dialer.dialTimed
	if cfg.batch {
		c.batcher = batch.New(c.fetch, batch.Options{
			MaxInFlight:  cfg.batchInFlight,
			MaxBatch:     cfg.batchMaxKeys,
			FetchOne:     c.fetchOne,
			ContextAware: true,
		})
	}
	return c, nil
}

// tcpAddr is a net.Addr that is not resolved: gomemcache dials its String.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// splitAddr splits "host:port" (or "host", meaning port 11211) and checks
// the port.
func splitAddr(a string) (host, port string, err error) {
	if a == "" {
		return "", "", errors.New("memcached: empty server address")
	}
	host, port, err = net.SplitHostPort(a)
	if err != nil {
		// No port: "host" or "[::1]".
		if _, _, err2 := net.SplitHostPort(a + ":" + ketamaDefaultPort); err2 != nil {
			return "", "", fmt.Errorf("memcached: bad server address %q: %v", a, err)
		}
		host, port = a, ketamaDefaultPort
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("memcached: bad server address %q: no host", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", "", fmt.Errorf("memcached: bad server address %q: port %q is not a number from 1 to 65535", a, port)
	}
	return host, port, nil
}

// Servers returns the servers' addresses, in the order given.
func (c *Client) Servers() []string {
	s := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		s[i] = n.addr
	}
	return s
}

// ServerFor returns the address of the server that holds key.
func (c *Client) ServerFor(key string) string {
	return c.nodes[c.ring.index(key)].addr
}

// enter registers a call; it fails with ErrClosed after Close.
func (c *Client) enter(op, key string) error {
	c.active.Add(1)
	if c.closed.Load() {
		c.active.Add(-1)
		return &opError{Op: op, Key: key, Kind: backend.ErrClosed}
	}
	return nil
}

func (c *Client) leave() { c.active.Add(-1) }

// checkKey returns an error wrapping backend.ErrInvalidKey if memcached
// cannot carry key.
func checkKey(op, key string) error {
	if key == "" {
		return &opError{Op: op, Kind: backend.ErrInvalidKey, Err: errors.New("empty key")}
	}
	if len(key) > maxKeyLen {
		return &opError{Op: op, Key: key[:32] + "...", Kind: backend.ErrInvalidKey,
			Err: fmt.Errorf("key of %d bytes, memcached allows %d", len(key), maxKeyLen)}
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b == 0x7f {
			return &opError{Op: op, Key: key, Kind: backend.ErrInvalidKey,
				Err: fmt.Errorf("byte %#x at offset %d (no spaces or control bytes)", b, i)}
		}
	}
	return nil
}

// expiration converts a TTL to memcached's exptime: whole seconds, rounded
// up; 30 days or more as an absolute Unix time.
func expiration(op, key string, ttl time.Duration) (int32, error) {
	if ttl < 0 {
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL, Err: fmt.Errorf("TTL %v", ttl)}
	}
	if ttl == 0 {
		return 0, nil
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if secs < relativeTTLMax {
		return int32(secs), nil
	}
	abs := time.Now().Unix() + secs
	if abs > 1<<31-1 {
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL,
			Err: fmt.Errorf("TTL %v ends after 2038, beyond memcached's 32-bit expiration", ttl)}
	}
	return int32(abs), nil
}

// run calls fn, directly when ctx cannot be cancelled, otherwise in a
// goroutine while waiting for ctx too. fn must be bounded in time (every
// gomemcache call is, by the timeout).
func (c *Client) run(ctx context.Context, op, key string, fn func() error) error {
	if ctx.Done() == nil {
		return fn()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcached: %s %q: %w", op, key, err)
	}
	done := make(chan error, 1)
	c.active.Add(1)
	go func() {
		defer c.active.Add(-1)
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("memcached: %s %q: %w", op, key, ctx.Err())
	}
}

// prepare checks that the Client is open and key is valid, and returns the
// node for key if it is not marked down. On success the caller must call
// c.leave.
func (c *Client) prepare(op, key string) (*node, error) {
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if err := c.enter(op, key); err != nil {
		return nil, err
	}
	n := c.nodes[c.ring.index(key)]
	if err := n.admit(); err != nil {
		c.leave()
		return nil, &opError{Op: op, Key: key, Addr: n.addr, Kind: backend.ErrUnavailable, Err: err}
	}
	return n, nil
}

// result records the outcome of a call on n and converts its error.
func (c *Client) result(n *node, op, key string, err error) error {
	if err == nil {
		n.success()
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // already wrapped by run; says nothing about the server
	}
	kind, fault := classify(err)
	if fault {
		if n.failure() {
			// Marked down: drop idle connections, which may be dead, so that
			// the probe after the interval dials afresh.
			_ = c.mc.Close()
			drainConns(n)
		}
	} else {
		n.success()
	}
	return &opError{Op: op, Key: key, Addr: n.addr, Kind: kind, Err: err}
}

// Get returns the item stored under key. A miss gives an error wrapping
// backend.ErrNotFound and memcache.ErrCacheMiss; a server marked down,
// backend.ErrUnavailable.
func (c *Client) Get(ctx context.Context, key string) (backend.Item, error) {
	n, err := c.prepare("get", key)
	if err != nil {
		return backend.Item{}, err
	}
	defer c.leave()
	if c.batcher != nil {
		it, err := c.batcher.GetGroup(ctx, n.addr, key)
		if err != nil {
			switch {
			case errors.Is(err, backend.ErrNotFound):
				return backend.Item{}, errMiss
			case errors.Is(err, backend.ErrClosed):
				return backend.Item{}, &opError{Op: "get", Key: key, Kind: backend.ErrClosed}
			}
			var oe *opError
			if errors.As(err, &oe) {
				return backend.Item{}, &opError{Op: "get", Key: key, Addr: n.addr, Kind: oe.Kind, Err: oe.Err}
			}
			return backend.Item{}, fmt.Errorf("memcached: get %q: %w", key, err)
		}
		return it, nil
	}
	var mi *memcache.Item
	err = c.run(ctx, "get", key, func() error {
		var err error
		mi, err = c.mc.Get(key)
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		n.success()
		return backend.Item{}, errMiss
	}
	if err = c.result(n, "get", key, err); err != nil {
		return backend.Item{}, err
	}
	return backend.Item{Key: key, Value: mi.Value, CAS: mi.CasID}, nil
}

// fetch is the batcher's multi-get for the keys of one server, run by a
// batcher worker with the batcher's context.
func (c *Client) fetch(ctx context.Context, addr string, keys []string) (map[string]backend.Item, error) {
	n := c.byAddr[addr]
	items, err := c.readMulti(ctx, n, keys)
	return items, c.result(n, "get", "", err)
}

// fetchOne is fetch for one key. It also runs in the goroutine of a lone
// caller, with that caller's context.
func (c *Client) fetchOne(ctx context.Context, addr, key string) (backend.Item, error) {
	n := c.byAddr[addr]
	it, found, err := c.readOne(ctx, n, key)
	if err != nil {
		return it, c.result(n, "get", "", err)
	}
	n.success()
	if !found {
		return it, backend.ErrNotFound
	}
	return it, nil
}

// GetMulti returns the items found among keys. Keys are fetched from their
// servers in parallel, one request per server. A server that fails or is
// marked down makes the call return an error (naming the servers) together
// with the items found on the others. An invalid key fails the whole call
// before anything is sent.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	for _, k := range keys {
		if err := checkKey("get_multi", k); err != nil {
			return map[string]backend.Item{}, err
		}
	}
	if err := c.enter("get_multi", ""); err != nil {
		return map[string]backend.Item{}, err
	}
	defer c.leave()
	if err := ctx.Err(); err != nil {
		return map[string]backend.Item{}, fmt.Errorf("memcached: get_multi: %w", err)
	}
	if len(keys) == 0 {
		return map[string]backend.Item{}, nil
	}
	if len(c.nodes) == 1 {
		n := c.nodes[0]
		if err := n.admit(); err != nil {
			return map[string]backend.Item{}, &opError{Op: "get_multi", Addr: n.addr, Kind: backend.ErrUnavailable, Err: err}
		}
		if c.batcher != nil {
			// The read path heeds ctx itself.
			return c.getMultiNode(ctx, n, keys)
		}
		var items map[string]backend.Item
		err := c.run(ctx, "get_multi", "", func() error {
			var err error
			items, err = c.getMultiNode(ctx, n, keys)
			return err
		})
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// items still belongs to the abandoned call.
			return map[string]backend.Item{}, err
		}
		return items, err
	}
	perNode := make(map[*node][]string)
	for _, k := range keys {
		n := c.nodes[c.ring.index(k)]
		perNode[n] = append(perNode[n], k)
	}
	type res struct {
		items map[string]backend.Item
		err   error
	}
	results := make(chan res, len(perNode))
	var errs []error
	started := 0
	for n, ks := range perNode {
		if err := n.admit(); err != nil {
			errs = append(errs, &opError{Op: "get_multi", Addr: n.addr, Kind: backend.ErrUnavailable, Err: err})
			continue
		}
		started++
		c.active.Add(1)
		go func() {
			defer c.active.Add(-1)
			items, err := c.getMultiNode(ctx, n, ks)
			results <- res{items, err}
		}()
	}
	out := make(map[string]backend.Item, len(keys))
	for range started {
		select {
		case r := <-results:
			for k, it := range r.items {
				out[k] = it
			}
			if r.err != nil {
				errs = append(errs, r.err)
			}
		case <-ctx.Done():
			// The remaining requests finish in the background.
			return out, fmt.Errorf("memcached: get_multi: %w", ctx.Err())
		}
	}
	return out, errors.Join(errs...)
}

func (c *Client) getMultiNode(ctx context.Context, n *node, keys []string) (map[string]backend.Item, error) {
	if c.batcher != nil {
		// The read path of mget.go.
		items, err := c.readMulti(ctx, n, keys)
		if items == nil {
			items = map[string]backend.Item{}
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return items, fmt.Errorf("memcached: get_multi on %s: %w", n.addr, err)
		}
		return items, c.result(n, "get_multi", "", err)
	}
	var mis map[string]*memcache.Item
	var err error
	if len(keys) == 1 {
		var mi *memcache.Item
		mi, err = c.mc.Get(keys[0])
		if err == nil {
			mis = map[string]*memcache.Item{keys[0]: mi}
		} else if errors.Is(err, memcache.ErrCacheMiss) {
			err = nil
		}
	} else {
		mis, err = c.mc.GetMulti(keys)
	}
	items := make(map[string]backend.Item, len(mis))
	for k, mi := range mis {
		items[k] = backend.Item{Key: k, Value: mi.Value, CAS: mi.CasID}
	}
	return items, c.result(n, "get_multi", "", err)
}

// checkWrite checks what every write checks before anything is sent, the
// value's size against max_value_size and the TTL, and returns the
// expiration to send.
func (c *Client) checkWrite(op string, item backend.Item) (int32, error) {
	if int64(len(item.Value)) > c.cfg.maxValueSize {
		return 0, &opError{Op: op, Key: item.Key, Kind: backend.ErrValueTooLarge,
			Err: fmt.Errorf("value of %d bytes, the limit is %d (max_value_size)", len(item.Value), c.cfg.maxValueSize)}
	}
	return expiration(op, item.Key, item.TTL)
}

// store runs one of the writes (set, add, cas).
func (c *Client) store(ctx context.Context, op string, item backend.Item, fn func(*memcache.Item) error) error {
	n, err := c.prepare(op, item.Key)
	if err != nil {
		return err
	}
	defer c.leave()
	exp, err := c.checkWrite(op, item)
	if err != nil {
		return err
	}
	mi := &memcache.Item{Key: item.Key, Value: item.Value, Expiration: exp, CasID: item.CAS}
	err = c.run(ctx, op, item.Key, func() error { return fn(mi) })
	return c.result(n, op, item.Key, err)
}

// Set stores item unconditionally. A value over max_value_size fails with
// backend.ErrValueTooLarge before anything is sent. (A value the server
// itself refuses as too large, for example under a smaller -I, also gives
// backend.ErrValueTooLarge; memcached then drops the previous value.)
func (c *Client) Set(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "set", item, c.mc.Set)
}

// Add stores item only if its key is absent; otherwise it returns an error
// wrapping backend.ErrNotStored.
func (c *Client) Add(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "add", item, c.mc.Add)
}

// CompareAndSwap stores item if the key still holds the version item.CAS
// was read from: backend.ErrCASConflict if it changed, backend.ErrNotFound
// if it is gone.
func (c *Client) CompareAndSwap(ctx context.Context, item backend.Item) error {
	err := c.store(ctx, "cas", item, c.mc.CompareAndSwap)
	if errors.Is(err, backend.ErrNotStored) {
		// gomemcache's cas reports an item evicted meanwhile this way.
		var oe *opError
		if errors.As(err, &oe) {
			oe.Kind = backend.ErrNotFound
		}
	}
	return err
}

// Delete removes key; backend.ErrNotFound if it was absent.
func (c *Client) Delete(ctx context.Context, key string) error {
	n, err := c.prepare("delete", key)
	if err != nil {
		return err
	}
	defer c.leave()
	err = c.run(ctx, "delete", key, func() error { return c.mc.Delete(key) })
	return c.result(n, "delete", key, err)
}

// Touch gives key a new TTL; backend.ErrNotFound if it is absent.
func (c *Client) Touch(ctx context.Context, key string, ttl time.Duration) error {
	n, err := c.prepare("touch", key)
	if err != nil {
		return err
	}
	defer c.leave()
	exp, err := expiration("touch", key, ttl)
	if err != nil {
		return err
	}
	err = c.run(ctx, "touch", key, func() error { return c.mc.Touch(key, exp) })
	return c.result(n, "touch", key, err)
}

// Increment adds delta (decrements for a negative delta, stopping at 0) to
// the decimal number stored under key and returns the new value.
// backend.ErrNotFound if key is absent, backend.ErrNotNumeric if its value
// is not a number.
func (c *Client) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	n, err := c.prepare("incr", key)
	if err != nil {
		return 0, err
	}
	defer c.leave()
	var v uint64
	err = c.run(ctx, "incr", key, func() error {
		var err error
		if delta >= 0 {
			v, err = c.mc.Increment(key, uint64(delta))
		} else {
			v, err = c.mc.Decrement(key, uint64(-(delta+1))+1)
		}
		return err
	})
	if err = c.result(n, "incr", key, err); err != nil {
		return 0, err
	}
	return v, nil
}

// Close waits for calls in progress (each bounded by the timeout), then
// closes every connection. Later calls return backend.ErrClosed; a second
// Close returns nil.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.batcher != nil {
		_ = c.batcher.Close()
	}
	for c.active.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	_ = c.mc.Close()
	for _, n := range c.nodes {
		drainConns(n)
	}
	return nil
}

var (
	_ backend.Backend       = (*Client)(nil)
	_ backend.Lister        = (*Client)(nil)
	_ backend.StatsReporter = (*Client)(nil)
	_ backend.Flusher       = (*Client)(nil)
	_ backend.Pinger        = (*Client)(nil)
)
