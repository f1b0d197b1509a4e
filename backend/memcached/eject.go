package memcached

import (
	"context"
	"time"
)

// Auto-eject (WithAutoEject, URL auto_eject=true), nutcracker's
// auto_eject_hosts: a server marked down leaves the ring, so that its keys
// live on the others until it answers again.
//
// When a server is marked down (failure_limit failures in a row), a
// goroutine starts watching it. It takes the server out of the ring
// (eject) unless it is the last server in the ring, or came back less
// than auto_eject_ttl ago (see below); until then the server's keys fail
// fast, as without auto-eject, and calls probe it. Once it is out, the
// goroutine probes it ("version") every retry_interval; when it has
// answered two probes in a row it is flushed (flush_all) and put back
// (restore), and its keys move back to it.
//
// What a server that comes back may hold, and why memdict does not serve
// it:
//
//   - values written before it left, which writes and deletes made on
//     stand-in servers meanwhile have made stale: flush_all empties it
//     before any call reaches it again. It is flushed whether or not it
//     restarted (a restartable memcached, -e, keeps its items across a
//     restart). The second probe, a retry_interval after the first, lets
//     a server that was stopped (SIGSTOP) apply the requests its kernel
//     still held before the flush, not after.
//   - nothing else: while it is out, no call of this Client reaches it.
//
// And what a stand-in server keeps of the time it stood in: the values
// written there for the ejected server's keys. They are stale once the
// server is back and its keys are written there, and would be served
// again if it left again. So every write on a stand-in gets a TTL of at
// most auto_eject_ttl (as mcrouter's failover_exptime), and a server
// that came back is not ejected again before every such value has
// expired (standInLife: auto_eject_ttl in memcached's whole seconds,
// rounded up, one more second for its clock, and the timeout).
//
// The flush drops every item of the server, memdict's and any other
// program's: auto-eject is for pools of memcached servers that memdict's
// clients own. Several processes each eject and restore servers on their
// own failures; while they disagree about a server, a key may be read and
// written on different servers by different processes, as with
// nutcracker's auto_eject_hosts.

// watchDown starts watching n, which is marked down, unless it is
// watched already. It is called by n.failure.
func (c *Client) watchDown(n *node) {
	if !n.watching.CompareAndSwap(false, true) {
		return
	}
	if c.life.Err() != nil || c.closed.Load() {
		n.watching.Store(false)
		return
	}
	c.bg.Add(1)
	go c.watch(n)
}

// watch ejects n, probes it while it is out and puts it back once it
// answers; it returns when n is up again or the Client is closed.
func (c *Client) watch(n *node) {
	defer c.bg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	answered := false // n answered the previous probe
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
		}
		next := c.cfg.retryInterval
		switch {
		case n.ejected.Load():
			ok := c.probe(n)
			if ok && answered && c.restore(n) {
				return
			}
			answered = ok
		case n.downUntil.Load() == 0:
			// A call's probe found it up before it could be ejected.
			n.watching.Store(false)
			if n.downUntil.Load() == 0 || !n.watching.CompareAndSwap(false, true) {
				return
			}
		default:
			if wait := c.eject(n); wait > 0 && wait < next {
				next = wait
			}
		}
		t.Reset(next)
	}
}

// eject takes n out of the ring if it may be: it returns 0 if it did (or
// n is no longer down), or how long until it may be (the time left of
// standInLife since n came back; retry_interval while n is the last
// server in the ring).
func (c *Client) eject(n *node) time.Duration {
	c.ringMu.Lock()
	defer c.ringMu.Unlock()
	if n.ejected.Load() || n.downUntil.Load() == 0 {
		return 0
	}
	if ret := n.returned.Load(); ret != 0 {
		if wait := time.Until(time.Unix(0, ret).Add(c.standInLife())); wait > 0 {
			return wait
		}
	}
	if len(c.ring.Load().nodes) == 1 {
		return c.cfg.retryInterval
	}
	n.ejected.Store(true)
	c.rebuild()
	return 0
}

// probe reports whether n answers "version".
func (c *Client) probe(n *node) bool {
	ctx, cancel := context.WithTimeout(c.life, c.cfg.timeout)
	defer cancel()
	_, err := c.simple(ctx, "probe", n.addr, "version", "VERSION ")
	return err == nil
}

// restore flushes n and puts it back in the ring; it reports false if
// the flush failed.
func (c *Client) restore(n *node) bool {
	ctx, cancel := context.WithTimeout(c.life, c.cfg.timeout)
	defer cancel()
	if _, err := c.simple(ctx, "flush_all", n.addr, "flush_all", "OK"); err != nil {
		return false
	}
	c.ringMu.Lock()
	defer c.ringMu.Unlock()
	n.returned.Store(time.Now().UnixNano())
	n.watching.Store(false)
	n.success()
	n.ejected.Store(false)
	c.rebuild()
	return true
}

// rebuild makes the ring of the servers not ejected. c.ringMu is held.
func (c *Client) rebuild() {
	live := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		if !n.ejected.Load() {
			live = append(live, n)
		}
	}
	if len(live) == len(c.nodes) {
		c.ring.Store(c.full)
		return
	}
	c.ring.Store(newRing(live, len(c.nodes)-len(live), c.hash))
}

// standInLife is how long after a server came back a value written on a
// stand-in for one of its keys may still be there: memcached keeps an
// item written with auto_eject_ttl (standInTTL) for that many whole
// seconds, rounded up, and one more (see expiration), up to a second
// longer than auto_eject_ttl; and a write that picked the stand-in before
// the server came back lands there up to a timeout later. The server is
// not ejected again before (eject): else the stand-in would serve such a
// value again, older than those written on the server since (with
// auto_eject_ttl=10ms a value lives one to two seconds, and a server
// ejected again 10ms after its return met the stand-in's value).
func (c *Client) standInLife() time.Duration {
	const most = time.Duration(1<<63 - 1)
	secs := c.cfg.autoEjectTTL / time.Second
	if c.cfg.autoEjectTTL%time.Second != 0 {
		secs++
	}
	if secs >= most/time.Second-1 {
		return most
	}
	life := (secs + 1) * time.Second
	if life > most-c.cfg.timeout {
		return most
	}
	return life + c.cfg.timeout
}

// standInTTL returns the TTL for a write of key on n: ttl, or at most
// auto_eject_ttl if n stands in for the ejected server of key. n is the
// server the write goes to (the one prepare picked), and it stands in
// whenever it is not key's home in the full ring, whatever the ring is
// now: the ejected server may have been put back since n was picked
// (while the write waited for a connection to n), and the write still
// lands on n.
func (c *Client) standInTTL(n *node, key string, ttl time.Duration) time.Duration {
	if !c.cfg.autoEject || c.full.node(key) == n {
		return ttl
	}
	if ttl == 0 || ttl > c.cfg.autoEjectTTL {
		return c.cfg.autoEjectTTL
	}
	return ttl
}
