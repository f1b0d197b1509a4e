package memcached

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memdict/memdict/backend"
)

// The connection engine. Every command for a server that speaks the meta
// protocol goes through its pool: a fixed set of connections (conns per
// server), each with one writer and one reader goroutine. A caller builds
// a request (taken from a sync.Pool), queues it on a connection and waits
// for it, bounded by its deadline. A writer (the connection's writer
// goroutine, or a caller on an idle connection) takes every request
// queued since the last write, encodes them all into the bufio.Writer and
// flushes once (see "When requests are written"); the reader parses the
// replies, which memcached sends in the order of the requests, and
// completes the requests in that order, all the replies of one read from
// the socket in one pass. Concurrent callers thus share writes, reads and
// round trips without a goroutine or a dial per call. On an idle
// connection a lone caller writes its request and reads its reply itself
// (submit); the reader sleeps on a condition variable while nothing is
// in flight.
//
// Each request is due at the start of its call plus the timeout. A
// watchdog timer per connection, armed only while requests are
// outstanding, fires when the oldest one is due: the connection is then
// considered hung and closed, every request on it (the oldest and those
// queued behind it) fails, and the next call dials again. A call thus
// needs no timer of its own: it waits for its request's completion, and
// for its context when that can be cancelled (a context deadline shorter
// than the timeout shows there). A caller whose context ends abandons its
// request: the reader still consumes and discards its reply, then
// recycles it.

// Request states.
const (
	statePending   int32 = iota // queued or in flight, its caller waiting
	stateDone                   // completed, the caller will read it
	stateAbandoned              // the caller left; whoever completes it recycles it
)

// Request kinds.
const (
	kindGet         uint8 = iota // mg <key> v c k [t]
	kindStore                    // ms <key> <len> T<exp> [ME | C<cas>]
	kindDelete                   // md <key> [C<cas> | I [T<exp>]]
	kindTouch                    // mg <key> T<exp>
	kindArith                    // ma <key> D<delta> v [MD]
	kindLease                    // mg <key> v c k N<exp> [R<delta>] (lease.go)
	kindHello                    // mn, stats settings, stats: first on a new connection (see pool.dialSlot)
	kindGetMulti                 // mg <key> v c k q O<n> ..., the last without q (multi-key kinds last: see submit)
	kindGets                     // gets <key> ...; mg <key> O<n> (see readGets)
	kindSetMulti                 // ms <key> <len> T<exp> q O<n> ..., the last without q
	kindDeleteMulti              // md <key> q O<n> ..., the last without q
)

// Reply statuses of single-key requests.
const (
	replyOK          uint8 = iota // HD, or VA for a get
	replyMiss                     // EN (get, touch), NF (delete, arith, cas)
	replyNotStored                // NS
	replyExists                   // EX
	replyNotNumeric               // ma on a value that is not a number
	replyTooLarge                 // SERVER_ERROR object too large for cache
	replyServerError              // another SERVER_ERROR: see request.err
)

// keyStatus is the failure of one command of a multi-key write.
type keyStatus struct {
	index  int
	status uint8
}

// found is one item of a multi-key read.
type found struct {
	index int
	value []byte
	cas   uint64
	flags uint32 // client flags
}

// request is one call to a server. The caller sets the input fields, the
// writer encodes them, the reader sets the results and completes it.
type request struct {
	kind  uint8
	mode  byte // kindStore: 0 set, 'E' add, 'C' cas; kindArith: 'I' or 'D'; kindDelete: 0, 'C' cas, 'I' invalidate; kindGet: 't' to read the TTL too
	key   string
	value []byte
	flags uint32 // kindStore: the client flags to store
	exp   int32
	cas   uint64 // kindStore and kindDelete with mode 'C': the token, as Get returned it
	boot  uint64 // the bootKey of the connection r is sent on (see wireCAS)
	delta uint64 // kindArith; kindLease: the R (recache) time, 0 for none
	keys  []string
	items []backend.Item
	exps  []int32
	limit int // the largest value size accepted in a reply

	// opaque is the O flag of r's command, or of its first command (the
	// i-th carries opaque+i), set when r is put in flight: a counter of
	// its connection, so that no two requests in flight on a connection
	// share one, and a reply matches one request only.
	opaque uint32

	status uint8
	rvalue []byte
	rcas   uint64
	rflags uint8  // kindGet, kindLease: the reply's lease flags (flagWin, flagBusy, flagStale)
	rcflag uint32 // kindGet, kindLease: the client flags of the item read
	rttl   int64  // kindGet with mode 't': the item's remaining TTL in seconds, -1 for none
	num    uint64
	founds []found
	fails  []keyStatus
	info   serverInfo // kindHello
	err    error      // the connection failed, the reply was not memcached's, or a SERVER_ERROR

	due time.Time // when the call's timeout ends

	state atomic.Int32
	sent  atomic.Bool   // encoded: the writer is done with it
	done  chan struct{} // buffered 1: the completer never blocks
}

var requestPool = sync.Pool{New: func() any {
	return &request{done: make(chan struct{}, 1)}
}}

// newRequest returns a request from the pool.
func newRequest(kind uint8) *request {
	r := requestPool.Get().(*request)
	r.kind = kind
	r.state.Store(statePending)
	r.sent.Store(false)
	return r
}

// bytes returns the size of the values r writes.
func (r *request) bytes() int {
	n := len(r.value)
	for i := range r.items {
		n += len(r.items[i].Value)
	}
	return n
}

// again clears r's reply, to send r once more (on a new connection).
func (r *request) again() {
	r.status, r.rvalue, r.rcas, r.rflags, r.rcflag, r.rttl, r.num, r.err = 0, nil, 0, 0, 0, 0, 0, nil
	r.state.Store(statePending)
	r.sent.Store(false)
}

// release clears r and returns it to the pool. Values handed to a caller
// are not kept.
func (r *request) release() {
	r.mode, r.key, r.value, r.flags, r.exp, r.cas, r.boot, r.delta = 0, "", nil, 0, 0, 0, 0, 0
	r.keys, r.items, r.exps = nil, nil, nil
	r.status, r.rvalue, r.rcas, r.rflags, r.rcflag, r.rttl, r.num, r.err = 0, nil, 0, 0, 0, 0, 0, nil
	r.opaque, r.info = 0, serverInfo{}
	clear(r.founds)
	r.founds = r.founds[:0]
	r.fails = r.fails[:0]
	if cap(r.founds) > 1024 {
		r.founds = nil
	}
	if cap(r.fails) > 1024 {
		r.fails = nil
	}
	requestPool.Put(r)
}

// addFound adds f to the items r found; left is how many of r's keys, f's
// included, are still to be answered. When the slice is full it makes room
// for all of them at once, not by doubling: a 1000-key read would grow it
// a dozen times, copying it each time (its size is bounded by the keys
// asked, whatever the server sends, since each key is answered once).
func (r *request) addFound(f found, left int) {
	if len(r.founds) == cap(r.founds) {
		grown := make([]found, len(r.founds), len(r.founds)+left)
		copy(grown, r.founds)
		r.founds = grown
	}
	r.founds = append(r.founds, f)
}

// commands returns how many commands (and opaques) r sends.
func (r *request) commands() int {
	switch r.kind {
	case kindGetMulti, kindDeleteMulti:
		return len(r.keys)
	case kindSetMulti:
		return len(r.items)
	case kindHello:
		return 0
	}
	return 1
}

// complete hands r's results to its caller, or recycles r if the caller
// has left.
func (r *request) complete() {
	if r.kind == kindHello {
		return // the connection's own: no caller, not pooled
	}
	if r.state.CompareAndSwap(statePending, stateDone) {
		r.done <- struct{}{}
		return
	}
	r.release()
}

// errTimeout is the error of a call that got no reply within the timeout.
type errTimeout struct{ d time.Duration }

func (e errTimeout) Error() string   { return fmt.Sprintf("i/o timeout: no reply within %v", e.d) }
func (e errTimeout) Timeout() bool   { return true }
func (e errTimeout) Temporary() bool { return true }

var _ net.Error = errTimeout{}

// hungError closes a connection on which a request got no reply within
// the timeout: it fails that request and those queued behind it.
type hungError struct{ d time.Duration }

func (e hungError) Error() string {
	return fmt.Sprintf("i/o timeout: no reply within %v (the connection is closed)", e.d)
}
func (hungError) Timeout() bool   { return true }
func (hungError) Temporary() bool { return true }

// errTextProtocol is returned by a dial that found a server without meta
// commands: the node switches to the text protocol.
var errTextProtocol = errors.New("server has no meta commands")

// serverInfo is what a handshake learns about a server.
type serverInfo struct {
	itemSizeMax int64 // 0: unknown
	casEnabled  bool
	boot        uint64 // the bootKey of the server's run; 0: unknown
}

// carriesCAS reports whether r sends a CAS token, which must be
// translated with the bootKey of the connection it goes on: such a request
// waits for the connection's hello to be answered (see pool.do).
func (r *request) carriesCAS() bool {
	return (r.kind == kindStore || r.kind == kindDelete) && r.mode == 'C'
}

// wireCAS returns the CAS value r sends: its token XORed with the bootKey
// of its connection, which gives back the server's CAS value if the token
// was read in the same run of the server (see bootKey).
func (r *request) wireCAS() uint64 {
	if r.cas == 0 {
		return 0
	}
	return r.cas ^ r.boot
}

// fromWire turns the CAS values of r's reply, read on a connection whose
// bootKey is boot, into tokens (see bootKey).
func (r *request) fromWire(boot uint64) {
	if boot == 0 {
		return
	}
	if r.rcas != 0 {
		r.rcas ^= boot
	}
	for i := range r.founds {
		if r.founds[i].cas != 0 {
			r.founds[i].cas ^= boot
		}
	}
}

// pool is the set of connections to one meta-protocol server.
type pool struct {
	c     *Client
	n     *node
	slots []slot

	// retired holds the connections retired (see conn.retire) and not
	// closed yet, which no slot holds any more: close closes them too.
	retiredMu sync.Mutex
	retired   map[*conn]struct{}
}

type slot struct {
	cn   atomic.Pointer[conn]
	mu   sync.Mutex
	dial *dialOp // the dial in progress, or nil
}

// dialOp is one dial of a slot; waiters read cn and err after done.
type dialOp struct {
	done chan struct{}
	cn   *conn
	err  error
}

func newPool(c *Client, n *node, size int) *pool {
	return &pool{c: c, n: n, slots: make([]slot, size)}
}

// conn returns a live connection, dialing one (in the background, bounded
// by the timeout) if the slot chosen has none, and waiting for it until
// deadline or ctx.
func (p *pool) conn(ctx context.Context, deadline time.Time, byCtx bool) (*conn, error) {
	return p.connOn(ctx, p.pick(), deadline, byCtx)
}

// pick chooses the slot of a call.
func (p *pool) pick() *slot {
	if len(p.slots) == 1 {
		return &p.slots[0]
	}
	// At random rather than in turn: a shared turn counter is a cache
	// line that every CPU writes on every call.
	return &p.slots[rand.Uint32()%uint32(len(p.slots))]
}

// connected reports whether s holds a connection that takes calls: if
// not, connOn dials one.
func (s *slot) connected() bool {
	cn := s.cn.Load()
	return cn != nil && cn.usable()
}

// connOn is conn for the slot s.
func (p *pool) connOn(ctx context.Context, s *slot, deadline time.Time, byCtx bool) (*conn, error) {
	if cn := s.cn.Load(); cn != nil && cn.usable() {
		return cn, nil
	}
	s.mu.Lock()
	if cn := s.cn.Load(); cn != nil && cn.usable() {
		s.mu.Unlock()
		return cn, nil
	}
	d := s.dial
	if d == nil {
		if p.c.closed.Load() {
			s.mu.Unlock()
			return nil, backend.ErrClosed
		}
		d = &dialOp{done: make(chan struct{})}
		s.dial = d
		p.c.bg.Add(1)
		go p.dialSlot(s, d)
	}
	s.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-d.done:
		return d.cn, d.err
	case <-t.C:
		if byCtx {
			return nil, context.DeadlineExceeded
		}
		return nil, fmt.Errorf("connecting: %w", errTimeout{p.c.cfg.timeout})
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialSlot dials a connection for s. The first connection to a server
// does the handshake, a round trip that tells a meta server from a
// text-only one and reads its settings. Once a server is known to speak
// the meta protocol, a new connection to it (after a failure, a restart)
// costs the connect alone: it sends the same hello (kindHello) ahead of
// the first requests, in the same write, and checks its reply before
// theirs. Under latency a reconnect thus costs one round trip besides the
// connect, not three.
func (p *pool) dialSlot(s *slot, d *dialOp) {
	defer p.c.bg.Done()
	nc, at, hello, boot, err := p.connect()
	if isCtxErr(err) {
		// The dial's own context ended: the timeout (net.Dialer's timeout
		// error is context.DeadlineExceeded too), or Close. Never a
		// caller's, whose context the calls waiting for the dial watch
		// themselves: they would take the server's silence for their
		// own deadline, and not count it as the server's failure.
		if p.c.life.Err() != nil {
			err = backend.ErrClosed
		} else {
			err = fmt.Errorf("connecting: %w (the dial: %v)", errTimeout{p.c.cfg.timeout}, err)
		}
	}
	if errors.Is(err, errTextProtocol) {
		p.c.useText(p.n)
	}
	s.mu.Lock()
	if err == nil && p.c.closed.Load() {
		resetConn(nc)
		err = backend.ErrClosed
	}
	if err == nil {
		p.c.testPoint("dialed")
		d.cn = newConn(p, s, nc, at, hello, boot)
		s.cn.Store(d.cn)
		// The server's name may have resolved elsewhere while this
		// connected, and the resolver retired the slots' connections
		// before this one was stored: retire it now, as the resolver
		// would at its next lookup, so that no call reads the old
		// address's values meanwhile. (The resolver stores the new
		// addresses before it looks at the slots: one of the two sees
		// the other.)
		if to := p.n.dialTo.Load(); to != nil && !slices.Contains(*to, at) {
			p.retire(d.cn)
		}
	}
	d.err = err
	s.dial = nil
	s.mu.Unlock()
	close(d.done)
}

// connect dials p's server, within the timeout: a connection (to the
// address at, as dialer.dialAt) with the hello to send (hello), or after
// the handshake, with the bootKey of the server's run it learnt (boot). A
// panic (a bug) is an error.
func (p *pool) connect() (nc net.Conn, at string, hello bool, boot uint64, err error) {
	defer func() {
		if v := recover(); v != nil {
			if nc != nil {
				resetConn(nc)
			}
			nc, at, err = nil, "", panicError("connecting", v)
		}
	}()
	ctx, cancel := context.WithTimeout(p.c.life, p.c.cfg.timeout)
	defer cancel()
	p.c.testPoint("dial")
	if p.n.meta.Load() {
		nc, at, err = p.c.dialer.dialAt(ctx, "tcp", p.n.addr)
		return nc, at, true, 0, err
	}
	nc, at, info, err := p.c.handshake(ctx, p.n.addr)
	if err == nil {
		p.n.setInfo(info)
	}
	return nc, at, false, info.boot, err
}

// retireUnless retires the pool's connections to addresses not in to
// (see conn.retire): the server's name resolved to new addresses.
func (p *pool) retireUnless(to []string) {
	for i := range p.slots {
		if cn := p.slots[i].cn.Load(); cn != nil && !slices.Contains(to, cn.at) {
			p.retire(cn)
		}
	}
}

// retire retires cn (see conn.retire), keeping it in p.retired until it
// is closed.
func (p *pool) retire(cn *conn) {
	p.retiredMu.Lock()
	if p.retired == nil {
		p.retired = make(map[*conn]struct{})
	}
	for r := range p.retired {
		if r.dead.Load() { // failed meanwhile (its calls timed out)
			delete(p.retired, r)
		}
	}
	p.retired[cn] = struct{}{}
	p.retiredMu.Unlock()
	cn.retire()
}

// close closes every connection of the pool.
func (p *pool) close() {
	for i := range p.slots {
		// Under the slot's lock, which dialSlot holds from its check of
		// c.closed to storing its connection: a dial finishing meanwhile
		// has either stored it (failed here) or sees the Client closed
		// (and resets it). Else Close would wait for ever for the
		// goroutines of a connection nobody fails.
		s := &p.slots[i]
		s.mu.Lock()
		cn := s.cn.Load()
		s.mu.Unlock()
		if cn != nil {
			cn.fail(backend.ErrClosed)
		}
	}
	p.retiredMu.Lock()
	retired := p.retired
	p.retired = nil
	p.retiredMu.Unlock()
	for cn := range retired {
		cn.fail(backend.ErrClosed)
	}
}

// conn is one pipelined connection.
type conn struct {
	p  *pool
	s  *slot
	nc net.Conn
	at string // the address nc was dialed to (see dialer.dialAt)
	bw *bufio.Writer
	br *bufio.Reader

	mu       sync.Mutex
	opaque   uint32     // the next request's opaque
	pending  []*request // queued, not yet taken by a writer
	spare    []*request // pending's other buffer, while no write is going on
	inflight []*request // written (or being written), in order; head first
	head     int
	writing  bool // the writer or a caller is encoding and sending
	direct   bool // a caller is reading its own reply (see submit)
	idle     bool // the reader waits on rcond for requests in flight
	woken    bool // the writer was woken and has not taken the lock since
	rcond    *sync.Cond
	err      error // why it died

	watch   *time.Timer // the watchdog, armed while requests are outstanding
	armed   bool
	armedAt time.Time // when it fires, if armed

	// boot is the bootKey of the server's run this connection talks to,
	// which the CAS values it reads and sends are XORed with (see
	// bootKey); it is known once booted is closed: at once after a
	// handshake, when the reply to the hello is read otherwise.
	boot   atomic.Uint64
	booted chan struct{}

	dead       atomic.Bool
	retired    atomic.Bool   // takes no new request (see retire)
	wake       chan struct{} // buffered 1
	quit       chan struct{} // closed by fail
	writerDone chan struct{}
}

// newConn starts the goroutines of a new connection nc, dialed to at.
// With hello, it queues the hello first (see dialSlot); without, boot is
// the bootKey the handshake learnt.
func newConn(p *pool, s *slot, nc net.Conn, at string, hello bool, boot uint64) *conn {
	cn := &conn{
		p: p, s: s, nc: nc, at: at,
		bw:         bufio.NewWriterSize(nc, 32<<10),
		br:         bufio.NewReaderSize(nc, 256<<10),
		booted:     make(chan struct{}),
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if !hello {
		cn.boot.Store(boot)
		close(cn.booted)
	}
	cn.rcond = sync.NewCond(&cn.mu)
	cn.watch = time.AfterFunc(time.Hour, cn.watchdog)
	cn.watch.Stop()
	if hello {
		r := &request{kind: kindHello, due: time.Now().Add(p.c.cfg.timeout)}
		cn.pending = append(cn.pending, r)
		cn.arm(r)
		cn.woken = true
		cn.wake <- struct{}{}
	}
	p.c.bg.Add(2)
	go cn.writeLoop()
	go cn.readLoop()
	return cn
}

// usable reports whether new requests may go on cn.
func (cn *conn) usable() bool { return !cn.dead.Load() && !cn.retired.Load() }

// errRetired closes a retired connection (see retire); a request that
// finds it so goes on another connection.
var errRetired = errors.New("connection retired: the server's address changed")

// retire makes cn take no new calls (its server's name resolved to
// another address): the next call on its slot dials a new connection, and
// cn is closed as soon as nothing is queued or in flight on it.
func (cn *conn) retire() {
	cn.retired.Store(true)
	cn.closeIfIdle()
}

// closeIfIdle closes cn, which is retired, if nothing is queued, in
// flight or being sent on it. The check and the closing are one step
// under cn.mu, so that a request queued meanwhile is refused
// (errRetired) rather than failed.
func (cn *conn) closeIfIdle() {
	cn.mu.Lock()
	if cn.err != nil || cn.writing || cn.direct || len(cn.pending) > 0 || cn.head != len(cn.inflight) {
		cn.mu.Unlock()
		return
	}
	cn.dieLocked(errRetired)
	cn.p.retiredMu.Lock()
	delete(cn.p.retired, cn)
	cn.p.retiredMu.Unlock()
}

// fail kills the connection with err, resetting it (resetConn); the
// reader then fails every request on it. Only the first call counts.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.dieLocked(err)
}

// dieLocked marks cn dead with err (cn.mu is held; it releases it), stops
// its watchdog, its writer and its reader, and resets the connection.
// Reset, not close: what the kernel has not delivered yet (requests
// written but unacknowledged, say during a partition) is dropped, and not
// delivered after the calls waiting on them have failed.
func (cn *conn) dieLocked(err error) {
	cn.err = err
	cn.dead.Store(true)
	cn.watch.Stop()
	cn.rcond.Broadcast()
	cn.mu.Unlock()
	close(cn.quit)
	resetConn(cn.nc)
}

// arm makes the watchdog fire by r's due time. cn.mu is held.
func (cn *conn) arm(r *request) {
	if !cn.armed || r.due.Before(cn.armedAt) {
		cn.armed, cn.armedAt = true, r.due
		cn.watch.Reset(time.Until(r.due))
	}
}

// watchdog runs when an outstanding request may be due: it closes the
// connection if one is, or waits for the next one. Requests are not due in
// the order they were queued (a call that waited for a connection, the
// hello a new connection sends first), so it looks at all of them.
func (cn *conn) watchdog() {
	defer func() {
		if v := recover(); v != nil {
			cn.fail(panicError("in the watchdog", v))
		}
	}()
	cn.p.c.testPoint("watchdog")
	cn.mu.Lock()
	var due time.Time
	for _, rs := range [2][]*request{cn.inflight[cn.head:], cn.pending} {
		for _, r := range rs {
			if due.IsZero() || r.due.Before(due) {
				due = r.due
			}
		}
	}
	if due.IsZero() || cn.err != nil {
		cn.armed = false
		cn.mu.Unlock()
		return
	}
	if left := time.Until(due); left > 0 {
		cn.armedAt = due
		cn.watch.Reset(left)
		cn.mu.Unlock()
		return
	}
	cn.armed = false
	cn.mu.Unlock()
	cn.fail(hungError{cn.p.c.cfg.timeout})
}

// When requests are written. A connection keeps as many requests in flight
// as its callers allow and writes them in as few writes as it can: a
// write costs a syscall on each side (memcached's read and wakeup
// included), and the deeper a batch, the less the server spends per
// request. Requests queued while others are in flight therefore wait
// until the batch they would make is at least as large as what is still
// in flight (flushable), which the reader checks after each pass, once
// the callers it has just completed have had a turn to queue their next
// requests (it yields to them first): the server then always has a batch
// to work on while the callers of the other one run, as in a client that
// keeps two half windows in flight. The writer, woken for them, yields
// once more before it takes the batch, so that the callers still running
// join it. On a connection with nothing in flight, a request
// goes at once: written by its own caller when few calls are in progress
// and it is small (no handoff to the writer; nothing is waiting to be
// sent, so the write does not block), else by the writer, which gathers
// the calls about to follow.

// callerWriteMax is the largest batch, in value bytes, a caller writes
// itself on a connection with nothing in flight (see enqueue).
const callerWriteMax = 16 << 10

// flushable reports whether the pending requests should be written now.
// cn.mu is held.
func (cn *conn) flushable() bool {
	if len(cn.pending) == 0 || cn.writing {
		return false
	}
	out := len(cn.inflight) - cn.head
	return out == 0 || len(cn.pending) >= out
}

// kickWriter wakes the writer if the pending requests should be written
// now and it is not woken already; the caller sends on cn.wake if it
// returns true. cn.mu is held.
func (cn *conn) kickWriter() bool {
	if cn.woken || !cn.flushable() {
		return false
	}
	cn.woken = true
	return true
}

func (cn *conn) wakeWriter() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// enqueue queues r to be written. It fails if the connection is dead, or
// with errRetired if it is retired: a caller that got it from a dial that
// the resolver overtook must not send r to the old address.
func (cn *conn) enqueue(r *request) error {
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return err
	}
	if cn.retired.Load() {
		cn.mu.Unlock()
		return errRetired
	}
	cn.enqueueLocked(r)
	return nil
}

// enqueueLocked is enqueue on a live connection, with cn.mu held, which it
// releases.
func (cn *conn) enqueueLocked(r *request) {
	cn.pending = append(cn.pending, r)
	cn.arm(r)
	if !cn.writing && cn.head == len(cn.inflight) && len(cn.pending) == 1 && r.bytes() <= callerWriteMax &&
		cn.p.c.active.Load() <= int64(2*len(cn.p.slots)) {
		// Nothing in flight, nothing else queued: write it now, here.
		batch := cn.take()
		cn.mu.Unlock()
		cn.write(batch)
		return
	}
	kick := cn.kickWriter()
	cn.mu.Unlock()
	if kick {
		cn.wakeWriter()
	}
}

// take moves the pending requests in flight, numbered, and returns them
// for the caller to write (see write); requests abandoned before they were
// sent are dropped. cn.mu is held; the caller becomes the writer.
func (cn *conn) take() []*request {
	batch := cn.pending
	cn.pending, cn.spare = cn.spare[:0], nil
	kept := batch[:0]
	for _, r := range batch {
		if r.state.Load() == stateAbandoned {
			r.release()
			continue
		}
		cn.number(r)
		kept = append(kept, r)
	}
	clear(batch[len(kept):])
	if cn.head > 0 && cn.head == len(cn.inflight) {
		clear(cn.inflight)
		cn.inflight, cn.head = cn.inflight[:0], 0
	}
	cn.inflight = append(cn.inflight, kept...)
	if len(kept) > 0 && cn.idle {
		cn.rcond.Signal()
	}
	cn.writing = true
	return kept
}

// write sends batch, taken by take, and ends the write: it wakes the
// writer if more requests should go now, and fails the connection if the
// write failed. It reports whether the connection is still usable.
func (cn *conn) write(batch []*request) bool {
	var err error
	if len(batch) > 0 {
		err = cn.send(batch)
	}
	clear(batch)
	cn.mu.Lock()
	cn.writing = false
	cn.spare = batch[:0]
	kick := err == nil && cn.kickWriter()
	cn.mu.Unlock()
	if err != nil {
		cn.fail(err)
		return false
	}
	if kick {
		cn.wakeWriter()
	}
	if cn.retired.Load() {
		cn.closeIfIdle() // the batch's requests were all abandoned, or answered already
	}
	return true
}

// writeLoop writes what enqueue and the reader wake it for: requests
// queued while others were in flight, once flushable, and large ones.
func (cn *conn) writeLoop() {
	defer cn.p.c.bg.Done()
	defer close(cn.writerDone)
	for {
		select {
		case <-cn.wake:
		case <-cn.quit:
			return
		}
		// Let the callers that are about to queue do so (those the reader
		// just completed, most often): one write then carries them all.
		runtime.Gosched()
		cn.mu.Lock()
		cn.woken = false
		if cn.err != nil {
			cn.mu.Unlock()
			return
		}
		if cn.writing || len(cn.pending) == 0 {
			// Another writer took them; it wakes this one again if more
			// should go.
			cn.mu.Unlock()
			continue
		}
		batch := cn.take()
		cn.mu.Unlock()
		if !cn.write(batch) {
			return
		}
	}
}

// number gives r its opaque(s), in the order of the requests put in
// flight. cn.mu is held.
func (cn *conn) number(r *request) {
	r.opaque = cn.opaque
	cn.opaque += uint32(r.commands())
}

// send encodes rs and flushes them. A panic (a bug) is an error.
func (cn *conn) send(rs []*request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError("encoding a request", v)
		}
	}()
	cn.p.c.testPoint("write")
	for _, r := range rs {
		encode(cn.bw, r)
		r.sent.Store(true)
	}
	return cn.bw.Flush()
}

// sendOne is send for one request.
func (cn *conn) sendOne(r *request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError("encoding a request", v)
		}
	}()
	cn.p.c.testPoint("write")
	encode(cn.bw, r)
	r.sent.Store(true)
	return cn.bw.Flush()
}

// receive reads the reply to r. A panic (a bug) is an error that closes
// the connection, never a crash of the process.
func (cn *conn) receive(r *request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError("reading a reply", v)
		}
	}()
	cn.p.c.testPoint("read")
	if err := readReply(cn.br, r); err != nil {
		return err
	}
	if !r.sent.Load() {
		// Only a server that answers what it was not asked yet gets here;
		// r may still be being encoded, so it is not handed back.
		return protoErr("a reply came before its request was sent")
	}
	if r.kind == kindHello {
		// Before the replies behind it are read, whose CAS values are
		// translated with it.
		cn.boot.Store(r.info.boot)
		close(cn.booted)
		return nil
	}
	r.fromWire(cn.boot.Load())
	return nil
}

// panicError turns a recovered panic into the error of the calls it
// affects.
func panicError(where string, v any) error {
	return protoErr(fmt.Sprintf("internal error %s (please report it): panic: %v", where, v))
}

// popped removes the n oldest requests in flight, whose replies the
// reader has read. cn.mu is held.
func (cn *conn) popped(n int) {
	clear(cn.inflight[cn.head : cn.head+n])
	cn.head += n
	if cn.head > 256 && cn.head*2 > len(cn.inflight) {
		k := copy(cn.inflight, cn.inflight[cn.head:])
		clear(cn.inflight[k:])
		cn.inflight, cn.head = cn.inflight[:k], 0
	}
}

func (cn *conn) readLoop() {
	defer cn.p.c.bg.Done()
	failed := cn.readReplies()
	<-cn.writerDone
	cn.s.cn.CompareAndSwap(cn, nil)
	// Wait for a caller writing or reading on its own; then nobody does
	// again (the connection is failed, so enqueue and submit refuse).
	for {
		cn.mu.Lock()
		if !cn.writing && !cn.direct {
			cn.writing, cn.direct = true, true
			cn.mu.Unlock()
			break
		}
		cn.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if failed != nil {
		failed.complete()
	}
	cn.mu.Lock()
	err := cn.err
	rest := append(cn.inflight[cn.head:], cn.pending...)
	cn.inflight, cn.pending, cn.head = nil, nil, 0
	cn.mu.Unlock()
	for _, r := range rest {
		r.err = err
		r.complete()
	}
}

// readReplies reads the replies of the requests in flight, in order, until
// the connection fails. It reads every reply that has arrived before it
// takes the lock to remove their requests from the flight, then completes
// them: one lock and one pass per read from the socket, not per reply. It
// returns the request whose reply could not be read, if any. That one is
// completed only once the writers are done: a request is put in flight
// before it is encoded, so a reply can fail while its request is still
// being encoded, and completing it then would hand it back to the pool
// under the writer.
func (cn *conn) readReplies() (failed *request) {
	defer func() {
		if v := recover(); v != nil {
			cn.fail(panicError("in the reader", v))
		}
	}()
	var buf []*request // the requests in flight when the reader last looked
	for {
		// Wait for a request in flight (a writer puts requests there
		// before sending them) while no caller reads on its own.
		cn.mu.Lock()
		for (cn.head == len(cn.inflight) || cn.direct) && cn.err == nil {
			cn.idle = true
			cn.rcond.Wait()
			cn.idle = false
		}
		if cn.err != nil {
			cn.mu.Unlock()
			return nil
		}
		// The requests stay in flight while their replies are read, so
		// that the connection does not look idle to submit meanwhile.
		buf = append(buf[:0], cn.inflight[cn.head:]...)
		cn.mu.Unlock()
		work := buf
		for len(work) > 0 {
			n := 0
			var fatal error
			for n < len(work) {
				if fatal = cn.receive(work[n]); fatal != nil {
					break
				}
				n++
				if cn.br.Buffered() == 0 {
					break // the next reply means a read from the socket: hand these out first
				}
			}
			cn.mu.Lock()
			cn.popped(n)
			cn.mu.Unlock()
			for _, r := range work[:n] {
				if r.kind == kindHello {
					cn.p.n.setInfo(r.info)
				} else {
					r.complete()
				}
			}
			// Let the callers just completed run first and queue their
			// next requests, then wake the writer if what is queued
			// should go now: the write then carries them, and the
			// writer is not woken for the few queued before them.
			runtime.Gosched()
			cn.mu.Lock()
			kick := cn.kickWriter()
			cn.mu.Unlock()
			if kick {
				cn.wakeWriter()
			}
			if fatal != nil {
				r := work[n]
				clear(buf)
				return cn.readFailed(r, fatal)
			}
			work = work[n:]
		}
		clear(buf)
		if cn.retired.Load() {
			cn.closeIfIdle()
		}
	}
}

// readFailed fails the connection for err, an error reading the reply to
// r, the oldest request in flight, which it takes out of the flight and
// returns with the connection's error.
func (cn *conn) readFailed(r *request, err error) *request {
	var pe protoErr
	if r.kind == kindHello && errors.As(err, &pe) {
		// The server answered the hello with something else than MN and
		// its settings: the next connection does the whole handshake
		// again. A refusal (a busy server, see refusedBy) is no protocol
		// error: the server still has meta commands.
		cn.p.n.meta.Store(false)
	}
	cn.fail(err)
	cn.mu.Lock()
	if cn.head < len(cn.inflight) && cn.inflight[cn.head] == r {
		cn.inflight[cn.head] = nil
		cn.head++
	}
	r.err = cn.err // the watchdog's or Close's, if it closed the connection under the read
	cn.mu.Unlock()
	return r
}

// peekLine returns what the reader holds up to the first line end, for
// an error message.
func peekLine(br *bufio.Reader) []byte {
	b, _ := br.Peek(min(br.Buffered(), 80))
	for i, c := range b {
		if c == '\n' {
			return b[:i+1]
		}
	}
	return b
}

// do queues r on a connection of p and waits for its completion until
// deadline (start + the timeout, or ctx's deadline if sooner) or ctx's
// cancellation. On nil error r holds the reply and the caller must release
// it; on error r is gone.
func (p *pool) do(ctx context.Context, r *request, deadline time.Time, byCtx bool) error {
	var last *conn
	for attempt := 0; ; attempt++ {
		var cn *conn
		var err error
		if last == nil {
			cn, err = p.conn(ctx, deadline, byCtx)
		} else {
			// The same slot: its connection is dead, so this dials a new one
			// (the other slots' connections may be as stale).
			cn, err = p.connOn(ctx, last.s, deadline, byCtx)
		}
		if err != nil {
			r.release()
			return err
		}
		p.prime(r, deadline, byCtx)
		if r.carriesCAS() {
			// Its token is sent translated with the connection's bootKey,
			// which a new connection learns from the reply to its hello:
			// sent with the key of an earlier run, a token read in that
			// run would be the bare CAS value it had there, which the
			// restarted server's counter may have reached (see bootKey).
			if err := cn.awaitBoot(ctx, deadline, byCtx, p.c.cfg.timeout); err != nil {
				r.release()
				return err
			}
			r.boot = cn.boot.Load()
		}
		direct, alone, err := cn.submit(ctx, r)
		if !direct {
			if err != nil {
				if err == errRetired && attempt < 4 {
					// Closed for an address change: on to the new address.
					last = cn
					continue
				}
				r.release()
				return err
			}
			if !alone || attempt > 0 || !idempotent(r) {
				return p.wait(ctx, cn, r)
			}
			// Queued on an idle connection (a large value, or other
			// calls of the Client in progress): if the server had closed
			// it, ask again on a new one, as below.
			if err, stale := p.waitStale(ctx, r); !stale {
				return err
			}
			r.again()
			last = cn
			continue
		}
		if err != nil && attempt == 0 && idempotent(r) && staleConn(err) && ctx.Err() == nil {
			// The server had closed the idle connection (it restarted, or
			// timed the connection out): ask again on a new one.
			r.again()
			last = cn
			continue
		}
		if err != nil {
			r.release()
		}
		return err
	}
}

// awaitBoot waits until cn knows the bootKey of its server's run (the
// reply to its hello), cn dies, deadline passes or ctx ends.
func (cn *conn) awaitBoot(ctx context.Context, deadline time.Time, byCtx bool, timeout time.Duration) error {
	select {
	case <-cn.booted:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-cn.booted:
		return nil
	case <-cn.quit:
		cn.mu.Lock()
		err := cn.err
		cn.mu.Unlock()
		if err == nil {
			err = errors.New("the connection closed before the server said which run it is")
		}
		return err
	case <-t.C:
		if byCtx {
			return context.DeadlineExceeded
		}
		return errTimeout{timeout}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idempotent reports whether r may be sent again when it is not known
// whether the server got it: a get, a touch, a plain set.
func idempotent(r *request) bool {
	return r.kind == kindGet || r.kind == kindTouch || r.kind == kindStore && r.mode == 0
}

// prime sets what r needs before it is sent: the bound on the value its
// reply may declare, and its deadline.
func (p *pool) prime(r *request, deadline time.Time, byCtx bool) {
	r.limit = p.c.valueLimit()
	r.due = deadline
	if byCtx {
		r.due = time.Now().Add(p.c.cfg.timeout)
	}
}

// staleConn reports whether err means that the connection was closed by
// the server before it answered.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// directMax is the largest value a caller sends itself on an idle
// connection: small enough never to block on the socket's buffer.
const directMax = 8 << 10

// submit runs r: in the caller's goroutine if cn is idle (nothing queued,
// nothing awaiting a reply, no write going on), no other call of the
// client is in progress, and r is small, reporting true with the call's
// outcome (direct); else it queues r (enqueue) and reports false, with
// the error of a dead connection (r is then not queued), and whether cn
// was idle when r was queued (alone).
//
// A call run directly writes its request and reads its reply itself,
// without waking the writer and the reader, so a lone caller costs what a
// plain synchronous client does. Calls arriving meanwhile queue for the
// writer, and the reader takes over their replies when this one is done.
// The watchdog bounds the read by the timeout (by closing the
// connection); a cancelled context closes the connection too, since a
// read cut short leaves it unusable. The count of calls in progress is
// read only on an idle connection: under load none is.
func (cn *conn) submit(ctx context.Context, r *request) (direct, alone bool, _ error) {
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return false, false, err
	}
	if cn.retired.Load() { // as in enqueue
		cn.mu.Unlock()
		return false, false, errRetired
	}
	busy := cn.writing || cn.direct || len(cn.pending) > 0 || cn.head != len(cn.inflight)
	if busy || r.kind >= kindGetMulti || len(r.value) > directMax ||
		// Other calls are in progress: they would queue behind this
		// one's round trip (the reader waits while a caller reads its
		// own reply), so pipelining serves them all better.
		cn.p.c.active.Load() > 1 {
		cn.enqueueLocked(r)
		return false, !busy, nil
	}
	cn.writing, cn.direct = true, true
	if cn.head > 0 {
		clear(cn.inflight)
		cn.inflight, cn.head = cn.inflight[:0], 0
	}
	cn.number(r)
	cn.inflight = append(cn.inflight, r)
	cn.arm(r)
	cn.mu.Unlock()
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { cn.fail(errCallCancelled) })
	}
	err := cn.sendOne(r)
	cn.mu.Lock()
	cn.writing = false
	kick := cn.kickWriter()
	cn.mu.Unlock()
	if kick {
		cn.wakeWriter()
	}
	if err == nil {
		err = cn.receive(r)
	}
	cancelled := stop != nil && !stop()
	cn.mu.Lock()
	if cn.head < len(cn.inflight) && cn.inflight[cn.head] == r {
		cn.inflight[cn.head] = nil
		cn.head++
	}
	cn.direct = false
	if cn.head < len(cn.inflight) && cn.idle {
		cn.rcond.Signal()
	}
	kick = cn.kickWriter()
	dead := cn.err
	cn.mu.Unlock()
	if kick {
		cn.wakeWriter()
	}
	if dead == nil && cn.retired.Load() {
		defer cn.closeIfIdle()
	}
	switch {
	case cancelled:
		return true, false, ctx.Err()
	case err != nil && dead != nil:
		// The watchdog (or Close) closed the connection under the read.
		return true, false, dead
	case err != nil:
		cn.fail(err)
		return true, false, err
	}
	return true, false, r.takeErrKeep()
}

// errCallCancelled closes a connection on which a caller reading its own
// reply was cancelled.
var errCallCancelled = errors.New("connection closed: a call reading on it was cancelled")

// start queues r on a connection of p; the caller then waits for it. On
// error r is released.
func (p *pool) start(ctx context.Context, r *request, deadline time.Time, byCtx bool) (*conn, error) {
	return p.startOn(ctx, p.pick(), r, deadline, byCtx)
}

// startOn is start on the slot s.
func (p *pool) startOn(ctx context.Context, s *slot, r *request, deadline time.Time, byCtx bool) (*conn, error) {
	cn, err := p.connOn(ctx, s, deadline, byCtx)
	if err != nil {
		r.release()
		return nil, err
	}
	p.prime(r, deadline, byCtx)
	if err := cn.enqueue(r); err != nil {
		if err == errRetired {
			// Closed for an address change: on to the new address, once
			// connected to it; nothing is sent if ctx ended meanwhile
			// (the reply would not be waited for).
			if cn, err = p.connOn(ctx, cn.s, deadline, byCtx); err == nil {
				if err = ctx.Err(); err == nil {
					err = cn.enqueue(r)
				}
			}
		}
		if err != nil {
			r.release()
			return nil, err
		}
	}
	return cn, nil
}

// startNoDial is startOn for a caller that must not wait for a connect
// (a multi-key call, which starts the other servers' requests meanwhile):
// if s has no connection that takes r (none, one dead, one retired for an
// address change), it reports false with r not queued, for the caller
// to connect apart (startOn). Otherwise it reports true, with the connection r is
// queued on, or the error of a connection lost (r released).
func (p *pool) startNoDial(s *slot, r *request, deadline time.Time, byCtx bool) (*conn, bool, error) {
	cn := s.cn.Load()
	if cn == nil || !cn.usable() {
		return nil, false, nil
	}
	p.prime(r, deadline, byCtx)
	p.c.testPoint("enqueue")
	if err := cn.enqueue(r); err != nil {
		if err == errRetired {
			return nil, false, nil
		}
		r.release()
		return nil, true, err
	}
	return cn, true, nil
}

// queueOn queues r on the connection of the slot s that connectFirst
// found or made, for a multi-key call. If that connection no longer
// takes calls (retired since, its server's name resolving elsewhere), r
// goes on a new one, which is a connect: with noWait, queueOn then
// releases r and reports false, for the caller to start apart. Otherwise
// it reports true, with the connection r is queued on, or the error that
// kept r from one (r released).
func (p *pool) queueOn(ctx context.Context, s *slot, r *request, dl due, noWait bool) (cn *conn, ok bool, err error) {
	if cn, ok, err = p.startNoDial(s, r, dl.at, dl.byCtx); ok {
		return cn, true, err
	}
	if noWait {
		r.release()
		return nil, false, nil
	}
	cn, err = p.startOn(ctx, s, r, dl.at, dl.byCtx)
	return cn, true, err
}

// connectFirst connects the slot s if it has no connection that takes
// calls, within deadline and ctx, and returns ctx's error if ctx has
// ended by then: a connect may take until then, after which nothing is to
// be sent (its reply would not be waited for).
func (p *pool) connectFirst(ctx context.Context, s *slot, dl due) error {
	if s.connected() {
		return nil
	}
	if _, err := p.connOn(ctx, s, dl.at, dl.byCtx); err != nil {
		return err
	}
	return ctx.Err()
}

// waitStale is wait for a request do may send again: if r failed because
// the server had closed the connection (staleConn) and ctx is live, r is
// kept for the caller (not released) and stale is true.
func (p *pool) waitStale(ctx context.Context, r *request) (err error, stale bool) {
	if err := awaitReply(ctx, r); err != nil {
		return err, false
	}
	if err := r.takeErrKeep(); err != nil && staleConn(err) && ctx.Err() == nil {
		return err, true
	}
	return r.takeErr(), false
}

func (p *pool) wait(ctx context.Context, cn *conn, r *request) error {
	if err := awaitReply(ctx, r); err != nil {
		return err
	}
	return r.takeErr()
}

// awaitReply waits until r is done, and returns nil; or, if ctx ends
// first, abandons r (the reader releases it) and returns ctx's error. The
// watchdog bounds a wait without ctx by the timeout.
func awaitReply(ctx context.Context, r *request) error {
	if ctx.Done() == nil {
		<-r.done
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
	}
	if !r.state.CompareAndSwap(statePending, stateAbandoned) {
		<-r.done // completed meanwhile: take the reply after all
		return nil
	}
	return ctx.Err()
}

// takeErrKeep is takeErr without releasing r.
func (r *request) takeErrKeep() error {
	if err := r.err; err != nil && r.status != replyServerError {
		return err
	}
	return nil
}

// takeErr returns r's connection-level error, releasing r if there is one.
func (r *request) takeErr() error {
	if err := r.err; err != nil && r.status != replyServerError {
		r.release()
		return err
	}
	return nil
}

// valueLimit is the largest value a reply may declare, on either
// protocol: the client's max_value_length or its item_size_max
// (WithItemSizeMax), whichever is larger. Both are the client's own
// settings: what a server says of itself (its item_size_max in "stats
// settings") never raises the bound, since a server that could raise it
// could make the client allocate whatever it likes. The server's
// item_size_max only makes the size check of writes stricter (checkWrite).
func (c *Client) valueLimit() int {
	return int(min(max(c.cfg.maxValueSize, c.cfg.itemSizeMax), math.MaxInt))
}
