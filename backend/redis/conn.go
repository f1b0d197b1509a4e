package redis

// Every connection a Backend makes is a guardConn: the net.Conn go-redis
// (or the tracker) reads and writes goes through it. It
//
//   - validates what the server sends before go-redis reads it
//     (respScanner, scan.go): a reply that would make go-redis allocate
//     more than the max value length plus a small bound, nest too deep,
//     stream attributes, carry a line without end, or that is not RESP,
//     fails the connection with an error wrapping ErrProtocol;
//   - holds the end of the header of a long string (over
//     valuepool.Ahead, 64 KiB) until half the string's bytes have
//     arrived (hold): go-redis allocates the length a header announces
//     before reading its bytes, so that a server announcing 256 MiB and
//     sending 1 KiB made each read through go-redis (a standalone
//     GetMulti's MGET, a cluster's or a Ring's reads) hold 256 MiB until
//     its timeout; the bytes now come first, read as they arrive into
//     pooled chunks (valuepool.Held), and the reader allocates at most
//     as much again as came (as valuepool.ReadFull);
//   - likewise holds the header of an aggregate that would leave go-redis
//     more than 64 KiB of slots (4096 elements) to fill until as many
//     bytes as its elements take at their shortest (3 bytes) have
//     arrived: go-redis makes its slice (or map) of the announced length
//     first, so that a 13-byte *30000000 answering an MGET or a script
//     made it allocate 457 MiB until the timeout;
//   - counts the commands written and the replies read (pushes apart): a
//     reply without a request is a protocol error too. That catches an
//     extra reply read with others; one that comes alone to an idle
//     connection, go-redis's check of idle connections catches, and the
//     one that races the next command, the values' tokens (owners.go);
//   - is reset when it is closed (SO_LINGER 0): the kernel drops what is
//     still unsent and sends RST, so that a write the client gave up on
//     (a timeout, a protocol error, Close) is not delivered later;
//   - sends go-redis's connection handshake (HELLO with AUTH and
//     SETNAME, SELECT, CLIENT SETNAME, READONLY) together with the first
//     command, once the Backend has seen one handshake succeed, so that a
//     new connection costs one round trip (see handshake below).
//
// A guardConn is installed by the Dialer of the options New, NewCluster,
// NewRing and NewSentinel give go-redis, and by a dial hook on the client
// NewFromClient is given (its connections dialed before are not guarded).

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/valuepool"
)

// guard holds what the connections of one Backend share.
type guard struct {
	budget int64 // respScanner.budget of command connections
	// pipeline allows the handshake to be pipelined with the first command
	// (New, NewCluster and NewRing without credential providers or
	// OnConnect).
	pipeline bool
	// all is set when the guard is the client's Dialer (New, NewCluster):
	// every connection is guarded, so that half a long string's bytes are
	// always at hand when its reader sees its length (hold).
	all bool
	// learned is set once a handshake was seen to succeed (HELLO answered
	// without an error), cleared when a pipelined one fails: only then is
	// the next one pipelined.
	learned atomic.Bool
	off     atomic.Bool // the Backend is closed: a dial hook stops guarding
	// sentinels holds the addresses of the sentinels NewSentinel was
	// given (nil otherwise; not changed once set): their connections
	// have sentinelBudget from the start (see sentinelBudget).
	sentinels map[string]bool
}

// sentinelBudget is the respScanner.budget of a connection to a sentinel
// (one to a configured sentinel's address, or one that sent a SENTINEL
// command): a sentinel's replies are addresses and short descriptions of
// the servers it watches, never a value, so that the budget of command
// connections (the max value length and more) let a faulty sentinel's
// answer to SENTINEL get-master-addr-by-name, *10000000, make each call
// allocate 152 MiB before its timeout.
const sentinelBudget = replySlack

// clusterBudget is the respScanner.budget of the reply to a CLUSTER SLOTS,
// SHARDS or NODES sent alone (no reply outstanding, as go-redis sends them
// to load a cluster's state): a cluster's largest legitimate map (16,384
// single-slot ranges of three nodes each) charges under 8 MiB. go-redis
// reads CLUSTER SLOTS into 40-byte structs where the scanner charges 16
// (slotSize), so that under the budget of command connections a node's
// *33000000 would make it allocate 1.3 GiB (*10000000: 381 MiB a call).
const clusterBudget = 16 << 20

func newGuard(maxValueLen int) *guard {
	return &guard{budget: int64(maxValueLen) + int64(headerLen) + replySlack}
}

// keepAlive is go-redis's TCP keep-alive policy (its default dialer's).
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// netDialer returns the dialer New, NewCluster, NewRing and NewSentinel
// use when the options have none: go-redis's default, but with the TLS
// handshake bounded by the dial's context too (go-redis's default TLS dial
// ignores the context).
func netDialer(timeout time.Duration, tc *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout, KeepAliveConfig: keepAlive}
	if tc == nil {
		return nd.DialContext
	}
	td := &tls.Dialer{NetDialer: nd, Config: tc}
	return td.DialContext
}

// dialer returns a dialer that guards what inner dials.
func (g *guard) dialer(inner func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := inner(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return g.wrap(nc, addr, g.pipeline && g.learned.Load()), nil
	}
}

// DialHook implements goredis.Hook for NewFromClient: it guards the
// connections the client dials from now on, until the Backend is closed.
func (g *guard) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := next(ctx, network, addr)
		if err != nil || g.off.Load() {
			return nc, err
		}
		return g.wrap(nc, addr, false), nil
	}
}

// ProcessHook implements goredis.Hook: it changes nothing.
func (g *guard) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

// ProcessPipelineHook implements goredis.Hook: it changes nothing.
func (g *guard) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// wrap returns nc guarded, reset on close. pipeline makes it hold the
// handshake until the first command.
func (g *guard) wrap(nc net.Conn, addr string, pipeline bool) net.Conn {
	tcp := tcpOf(nc)
	if tcp != nil {
		_ = tcp.SetLinger(0)
	}
	c := &guardConn{Conn: nc, g: g, addr: addr}
	c.base = g.budget
	if g.sentinels[addr] {
		c.base = min(c.base, sentinelBudget)
	}
	c.rs.budget = c.base
	c.rs.counted = true
	c.hs.phase = hsObserve
	if pipeline {
		c.hs.phase = hsHold
	}
	c.hsOn.Store(true)
	if t, ok := nc.(*net.TCPConn); ok {
		// go-redis checks an idle connection for unexpected data (and a
		// close by the server) through syscall.Conn before reusing it; a
		// TLS connection it does not check.
		gc := &guardTCPConn{guardConn: c, tcp: t}
		gc.raw, _ = t.SyscallConn()
		return gc
	}
	return c
}

// tcpOf returns the TCP connection under nc (a TLS connection, or a
// wrapper with NetConn), or nil.
func tcpOf(nc net.Conn) *net.TCPConn {
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// guardConn is a connection guarded as the comment at the top of the file
// says. Read and Write may run concurrently (a pub/sub connection); each
// side has its own state, and they share only atomics and, during the
// handshake, the fields under hsMu.
type guardConn struct {
	net.Conn
	g    *guard
	addr string

	// Read side.
	rs       respScanner
	base     int64         // rs.budget, but for the replies of topology commands
	answered atomic.Uint64 // rs.replies, for the write side
	err      error         // the protocol error that failed the connection
	// held is what is left to hand the reader of a header held until
	// the bytes it needs at hand arrived (hold): the end of the header
	// and the bytes after it.
	held valuepool.Held

	// Write side.
	cs       cmdScanner
	requests atomic.Uint64 // commands written (held ones included)
	uncount  atomic.Bool   // a command without one reply each was sent (SUBSCRIBE, MONITOR, ...)
	sentinel atomic.Bool   // a SENTINEL command was sent: the replies get sentinelBudget
	topology atomic.Bool   // the last write was CLUSTER SLOTS, SHARDS or NODES alone: its reply gets clusterBudget

	hsOn atomic.Bool // the handshake is not over: Read and Write take hsMu
	hsMu sync.Mutex
	hs   handshake
}

// guardTCPConn is a guardConn on a plain TCP connection.
type guardTCPConn struct {
	*guardConn
	tcp *net.TCPConn
	// raw is tcp's syscall.RawConn, made once: net makes a new one on
	// each call of SyscallConn, and go-redis asks for it on every command
	// (its pool checks the connection each time it hands it out).
	raw syscall.RawConn
}

// SyscallConn returns the TCP connection's, for go-redis's health check of
// idle connections.
func (c *guardTCPConn) SyscallConn() (syscall.RawConn, error) {
	if c.raw != nil {
		return c.raw, nil
	}
	return c.tcp.SyscallConn()
}

// Handshake phases.
const (
	hsObserve uint8 = iota // the handshake goes out as go-redis writes it; HELLO's reply is watched
	hsHold                 // the handshake's commands are held and answered here
	hsStrip                // they went out with the first command: their replies are removed
	hsDone
)

// handshake is the state of a connection's handshake.
//
// A pipelined handshake (hsHold) answers go-redis's handshake commands at
// once with what a server that accepts them replies (HELLO: an empty map;
// SELECT, CLIENT SETNAME, CLIENT SETINFO, READONLY: OK) and keeps them;
// the first other command goes out with them in one write. The real
// replies are then read and removed from the stream (hsStrip); if one is
// an error (a refused password, an unknown database), the connection
// fails with it, and the first command's reply is not delivered.
// Handshakes are pipelined only once one was seen to succeed
// (guard.learned), so that a server that does not know HELLO, or refused
// credentials, show as go-redis shows them.
type handshake struct {
	phase uint8
	hello bool   // hsObserve: the first command was HELLO
	held  []byte // commands held (hsHold)
	heldN int
	fake  []byte // replies given in their place, not yet read
	strip int    // replies still to remove (hsStrip)
	cur   []byte // the first bytes of the reply being removed
}

// Read reads from the connection and validates what it read.
func (c *guardConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.held.Len() > 0 {
		return c.held.Read(p), nil
	}
	if c.hsOn.Load() {
		if n := c.readFake(p); n > 0 {
			return n, nil
		}
	}
	for {
		n, err := c.Conn.Read(p)
		if n > 0 {
			var cerr error
			if n, cerr = c.check(p[:n]); cerr != nil {
				return 0, cerr
			}
		}
		if n > 0 || err != nil {
			return n, err
		}
		if c.held.Len() > 0 {
			// A long string's header ended where p started.
			return c.held.Read(p), nil
		}
		// Only replies of a pipelined handshake: read on.
	}
}

// hold collects the need bytes that must be at hand after a header
// whose end (its LF) starts tail, which holds what the server sent after
// it (less than need): it reads the rest from the connection, as it
// arrives, into pooled chunks (valuepool.Held), scanning them, and keeps
// it all, from that LF on, for the reader. go-redis sees the header only
// then, and allocates what it announces with the bytes at hand: half a
// long string's bytes; for an aggregate, as many bytes as the elements
// pending would take at their shortest (minElemLen each).
//
// The bytes collected may hold more such headers: a long string's must
// have half its own bytes collected too; a nested aggregate's, as many bytes
// from the first header's end on as the elements then pending take at
// their shortest. (Counted from the first header, not from each: an
// honest reply of many nested aggregates, such as XRANGE's, is not held
// whole, and go-redis's slots are still never more than slotSize /
// minElemLen times the bytes collected.)
//
// An error reading fails the connection: what was read is dropped.
func (c *guardConn) hold(tail []byte, need int64) error {
	total := 1 + need // the bytes to collect, from the LF on
	var at int64      // the bytes collected before the chunk being checked
	err := c.held.CollectGrowing(tail, c.Conn, int(total), func(b []byte) (int, error) {
		off, asked := 0, total
		if at == 0 {
			off = 1 // the LF, scanned already
		}
		for off < len(b) {
			c.rs.holdOver = valuepool.Ahead
			k, _, err := c.rs.scan(b[off:], false)
			c.rs.holdOver = 0
			if err != nil {
				return 0, err
			}
			off += k
			if need := c.rs.need; need > 0 {
				c.rs.need = 0
				end := 1 + need // an aggregate's: from the first header's end
				if c.rs.st == stData {
					end = at + int64(off) + need // a string's: from its header's end
				}
				total = max(total, end)
			}
		}
		at += int64(len(b))
		return int(total - asked), nil
	})
	if _, ok := err.(*scanError); ok {
		return c.fail(err)
	}
	if err != nil {
		c.err = err
	}
	return err
}

// readFake returns the replies given to held commands.
func (c *guardConn) readFake(p []byte) int {
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	n := copy(p, c.hs.fake)
	c.hs.fake = c.hs.fake[n:]
	return n
}

// check validates p, read from the server, and returns how much of it is
// for the reader now: the replies of a pipelined handshake are removed
// from its start, and what follows the header of a long string or
// aggregate without the bytes it needs at hand in p (respScanner.need)
// is held (hold), that header's LF included.
func (c *guardConn) check(p []byte) (int, error) {
	c.rs.counted = !c.uncount.Load()
	c.rs.maxReplies = c.requests.Load()
	c.rs.budget = c.base
	if c.topology.Load() {
		c.rs.budget = min(c.rs.budget, clusterBudget)
	}
	if c.sentinel.Load() {
		c.rs.budget = min(c.rs.budget, sentinelBudget)
	}
	defer func() { c.answered.Store(c.rs.replies) }()
	observe := false
	if c.hsOn.Load() {
		c.hsMu.Lock()
		var err error
		p, err = c.stripHandshake(p)
		observe = c.hs.phase == hsObserve
		c.hsMu.Unlock()
		if err != nil {
			return 0, c.fail(err)
		}
	}
	n := len(p)
	for off := 0; off < len(p); {
		c.rs.holdOver = valuepool.Ahead
		k, _, err := c.rs.scan(p[off:], false)
		c.rs.holdOver = 0
		if err != nil {
			return 0, c.fail(err)
		}
		off += k
		need := c.rs.need
		if need == 0 {
			break
		}
		c.rs.need = 0
		if int64(len(p)-off) >= need {
			continue // what the header needs at hand is here
		}
		if err := c.hold(p[off-1:], need); err != nil {
			return 0, err
		}
		n = off - 1
		break
	}
	if observe && c.rs.replies > 0 {
		// HELLO's reply: unless it is an error, the server takes the
		// handshake as go-redis sends it, and the next may be pipelined.
		c.hsMu.Lock()
		if c.rs.firstTop != '-' && c.rs.firstTop != '!' {
			c.g.learned.Store(true)
		}
		c.endHandshake()
		c.hsMu.Unlock()
	}
	return n, nil
}

// fail fails the connection with err: every later Read returns it.
func (c *guardConn) fail(err error) error {
	if se, ok := err.(*scanError); ok {
		err = &protoError{Addr: c.addr, Msg: se.msg}
	}
	c.err = err
	return err
}

// endHandshake ends the handshake: Read and Write no longer look at it.
// c.hsMu must be held.
func (c *guardConn) endHandshake() {
	c.hs = handshake{phase: hsDone}
	c.hsOn.Store(false)
}

// stripHandshake removes from the start of p the replies to the held
// commands still due, checking each, and returns what is left of p.
// c.hsMu must be held.
func (c *guardConn) stripHandshake(p []byte) ([]byte, error) {
	hs := &c.hs
	if hs.phase != hsStrip {
		return p, nil
	}
	off := 0
	for hs.strip > 0 && off < len(p) {
		k, done, err := c.rs.scan(p[off:], true)
		if err != nil {
			return nil, err
		}
		if room := 256 - len(hs.cur); room > 0 {
			hs.cur = append(hs.cur, p[off:off+min(k, room)]...)
		}
		off += k
		if !done {
			break
		}
		if err := replyError(c.addr, hs.cur); err != nil {
			c.g.learned.Store(false)
			return nil, err
		}
		hs.cur = hs.cur[:0]
		hs.strip--
	}
	if hs.strip == 0 {
		c.endHandshake()
	}
	return p[:copy(p, p[off:])], nil
}

// replyError returns the error that reply (its first bytes) carries, or
// nil.
func replyError(addr string, reply []byte) error {
	if len(reply) == 0 || reply[0] != '-' && reply[0] != '!' {
		return nil
	}
	msg := string(reply[1:])
	if reply[0] == '!' {
		// A blob error: its length line, then the message.
		_, msg, _ = strings.Cut(msg, "\r\n")
	}
	msg, _, _ = strings.Cut(msg, "\r\n")
	return &handshakeError{Addr: addr, Msg: msg}
}

// Write writes p, the client's commands, counting them; during a
// pipelined handshake it holds the handshake's commands (see handshake).
func (c *guardConn) Write(p []byte) (int, error) {
	if c.hsOn.Load() {
		if n, done, err := c.writeHandshake(p); done {
			return n, err
		}
	}
	c.count(p, 0)
	return c.Conn.Write(p)
}

// count counts the commands of p; held is the number of the handshake's
// commands, held, that go out with them.
func (c *guardConn) count(p []byte, held uint64) {
	r := c.cs.scan(p)
	if r.cmds > 0 {
		// Only when no other reply is outstanding (but the held
		// handshake's) is the next one known to be the topology's.
		c.topology.Store(r.topology == r.cmds && c.answered.Load()+held == c.requests.Load())
	}
	if r.unreplied {
		c.uncount.Store(true)
	}
	if r.sentinel {
		c.sentinel.Store(true)
	}
	if r.cmds > 0 {
		c.requests.Add(uint64(r.cmds))
	}
}

// writeHandshake handles a write during the handshake; done reports that
// it wrote (or held) p, and n and err are then Write's results.
func (c *guardConn) writeHandshake(p []byte) (n int, done bool, err error) {
	c.hsMu.Lock()
	hs := &c.hs
	switch {
	case hs.phase == hsObserve && !hs.hello:
		if hs.hello = c.cs.atStart() && firstArgIs(p, "hello"); !hs.hello {
			c.endHandshake()
		}
	case hs.phase == hsHold:
		if fake, k, ok := handshakeReplies(p); ok && c.cs.atStart() {
			hs.held = append(hs.held, p...)
			hs.heldN += k
			hs.fake = append(hs.fake, fake...)
			c.hsMu.Unlock()
			c.count(p, 0)
			return len(p), true, nil
		}
		if hs.heldN == 0 {
			c.endHandshake()
			break
		}
		// The first other command: send everything at once.
		buf := append(hs.held, p...)
		held := uint64(hs.heldN)
		hs.strip, hs.held, hs.heldN = hs.heldN, nil, 0
		hs.phase = hsStrip
		c.hsMu.Unlock()
		c.count(p, held)
		w, err := c.Conn.Write(buf)
		return max(0, w-(len(buf)-len(p))), true, err
	}
	c.hsMu.Unlock()
	return 0, false, nil
}

// firstArgIs reports whether p starts with a command named name (lower
// case).
func firstArgIs(p []byte, name string) bool {
	args, _, ok := parseCommand(p, 1)
	return ok && len(args) == 1 && strings.EqualFold(args[0], name)
}

// errors of the handshake and of the stream.

// protoError is a violation of the protocol by a server: the connection
// it came on is failed. It wraps ErrProtocol, backend.ErrUnavailable and
// Err, the error go-redis reported, if any.
type protoError struct {
	Addr string
	Msg  string
	Err  error
}

func (e *protoError) Error() string {
	if e.Err != nil {
		return "redis: protocol error from " + e.Addr + ": " + e.Msg + ": " + e.Err.Error()
	}
	return "redis: protocol error from " + e.Addr + ": " + e.Msg
}

func (e *protoError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrProtocol, backend.ErrUnavailable, e.Err}
	}
	return []error{ErrProtocol, backend.ErrUnavailable}
}

// ServerAddr returns the server, for backend.ServerOf.
func (e *protoError) ServerAddr() string { return e.Addr }

// handshakeError is the error reply of a server to a pipelined
// handshake's command. A refused password wraps ErrAuth; any other wraps
// backend.ErrUnavailable.
type handshakeError struct {
	Addr string
	Msg  string
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("redis: %s refused the connection's handshake: %s", e.Addr, e.Msg)
}

func (e *handshakeError) Unwrap() error {
	if authMessage(e.Msg) {
		return ErrAuth
	}
	return backend.ErrUnavailable
}

// authMessage reports whether a server's error message refuses
// credentials or a command to the user.
func authMessage(msg string) bool {
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// panicError is a panic recovered in the driver, as the error of the
// calls it affected.
func panicError(where string, r any) error {
	return &protoError{Addr: where, Msg: fmt.Sprintf("panic while handling a reply: %v", r)}
}
