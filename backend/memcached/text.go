package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
)

// The text protocol, for servers without meta commands (memcached before
// 1.6, twemproxy/nutcracker, text-protocol stores): every command goes
// through gomemcache, one request per round trip. The size check, the TTL
// rule, the failure accounting and the errors are the same as on the meta
// protocol; multi-key writes loop over their keys.
//
// Each call takes a textConn of its own: a gomemcache client that holds at
// most one connection, used by that call alone, so that the call knows the
// connection its request is on. A call given up on (its context ended)
// resets that connection at once, as the meta engine does, so that a
// request the network still holds is never delivered afterwards; a
// connection gomemcache closes (a timeout, an error) is reset too (see
// timedConn.Close). Every reply is checked on its way to gomemcache
// (textGuard): a VALUE larger than the client accepts, or one more VALUE
// than the keys asked, fails before gomemcache allocates it, and bytes
// after the end of a reply, or arriving between requests, condemn the
// connection. The keys of VALUE lines are checked against the keys asked
// for.

// textEngine is the text-protocol engine of one server: its idle
// textConns, at most max_idle_conns of them.
type textEngine struct {
	c *Client
	n *node

	mu     sync.Mutex
	idle   []*textConn
	closed bool
	to     []string // the server's addresses, once resolved (resolve.go)
}

// textConn is a gomemcache client for one server that holds at most one
// connection, used by one call at a time.
type textConn struct {
	t  *textEngine
	mc *memcache.Client

	// deadline is when the current call must end; set before the call
	// runs, read by its connection (in the goroutine running the call).
	deadline time.Time

	mu        sync.Mutex
	nc        *timedConn // the connection mc holds, or nil
	cancelled bool       // the current call was given up on: no new connection
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
	n.text.CompareAndSwap(nil, &textEngine{c: c, n: n})
}

// get returns an idle textConn, or a new one, for a call ending at
// deadline.
func (t *textEngine) get(deadline time.Time) *textConn {
	t.mu.Lock()
	var x *textConn
	if k := len(t.idle); k > 0 {
		x = t.idle[k-1]
		t.idle[k-1] = nil
		t.idle = t.idle[:k-1]
	}
	t.mu.Unlock()
	if x == nil {
		x = &textConn{t: t}
		mc := memcache.NewFromSelector(oneServer{tcpAddr(t.n.addr)})
		mc.Timeout = t.c.cfg.timeout
		mc.MaxIdleConns = 1
		mc.DialContext = x.dial
		x.mc = mc
	}
	x.deadline = deadline
	return x
}

// put takes x back after a call that returned err: kept for the next call
// if the call ended cleanly (or with an answer about its key), closed
// otherwise.
func (t *textEngine) put(x *textConn, err error) {
	clean := err == nil || errors.Is(err, memcache.ErrCacheMiss) ||
		errors.Is(err, memcache.ErrNotStored) || errors.Is(err, memcache.ErrCASConflict)
	x.mu.Lock()
	if nc := x.nc; nc != nil && nc.guard.bad != nil {
		clean = false // the server sent more than the reply
	}
	x.mu.Unlock()
	if clean {
		t.mu.Lock()
		if !t.closed && len(t.idle) < t.c.cfg.maxIdleConns && (t.to == nil || x.reaches(t.to)) {
			t.idle = append(t.idle, x)
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
	x.close()
}

// close closes every idle connection; later calls still work (Client.Close
// refuses them first).
func (t *textEngine) close() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, x := range idle {
		x.close()
	}
}

// retireUnless closes the idle connections to addresses not in to (the
// server's name resolved to new addresses); those in use are closed by
// put after their call, as their address is then not the server's.
func (t *textEngine) retireUnless(to []string) {
	t.mu.Lock()
	t.to = to
	idle := t.idle
	t.idle = nil
	var keep []*textConn
	for _, x := range idle {
		if x.reaches(to) {
			keep = append(keep, x)
		} else {
			defer x.close()
		}
	}
	t.idle = keep
	t.mu.Unlock()
}

// reaches reports whether x has no connection or one to an address in to.
func (x *textConn) reaches(to []string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.nc == nil || slices.Contains(to, x.nc.RemoteAddr().String())
}

// dial is x's gomemcache DialContext: a connection bounded by the call's
// deadline (see timedConn), unless the call was given up on.
func (x *textConn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	x.mu.Lock()
	cancelled := x.cancelled
	x.mu.Unlock()
	if cancelled {
		return nil, errCallCancelled
	}
	ctx, cancel := context.WithDeadline(ctx, x.deadline)
	defer cancel()
	start := time.Now()
	nc, err := x.t.c.dialer.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &timedConn{Conn: nc, timeout: x.t.c.cfg.timeout, opStart: start, x: x}
	tc.guard.limit = x.t.c.valueLimit()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cancelled {
		resetConn(nc)
		return nil, errCallCancelled
	}
	x.nc = tc
	return tc, nil
}

// cancel gives up on x's call: its connection is reset now, and no new
// one is made for it.
func (x *textConn) cancel() {
	x.mu.Lock()
	x.cancelled = true
	nc := x.nc
	x.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// close closes x's connection (with a reset, see timedConn.Close).
func (x *textConn) close() {
	x.cancel()
	_ = x.mc.Close()
}

// textCall runs fn on a textConn of t, within dl and ctx: directly when
// ctx cannot be cancelled (fn is bounded by dl), otherwise in a goroutine
// while waiting for ctx too; a cancelled call resets its connection and
// returns at once. A panic in fn (a bug, here or in gomemcache) is an
// error.
func (c *Client) textCall(ctx context.Context, t *textEngine, dl due, fn func(mc *memcache.Client) error) error {
	return c.textCallWith(ctx, t, dl, fn, false)
}

// textCallAgain is textCall for a call that may be sent twice (a get, a
// touch, a plain set): one that ran on a connection kept idle, which the
// server had closed meanwhile (a restart, an idle timeout: staleConn),
// runs again on a new connection, as on the meta protocol (pool.do).
func (c *Client) textCallAgain(ctx context.Context, t *textEngine, dl due, fn func(mc *memcache.Client) error) error {
	return c.textCallWith(ctx, t, dl, fn, true)
}

// textCallWith is textCall, or textCallAgain with again.
func (c *Client) textCallWith(ctx context.Context, t *textEngine, dl due, fn func(mc *memcache.Client) error, again bool) error {
	x := t.get(dl.at)
	x.mu.Lock()
	kept := x.nc != nil
	x.mu.Unlock()
	err := c.textRunOn(ctx, t, x, fn)
	if again && kept && err != nil && staleConn(err) && ctx.Err() == nil {
		err = c.textRunOn(ctx, t, t.get(dl.at), fn)
	}
	var ne net.Error
	if dl.byCtx && err != nil && !isCtxErr(err) && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl.at) {
		// The connection's deadline was ctx's (timedConn), which passed
		// before ctx's own timer fired: the caller's deadline, as on the
		// meta protocol, not the server's failure.
		err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// textRunOn runs fn on x, taken from t (see textCall).
func (c *Client) textRunOn(ctx context.Context, t *textEngine, x *textConn, fn func(mc *memcache.Client) error) error {
	if ctx.Done() == nil {
		err := x.run(fn)
		t.put(x, err)
		return err
	}
	if err := ctx.Err(); err != nil {
		t.put(x, nil)
		return err
	}
	done := make(chan error, 1)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		done <- x.run(fn)
	}()
	select {
	case err := <-done:
		t.put(x, err)
		return err
	case <-ctx.Done():
	}
	// Given up on: reset the connection now, so that nothing it still
	// holds reaches the server once the caller has its error.
	x.cancel()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		<-done
		x.close()
	}()
	return ctx.Err()
}

// run calls fn with x's gomemcache client, turning a panic into an error.
func (x *textConn) run(fn func(mc *memcache.Client) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError("in the text protocol", v)
		}
	}()
	x.t.c.testPoint("text")
	return fn(x.mc)
}

// errWrongKey is the error of a VALUE line for a key that was not asked.
func errWrongKey(got string, asked []string) error {
	if len(asked) == 1 {
		return protoErr(fmt.Sprintf("reply carries the value of key %q, not of the key asked %q", got, asked[0]))
	}
	return protoErr(fmt.Sprintf("reply carries the value of key %q, which was not asked", got))
}

func (c *Client) textGet(ctx context.Context, n *node, t *textEngine, dl due, key string) (backend.Item, error) {
	var mi *memcache.Item
	err := c.textCallAgain(ctx, t, dl, func(mc *memcache.Client) error {
		var err error
		mi, err = mc.Get(key)
		if err == nil && mi.Key != key {
			mi, err = nil, errWrongKey(mi.Key, []string{key})
		}
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		n.success()
		return backend.Item{}, errMiss
	}
	if err = c.result(n, "get", key, err); err != nil {
		return backend.Item{}, err
	}
	return backend.Item{Key: key, Value: mi.Value, CAS: mi.CasID, Flags: mi.Flags}, nil
}

func (c *Client) textStore(ctx context.Context, n *node, t *textEngine, dl due, op string, mode byte, item backend.Item, exp int32) error {
	mi := &memcache.Item{Key: item.Key, Value: item.Value, Flags: item.Flags, Expiration: exp, CasID: item.CAS}
	call := c.textCall
	if mode == 0 {
		call = c.textCallAgain // a plain set may be sent twice
	}
	err := call(ctx, t, dl, func(mc *memcache.Client) error {
		switch mode {
		case 'E':
			return mc.Add(mi)
		case 'C':
			return mc.CompareAndSwap(mi)
		}
		return mc.Set(mi)
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

func (c *Client) textRun(ctx context.Context, n *node, t *textEngine, dl due, op, key string, fn func(*memcache.Client) (uint64, error)) (uint64, error) {
	var v uint64
	call := c.textCall
	if op == "touch" {
		call = c.textCallAgain // a touch may be sent twice
	}
	err := call(ctx, t, dl, func(mc *memcache.Client) error {
		var err error
		v, err = fn(mc)
		return err
	})
	if err = c.result(n, op, key, err); err != nil {
		return 0, err
	}
	return v, nil
}

// textGetMulti reads keys from n with one "gets".
func (c *Client) textGetMulti(ctx context.Context, n *node, t *textEngine, dl due, keys []string) (map[string]backend.Item, error) {
	var mis map[string]*memcache.Item
	err := c.textCall(ctx, t, dl, func(mc *memcache.Client) error {
		var err error
		mis, err = mc.GetMulti(keys)
		if err != nil {
			return err
		}
		asked := make(map[string]bool, len(keys))
		for _, k := range keys {
			asked[k] = true
		}
		for k := range mis {
			if !asked[k] {
				mis = nil
				return errWrongKey(k, keys)
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.result(n, "get_multi", "", err)
	}
	n.success()
	items := make(map[string]backend.Item, len(mis))
	for k, mi := range mis {
		items[k] = backend.Item{Key: k, Value: mi.Value, CAS: mi.CasID, Flags: mi.Flags}
	}
	return items, nil
}

// textMulti runs a multi-key write on a text-protocol server key by key,
// all by dl. It returns the keys that failed on their own, or an error if
// the outcome of the others is unknown.
func (c *Client) textMulti(ctx context.Context, n *node, t *textEngine, dl due, op string, items []backend.Item, exps []int32, keys []string) ([]backend.KeyError, error) {
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
			mi := &memcache.Item{Key: key, Value: items[i].Value, Flags: items[i].Flags, Expiration: exps[i]}
			err = c.textCall(ctx, t, dl, func(mc *memcache.Client) error { return mc.Set(mi) })
		} else {
			key = keys[i]
			err = c.textCall(ctx, t, dl, func(mc *memcache.Client) error { return mc.Delete(key) })
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
