// Package hostile puts a misbehaving network, or a misbehaving server, between
// a client under test and a real server, for tests only.
//
// A Proxy listens on a free loopback port and forwards every connection it
// accepts to an upstream server (a real memcached or redis-server that a
// test started). What the client sends reaches the server as is. What the
// server sends is cut into whole replies by a Framer (MemcachedFramer,
// RESPFramer) and each reply is handed to the proxy's Mutator, which
// decides what the client gets instead: the reply itself (Pass), nothing,
// the reply twice, an altered reply, another reply, the reply one byte at a
// time, or a connection cut in the middle. The server thus completes the
// real handshake and answers real commands, while the client sees the
// replies a broken proxy, a buggy server or an attacker would send.
//
//	mc := testserver.Memcached(t)
//	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
//	p.SetMutator(hostile.Random(seed, 0.05, hostile.MemcachedKinds...))
//	client := memcached.New([]string{p.Addr()}, ...)
//
// A Proxy also models the network itself: SetDelay adds latency in both
// directions, and Hold stops forwarding what the client sends, as a
// partition does, while keeping it, as the client's kernel keeps
// retransmitting it: Heal delivers what was held on connections the client
// merely closed, and drops it on connections the client reset, which is
// what TCP does with unacknowledged data after a FIN or after a RST.
//
// Every method is safe for concurrent use. Start registers the proxy's
// shutdown with t.Cleanup.
package hostile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A Framer reads one whole reply from the server's byte stream: a reply
// line and the data block it announces, or one complete RESP value. It
// returns io.EOF (or another error) when the stream ends.
type Framer func(br *bufio.Reader) ([]byte, error)

// A Mutator decides what the client gets for each reply of the server. It
// writes to c whatever the client should receive (nothing drops the
// reply). An error returned by Mutate ends the connection: the proxy resets
// both sides.
type Mutator interface {
	Mutate(c *Conn, reply []byte) error
}

// MutatorFunc adapts a function to the Mutator interface.
type MutatorFunc func(c *Conn, reply []byte) error

// Mutate calls f(c, reply).
func (f MutatorFunc) Mutate(c *Conn, reply []byte) error { return f(c, reply) }

// Pass is the Mutator that forwards every reply unchanged.
var Pass Mutator = MutatorFunc(func(c *Conn, reply []byte) error { return c.Write(reply) })

// Proxy is a mutating TCP proxy in front of one upstream server.
type Proxy struct {
	tb       testing.TB
	ln       net.Listener
	upstream string
	framer   Framer

	mut       atomic.Pointer[Mutator]
	delay     atomic.Int64 // time.Duration added to every chunk, each way
	connDelay atomic.Int64 // time.Duration a new connection takes to connect (SetConnectDelay)

	mu     sync.Mutex
	conns  map[*Conn]bool
	held   bool
	heal   chan struct{} // closed by Heal
	closed bool
	log    []string

	accepted atomic.Int64
	wg       sync.WaitGroup
}

// Start starts a proxy to upstream (host:port) on a free port of
// 127.0.0.1, cutting the server's replies with framer and forwarding them
// unchanged until SetMutator is called. The proxy is closed when the test
// ends.
func Start(tb testing.TB, upstream string, framer Framer) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("hostile: listen: %v", err)
	}
	p := &Proxy{tb: tb, ln: ln, upstream: upstream, framer: framer, conns: map[*Conn]bool{}, heal: make(chan struct{})}
	close(p.heal)
	p.SetMutator(Pass)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr returns the address clients connect to ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMutator makes m decide the fate of every reply from now on, on every
// connection, open or future.
func (p *Proxy) SetMutator(m Mutator) { p.mut.Store(&m) }

// SetDelay delays every chunk of bytes by d in each direction (so a round
// trip takes 2d longer), as a long link does; 0 removes the delay.
// Throughput is not limited: chunks are delayed, not spaced.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetConnectDelay makes a connection take d to connect, as a connect on a
// long link returns only after a round trip (give it twice the delay of
// SetDelay): what the client sends on a connection in the first d after
// it was accepted reaches the server as if sent d after the accept (plus
// the delay of SetDelay). The client's connect itself returns at once (it
// reaches the proxy on loopback), so the client sees the cost in its first
// round trip instead. 0 removes it.
func (p *Proxy) SetConnectDelay(d time.Duration) { p.connDelay.Store(int64(d)) }

// Accepted returns how many client connections the proxy has accepted.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Hold stops forwarding what clients send to the server, on every
// connection, open or future, as a network partition does. What clients
// send meanwhile is kept, as their kernels keep unacknowledged data to
// retransmit it, until Heal.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held = true
		p.heal = make(chan struct{})
	}
}

// Heal ends a Hold: on each connection what was kept is delivered to the
// server, unless the client reset that connection (SO_LINGER 0, or any
// RST), in which case it is dropped, as TCP drops a reset connection's
// unacknowledged data. A connection the client closed normally (FIN) still
// delivers it, then closes: that is how a write the client gave up on is
// applied after the fact.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		close(p.heal)
	}
}

// healed returns a channel closed when forwarding is allowed.
func (p *Proxy) healed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heal
}

// ResetAll resets every open connection (both sides), as a proxy or a
// server that restarts does.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	cs := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.Reset()
	}
}

// Logf records a line in the proxy's log (Mutators record what they did),
// which Log returns and which is printed if the test fails.
func (p *Proxy) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.log) < 10000 {
		p.log = append(p.log, fmt.Sprintf(format, args...))
	}
}

// Log returns the lines recorded with Logf.
func (p *Proxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// Close stops accepting, resets every connection and waits for the
// proxy's goroutines. A second Close does nothing.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.held {
		p.held = false
		close(p.heal)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
	if p.tb.Failed() {
		log := p.Log()
		if len(log) > 50 {
			log = log[len(log)-50:]
		}
		for _, l := range log {
			p.tb.Logf("hostile: %s", l)
		}
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		id := int(p.accepted.Add(1))
		sc, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			p.Logf("conn %d: dial upstream: %v", id, err)
			resetConn(cc)
			continue
		}
		c := &Conn{p: p, ID: id, client: cc, server: sc, start: time.Now()}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			resetConn(cc)
			resetConn(sc)
			return
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go c.up()
		go c.down()
	}
}

// Conn is one proxied connection, as a Mutator sees it.
type Conn struct {
	p *Proxy
	// ID numbers the proxy's connections from 1, in the order accepted.
	ID int
	// Replies counts the replies of this connection handed to the Mutator
	// before the current one (0 for the first).
	Replies int

	client, server net.Conn
	start          time.Time  // when the proxy accepted it
	wmu            sync.Mutex // serializes writes to the client
	ended          atomic.Bool
	prev           []byte    // the previous reply (OtherReply); down's goroutine only
	due            time.Time // when the current reply may reach the client (SetDelay); down's goroutine only
}

// Proxy returns the proxy c belongs to.
func (c *Conn) Proxy() *Proxy { return c.p }

// Write sends b to the client, once the proxy's delay after the server
// sent the current reply has passed: the replies of a batch are delayed,
// not spaced.
func (c *Conn) Write(b []byte) error {
	if d := time.Until(c.due); d > 0 {
		time.Sleep(d)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.client.Write(b)
	return err
}

// Dribble sends b to the client one byte at a time, every interval. It
// stops early, with an error, when the connection ends.
func (c *Conn) Dribble(b []byte, every time.Duration) error {
	for i := range b {
		if c.ended.Load() {
			return net.ErrClosed
		}
		if err := c.Write(b[i : i+1]); err != nil {
			return err
		}
		time.Sleep(every)
	}
	return nil
}

// Reset ends the connection with a RST on both sides.
func (c *Conn) Reset() {
	if c.ended.Swap(true) {
		return
	}
	resetConn(c.client)
	resetConn(c.server)
}

// Close ends the connection with a FIN to the client and closes the
// server side.
func (c *Conn) Close() {
	if c.ended.Swap(true) {
		return
	}
	_ = c.client.Close()
	_ = c.server.Close()
}

// resetConn closes nc so that the peer gets a RST.
func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

func (c *Conn) done() {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// up copies the client's bytes to the server, after the delay and while
// the proxy is not holding. When the client ends the connection, what
// the proxy still holds is delivered (the client closed: FIN) or dropped
// (the client reset it).
func (c *Conn) up() {
	defer c.p.wg.Done()
	q := make(chan chunk, 1024)
	reset := make(chan struct{})
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := c.client.Read(buf)
			if n > 0 {
				at := time.Now()
				if connected := c.start.Add(time.Duration(c.p.connDelay.Load())); at.Before(connected) {
					at = connected
				}
				q <- chunk{buf[:n], at.Add(time.Duration(c.p.delay.Load()))}
			}
			if err != nil {
				if isReset(err) {
					close(reset)
				}
				return
			}
		}
	}()
	for ch := range q {
		if d := time.Until(ch.at); d > 0 {
			time.Sleep(d)
		}
		select {
		case <-c.p.healed():
		case <-reset:
			// The client reset the connection while its bytes were held:
			// they never reach the server.
			c.Reset()
			c.drain(q)
			return
		}
		select {
		case <-reset:
			c.Reset()
			c.drain(q)
			return
		default:
		}
		if _, err := c.server.Write(ch.b); err != nil {
			c.Reset()
			c.drain(q)
			return
		}
	}
	// The client closed its side (FIN): pass that on once everything sent
	// before it was delivered.
	if tc, ok := c.server.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// chunk is what the client sent in one read, and when it may be
// delivered.
type chunk struct {
	b  []byte
	at time.Time
}

// drain discards what is left of q, so that its reader can finish.
func (c *Conn) drain(q <-chan chunk) {
	for range q {
	}
}

// down reads the server's replies, frames them and hands each to the
// Mutator.
func (c *Conn) down() {
	defer c.p.wg.Done()
	defer c.done()
	// The replies are framed as they arrive, each stamped with when it
	// may reach the client, so that a delay does not space them.
	type framed struct {
		reply []byte
		at    time.Time
		err   error
	}
	q := make(chan framed, 1024)
	c.p.wg.Add(1)
	go func() {
		defer c.p.wg.Done()
		defer close(q)
		br := bufio.NewReaderSize(c.server, 64<<10)
		for {
			reply, err := c.p.framer(br)
			q <- framed{reply, time.Now().Add(time.Duration(c.p.delay.Load())), err}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		for range q { // the framer ends once the server side is closed
		}
	}()
	for f := range q {
		c.due = f.at
		if len(f.reply) > 0 {
			m := *c.p.mut.Load()
			merr := m.Mutate(c, f.reply)
			c.Replies++
			if merr != nil {
				c.p.Logf("conn %d reply %d: end: %v", c.ID, c.Replies-1, merr)
				c.Reset()
				return
			}
		}
		if err := f.err; err != nil {
			if errors.Is(err, io.EOF) && !c.ended.Load() {
				// The server closed: close the client side too, after
				// what was written.
				c.Close()
				return
			}
			c.Reset()
			return
		}
	}
}

// isReset reports whether err is a connection reset by the peer.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
