package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
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
//   - Both ask every sentinel at once and follow the master named with
//     the highest config epoch, not the first answer (masterAddr), so that
//     a sentinel that lags behind a failover does not pull them back to
//     the demoted master.

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
	grace time.Duration    // sentinelGrace; tests set more, free of the machine's load

	mu      sync.Mutex
	clients map[string]*goredis.SentinelClient
	closed  bool
	// chosen is the master masterAddr returned last ("" before), named
	// with config epoch epoch (see choose).
	chosen string
	epoch  uint64
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
		grace:   sentinelGrace,
	}
	return b, nil
}

// sentinelGrace is how long masterAddr waits for the other sentinels
// once one of them named the master: during a failover they disagree for
// a while, and the first to answer may be one that still names the old
// master (see masterAddr).
const sentinelGrace = 50 * time.Millisecond

// masterAddr asks the sentinels, all at once, for the master (SENTINEL
// MASTER), and returns the address of the one named with the highest
// config epoch, Sentinel's own rule: the sentinels that saw a failover
// name the promoted replica with the epoch of that failover, those that
// lag the old master with an older one. The first answer used to win, so
// that while the sentinels disagreed (or while one lagged, or lied, and
// answered fastest) the near cache's tracker and the probe of a master
// marked down flipped between the old and the new master from one
// question to the next, every flip resetting the near cache and sending
// tracking and PINGs to a demoted master. Once a sentinel named a
// master, masterAddr waits up to sentinelGrace (within ctx) for the
// others, and no more: one that does not answer delays nothing beyond
// it. Ties in epoch go to the master most sentinels name, then to the
// one masterAddr returned last (see choose). An answer without the
// master's ip, port, config-epoch or flags, one that is not a number
// where one is due, and one whose flags say the sentinel sees the master
// down (s_down, o_down) are ignored; the error names them if no answer
// is left. A sentinel leading a failover is asked get-master-addr-by-name
// too, for the promoted replica (see currentMaster). A sentinel whose ACL
// refuses SENTINEL MASTER (NOPERM) is asked get-master-addr-by-name,
// whose answer has no epoch (see choose).
//
// One at a time, a sentinel that does not answer (a hung host, a dropped
// network) took the whole of ctx before the next was asked: with it
// first in the list, every question failed though the others answered.
// masterAddr returns when ctx ends too, with the answers it has if any:
// go-redis does not stop a read when its context is cancelled, only at
// its deadline, so that a Close while every sentinel hung waited for the
// tracker's question to time out (2.4 s of its 3). Those still asking
// then, or when masterAddr returns, end by themselves, by their deadline
// at the latest.
func (s *sentinels) masterAddr(ctx context.Context) (string, error) {
	type answer struct {
		addr string
		view masterView
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
			m, err := c.Master(ctx, s.name).Result()
			var v masterView
			switch {
			case err == nil:
				if v, err = parseMaster(m); err == nil && v.failover {
					v, err = currentMaster(ctx, c, s.name, v)
				}
			case strings.HasPrefix(err.Error(), "NOPERM"):
				// An ACL user allowed get-master-addr-by-name only (what
				// go-redis's failover client needs): the address without
				// its epoch, which counts only if no sentinel gives one.
				var hp []string
				if hp, err = c.GetMasterAddrByName(ctx, s.name).Result(); err == nil && len(hp) != 2 {
					err = fmt.Errorf("get-master-addr-by-name answered %.40q", hp)
				}
				if err == nil {
					v = masterView{addr: net.JoinHostPort(hp[0], hp[1]), noEpoch: true}
				}
			}
			answers <- answer{addr, v, err}
		}()
	}
	var views []masterView
	var errs []error
	var grace <-chan time.Time
collect:
	for range s.addrs {
		var a answer
		select {
		case a = <-answers:
		case <-grace:
			break collect
		case <-ctx.Done():
			if len(views) > 0 {
				break collect
			}
			errs = append(errs, ctx.Err())
			return "", fmt.Errorf("redis: no sentinel named master %q before the question ended: %w", s.name, errors.Join(errs...))
		}
		if a.err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", a.addr, a.err))
			continue
		}
		views = append(views, a.view)
		if grace == nil {
			t := time.NewTimer(s.grace)
			defer t.Stop()
			grace = t.C
		}
	}
	if len(views) == 0 {
		return "", fmt.Errorf("redis: no sentinel names master %q: %w", s.name, errors.Join(errs...))
	}
	return s.choose(views), nil
}

// masterView is what one sentinel answered of the master.
type masterView struct {
	addr    string // host:port
	epoch   uint64 // config-epoch: that of the failover that made it master
	noEpoch bool   // the sentinel's ACL refused SENTINEL MASTER: epoch unknown
	// failover: the sentinel leads a failover (failover_in_progress), so
	// that addr may be the master being demoted (see currentMaster);
	// down: its flags say it sees addr down.
	failover, down bool
}

// currentMaster returns v, the answer to SENTINEL MASTER of a sentinel
// leading a failover, with the address that the sentinel's
// get-master-addr-by-name gives. From the promotion of a replica until
// the other replicas follow it (reconf_slaves, which lasts up to the
// failover-timeout), SENTINEL MASTER names the master being demoted with
// the config epoch of the failover already, the highest there is, and
// get-master-addr-by-name the promoted replica (Redis 7.0: port 27101 and
// epoch 1 from one, 27102 from the other): taken as it was, the demoted
// master won over the sentinels that follow the new one. Before the
// promotion both name the old master and the epoch is still its own. An
// address seen down stays an error, as parseMaster makes it.
func currentMaster(ctx context.Context, c *goredis.SentinelClient, name string, v masterView) (masterView, error) {
	hp, err := c.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return masterView{}, fmt.Errorf("get-master-addr-by-name during a failover: %w", err)
	}
	if len(hp) != 2 {
		return masterView{}, fmt.Errorf("get-master-addr-by-name during a failover answered %.40q", hp)
	}
	if p, err := strconv.ParseUint(hp[1], 10, 16); err != nil || p == 0 || hp[0] == "" || len(hp[0]) > 255 {
		return masterView{}, fmt.Errorf("get-master-addr-by-name during a failover answered %.40q, not a host and port", hp)
	}
	addr := net.JoinHostPort(hp[0], hp[1])
	if addr == v.addr && v.down {
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered a failover not past the promotion: the sentinel sees master %s down (s_down or o_down)", addr)
	}
	v.addr = addr
	return v, nil
}

// parseMaster returns the master that a sentinel's answer to SENTINEL
// MASTER describes (its fields, from a RESP3 map or a RESP2 flat array),
// or an error naming what is missing or malformed: the answer is a
// server's, untrusted.
func parseMaster(m map[string]string) (masterView, error) {
	for _, f := range [...]string{"ip", "port", "config-epoch", "flags"} {
		if _, ok := m[f]; !ok {
			return masterView{}, fmt.Errorf("SENTINEL MASTER answered no %s (%d fields)", f, len(m))
		}
	}
	ip, port, epoch, flags := m["ip"], m["port"], m["config-epoch"], m["flags"]
	if ip == "" || len(ip) > 255 {
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered ip %.40q (%d bytes), not a host", ip, len(ip))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered port %.40q, not a port", port)
	}
	e, err := strconv.ParseUint(epoch, 10, 64)
	if err != nil {
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered config-epoch %.40q, not a number", epoch)
	}
	fs := strings.Split(flags, ",")
	down := slices.Contains(fs, "s_down") || slices.Contains(fs, "o_down")
	failover := slices.Contains(fs, "failover_in_progress")
	switch {
	case !slices.Contains(fs, "master"):
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered flags %.40q, not a master's", flags)
	case down && !failover: // a failover's promoted replica is up (see currentMaster)
		return masterView{}, fmt.Errorf("SENTINEL MASTER answered flags %.40q: the sentinel sees master %s down", flags, net.JoinHostPort(ip, port))
	}
	return masterView{addr: net.JoinHostPort(ip, port), epoch: e, failover: failover, down: down}, nil
}

// choose returns the master of views (at least one) that masterAddr
// returns, and remembers it: the one named with the highest config
// epoch; among several named with it, the one most of them name, then
// the one chosen last, then the lowest address (never a choice that
// depends on which sentinel answered first). It does not go back to a
// master named with an epoch older than the one chosen last (a sentinel
// that lags, or lies, and answered alone within the grace) unless a
// majority of the sentinels answered and every one of them names that
// master: a fleet of sentinels redeployed from scratch counts its epochs
// anew, and is followed; otherwise it returns the master chosen last.
// Answers without an epoch count only when no answer has one.
func (s *sentinels) choose(views []masterView) string {
	known := slices.DeleteFunc(slices.Clone(views), func(v masterView) bool { return v.noEpoch })
	if len(known) == 0 {
		return s.chooseNoEpoch(views)
	}
	views = known
	top := views[0].epoch
	for _, v := range views {
		top = max(top, v.epoch)
	}
	votes := map[string]int{}
	for _, v := range views {
		if v.epoch == top {
			votes[v.addr]++
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best := pick(votes, s.chosen)
	if s.chosen != "" && top < s.epoch {
		agree := len(views) > len(s.addrs)/2
		for _, v := range views {
			agree = agree && v.addr == best
		}
		if !agree {
			return s.chosen
		}
	}
	s.chosen, s.epoch = best, top
	return best
}

// pick returns the address of votes (number of sentinels naming each)
// that most sentinels name, then chosen, then the lowest: never one that
// depends on the order of a map or of the answers.
func pick(votes map[string]int, chosen string) string {
	best := ""
	for addr, n := range votes {
		if best == "" || n > votes[best] || n == votes[best] && best != chosen && (addr == chosen || addr < best) {
			best = addr
		}
	}
	return best
}

// chooseNoEpoch is choose when no sentinel gave an epoch (their ACL user
// may not run SENTINEL MASTER): the master most of them name, then the
// one chosen last, then the lowest address. The epoch remembered stays.
func (s *sentinels) chooseNoEpoch(views []masterView) string {
	votes := map[string]int{}
	for _, v := range views {
		votes[v.addr]++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best := pick(votes, s.chosen)
	s.chosen = best
	return best
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
