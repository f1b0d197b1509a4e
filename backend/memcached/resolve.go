package memcached

import (
	"context"
	"net"
	"slices"
	"time"
)

// Discovery (WithResolveInterval, URL resolve_interval): the host names of
// the servers are resolved again every interval, and a server whose name
// now resolves to other addresses moves its connections there.
//
// A server is its name, as configured: the ring hashes "host:port" (or
// host alone for port 11211) as written, never an address, so a server
// whose address changes keeps its points on the ring and no key moves.
// A name that resolves to several addresses is one server reachable at
// each of them (as net.Dial takes it: tried in order), not several
// servers; list every server's name in the URL.
//
// When a name's addresses change, new connections go to the new ones,
// and each connection to an address no longer listed takes no new
// request and is closed once the requests on it are answered (retire), so
// no call fails because of the move. A connect that began before the
// change and reached an old address is retired as soon as it is stored
// (pool.dialSlot), not at the next lookup: until then it would serve the
// old address's values. What the new address holds is served as it is,
// never flushed: see "Discovery" in the package documentation for the
// stale reads that allows. A server marked down is probed at
// the next call (its new address may answer). A lookup that fails keeps
// the addresses known, and the next interval tries again.

// dialAddrs returns the addresses the name of the server configured as
// addr resolved to, or nil if none is known: the dialer then dials addr.
func (c *Client) dialAddrs(addr string) []string {
	n := c.byAddr[addr]
	if n == nil {
		return nil
	}
	if to := n.dialTo.Load(); to != nil {
		return *to
	}
	return nil
}

// startResolver starts the goroutine that resolves the servers' names
// every resolve_interval, if it is set and a server is named by a host
// name rather than an IP address.
func (c *Client) startResolver() {
	if c.cfg.resolveEvery <= 0 {
		return
	}
	var named []*node
	for _, n := range c.nodes {
		if host, _, err := net.SplitHostPort(n.addr); err == nil && net.ParseIP(host) == nil {
			named = append(named, n)
		}
	}
	if len(named) == 0 {
		return
	}
	resolve := c.cfg.resolver
	if resolve == nil {
		resolve = net.DefaultResolver.LookupHost
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-c.life.Done():
				return
			case <-t.C:
			}
			for _, n := range named {
				c.resolveNode(n, resolve)
			}
			t.Reset(c.cfg.resolveEvery)
		}
	}()
}

// resolveNode looks n's name up and, if it resolves to other addresses
// than its connections use, moves them.
func (c *Client) resolveNode(n *node, resolve Resolver) {
	host, port, _ := net.SplitHostPort(n.addr)
	ctx, cancel := context.WithTimeout(c.life, c.cfg.timeout)
	defer cancel()
	var ips []string
	func() {
		defer func() {
			if recover() != nil {
				ips = nil // a resolver's panic is a failed lookup
			}
		}()
		ips, _ = resolve(ctx, host)
	}()
	var to []string
	for _, ip := range ips {
		if net.ParseIP(ip) == nil {
			continue // not an address
		}
		to = append(to, net.JoinHostPort(ip, port))
	}
	if len(to) == 0 {
		return // failed: keep what is known
	}
	prev := n.dialTo.Load()
	if prev == nil || !slices.Equal(*prev, to) {
		n.dialTo.Store(&to)
		if prev != nil && n.downUntil.Load() != 0 && !n.ejected.Load() {
			// Marked down at the old address: let the next call probe
			// the new one now.
			n.downUntil.Store(1)
		}
	}
	// Every time, not only on a change: a connection dialed while the
	// addresses changed may have reached an old one.
	n.pool.retireUnless(to)
	if t := n.text.Load(); t != nil {
		t.retireUnless(to)
	}
}
