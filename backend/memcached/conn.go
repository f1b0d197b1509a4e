package memcached

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/memdict/memdict/internal/decimal"
	"github.com/memdict/memdict/internal/valuepool"
)

// timedConn is a gomemcache connection (see textConn). It bounds each
// memcached operation on it by one timeout in total, and by the deadline of
// the call it serves. gomemcache re-arms the connection deadline to
// now+Timeout before each step and before each line of a multi-get reply,
// so a server that trickles its answer could hold a call for many
// timeouts; and a fresh connection pays the dial and then a whole timeout
// again. timedConn caps every deadline at the start of the current
// operation (the first write after a read, or the start of the dial for a
// new connection) plus the timeout, and at the call's deadline. Its guard
// checks every reply on its way to gomemcache (textGuard). Close resets
// the connection (resetConn): gomemcache closes a connection after a
// timeout or an error, with the request perhaps unsent.
//
// A connection is used by one goroutine at a time (gomemcache takes it out
// of its pool for one operation), so the fields need no lock.
type timedConn struct {
	net.Conn
	timeout  time.Duration
	opStart  time.Time
	lastRead bool
	begun    bool      // an operation was started
	x        *textConn // the call's; nil outside a textConn
	guard    textGuard
	// held is what is left to hand gomemcache of a long value held until
	// its bytes arrived (hold): the end of its VALUE line, its bytes, its
	// CRLF.
	held valuepool.Held
}

func (c *timedConn) limit(t time.Time) time.Time {
	l := c.opStart.Add(c.timeout)
	if c.x != nil && !c.x.deadline.IsZero() && c.x.deadline.Before(l) {
		l = c.x.deadline
	}
	if t.IsZero() || t.After(l) {
		return l
	}
	return t
}

func (c *timedConn) Write(p []byte) (int, error) {
	if c.lastRead || !c.begun {
		// A new request: the operation starts now (for the first, the
		// dial started it), and the guard follows its reply.
		if c.begun {
			c.opStart = time.Now()
		}
		c.lastRead, c.begun = false, true
		if err := c.Conn.SetDeadline(c.limit(time.Time{})); err != nil {
			return 0, err
		}
		if err := c.guard.begin(p, c.Conn); err != nil {
			return 0, err
		}
	}
	c.guard.request(p)
	return c.Conn.Write(p)
}

func (c *timedConn) Read(p []byte) (int, error) {
	c.lastRead = true
	if c.held.Len() > 0 {
		return c.held.Read(p), nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		k, gerr := c.guard.check(p[:n])
		if gerr != nil {
			return 0, gerr
		}
		if c.guard.long {
			// A long value's VALUE line ended at p[k-1], and what came of
			// the value is less than all of it.
			c.guard.long = false
			if herr := c.hold(p[k-1 : n]); herr != nil {
				return 0, herr
			}
			if k--; k == 0 {
				return c.held.Read(p), nil
			}
		}
		n = k
	}
	return n, err
}

// hold collects the bytes of a long value whose VALUE line's LF starts
// tail, with what the server sent after it (less than the whole value):
// it reads the rest of the value and its CRLF as they arrive, into pooled
// chunks (valuepool.Held), and keeps it all, from that LF on, for
// gomemcache, which allocates the size the line declares as soon as it
// reads the line: a server declaring 256 MiB (under a max_value_length
// raised that far) and sending 1 KiB made each Get hold 256 MiB until its
// timeout. An error reading condemns the connection: what was read is
// dropped.
func (c *timedConn) hold(tail []byte) error {
	first := true
	err := c.held.Collect(tail, c.Conn, 1+c.guard.left, func(b []byte) error {
		if first {
			b, first = b[1:], false // the LF, followed already
		}
		_, err := c.guard.check(b)
		return err
	})
	if err != nil && c.guard.bad == nil {
		c.guard.bad = err
	}
	return err
}

// Close resets the connection (see resetConn).
func (c *timedConn) Close() error {
	if x := c.x; x != nil {
		x.mu.Lock()
		if x.nc == c {
			x.nc = nil
		}
		x.mu.Unlock()
	}
	resetConn(c.Conn)
	return nil
}

func (c *timedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.limit(t)) }
func (c *timedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.limit(t)) }
func (c *timedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.limit(t)) }

// textGuard follows the replies of a text-protocol connection as
// gomemcache reads them, since the text protocol has no opaque: it knows
// where each reply ends (one line; or for a get, VALUE blocks up to END),
// refuses a VALUE larger than limit before gomemcache allocates it, and
// holds back bytes that come after the end of the reply: they, or bytes
// waiting in the socket when the next request starts, condemn the
// connection (bad), so that they never answer a later request.
type textGuard struct {
	limit   int
	get     bool  // the request is a get: VALUE blocks up to END
	state   uint8 // guardLine, guardData or guardDone
	line    []byte
	lineLen int
	left    int   // bytes of the current value still to come, CRLF included
	bad     error // bytes came that answer no request

	// keys is the number of keys a get asks (the words of its request
	// line, reqDone once its end was written), values the VALUE blocks of
	// its reply so far: a reply has no more blocks than keys asked, so a
	// server cannot make gomemcache hold more than keys values. Without
	// the bound, a server answering a GetMulti of 2 keys with VALUE
	// blocks of unasked keys, without end, made it allocate 1.6 GiB
	// within a 1 s timeout (1 GiB of it held).
	keys, values int
	reqDone      bool

	// long is set by check when it stops after the VALUE line of a value
	// longer than valuepool.Ahead whose bytes were not all read: the
	// connection holds the line's end until they arrive (timedConn.hold).
	long bool
}

const (
	guardLine uint8 = iota
	guardData
	guardDone
)

// maxGuardLine is the longest VALUE line accepted (a key has at most 250
// bytes).
const maxGuardLine = 512

// begin starts following the reply to req, the start of a request written
// on nc. It fails if the connection is condemned, or if bytes are waiting
// on it already (they would be read as the reply).
func (g *textGuard) begin(req []byte, nc net.Conn) error {
	if g.bad != nil {
		return g.bad
	}
	if pendingBytes(nc) {
		g.bad = protoErr("the server sent data that answers no request (before the next request)")
		return g.bad
	}
	g.get = bytes.HasPrefix(req, []byte("get")) || bytes.HasPrefix(req, []byte("gat"))
	g.state, g.line, g.lineLen, g.left = guardLine, g.line[:0], 0, 0
	g.keys, g.values, g.reqDone = 0, 0, false
	if bytes.HasPrefix(req, []byte("gat")) {
		g.keys = -1 // "gat <exptime> <key>*": the first word is no key
	}
	return nil
}

// request follows p, bytes of the request begun (begin first): for a get,
// it counts the keys of the request line, one per space (gomemcache
// separates them by one), across the writes the line takes.
func (g *textGuard) request(p []byte) {
	if !g.get || g.reqDone {
		return
	}
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		p, g.reqDone = p[:i], true
	}
	g.keys += bytes.Count(p, []byte{' '})
}

// check follows b, the bytes just read, and returns how many of them
// belong to the current reply, or an error for a reply that must not
// reach gomemcache. It stops after the VALUE line of a long value not all
// in b, with long set.
func (g *textGuard) check(b []byte) (int, error) {
	i := 0
	for i < len(b) {
		switch g.state {
		case guardDone:
			g.bad = protoErr(fmt.Sprintf("the server sent data after the end of a reply: %q", b[i:min(len(b), i+40)]))
			if i == 0 {
				return 0, g.bad
			}
			return i, nil
		case guardData:
			k := min(g.left, len(b)-i)
			i += k
			g.left -= k
			if g.left == 0 {
				g.state = guardLine
			}
		default:
			end := len(b)
			nl := bytes.IndexByte(b[i:], '\n')
			if nl >= 0 {
				end = i + nl + 1
			}
			seg := b[i:end]
			if room := maxGuardLine - len(g.line); room > 0 {
				g.line = append(g.line, seg[:min(room, len(seg))]...)
			}
			g.lineLen += len(seg)
			i = end
			if nl >= 0 {
				if err := g.endLine(); err != nil {
					return 0, err
				}
				if g.state == guardData && g.left > valuepool.Ahead+2 && len(b)-i < g.left {
					g.long = true
					return i, nil
				}
			}
		}
	}
	return i, nil
}

// endLine acts on the reply line just read.
func (g *textGuard) endLine() error {
	line, full := g.line, g.lineLen
	g.line, g.lineLen = g.line[:0], 0
	g.state = guardDone
	if !g.get || bytes.Equal(line, lineEND) || !bytes.HasPrefix(line, []byte("VALUE ")) {
		// The whole reply, or an error line that fails the call.
		return nil
	}
	if full > maxGuardLine {
		return protoErr(fmt.Sprintf("VALUE line of %d bytes", full))
	}
	if g.values++; g.values > g.keys {
		return protoErr(fmt.Sprintf("reply carries more VALUE blocks than the %d key(s) asked: %q", max(g.keys, 0), bytes.TrimRight(line, "\r\n")))
	}
	f := bytes.Fields(line[len("VALUE "):])
	if len(f) < 3 {
		return protoErr(fmt.Sprintf("bad VALUE line %q", line))
	}
	size, ok := decimal.ParseUint(f[2])
	if !ok {
		return protoErr(fmt.Sprintf("bad value size in %q", bytes.TrimRight(line, "\r\n")))
	}
	if size > uint64(g.limit) {
		return protoErr(fmt.Sprintf("reply declares a value of %d bytes, more than the %d accepted: %q", size, g.limit, bytes.TrimRight(line, "\r\n")))
	}
	g.state, g.left = guardData, int(size)+2
	return nil
}

// resetConn closes nc with a reset (SO_LINGER 0): the kernel drops what
// it has not delivered and sends the server a RST instead of a FIN, so
// that nothing written on a connection given up on reaches the server
// afterwards (a partition that heals would otherwise deliver it, seconds
// later, over newer writes). On a TLS connection the TCP connection under
// it is reset, without the close_notify alert, which could wait on a full
// send buffer.
func resetConn(nc net.Conn) {
	for {
		switch c := nc.(type) {
		case *tls.Conn:
			nc = c.NetConn()
			continue
		case *timedConn:
			nc = c.Conn
			continue
		}
		break
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// dialer opens connections to memcached servers, plain or TLS.
type dialer struct {
	timeout time.Duration
	tls     *tls.Config // nil: plain TCP
	// addrs returns the addresses a server's name resolved to (see
	// resolve.go), or nil to dial the server's address as configured.
	addrs func(addr string) []string
	// dial opens the TCP connections (WithDialer); nil: a net.Dialer.
	custom func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dial connects to addr (a server's address as configured) within the
// timeout (and ctx), doing the TLS handshake if configured: to the
// addresses its name resolved to if known, in order, else to addr. A
// TLS connection verifies the configured name, never a resolved address.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, _, err := d.dialAt(ctx, network, addr)
	return nc, err
}

// dialAt is dial, and returns the address it connected to: one its name
// resolved to (resolve.go), or else the connection's RemoteAddr. That,
// not the RemoteAddr of a connection to a resolved address, tells a
// connection to an address the name no longer lists (retire): a dialer
// of WithDialer through a proxy returns connections whose RemoteAddr is
// the proxy's.
func (d *dialer) dialAt(ctx context.Context, network, addr string) (net.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var to []string
	if d.addrs != nil {
		to = d.addrs(addr)
	}
	if len(to) == 0 {
		// The name as configured, resolved by the dialer: the address it
		// reached, unless a custom dialer names a proxy instead.
		nc, err := d.dialOne(ctx, network, addr, addr)
		if err != nil {
			return nil, "", err
		}
		return nc, nc.RemoteAddr().String(), nil
	}
	var err error
	for i, a := range to {
		// Each address gets its share of the time left, as net.Dial
		// shares it among a name's addresses.
		actx, acancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(to)-1 {
			actx, acancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(to)-i))
		}
		var nc net.Conn
		nc, err = d.dialOne(actx, network, a, addr)
		acancel()
		if err == nil || ctx.Err() != nil {
			return nc, a, err
		}
	}
	return nil, "", err
}

// dialOne connects to the address to of the server configured as addr.
func (d *dialer) dialOne(ctx context.Context, network, to, addr string) (net.Conn, error) {
	nd := net.Dialer{}
	if d.custom != nil {
		nc, err := d.custom(ctx, network, to)
		if err != nil || d.tls == nil {
			return nc, err
		}
		tc := tls.Client(nc, d.tlsConfig(addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		return tc, nil
	}
	if d.tls == nil {
		return nd.DialContext(ctx, network, to)
	}
	td := tls.Dialer{NetDialer: &nd, Config: d.tlsConfig(addr)}
	return td.DialContext(ctx, network, to)
}

// tlsConfig returns the TLS configuration for addr: the configured one,
// with addr's host as ServerName if it names none.
func (d *dialer) tlsConfig(addr string) *tls.Config {
	cfg := d.tls
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	return cfg
}
