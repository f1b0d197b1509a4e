package memcached

import (
	"context"
	"errors"
	"time"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key. A miss gives an error wrapping
// backend.ErrNotFound and memcache.ErrCacheMiss; a server marked down,
// backend.ErrUnavailable. An item marked stale (MarkStale) comes with
// Item.Stale set, on the meta protocol (the text protocol cannot tell).
func (c *Client) Get(ctx context.Context, key string) (backend.Item, error) {
	n, dl, tk, err := c.prepare(ctx, "get", key)
	if err != nil {
		return backend.Item{}, err
	}
	defer c.leave(tk)
	if t := n.text.Load(); t != nil {
		return c.textGet(ctx, n, t, dl, key)
	}
	r := newRequest(kindGet)
	r.key = key
	if err := c.exec(ctx, n, r, dl); err != nil {
		if err == errTextProtocol {
			return c.textGet(ctx, n, n.text.Load(), dl, key)
		}
		return backend.Item{}, c.result(n, "get", key, err)
	}
	status, rerr := r.status, r.err
	it := backend.Item{Key: key, Value: r.rvalue, CAS: r.rcas, Flags: r.rcflag, Stale: r.rflags&flagStale != 0}
	r.release()
	switch status {
	case replyOK:
		n.success()
		return it, nil
	case replyMiss:
		n.success()
		return backend.Item{}, errMiss
	}
	return backend.Item{}, c.result(n, "get", key, rerr)
}

// PrivateReads reports true: the Value of every Get is a buffer read
// from the network for that call alone (backend.PrivateReader), so a
// memdict.Dict[[]byte] hands it over without copying it. So are GetMulti's
// Values: small ones are packed into shared buffers, each capped at its
// end, so that appending to one never writes into another.
func (c *Client) PrivateReads() bool { return true }

var _ backend.PrivateReader = (*Client)(nil)

// GetTTL reads key as Get does, with "mg <key> v c f k t", and sets the
// item's TTL to the time it has left to live, in whole seconds: the
// seconds memcached counts less the one every write adds (see
// expiration), so that the TTL of an item read right after its write is
// the TTL written, and a copy written with it ends when the item does (0:
// it does not expire; an item with 1 second or less left gets one):
// backend.TTLReader, with which the Tool's
// warm migration copies items. An item marked stale (MarkStale) gives
// backend.ErrNotFound, as a placeholder does. On a server without meta
// commands it fails with an error wrapping backend.ErrNotSupported.
func (c *Client) GetTTL(ctx context.Context, key string) (backend.Item, error) {
	const op = "get_ttl"
	n, dl, tk, err := c.prepare(ctx, op, key)
	if err != nil {
		return backend.Item{}, err
	}
	defer c.leave(tk)
	if n.text.Load() != nil {
		return backend.Item{}, errNoTTL(n, key)
	}
	r := newRequest(kindGet)
	r.key, r.mode = key, 't'
	if err := c.exec(ctx, n, r, dl); err != nil {
		if err == errTextProtocol {
			return backend.Item{}, errNoTTL(n, key)
		}
		return backend.Item{}, c.result(n, op, key, err)
	}
	status, rerr := r.status, r.err
	it := backend.Item{Key: key, Value: r.rvalue, CAS: r.rcas, Flags: r.rcflag}
	stale := r.rflags&flagStale != 0
	switch {
	case r.rttl > 1:
		it.TTL = time.Duration(r.rttl-1) * time.Second
	case r.rttl >= 0:
		it.TTL = time.Second
	}
	r.release()
	switch {
	case status == replyOK && !stale:
		n.success()
		return it, nil
	case status == replyOK || status == replyMiss:
		n.success()
		return backend.Item{}, errMiss
	}
	return backend.Item{}, c.result(n, op, key, rerr)
}

// errNoTTL is GetTTL's error on a server without meta commands.
func errNoTTL(n *node, key string) error {
	return &opError{Op: "get_ttl", Key: key, Addr: n.addr, Kind: backend.ErrNotSupported,
		Err: errors.New("the text protocol cannot read TTLs")}
}

var _ backend.TTLReader = (*Client)(nil)
