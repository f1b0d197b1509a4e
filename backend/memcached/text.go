package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
)

// The text protocol, for servers without meta commands (memcached before
// 1.6, twemproxy/nutcracker, text-protocol stores): every command goes
// through a gomemcache client for that one server, one request per round
// trip on a pool of max_idle_conns connections. The size check, the TTL
// rule, the failure accounting and the errors are the same as on the meta
// protocol; multi-key writes loop over their keys.

// textEngine is the text-protocol engine of one server.
type textEngine struct {
	mc *memcache.Client
}

// oneServer is a gomemcache ServerSelector for a single server.
type oneServer struct{ addr net.Addr }

func (s oneServer) PickServer(string) (net.Addr, error) { return s.addr, nil }
func (s oneServer) Each(f func(net.Addr) error) error   { return f(s.addr) }

// useText switches n to the text protocol, for good.
func (c *Client) useText(n *node) {
	if n.text.Load() != nil {
		return
	}
	mc := memcache.NewFromSelector(oneServer{tcpAddr(n.addr)})
	mc.Timeout = c.cfg.timeout
	mc.MaxIdleConns = c.cfg.maxIdleConns
	mc.DialContext = c.dialer.dialTimed
	if !n.text.CompareAndSwap(nil, &textEngine{mc: mc}) {
		_ = mc.Close()
	}
}

// run calls fn, directly when ctx cannot be cancelled, otherwise in a
// goroutine while waiting for ctx too. fn must be bounded in time (every
// gomemcache call is, by the timeout).
func (c *Client) run(ctx context.Context, fn func() error) error {
	if ctx.Done() == nil {
		return fn()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) textGet(ctx context.Context, n *node, t *textEngine, key string) (backend.Item, error) {
	var mi *memcache.Item
	err := c.run(ctx, func() error {
		var err error
		mi, err = t.mc.Get(key)
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		n.success()
		return backend.Item{}, errMiss
	}
	if err = c.result(n, "get", key, err); err != nil {
		return backend.Item{}, err
	}
	return backend.Item{Key: key, Value: mi.Value, CAS: mi.CasID}, nil
}

func (c *Client) textStore(ctx context.Context, n *node, t *textEngine, op string, mode byte, item backend.Item, exp int32) error {
	mi := &memcache.Item{Key: item.Key, Value: item.Value, Expiration: exp, CasID: item.CAS}
	err := c.run(ctx, func() error {
		switch mode {
		case 'E':
			return t.mc.Add(mi)
		case 'C':
			return t.mc.CompareAndSwap(mi)
		}
		return t.mc.Set(mi)
	})
	err = c.result(n, op, item.Key, err)
	if mode == 'C' && errors.Is(err, backend.ErrNotStored) {
		// gomemcache's cas reports an item evicted meanwhile this way.
		var oe *opError
		if errors.As(err, &oe) {
			oe.Kind = backend.ErrNotFound
		}
	}
	return err
}

func (c *Client) textRun(ctx context.Context, n *node, op, key string, fn func() (uint64, error)) (uint64, error) {
	var v uint64
	err := c.run(ctx, func() error {
		var err error
		v, err = fn()
		return err
	})
	if err = c.result(n, op, key, err); err != nil {
		return 0, err
	}
	return v, nil
}

// textGetMulti reads keys from n with one "gets".
func (c *Client) textGetMulti(ctx context.Context, n *node, t *textEngine, keys []string) (map[string]backend.Item, error) {
	var mis map[string]*memcache.Item
	err := c.run(ctx, func() error {
		var err error
		mis, err = t.mc.GetMulti(keys)
		return err
	})
	if err != nil {
		return nil, c.result(n, "get_multi", "", err)
	}
	n.success()
	items := make(map[string]backend.Item, len(mis))
	for k, mi := range mis {
		items[k] = backend.Item{Key: k, Value: mi.Value, CAS: mi.CasID}
	}
	return items, nil
}

// textMulti runs a multi-key write on a text-protocol server key by key.
// It returns the keys that failed on their own, or an error if the outcome
// of the others is unknown.
func (c *Client) textMulti(ctx context.Context, n *node, t *textEngine, op string, items []backend.Item, exps []int32, keys []string) ([]backend.KeyError, error) {
	var kes []backend.KeyError
	count := len(keys)
	if items != nil {
		count = len(items)
	}
	for i := range count {
		var key string
		var err error
		if items != nil {
			key = items[i].Key
			mi := &memcache.Item{Key: key, Value: items[i].Value, Expiration: exps[i]}
			err = c.run(ctx, func() error { return t.mc.Set(mi) })
		} else {
			key = keys[i]
			err = c.run(ctx, func() error { return t.mc.Delete(key) })
		}
		if err == nil {
			n.success()
			continue
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return kes, fmt.Errorf("memcached: %s on %s: %w", op, n.addr, err)
		}
		kind, fault := classify(err)
		if fault {
			n.failure()
			return kes, &opError{Op: op, Addr: n.addr, Kind: kind, Err: err}
		}
		kes = append(kes, backend.KeyError{Key: key, Err: &opError{Op: op, Key: key, Addr: n.addr, Kind: kind, Err: err}})
	}
	return kes, nil
}
