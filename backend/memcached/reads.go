package memcached

import (
	"context"

	"github.com/memdict/memdict/backend"
)

// Get returns the item stored under key. A miss gives an error wrapping
// backend.ErrNotFound and memcache.ErrCacheMiss; a server marked down,
// backend.ErrUnavailable.
func (c *Client) Get(ctx context.Context, key string) (backend.Item, error) {
	n, dl, err := c.prepare(ctx, "get", key)
	if err != nil {
		return backend.Item{}, err
	}
	defer c.leave()
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
	status, it, rerr := r.status, backend.Item{Key: key, Value: r.rvalue, CAS: r.rcas, Flags: r.rcflag}, r.err
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
// memdict.Dict[[]byte] hands it over without copying it.
func (c *Client) PrivateReads() bool { return true }

var _ backend.PrivateReader = (*Client)(nil)
