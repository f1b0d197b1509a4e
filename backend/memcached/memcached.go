// Package memcached is memdict's memcached driver: a backend.Backend over
// one or more memcached servers, speaking memcached's meta protocol
// (mg, ms, md, ma, mn) on pipelined connections, and falling back to the
// text protocol (through github.com/bradfitz/gomemcache) for servers that
// have no meta commands.
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
//	timeout=500ms            bound on every call, queueing and connecting included
//	conns=2                  pipelined connections per server (see WithConns)
//	max_idle_conns=16        idle connections kept per text-protocol server
//	max_value_size=1048576   larger values fail with backend.ErrValueTooLarge
//	item_size_max=1048576    item size limit assumed for servers that do not tell theirs
//	failure_limit=3          consecutive failures that mark a server down (0: never)
//	retry_interval=2s        how long a server stays marked down
//	hash=md5                 key hash of the ketama ring: md5 or fnv1a_64 (see WithHash)
//	tls=false                use TLS (implied by memcacheds://)
//	tls_ca=/path/ca.pem      CA certificates (PEM) to verify servers; default: system roots
//	tls_cert=, tls_key=      client certificate and key (PEM), for servers that ask for one
//	tls_server_name=         name to verify the servers' certificates against; default: the host
//	tls_insecure_skip_verify=false  do not verify certificates (testing only)
//	batch, batch_inflight, batch_max_keys  accepted for older URLs and ignored:
//	                         every call is pipelined (see "The engine")
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
// # The engine
//
// Each server has a fixed set of conns connections (2 by default), each
// with one writer and one reader goroutine; every command (Get, GetMulti,
// Set, Add, CompareAndSwap, Delete, Touch, Increment, SetMulti,
// DeleteMulti) goes through them. Calls are pipelined: a call queues its
// request on a connection, the writer sends everything queued since its
// last write in one write, and the reader matches the replies to the
// requests in order. Concurrent callers share writes and round trips;
// there is no dial, no goroutine and (for Get and Set) only the value's
// allocation per call. A lone caller on an idle connection writes its
// request and reads its reply itself, as a synchronous client would, so
// that sequential calls pay no handoff between goroutines. A watchdog
// timer per connection, armed while requests are outstanding, enforces
// the timeout (calls have no timer of their own).
//
// The first connection to a server sends "mn". A server that answers MN
// has meta commands (memcached 1.6 and later): the connection then reads
// the server's item_size_max and whether CAS is on ("stats settings"), and
// every command is a meta command. Multi-key calls use quiet mode: the
// hundred "ms ... q" of a 100-key SetMulti, ended by "mn", are one write
// and one read per server. A server that answers ERROR, or closes the
// connection but answers "version" (memcached before 1.6, twemproxy/
// nutcracker, text-protocol stores) is served from then on through
// gomemcache's text protocol, one request per round trip on a pool of
// max_idle_conns connections; multi-key writes then loop over the keys.
// Through nutcracker, Keys, ServerStats, Flush and FlushNode fail, as the
// proxy forwards none of lru_crawler, stats and flush_all, and the server's
// item_size_max cannot be read (item_size_max says what to assume).
//
// # Value sizes
//
// memcached refuses an item larger than its item_size_max (-I), counting
// not only the value but the item header (48 bytes), the key and a NUL,
// the value's CRLF and the CAS field (8 bytes, unless -C): a 1 MiB server
// refuses values some 60 bytes short of 1 MiB. A refused set also drops the
// value stored before. The driver therefore checks every write against
// both max_value_size (the value alone) and the server's item_size_max
// (the item as memcached counts it), and fails a write that memcached
// would refuse with backend.ErrValueTooLarge before sending anything: a
// refused write never costs the stored value.
//
// # Failures and timeouts
//
// Every call ends within its timeout (or its context's deadline, if
// sooner), counted from when it is made: queueing behind other calls,
// connecting and the reply included. A call whose context is cancelled
// returns at once with an error wrapping ctx.Err(). A call that got no
// reply within the timeout means the connection it waited on is hung: the
// connection is closed, the calls on it fail, and the next call connects
// again. A connection that the server closed while it was idle (a
// restart, an idle timeout) shows on the next call made on it alone: a
// Get, a Touch or a Set is then sent again on a new connection, the other
// commands fail once. A reply that is not memcached's, such as a value
// larger than the client accepts (max_value_size or the server's
// item_size_max, whichever is larger), fails with an error wrapping
// ErrProtocol and closes the connection without reading (or allocating)
// the value.
//
// A server that fails failure_limit times in a row (connection refused,
// timeout, connection closed, garbage answer) is marked down for
// retry_interval: calls for its keys then fail at once with an error
// wrapping backend.ErrUnavailable, without touching the network. After the
// interval one call is let through as a probe; if it succeeds the server is
// up again, otherwise it stays down for another interval. Keys are not moved
// to other servers meanwhile, as nutcracker does by default
// (auto_eject_hosts: false): a missing server means misses, never stale
// values. GetMulti over several servers returns what the healthy ones
// hold together with a *backend.MultiError naming every key it could not
// read and why. Errors from memcached are mapped to the backend sentinels;
// a miss also wraps memcache.ErrCacheMiss, as the driver did when it was
// built on gomemcache.
//
// # Extra abilities
//
// Client implements backend.Lister (with "lru_crawler metadump"),
// backend.StatsReporter ("stats" on every server), backend.Flusher
// ("flush_all" on every server, or FlushNode for one), backend.Pinger
// ("version") and backend.MultiWriter (SetMulti, DeleteMulti; memdict's
// Tx.Commit and PutMulti use it). The admin commands (stats, lru_crawler
// metadump, version, flush_all) do not go through the engine: each opens
// a short-lived admin connection of its own, so that a long listing never
// holds up the pipelined calls. Keys holds the Client open while it
// iterates: do not Close the Client from inside the loop.
package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
)

// Defaults of the Client options.
const (
	DefaultTimeout       = 500 * time.Millisecond
	DefaultConns         = 2
	DefaultMaxIdleConns  = 16
	DefaultMaxValueSize  = 1 << 20
	DefaultItemSizeMax   = defaultItemSizeMax
	DefaultFailureLimit  = 3
	DefaultRetryInterval = 2 * time.Second

	// maxKeyLen is memcached's key length limit.
	maxKeyLen = 250
	// relativeTTLMax is the largest expiration memcached reads as relative
	// seconds; larger numbers are absolute Unix times.
	relativeTTLMax = 60 * 60 * 24 * 30
	// itemHeader is sizeof(item) in a 64-bit memcached (items.c
	// item_make_header); casSize is the CAS field it adds unless -C.
	itemHeader = 48
	casSize    = 8
)

// Client is a memcached backend over one or more servers. It implements
// backend.Backend, backend.MultiWriter, backend.Lister,
// backend.StatsReporter, backend.Flusher, backend.Pinger and
// backend.Leaser (lease.go), and is safe
// for concurrent use by multiple goroutines.
type Client struct {
	cfg    config
	ring   *ketama
	nodes  []*node
	byAddr map[string]*node
	dialer *dialer

	life   context.Context // cancelled by Close: ends dials in progress
	cancel context.CancelFunc
	bg     sync.WaitGroup // connection goroutines and dials

	closed atomic.Bool
	active atomic.Int64 // calls in progress
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
		n := &node{addr: addr, limit: cfg.failureLimit, interval: cfg.retryInterval}
		n.pool = newPool(c, n, cfg.conns)
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
	c.life, c.cancel = context.WithCancel(context.Background())
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

// itemSize is the size memcached gives an item (items.c: item_make_header
// with client flags 0, plus the CAS field): header, key and its NUL, value
// and its CRLF.
func itemSize(keyLen, valueLen int, cas bool) int64 {
	s := int64(itemHeader + keyLen + 1 + valueLen + 2)
	if cas {
		s += casSize
	}
	return s
}

// checkWrite checks what every write checks before anything is sent: the
// value's size against max_value_size and, as memcached counts it, against
// the server's item_size_max; and the TTL. It returns the expiration to
// send.
func (c *Client) checkWrite(n *node, op string, item backend.Item) (int32, error) {
	if int64(len(item.Value)) > c.cfg.maxValueSize {
		return 0, &opError{Op: op, Key: item.Key, Kind: backend.ErrValueTooLarge,
			Err: fmt.Errorf("value of %d bytes, the limit is %d (max_value_size)", len(item.Value), c.cfg.maxValueSize)}
	}
	limit := n.itemSizeMax.Load()
	if limit == 0 {
		limit = c.cfg.itemSizeMax
	}
	if size := itemSize(len(item.Key), len(item.Value), !n.noCAS.Load()); size > limit {
		return 0, &opError{Op: op, Key: item.Key, Addr: n.addr, Kind: backend.ErrValueTooLarge,
			Err: fmt.Errorf("value of %d bytes makes an item of %d bytes (with its %d-byte key and memcached's item header), over the server's item_size_max of %d",
				len(item.Value), size, len(item.Key), limit)}
	}
	return expiration(op, item.Key, item.TTL)
}

// deadline returns when a call starting now must end: after the timeout,
// or at ctx's deadline if that is sooner (byCtx).
func (c *Client) deadline(ctx context.Context) (time.Time, bool) {
	d := time.Now().Add(c.cfg.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd, true
	}
	return d, false
}

// prepare checks that the Client is open and key is valid, and returns the
// node for key if it is not marked down. On success the caller must call
// c.leave.
func (c *Client) prepare(ctx context.Context, op, key string) (*node, error) {
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if err := c.enter(op, key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		c.leave()
		return nil, fmt.Errorf("memcached: %s %q: %w", op, key, err)
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
		// Says nothing about the server.
		if key == "" {
			return fmt.Errorf("memcached: %s on %s: %w", op, n.addr, err)
		}
		return fmt.Errorf("memcached: %s %q on %s: %w", op, key, n.addr, err)
	}
	if errors.Is(err, backend.ErrClosed) {
		return &opError{Op: op, Key: key, Kind: backend.ErrClosed}
	}
	kind, fault := classify(err)
	if fault {
		n.failure()
	} else {
		n.success()
	}
	return &opError{Op: op, Key: key, Addr: n.addr, Kind: kind, Err: err}
}

// exec runs r on n's pipelined connections. It returns errTextProtocol
// (r released) if n turned out to have no meta commands.
func (c *Client) exec(ctx context.Context, n *node, r *request) error {
	deadline, byCtx := c.deadline(ctx)
	return n.pool.do(ctx, r, deadline, byCtx)
}

// Get returns the item stored under key. A miss gives an error wrapping
// backend.ErrNotFound and memcache.ErrCacheMiss; a server marked down,
// backend.ErrUnavailable.
func (c *Client) Get(ctx context.Context, key string) (backend.Item, error) {
	n, err := c.prepare(ctx, "get", key)
	if err != nil {
		return backend.Item{}, err
	}
	defer c.leave()
	if t := n.text.Load(); t != nil {
		return c.textGet(ctx, n, t, key)
	}
	r := newRequest(kindGet)
	r.key = key
	if err := c.exec(ctx, n, r); err != nil {
		if err == errTextProtocol {
			return c.textGet(ctx, n, n.text.Load(), key)
		}
		return backend.Item{}, c.result(n, "get", key, err)
	}
	status, it, rerr := r.status, backend.Item{Key: key, Value: r.rvalue, CAS: r.rcas}, r.err
	r.release()
	switch status {
	case replyOK:
		n.success()
		return it, nil
	case replyMiss:
		n.success()
		return backend.Item{}, errMiss
	}
	return backend.Item{}, c.result(n, "get", key, rerr)
}

// store runs one of the writes (set, add, cas); mode is 0, 'E' or 'C'.
func (c *Client) store(ctx context.Context, op string, mode byte, item backend.Item) error {
	n, err := c.prepare(ctx, op, item.Key)
	if err != nil {
		return err
	}
	defer c.leave()
	if t := n.text.Load(); t == nil && n.itemSizeMax.Load() == 0 {
		// Learn the server's item_size_max before checking the size.
		deadline, byCtx := c.deadline(ctx)
		if _, err := n.pool.conn(ctx, deadline, byCtx); err != nil && err != errTextProtocol {
			return c.result(n, op, item.Key, err)
		}
	}
	exp, err := c.checkWrite(n, op, item)
	if err != nil {
		return err
	}
	if t := n.text.Load(); t != nil {
		return c.textStore(ctx, n, t, op, mode, item, exp)
	}
	r := newRequest(kindStore)
	r.mode, r.key, r.value, r.exp, r.cas = mode, item.Key, item.Value, exp, item.CAS
	if err := c.exec(ctx, n, r); err != nil {
		if err == errTextProtocol {
			return c.textStore(ctx, n, n.text.Load(), op, mode, item, exp)
		}
		return c.result(n, op, item.Key, err)
	}
	status, rerr := r.status, r.err
	r.release()
	var kind error
	switch status {
	case replyOK:
		n.success()
		return nil
	case replyNotStored:
		kind = backend.ErrNotStored
	case replyExists:
		kind = backend.ErrCASConflict
	case replyMiss:
		kind = backend.ErrNotFound
	case replyTooLarge:
		kind = backend.ErrValueTooLarge
	default:
		return c.result(n, op, item.Key, rerr)
	}
	n.success()
	return &opError{Op: op, Key: item.Key, Addr: n.addr, Kind: kind}
}

// Set stores item unconditionally. A value that is over max_value_size, or
// that would make an item larger than the server's item_size_max, fails
// with backend.ErrValueTooLarge before anything is sent, leaving the
// stored value in place.
func (c *Client) Set(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "set", 0, item)
}

// Add stores item only if its key is absent; otherwise it returns an error
// wrapping backend.ErrNotStored.
func (c *Client) Add(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "add", 'E', item)
}

// CompareAndSwap stores item if the key still holds the version item.CAS
// was read from: backend.ErrCASConflict if it changed, backend.ErrNotFound
// if it is gone.
func (c *Client) CompareAndSwap(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "cas", 'C', item)
}

// keyed runs a keyed command without a value (delete, touch, incr).
func (c *Client) keyed(ctx context.Context, op, key string, r *request,
	text func(*textEngine) (uint64, error)) (uint64, error) {
	n, err := c.prepare(ctx, op, key)
	if err != nil {
		r.release()
		return 0, err
	}
	defer c.leave()
	if t := n.text.Load(); t != nil {
		r.release()
		v, err := c.textRun(ctx, n, op, key, func() (uint64, error) { return text(t) })
		return v, err
	}
	r.key = key
	if err := c.exec(ctx, n, r); err != nil {
		if err == errTextProtocol {
			t := n.text.Load()
			return c.textRun(ctx, n, op, key, func() (uint64, error) { return text(t) })
		}
		return 0, c.result(n, op, key, err)
	}
	status, num, rerr := r.status, r.num, r.err
	r.release()
	var kind error
	switch status {
	case replyOK:
		n.success()
		return num, nil
	case replyMiss:
		kind = backend.ErrNotFound
	case replyNotNumeric:
		kind = backend.ErrNotNumeric
	default:
		return 0, c.result(n, op, key, rerr)
	}
	n.success()
	return 0, &opError{Op: op, Key: key, Addr: n.addr, Kind: kind}
}

// Delete removes key; backend.ErrNotFound if it was absent.
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.keyed(ctx, "delete", key, newRequest(kindDelete), func(t *textEngine) (uint64, error) {
		return 0, t.mc.Delete(key)
	})
	return err
}

// Touch gives key a new TTL; backend.ErrNotFound if it is absent.
func (c *Client) Touch(ctx context.Context, key string, ttl time.Duration) error {
	exp, err := expiration("touch", key, ttl)
	if err != nil {
		return err
	}
	r := newRequest(kindTouch)
	r.exp = exp
	_, err = c.keyed(ctx, "touch", key, r, func(t *textEngine) (uint64, error) {
		return 0, t.mc.Touch(key, exp)
	})
	return err
}

// Increment adds delta (decrements for a negative delta, stopping at 0) to
// the decimal number stored under key and returns the new value; an
// increment past 2^64-1 wraps around, as memcached does. backend.ErrNotFound
// if key is absent, backend.ErrNotNumeric if its value is not a number.
func (c *Client) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	r := newRequest(kindArith)
	var d uint64
	if delta >= 0 {
		r.mode, d = 'I', uint64(delta)
	} else {
		r.mode, d = 'D', uint64(-(delta+1))+1
	}
	r.delta = d
	return c.keyed(ctx, "incr", key, r, func(t *textEngine) (uint64, error) {
		if delta >= 0 {
			return t.mc.Increment(key, d)
		}
		return t.mc.Decrement(key, d)
	})
}

// PrivateReads reports true: the Value of every Get is a buffer read
// from the network for that call alone (backend.PrivateReader), so a
// memdict.Dict[[]byte] hands it over without copying it.
func (c *Client) PrivateReads() bool { return true }

var _ backend.PrivateReader = (*Client)(nil)

// Close waits for calls in progress (each bounded by the timeout), then
// closes every connection. Later calls return backend.ErrClosed; a second
// Close returns nil.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	for c.active.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	c.cancel()
	for _, n := range c.nodes {
		n.pool.close()
		if t := n.text.Load(); t != nil {
			_ = t.mc.Close()
		}
	}
	c.bg.Wait()
	// A dial that finished after the first round of closing.
	for _, n := range c.nodes {
		n.pool.close()
	}
	c.bg.Wait()
	return nil
}

var (
	_ backend.Backend       = (*Client)(nil)
	_ backend.Lister        = (*Client)(nil)
	_ backend.StatsReporter = (*Client)(nil)
	_ backend.Flusher       = (*Client)(nil)
	_ backend.Pinger        = (*Client)(nil)
	_                       = memcache.ErrCacheMiss
)
