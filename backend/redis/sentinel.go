package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis Sentinel: a master, its replicas, and sentinels that promote a
// replica when the master dies. NewSentinel (and a redis:// URL with
// sentinel_master) makes a Backend on go-redis's failover client, which
// asks the sentinels for the master's address at every connect, and drops
// its connections to a master the sentinels replaced (+switch-master).
// The Backend adds what memdict's guarantees need:
//
//   - Every connection, to the master and to the sentinels, is guarded as
//     on a standalone server (conn.go: replies validated before go-redis
//     reads them, counted, reset on close), the sentinels' with a budget
//     of their own (sentinelBudget, 1 MiB: they never carry a value).
//     The handshake is not pipelined: one dialer serves both, and the
//     sentinels take other credentials.
//   - While the master is marked down (see WithFailureLimit), the probe
//     asks the sentinels for the master every sentinelPoll, and PINGs as
//     soon as they name another one (besides every retry_interval): so
//     calls succeed again within a round trip or two of the promotion,
//     rather than at the next retry_interval.
//   - The tracking connections of the near cache go to the master the
//     sentinels name, which the tracker asks again every sentinelPoll*10
//     (and at every reconnect): when it changes, tracking is set up anew
//     on the new master and every key is reported as changed, so that a
//     near cache never serves a value read before the switch.

// DefaultSentinelPort is the port of a sentinel address without one.
const DefaultSentinelPort = "26379"

// sentinelPoll is how often a probe of a master marked down asks the
// sentinels for the master.
const sentinelPoll = 100 * time.Millisecond

// sentinels is what a Backend on Redis Sentinel knows of them.
type sentinels struct {
	name  string
	addrs []string
	opt   *goredis.Options // for the Backend's own sentinel clients (Addr set per sentinel)

	mu      sync.Mutex
	clients map[string]*goredis.SentinelClient
	closed  bool
}

// NewSentinel returns a Backend on the master that the sentinels of opt
// (opt.SentinelAddrs) name opt.MasterName, through go-redis's failover
// client. It adjusts a copy of opt as New does (context timeouts on,
// DialTimeout and PoolTimeout capped at the timeout, one dial attempt,
// no retries unless set), and guards every connection, to the master and
// to the sentinels (see the package documentation, "Redis Sentinel"). It
// does not connect: the first call (or Ping) does. Close closes the client
// it creates. It returns an error for nil options, no sentinel addresses
// or no master name, and for options that route reads to replicas
// (ReplicaOnly, RouteByLatency, RouteRandomly), which could read values
// older than the master's.
func NewSentinel(opt *goredis.FailoverOptions, options ...Option) (*Backend, error) {
	switch {
	case opt == nil:
		return nil, errors.New("redis: NewSentinel with nil options")
	case len(opt.SentinelAddrs) == 0:
		return nil, errors.New("redis: NewSentinel with no sentinel addresses")
	case opt.MasterName == "":
		return nil, errors.New("redis: NewSentinel with no master name")
	case opt.ReplicaOnly || opt.RouteByLatency || opt.RouteRandomly:
		return nil, errors.New("redis: NewSentinel: reads from replicas may be older than the master's values; memdict reads from the master")
	}
	cfg := newConfig(options)
	o := *opt
	o.SentinelAddrs = append([]string(nil), opt.SentinelAddrs...)
	var maint *maintnotifications.Config // the failover client disables them itself
	clientFields{&o.ContextTimeoutEnabled, &o.DisableIdentity, &o.PoolTimeout, &o.DialTimeout,
		&o.DialerRetries, &o.MaxRetries, &maint}.adjust(cfg.timeout)
	g, raw := guardDialer(cfg, &o.Dialer, o.DialTimeout, o.TLSConfig, false)
	g.sentinels = make(map[string]bool, len(o.SentinelAddrs))
	for _, a := range o.SentinelAddrs {
		g.sentinels[a] = true
	}
	// Any other address comes from the sentinels (the master's, or a
	// sentinel they know): a dial error names it as such, and the master,
	// so that a bad address a sentinel gives (127.0.0.1:99999, "a b:x")
	// does not read as a bare "dial tcp: address 99999: invalid port".
	guarded := o.Dialer
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := guarded(ctx, network, addr)
		if err != nil && !g.sentinels[addr] {
			err = fmt.Errorf("redis: master %q: dial %q, an address the sentinels gave: %w", o.MasterName, addr, err)
		}
		return nc, err
	}
	b := ownedBackend(goredis.NewFailoverClient(&o), cfg, o.Username)
	b.guard, b.rawDial = g, raw
	b.lane0.addr = "master " + o.MasterName + " (sentinel)"
	b.sentinel = &sentinels{
		name:  o.MasterName,
		addrs: o.SentinelAddrs,
		opt: &goredis.Options{
			Dialer:                o.Dialer,
			Username:              o.SentinelUsername,
			Password:              o.SentinelPassword,
			TLSConfig:             o.TLSConfig,
			DialTimeout:           o.DialTimeout,
			DialerRetries:         1,
			MaxRetries:            -1,
			ReadTimeout:           o.ReadTimeout,
			WriteTimeout:          o.WriteTimeout,
			ContextTimeoutEnabled: true,
			PoolSize:              1,
			DisableIdentity:       true,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		},
		clients: map[string]*goredis.SentinelClient{},
	}
	return b, nil
}

// masterAddr asks the sentinels, all at once, for the master's address,
// and returns the first answer. One at a time, a sentinel that does not
// answer (a hung host, a dropped network) took the whole of ctx before
// the next was asked: with it first in the list, every question failed
// though the others answered, so that the near cache's tracking never
// found the master (its near cache never served) and a probe never saw
// a promotion. It returns when ctx ends too: go-redis does not stop a
// read when its context is cancelled, only at its deadline, so that a
// Close while every sentinel hung waited for the tracker's question to
// time out (2.4 s of its 3). Those still asking then, or when one
// answers, end by themselves, by their deadline at the latest.
func (s *sentinels) masterAddr(ctx context.Context) (string, error) {
	type answer struct {
		addr string
		hp   []string
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, len(s.addrs)) // never blocks: the askers end by themselves
	for _, addr := range s.addrs {
		c := s.client(addr)
		if c == nil {
			return "", errors.New("redis: sentinel: closed")
		}
		go func() {
			hp, err := c.GetMasterAddrByName(ctx, s.name).Result()
			answers <- answer{addr, hp, err}
		}()
	}
	var errs []error
	for range s.addrs {
		var a answer
		select {
		case a = <-answers:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			return "", fmt.Errorf("redis: no sentinel named master %q before the question ended: %w", s.name, errors.Join(errs...))
		}
		if a.err == nil && len(a.hp) == 2 {
			return net.JoinHostPort(a.hp[0], a.hp[1]), nil
		}
		if a.err == nil {
			a.err = fmt.Errorf("answer %q", a.hp)
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", a.addr, a.err))
	}
	return "", fmt.Errorf("redis: no sentinel names master %q: %w", s.name, errors.Join(errs...))
}

// client returns the Backend's client of the sentinel at addr, or nil
// after close.
func (s *sentinels) client(addr string) *goredis.SentinelClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	c := s.clients[addr]
	if c == nil {
		o := *s.opt
		o.Addr = addr
		c = goredis.NewSentinelClient(&o)
		s.clients[addr] = c
	}
	return c
}

// close closes the Backend's sentinel clients.
func (s *sentinels) close() {
	s.mu.Lock()
	cs := s.clients
	s.clients, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// sentinelProbe is the probe of a master marked down (see lane.probe): it
// PINGs at once, then every retry_interval, and every sentinelPoll while
// the sentinels name another master than the one they named when it
// began (a replica promoted since).
func (l *lane) sentinelProbe() {
	s := l.b.sentinel
	ask := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), l.b.cfg.timeout)
		defer cancel()
		addr, _ := s.masterAddr(ctx)
		return addr
	}
	was := ask()
	poll := time.NewTicker(sentinelPoll)
	defer poll.Stop()
	next := time.Now()
	for {
		select {
		case <-l.b.stop:
			return
		case <-poll.C:
		}
		if time.Now().Before(next) {
			if now := ask(); now == "" || now == was {
				continue
			}
		}
		if l.ping() {
			l.fails.Store(0)
			l.down.Store(false)
			return
		}
		next = time.Now().Add(l.b.cfg.retryInterval)
	}
}
