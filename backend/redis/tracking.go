package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// Server-assisted client-side caching.
//
// Track (backend.Invalidator) makes the Backend keep one connection of its
// own to every Redis master, in RESP3 (HELLO 3), on which it runs
//
//	CLIENT TRACKING ON BCAST PREFIX <p1> PREFIX <p2> ...
//
// with the tracked prefixes, so that the server pushes an "invalidate"
// message naming every key under them that anyone writes, deletes, expires
// or evicts. A goroutine per connection reads the pushes and hands the keys
// to the registrations whose prefix they start with; a null key list (a
// FLUSHALL or FLUSHDB) resets them all.
//
// The connection sends PING every trackPing and is taken as lost when
// nothing arrives for trackTimeout. On a lost connection every
// registration stops being Live and is reset (Invalidation.All), and the
// tracker dials again, backing off up to trackMaxBackoff; once every
// master has confirmed tracking, the registrations are Live again, and
// reset once more: a key changed while tracking was down went unreported,
// though a reader may have read it (its generation, say) after the first
// reset. A new
// prefix that does not overlap the tracked ones is added on the live
// connections (CLIENT TRACKING ON BCAST PREFIX <new>); one that covers
// tracked prefixes (Redis refuses overlapping prefixes on one connection)
// makes the tracker set the connections up anew, which resets every
// registration. On a cluster the tracker reads the masters again every
// trackTopology and sets up anew when they changed.
//
// BCAST, rather than tracking each key read, keeps the tracking on
// connections of its own (go-redis's pool connections need no change) and
// the server's memory free of a table of read keys; its cost is that every
// write under a tracked prefix is reported, cached here or not.
//
// A server that lacks HELLO 3 or CLIENT TRACKING (Redis before 6,
// miniredis) makes every registration unsupported: Live stays false, and a
// near cache then relies on its MaxStale. Only an answer that says the
// server lacks the command counts (see lacksTracking): any other error
// reply to HELLO or CLIENT TRACKING (-BUSY while a script runs, -LOADING,
// -MASTERDOWN, -OOM, "max number of clients reached", ...) says that the
// server cannot serve now, and the tracker dials again, backing off as for
// a lost connection; meanwhile the registrations are not Live, as when a
// connection is lost.

const (
	trackPing       = time.Second
	trackTimeout    = 3 * time.Second
	trackMaxBackoff = 2 * time.Second
	trackTopology   = 5 * time.Second
)

var _ backend.Invalidator = (*Backend)(nil)

// trackers holds each Backend's tracker, made by its first Track; kept
// apart from the Backend so that the driver's own files need only a call
// in Close.
var trackers struct {
	mu sync.Mutex
	m  map[*Backend]*tracker
}

// Track implements backend.Invalidator: fn receives the keys under prefix
// that change, from a tracking connection per master (see the package
// documentation). It does no I/O: tracking starts in the background, and
// the Tracking is Live once every master has confirmed it. It returns an
// error wrapping backend.ErrClosed after Close, and one wrapping
// backend.ErrNotSupported for a client that is neither a *goredis.Client
// nor a *goredis.ClusterClient, or once the server has shown that it
// lacks tracking (see lacksTracking).
func (b *Backend) Track(_ context.Context, prefix string, fn func(backend.Invalidation)) (backend.Tracking, error) {
	if fn == nil {
		return nil, errors.New("redis: track: nil function")
	}
	if b.single == nil && b.cluster == nil {
		return nil, fmt.Errorf("redis: track %q: %w: client tracking needs a *redis.Client or *redis.ClusterClient, not %T", prefix, backend.ErrNotSupported, b.client)
	}
	trackers.mu.Lock()
	if b.closed.Load() {
		trackers.mu.Unlock()
		return nil, fmt.Errorf("redis: track %q: %w", prefix, backend.ErrClosed)
	}
	t := trackers.m[b]
	if t == nil {
		t = newTracker(b)
		if trackers.m == nil {
			trackers.m = make(map[*Backend]*tracker)
		}
		trackers.m[b] = t
	}
	trackers.mu.Unlock()
	if t.unsupported.Load() {
		return nil, fmt.Errorf("redis: track %q: %w: %v", prefix, backend.ErrNotSupported, t.why())
	}
	return t.add(prefix, fn), nil
}

// stopTracking stops b's tracker, if it has one; Close calls it.
func stopTracking(b *Backend) {
	trackers.mu.Lock()
	t := trackers.m[b]
	delete(trackers.m, b)
	trackers.mu.Unlock()
	if t != nil {
		t.stop()
	}
}

// tracker runs a Backend's tracking connections.
type tracker struct {
	b *Backend

	mu      sync.Mutex
	regs    map[*tracking]struct{}
	wake    chan struct{}
	lastErr error

	unsupported atomic.Bool
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	stopped     bool
}

func newTracker(b *Backend) *tracker {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tracker{b: b, regs: map[*tracking]struct{}{}, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for !t.supervised() {
		}
	}()
	return t
}

// supervised runs supervise and reports whether it returned. After a
// panic, which it recovers (supervise's deferred end has then reset every
// registration), it waits trackMaxBackoff and reports false, to be run
// again, unless the tracker is stopped.
func (t *tracker) supervised() (returned bool) {
	defer func() {
		if r := recover(); r != nil {
			t.setErr(fmt.Errorf("redis: tracking: %w", panicError("tracking", r)))
			select {
			case <-t.ctx.Done():
				returned = true
			case <-time.After(trackMaxBackoff):
			}
		}
	}()
	t.supervise()
	return true
}

func (t *tracker) why() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// tracking is one registration.
type tracking struct {
	t       *tracker
	prefix  string
	fnMu    sync.Mutex // serialises fn, and Stop with it
	fn      func(backend.Invalidation)
	live    atomic.Bool
	stopped atomic.Bool
	// lost says tracking was down since the registration was last Live
	// (it was reset then): it is reset again once Live, since what
	// changed meanwhile went unreported. Only the supervisor uses it.
	lost bool
}

func (r *tracking) Live() bool      { return r.live.Load() && !r.stopped.Load() }
func (r *tracking) Supported() bool { return !r.t.unsupported.Load() }

// Stop ends the registration.
func (r *tracking) Stop() {
	r.t.mu.Lock()
	delete(r.t.regs, r)
	r.t.mu.Unlock()
	r.fnMu.Lock()
	r.stopped.Store(true)
	r.fnMu.Unlock()
}

func (r *tracking) deliver(inv backend.Invalidation) {
	r.fnMu.Lock()
	defer r.fnMu.Unlock()
	if !r.stopped.Load() {
		r.fn(inv)
	}
}

// add registers prefix and wakes the supervisor.
func (t *tracker) add(prefix string, fn func(backend.Invalidation)) *tracking {
	r := &tracking{t: t, prefix: prefix, fn: fn}
	t.mu.Lock()
	t.regs[r] = struct{}{}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return r
}

// stop closes the connections and waits for the goroutines.
func (t *tracker) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// minimal returns the prefixes of ps that no other prefix of ps starts,
// sorted: the set Redis accepts on one connection that covers them all.
func minimal(ps []string) []string {
	ps = slices.Clone(ps)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var out []string
	for _, p := range ps {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// covered reports whether one of set starts p.
func covered(set []string, p string) bool {
	for _, s := range set {
		if strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}

// wanted returns the minimal set of the registered prefixes.
func (t *tracker) wanted() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]string, 0, len(t.regs))
	for r := range t.regs {
		ps = append(ps, r.prefix)
	}
	return minimal(ps)
}

// each calls fn for every registration.
func (t *tracker) each(fn func(r *tracking)) {
	t.mu.Lock()
	regs := make([]*tracking, 0, len(t.regs))
	for r := range t.regs {
		regs = append(regs, r)
	}
	t.mu.Unlock()
	for _, r := range regs {
		fn(r)
	}
}

// node is where a tracking connection goes.
type node struct {
	addr string
	opt  *goredis.Options
}

// nodes returns the masters to track.
func (t *tracker) nodes(ctx context.Context) ([]node, error) {
	if s := t.b.sentinel; s != nil {
		addr, err := s.masterAddr(ctx)
		if err != nil {
			return nil, err
		}
		return []node{{addr, t.b.single.Options()}}, nil
	}
	if t.b.single != nil {
		o := t.b.single.Options()
		return []node{{o.Addr, o}}, nil
	}
	var mu sync.Mutex
	var ns []node
	err := t.b.cluster.ForEachMaster(ctx, func(_ context.Context, c *goredis.Client) error {
		o := c.Options()
		mu.Lock()
		ns = append(ns, node{o.Addr, o})
		mu.Unlock()
		return nil
	})
	slices.SortFunc(ns, func(a, b node) int { return strings.Compare(a.addr, b.addr) })
	return ns, err
}

// session is one round of connections: one conn per master, all tracking
// the same prefixes.
type session struct {
	conns    []*trackConn
	prefixes []string
	addrs    string
	failed   chan error // a connection of the session broke
}

// supervise keeps the tracking connections up for the registered prefixes
// until the tracker stops.
func (t *tracker) supervise() {
	backoff := 50 * time.Millisecond
	var topo <-chan time.Time
	switch {
	case t.b.cluster != nil:
		tick := time.NewTicker(trackTopology)
		defer tick.Stop()
		topo = tick.C
	case t.b.sentinel != nil:
		tick := time.NewTicker(10 * sentinelPoll)
		defer tick.Stop()
		topo = tick.C
	}
	var s *session
	end := func() {
		if s == nil {
			return
		}
		for _, c := range s.conns {
			c.close()
		}
		s = nil
		// Every key may have changed unseen: not live, and reset.
		t.each(func(r *tracking) {
			r.live.Store(false)
			r.lost = true
			r.deliver(backend.Invalidation{All: true})
		})
	}
	defer end()
	for {
		want := t.wanted()
		switch {
		case len(want) == 0:
			end()
		case s == nil:
			ns, err := t.start(want)
			if err != nil {
				t.setErr(err)
				if t.unsupported.Load() {
					t.each(func(r *tracking) { r.live.Store(false) })
					return
				}
				select {
				case <-t.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, trackMaxBackoff)
				continue
			}
			backoff = 50 * time.Millisecond
			s = ns
			continue // add what was registered meanwhile, and mark live
		default:
			var added []string
			restart := false
			for _, p := range want {
				if covered(s.prefixes, p) {
					continue
				}
				if slices.ContainsFunc(s.prefixes, func(q string) bool { return strings.HasPrefix(q, p) }) {
					restart = true
				}
				added = append(added, p)
			}
			if len(added) > 0 && !restart {
				err := s.add(t.ctx, added)
				if err == nil {
					s.prefixes = minimal(append(s.prefixes, added...))
				} else {
					restart = true
				}
			}
			if restart {
				end()
				continue
			}
			t.each(func(r *tracking) {
				if covered(s.prefixes, r.prefix) {
					r.live.Store(true)
					if r.lost {
						// Set up anew: what changed while tracking was
						// down went unreported (a key read then, a
						// generation read then and cleared since).
						r.lost = false
						r.deliver(backend.Invalidation{All: true})
					}
				}
			})
		}
		var failed chan error
		if s != nil {
			failed = s.failed
		}
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		case err := <-failed:
			t.setErr(err)
			end()
		case <-topo:
			if s != nil {
				ctx, cancel := context.WithTimeout(t.ctx, trackTimeout)
				ns, err := t.nodes(ctx)
				cancel()
				if err == nil && addrsOf(ns) != s.addrs {
					end()
				}
			}
		}
	}
}

func (t *tracker) setErr(err error) {
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
}

func addrsOf(ns []node) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.addr)
		b.WriteByte(' ')
	}
	return b.String()
}

// start opens one tracking connection per master.
func (t *tracker) start(prefixes []string) (*session, error) {
	ctx, cancel := context.WithTimeout(t.ctx, trackTimeout)
	defer cancel()
	ns, err := t.nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("redis: tracking: listing masters: %w", err)
	}
	if len(ns) == 0 {
		return nil, errors.New("redis: tracking: no masters")
	}
	s := &session{prefixes: prefixes, addrs: addrsOf(ns), failed: make(chan error, len(ns))}
	for _, n := range ns {
		c, err := t.dial(ctx, n, prefixes)
		if err != nil {
			for _, c := range s.conns {
				c.close()
			}
			return nil, err
		}
		s.conns = append(s.conns, c)
	}
	for _, c := range s.conns {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			err := c.read(t.dispatch)
			select {
			case s.failed <- err:
			default:
			}
		}()
	}
	return s, nil
}

// add tracks more prefixes on every connection of the session.
func (s *session) add(ctx context.Context, prefixes []string) error {
	for _, c := range s.conns {
		if err := c.track(ctx, prefixes); err != nil {
			return err
		}
	}
	return nil
}

// dispatch hands reported keys to the registrations.
func (t *tracker) dispatch(inv backend.Invalidation) {
	t.each(func(r *tracking) {
		if inv.All {
			r.deliver(inv)
			return
		}
		var keys []string
		for _, k := range inv.Keys {
			if strings.HasPrefix(k, r.prefix) {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			r.deliver(backend.Invalidation{Keys: keys})
		}
	})
}

// trackConn is one tracking connection.
type trackConn struct {
	addr string
	nc   net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	acks chan error // replies to the commands sent after the handshake
	done chan struct{}
	once sync.Once
}

// errUnsupported marks a server that lacks tracking (see lacksTracking).
type errUnsupported struct{ err error }

func (e errUnsupported) Error() string { return e.err.Error() }
func (e errUnsupported) Unwrap() error { return backend.ErrNotSupported }

// dial connects to n, switches to RESP3 (authenticating as the client
// does) and turns tracking on for prefixes: HELLO and CLIENT TRACKING go
// out together, one round trip. The connection is guarded as the
// client's are (conn.go), with a budget for keys rather than values.
func (t *tracker) dial(ctx context.Context, n node, prefixes []string) (*trackConn, error) {
	o := n.opt
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	dial := t.b.rawDial
	if dial == nil {
		dial = o.Dialer
	}
	if dial == nil {
		dial = netDialer(trackTimeout, o.TLSConfig)
	}
	nc, err := dial(ctx, network, n.addr)
	if err != nil {
		return nil, fmt.Errorf("redis: tracking: dial %s: %w: %w", n.addr, backend.ErrUnavailable, err)
	}
	nc = trackGuard.wrap(nc, n.addr, false)
	c := &trackConn{addr: n.addr, nc: nc, r: bufio.NewReader(nc), acks: make(chan error, 16), done: make(chan struct{})}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// ctx's end (the tracker stopped: Close) ends the handshake at once,
	// not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hello := []string{"HELLO", "3"}
	if o.Password != "" || o.Username != "" {
		user := o.Username
		if user == "" {
			user = "default"
		}
		hello = append(hello, "AUTH", user, o.Password)
	}
	hello = append(hello, "SETNAME", "memdict-tracking")
	err = c.send(hello)
	if err == nil {
		err = c.send(trackCmd(prefixes))
	}
	if err == nil {
		_, err = c.reply()
		if re, ok := err.(respError); ok {
			nc.Close()
			if strings.Contains(re.msg, "WRONGPASS") || strings.Contains(re.msg, "NOAUTH") || strings.Contains(re.msg, "NOPERM") {
				return nil, fmt.Errorf("redis: tracking: %s: %w (user %q): %v", n.addr, ErrAuth, o.Username, re.msg)
			}
			return nil, t.refused(n.addr, "HELLO 3", re)
		}
	}
	if err == nil {
		_, err = c.reply()
		if re, ok := err.(respError); ok {
			nc.Close()
			return nil, t.refused(n.addr, "CLIENT TRACKING", re)
		}
	}
	if err == nil && !stop() {
		err = ctx.Err() // ended as the handshake did: its deadline may be set
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("redis: tracking: %s: HELLO and CLIENT TRACKING: %w: %w", n.addr, backend.ErrUnavailable, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// trackGuard guards the tracking connections: an invalidation carries
// keys, and at most trackBudget bytes of them are read in one push (a
// larger one is a protocol error, and resets the registrations).
var trackGuard = &guard{budget: trackBudget}

// trackBudget bounds what one message of a tracking connection may make
// the reader allocate ahead of its data (see respScanner).
const trackBudget = 4 << 20

// refused returns the error of the server at addr's error reply re to
// cmd, a command tracking needs. A reply that says the server lacks the
// command (lacksTracking) marks tracking unsupported for the Backend's
// lifetime: an error wrapping backend.ErrNotSupported, after which
// supervise gives up and Track fails. Any other error reply is transient:
// an error wrapping backend.ErrUnavailable, after which supervise backs
// off and dials again.
func (t *tracker) refused(addr, cmd string, re respError) error {
	if !lacksTracking(re.msg) {
		return fmt.Errorf("redis: tracking: %s: %s: %w: %s", addr, cmd, backend.ErrUnavailable, re.msg)
	}
	err := errUnsupported{fmt.Errorf("redis: tracking: %s refused %s: %s", addr, cmd, re.msg)}
	t.unsupported.Store(true)
	return err
}

// lacksTracking reports whether msg, a server's error reply to HELLO 3 or
// CLIENT TRACKING, says that the server lacks the command, for good: an
// unknown command (HELLO before Redis 6, or a renamed or disabled
// command: "ERR unknown command 'HELLO'", "ERR unknown command `HELLO`,
// with args beginning with: ..."), an unknown subcommand (CLIENT TRACKING
// before Redis 6, and on miniredis: "ERR Unknown subcommand or wrong
// number of arguments for 'TRACKING'. Try CLIENT HELP", "ERR unknown
// subcommand 'TRACKING'. Try CLIENT HELP."), or NOPROTO (a server without
// RESP3). Every other error reply is the server's state, not its lack:
// -BUSY, -LOADING, -MASTERDOWN, -OOM, -ERR max number of clients reached,
// -TRYAGAIN, or an error this package does not know. Marking tracking
// unsupported on one of those would turn the near cache off for the
// Backend's lifetime on a passing state; retrying one that is in fact
// permanent costs a dial every trackMaxBackoff, and the registrations are
// not Live meanwhile, which is safe.
func lacksTracking(msg string) bool {
	code, text, _ := strings.Cut(msg, " ")
	if code == "NOPROTO" {
		return true
	}
	text = strings.ToLower(text)
	return code == "ERR" && (strings.HasPrefix(text, "unknown command") || strings.HasPrefix(text, "unknown subcommand"))
}

func trackCmd(prefixes []string) []string {
	cmd := []string{"CLIENT", "TRACKING", "ON", "BCAST"}
	for _, p := range prefixes {
		cmd = append(cmd, "PREFIX", p)
	}
	return cmd
}

// track adds prefixes on the live connection.
func (c *trackConn) track(ctx context.Context, prefixes []string) error {
	if err := c.send(trackCmd(prefixes)); err != nil {
		return err
	}
	select {
	case err := <-c.acks:
		return err
	case <-c.done:
		return fmt.Errorf("redis: tracking: %s: connection lost", c.addr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *trackConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// send writes one command.
func (c *trackConn) send(args []string) error {
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(trackTimeout))
	_, err := c.nc.Write(b)
	return err
}

// reply reads the reply to a command sent before the reader runs; an
// error reply is returned as a respError.
func (c *trackConn) reply() (any, error) {
	for {
		v, push, err := readRESP(c.r, 0)
		if err != nil {
			return nil, err
		}
		if push {
			continue
		}
		if re, ok := v.(respError); ok {
			return nil, re
		}
		return v, nil
	}
}

// read reads pushes until the connection fails or is closed, and PINGs
// every trackPing meanwhile. A message it cannot read or interpret (a
// malformed invalidation, a push of another kind, a reply that answers
// nothing it sent) fails the connection: the tracker then resets every
// registration and sets tracking up anew, so that a near cache never
// keeps a value the server may have reported changed.
func (c *trackConn) read(dispatch func(backend.Invalidation)) (err error) {
	pinger := make(chan struct{})
	go func() {
		defer close(pinger)
		defer func() { _ = recover() }() // a panic in send: the reader sees the connection fail
		tick := time.NewTicker(trackPing)
		defer tick.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-tick.C:
				if c.send([]string{"PING"}) != nil {
					c.close()
					return
				}
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("redis: tracking: %s: %w", c.addr, panicError(c.addr, r))
		}
		c.close()
		<-pinger
	}()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(trackTimeout))
		v, push, err := readRESP(c.r, 0)
		if err != nil {
			select {
			case <-c.done:
				return nil
			default:
			}
			return fmt.Errorf("redis: tracking: %s: connection lost: %w", c.addr, err)
		}
		if !push {
			switch r := v.(type) {
			case string:
				if r == "PONG" {
					continue
				}
				if r != "OK" {
					return fmt.Errorf("redis: tracking: %s: %w", c.addr, &protoError{Addr: c.addr, Msg: fmt.Sprintf("unexpected reply %.40q", r)})
				}
				select {
				case c.acks <- nil:
				default:
				}
			case respError:
				select {
				case c.acks <- r:
				default:
				}
			default:
				return fmt.Errorf("redis: tracking: %s: %w", c.addr, &protoError{Addr: c.addr, Msg: fmt.Sprintf("unexpected reply of type %T", v)})
			}
			continue
		}
		inv, err := invalidation(v)
		if err != nil {
			return fmt.Errorf("redis: tracking: %s: %w", c.addr, &protoError{Addr: c.addr, Msg: err.Error()})
		}
		dispatch(inv)
	}
}

// invalidation interprets a push: an invalidation of keys (an array of
// strings) or of everything (null). Anything else is an error.
func invalidation(v any) (backend.Invalidation, error) {
	msg, ok := v.([]any)
	if !ok || len(msg) == 0 {
		return backend.Invalidation{}, fmt.Errorf("malformed push %.60v", v)
	}
	if kind, _ := msg[0].(string); kind != "invalidate" {
		return backend.Invalidation{}, fmt.Errorf("push of unexpected kind %.40v", msg[0])
	}
	if len(msg) != 2 {
		return backend.Invalidation{}, fmt.Errorf("invalidation with %d elements, want 2", len(msg))
	}
	switch keys := msg[1].(type) {
	case nil:
		return backend.Invalidation{All: true}, nil
	case []any:
		ks := make([]string, len(keys))
		for i, k := range keys {
			s, ok := k.(string)
			if !ok {
				return backend.Invalidation{}, fmt.Errorf("invalidation whose key %d is a %T, not a string", i, k)
			}
			ks[i] = s
		}
		return backend.Invalidation{Keys: ks}, nil
	}
	return backend.Invalidation{}, fmt.Errorf("invalidation whose key list is a %T, not an array", msg[1])
}

// respError is an error reply.
type respError struct{ msg string }

func (e respError) Error() string { return "redis: " + e.msg }

// RESP3 limits: what a tracking connection accepts from a server (the
// guard in front of it, trackGuard, bounds lengths and nesting first).
const (
	maxRESPDepth = 8
	maxRESPLen   = trackBudget
	maxRESPItems = trackBudget / slotSize
)

// respMap and respSet are a map (flattened: key, value, ...) and a set, as
// readRESP returns them; an array is a []any.
type (
	respMap []any
	respSet []any
)

// readRESP reads one RESP3 (or RESP2) value: simple and bulk strings and
// verbatim strings as string, numbers as int64 (doubles and big numbers as
// their text), nulls as nil, arrays and pushes as []any, maps (flattened)
// as respMap, sets as respSet, errors as respError; push reports a push
// message. Attributes are skipped (in a loop: a stream of them costs no
// stack). Nesting deeper than maxRESPDepth is an error.
func readRESP(r *bufio.Reader, depth int) (v any, push bool, err error) {
	if depth > maxRESPDepth {
		return nil, false, errors.New("RESP value nested too deep")
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, false, err
		}
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return nil, false, fmt.Errorf("malformed RESP line %.40q", line)
		}
		kind, body := line[0], string(line[1:len(line)-2])
		switch kind {
		case '+':
			return body, false, nil
		case '-', '!':
			if kind == '!' {
				s, err := readBulk(r, body)
				return respError{s}, false, err
			}
			return respError{body}, false, nil
		case ':':
			n, err := strconv.ParseInt(body, 10, 64)
			return n, false, err
		case ',', '(', '#':
			return body, false, nil
		case '_':
			return nil, false, nil
		case '$', '=':
			if body == "-1" {
				return nil, false, nil
			}
			s, err := readBulk(r, body)
			if kind == '=' && len(s) >= 4 {
				s = s[4:] // "txt:" and the like
			}
			return s, false, err
		case '*', '~', '>', '%', '|':
			n, err := strconv.Atoi(body)
			if err != nil || n > maxRESPItems {
				return nil, false, fmt.Errorf("bad RESP aggregate length %.40q", body)
			}
			if n < 0 {
				if kind == '|' {
					return nil, false, fmt.Errorf("bad RESP attribute length %.40q", body)
				}
				return nil, false, nil
			}
			if kind == '%' || kind == '|' {
				n *= 2
			}
			items := make([]any, 0, min(n, 1024))
			for range n {
				it, _, err := readRESP(r, depth+1)
				if err != nil {
					return nil, false, err
				}
				items = append(items, it)
			}
			switch kind {
			case '|':
				continue // an attribute precedes the value it annotates
			case '%':
				return respMap(items), false, nil
			case '~':
				return respSet(items), false, nil
			}
			return items, kind == '>', nil
		}
		return nil, false, fmt.Errorf("unknown RESP type %q", kind)
	}
}

// readBulk reads the body of a bulk string whose length is n.
func readBulk(r *bufio.Reader, n string) (string, error) {
	size, err := strconv.Atoi(n)
	if err != nil || size < 0 || size > maxRESPLen {
		return "", fmt.Errorf("bad RESP bulk length %.40q", n)
	}
	buf := make([]byte, size+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	if buf[size] != '\r' || buf[size+1] != '\n' {
		return "", errors.New("RESP bulk string not followed by CRLF")
	}
	return string(buf[:size]), nil
}
