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
	"github.com/memdict/memdict/internal/stripe"
)

// Client is a memcached backend over one or more servers. It implements
// backend.Backend, backend.MultiWriter, backend.Lister,
// backend.StatsReporter, backend.Flusher, backend.Pinger and
// backend.Leaser (lease.go), and is safe
// for concurrent use by multiple goroutines.
type Client struct {
	cfg    config
	ring   atomic.Pointer[keyRing] // where keys go now
	full   *keyRing                // every server: where keys go when none is ejected
	ringMu sync.Mutex              // serializes ejections and returns (eject.go)
	hash   func(string) uint32
	nodes  []*node
	byAddr map[string]*node
	dialer *dialer

	life   context.Context // cancelled by Close: ends dials in progress
	cancel context.CancelFunc
	bg     sync.WaitGroup // connection goroutines and dials

	closed atomic.Bool
	active stripe.Counter // calls in progress (see enter)

	hook func(where string) // tests only (export_test.go): called at the points named in testPoint
}

// testPoint calls the test hook, if any, at where: "read" (a reply),
// "write" (a batch of requests), "watchdog", "dial", "dialed" (a dial
// succeeded, under its slot's lock, before its connection is stored),
// "enqueue" (a multi-key call queues a server's request on the
// connection its slot holds, without connecting) or "text" (a
// text-protocol call), each in the goroutine that does it.
func (c *Client) testPoint(where string) {
	if c.hook != nil {
		c.hook(where)
	}
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
		hook:   cfg.hook,
		byAddr: make(map[string]*node, len(addrs)),
		dialer: &dialer{timeout: cfg.timeout, tls: cfg.tls, custom: cfg.dial},
	}
	for _, a := range addrs {
		host, port, err := splitAddr(a)
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort(host, port)
		if c.byAddr[addr] != nil {
			return nil, fmt.Errorf("memcached: server %s listed twice", addr)
		}
		n := &node{addr: addr, name: ketamaName(host, port), limit: cfg.failureLimit, interval: cfg.retryInterval}
		n.pool = newPool(c, n, cfg.conns)
		if cfg.autoEject {
			n.onDown = c.watchDown
		}
		c.nodes = append(c.nodes, n)
		c.byAddr[addr] = n
	}
	c.hash = hashKey
	if cfg.hash == "md5" {
		c.hash = hashMD5
	}
	c.full = newRing(c.nodes, 0, c.hash)
	c.ring.Store(c.full)
	c.dialer.addrs = c.dialAddrs
	c.life, c.cancel = context.WithCancel(context.Background())
	c.startResolver()
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

// ServerFor returns the address (as configured) of the server that holds
// key: with auto-eject, while its own server is ejected, the server that
// stands in for it.
func (c *Client) ServerFor(key string) string {
	return c.pick(key).addr
}

// pick returns the server of key.
func (c *Client) pick(key string) *node {
	return c.ring.Load().node(key)
}

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
			t.close()
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
