package memcached

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// timedConn bounds each memcached operation on a gomemcache connection by
// one timeout in total. gomemcache re-arms the connection deadline to
// now+Timeout before each step and before each line of a multi-get reply,
// so a server that trickles its answer could hold a call for many timeouts;
// and a fresh connection pays the dial and then a whole timeout again.
// timedConn caps every deadline at the start of the current operation (the
// first write after a read, or the start of the dial for a new connection)
// plus the timeout.
//
// A connection is used by one goroutine at a time (gomemcache takes it out
// of its pool for one operation), so the fields need no lock.
type timedConn struct {
	net.Conn
	timeout  time.Duration
	opStart  time.Time
	lastRead bool
}

func (c *timedConn) limit(t time.Time) time.Time {
	l := c.opStart.Add(c.timeout)
	if t.IsZero() || t.After(l) {
		return l
	}
	return t
}

func (c *timedConn) Write(p []byte) (int, error) {
	if c.lastRead {
		// A new request: the operation starts now.
		c.lastRead = false
		c.opStart = time.Now()
		if err := c.Conn.SetDeadline(c.opStart.Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *timedConn) Read(p []byte) (int, error) {
	c.lastRead = true
	return c.Conn.Read(p)
}

func (c *timedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.limit(t)) }
func (c *timedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.limit(t)) }
func (c *timedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.limit(t)) }

// dialer opens connections to memcached servers, plain or TLS.
type dialer struct {
	timeout time.Duration
	tls     *tls.Config // nil: plain TCP
	// dial opens the TCP connections (WithDialer); nil: a net.Dialer.
	custom func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dial connects to addr within the timeout (and ctx), doing the TLS
// handshake if configured.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nd := net.Dialer{}
	if d.custom != nil {
		nc, err := d.custom(ctx, network, addr)
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
		return nd.DialContext(ctx, network, addr)
	}
	td := tls.Dialer{NetDialer: &nd, Config: d.tlsConfig(addr)}
	return td.DialContext(ctx, network, addr)
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

// dialTimed is the DialContext given to gomemcache.
func (d *dialer) dialTimed(ctx context.Context, network, addr string) (net.Conn, error) {
	start := time.Now()
	nc, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &timedConn{Conn: nc, timeout: d.timeout, opStart: start}, nil
}
