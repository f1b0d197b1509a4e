package memcached

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/memdict/memdict/backend"
)

// The multi-key calls. Keys are grouped by server; each server's group is
// one request on one of its pipelined connections (a 100-key SetMulti or
// GetMulti is one write and one read per server), the servers in
// parallel: every request is queued before any is waited for, without a
// goroutine per server (a call takes one for a server it must connect to
// first, whose connect may hang, and for a text-only server, whose
// exchanges, one round trip each, may hang too: see starts). Writes are
// quiet meta commands, the last one not quiet; reads are one "gets" (see
// readGets).

var _ backend.MultiWriter = (*Client)(nil)

// nodeCall is the share of one server in a multi-key call.
type nodeCall struct {
	n     *node
	keys  []string
	idx   []int // the index in the call's keys of each of keys; nil: keys are the call's
	items []backend.Item
	exps  []int32
	r     *request
	cn    *conn
	done  bool // finished before waiting (refused, failed to start)

	// Of a share started by startRead or startWrite, maybe in a goroutine
	// of its own: the error that kept it from being sent, and the keys
	// that failed the checks of a write. On a text-only server, whose
	// share the start does (text), err is its outcome, and found the
	// items read.
	err   error
	errs  []backend.KeyError
	text  bool
	found map[string]backend.Item
}

// starts awaits the starts of the servers of a multi-key call that run in
// goroutines of their own, by index in the call's servers: a start that
// may wait (a connect, which takes a round trip or more, and until the
// timeout or ctx's end if the server hangs; the exchange of the text
// protocol) runs apart, so that the other servers' requests go
// meanwhile. Each is awaited before the call returns: the requests hold
// the caller's keys and values, and the start writes only its nodeCall.
type starts []chan struct{}

// run runs start, the start of the i-th of n servers, in a goroutine of
// its own.
func (st *starts) run(i, n int, start func()) {
	if *st == nil {
		*st = make(starts, n)
	}
	ch := make(chan struct{})
	(*st)[i] = ch
	go func() {
		defer close(ch)
		start()
	}()
}

// await waits for the start of the i-th server if it runs apart: bounded
// by the call's deadline and ctx, as a connect and the text protocol are.
func (st starts) await(i int) {
	if st != nil && st[i] != nil {
		<-st[i]
	}
}

// groupKeys splits keys by server, in the order of first appearance.
func (c *Client) groupKeys(keys []string) []*nodeCall {
	r := c.ring.Load()
	if len(r.nodes) == 1 {
		return []*nodeCall{{n: r.nodes[0], keys: keys}}
	}
	byNode := make(map[*node]*nodeCall, len(r.nodes))
	var calls []*nodeCall
	for i, k := range keys {
		n := r.node(k)
		nc := byNode[n]
		if nc == nil {
			nc = &nodeCall{n: n}
			byNode[n] = nc
			calls = append(calls, nc)
		}
		nc.keys = append(nc.keys, k)
		nc.idx = append(nc.idx, i)
	}
	return calls
}

// index returns the index in the call's keys of nc.keys[i].
func (nc *nodeCall) index(i int) int {
	if nc.idx == nil {
		return i
	}
	return nc.idx[i]
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// GetMulti returns the items found among keys. The keys of each server go
// in one pipelined request, the servers in parallel. If some servers fail
// or are marked down, it returns the items found on the others together
// with a *backend.MultiError naming each key that could not be read, with
// its cause (wrapping backend.ErrUnavailable and naming the server). If
// ctx ends (its deadline, a cancellation) while some servers have
// answered and others not, it returns the items of those that answered
// and a *backend.MultiError naming each key of the others with an error
// wrapping ctx's and naming the server. An invalid key fails the whole
// call before anything is sent; so does a context done when the call
// starts, or one that ends before any server answered (one server: the
// call fails as a whole).
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	out := make(map[string]backend.Item, len(keys))
	err := c.getMulti(ctx, keys, func(_ int, it backend.Item) { out[it.Key] = it })
	return out, err
}

// GetMultiOrdered is GetMulti with the items found put in found, which
// must be as long as keys: found[i] is the item of keys[i], or the zero
// Item if it was not found or could not be read (backend.OrderedGetter).
// It spares GetMulti's map.
func (c *Client) GetMultiOrdered(ctx context.Context, keys []string, found []backend.Item) error {
	if len(found) != len(keys) {
		return fmt.Errorf("memcached: get_multi: %d keys and room for %d items", len(keys), len(found))
	}
	return c.getMulti(ctx, keys, func(i int, it backend.Item) { found[i] = it })
}

var _ backend.OrderedGetter = (*Client)(nil)

// getMulti is GetMulti, handing each item found to put with the index of
// its key in keys.
func (c *Client) getMulti(ctx context.Context, keys []string, put func(i int, it backend.Item)) error {
	const op = "get_multi"
	for _, k := range keys {
		if err := checkKey(op, k); err != nil {
			return err
		}
	}
	tk, err := c.enterMulti(ctx, op)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	if len(keys) == 0 {
		return nil
	}
	calls := c.groupKeys(keys)
	if calls[0].idx == nil && ctx.Done() != nil {
		// One server: its request holds keys itself. A caller whose ctx
		// ends abandons it, and the reader matches its reply to the keys
		// after the call has returned, when they are the caller's again.
		calls[0].keys = slices.Clone(keys)
	}
	dl := c.deadline(ctx)
	var me backend.MultiError
	failAll := func(nc *nodeCall, err error) {
		for _, k := range nc.keys {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
		}
		nc.done = true
	}
	// When ctx ends, the servers that answered by then keep their items
	// and the keys of the others are named with ctx's error (their
	// requests are abandoned, and recycled by the reader): a caller's
	// deadline is usually no longer than the timeout, so one hung server
	// would otherwise cost the whole call. Only if no server answered does
	// the call fail as a whole, since nothing was read.
	var ctxErr error
	answered := false
	ended := func(nc *nodeCall, err error) {
		ctxErr = err
		failAll(nc, &opError{Op: op, Addr: nc.n.addr, Err: err})
	}
	var st starts
	for i, nc := range calls {
		if err := nc.n.admit(); err != nil {
			failAll(nc, &opError{Op: op, Addr: nc.n.addr, Kind: backend.ErrUnavailable, Err: err})
			continue
		}
		if err := ctx.Err(); err != nil {
			ended(nc, err) // nothing more is sent
			continue
		}
		if len(calls) == 1 {
			c.startRead(ctx, nc, dl, false)
		} else if !c.startRead(ctx, nc, dl, true) {
			st.run(i, len(calls), func() { c.startRead(ctx, nc, dl, false) })
		}
	}
	for i, nc := range calls {
		st.await(i)
		if nc.done {
			continue
		}
		if nc.text {
			items, err := nc.found, nc.err
			nc.found = nil
			if isCtxErr(err) {
				ctxErr = err
				failAll(nc, err) // it names the server
				continue
			}
			if err != nil {
				failAll(nc, err)
			} else {
				answered = true
			}
			// A key asked twice gets a value of its own each time (the
			// values are the caller's: see PrivateReads).
			var handed map[string]bool
			if len(items) < len(nc.keys) {
				handed = make(map[string]bool, len(items))
			}
			for i, k := range nc.keys {
				it, ok := items[k]
				if !ok {
					continue
				}
				if handed != nil {
					if handed[k] {
						it.Value = bytes.Clone(it.Value)
					}
					handed[k] = true
				}
				put(nc.index(i), it)
			}
			continue
		}
		switch err := nc.err; {
		case err != nil && isCtxErr(err):
			ended(nc, err)
			continue
		case err != nil:
			failAll(nc, c.result(nc.n, op, "", err))
			continue
		}
		// Once ctx has ended, wait takes a request already complete and
		// abandons the others at once.
		if err := nc.n.pool.wait(ctx, nc.cn, nc.r); err != nil {
			if isCtxErr(err) {
				ended(nc, err)
				continue
			}
			failAll(nc, c.result(nc.n, op, "", err))
			continue
		}
		answered = true
		var empty *nodeCall // the keys found empty, with their indexes
		for _, f := range nc.r.founds {
			k := nc.keys[f.index]
			if len(f.value) == 0 {
				if empty == nil {
					empty = &nodeCall{}
				}
				empty.keys = append(empty.keys, k)
				empty.idx = append(empty.idx, nc.index(f.index))
				continue
			}
			put(nc.index(f.index), backend.Item{Key: k, Value: f.value, CAS: f.cas, Flags: f.flags})
		}
		nc.r.release()
		if empty != nil {
			// Empty values, or lease placeholders, which the text protocol
			// cannot tell apart: mg can.
			if err := c.confirmEmpty(ctx, nc.n, empty, dl, put); err != nil {
				if isCtxErr(err) {
					empty.n = nc.n
					ended(empty, err)
					continue
				}
				failAll(empty, c.result(nc.n, op, "", err))
				continue
			}
		}
		nc.n.success()
	}
	if ctxErr != nil && !answered {
		return fmt.Errorf("memcached: %s: %w", op, ctxErr)
	}
	if len(me.Errors) > 0 {
		return &me
	}
	return nil
}

// startRead starts the read of nc's keys (see getMulti): its request
// queued on a connection (nc.r, nc.cn), or on a text-only server the keys
// read (nc.text, nc.found), or the error that kept it from either
// (nc.err). With noWait, it does nothing and returns false if it would
// have to wait: for a connect, or for the text protocol's exchange.
// Nothing is sent once ctx has ended (a connect may take until then): the
// reply would not be waited for.
func (c *Client) startRead(ctx context.Context, nc *nodeCall, dl due, noWait bool) bool {
	if nc.n.text.Load() == nil {
		p := nc.n.pool
		s := p.pick()
		if noWait && !s.connected() {
			return false
		}
		err := p.connectFirst(ctx, s, dl)
		if err == nil {
			r := newRequest(kindGets)
			r.keys = nc.keys
			var ok bool
			if nc.cn, ok, err = p.queueOn(ctx, s, r, dl, noWait); !ok {
				return false
			}
			if err == nil {
				nc.r = r
			}
		}
		if err != errTextProtocol {
			nc.err = err
			return true
		}
	}
	if noWait {
		return false
	}
	if err := ctx.Err(); err != nil {
		nc.err = err
		return true
	}
	nc.found, nc.err = c.textGetMulti(ctx, nc.n, nc.n.text.Load(), dl, nc.keys)
	nc.text = true
	return true
}

// confirmEmpty reads the keys of e, found empty by a gets, again with mg,
// which tells a lease placeholder (a miss) from an empty value, and hands
// those that are values to put. Once ctx has ended it sends nothing and
// returns ctx's error: the reply would not be waited for (the gets'
// reply may be taken after ctx's end, see getMulti).
func (c *Client) confirmEmpty(ctx context.Context, n *node, e *nodeCall, dl due, put func(int, backend.Item)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := newRequest(kindGetMulti)
	r.keys = e.keys
	cn, err := n.pool.start(ctx, r, dl.at, dl.byCtx)
	if err != nil {
		return err
	}
	if err := n.pool.wait(ctx, cn, r); err != nil {
		return err
	}
	for _, f := range r.founds {
		k := e.keys[f.index]
		put(e.index(f.index), backend.Item{Key: k, Value: f.value, CAS: f.cas, Flags: f.flags})
	}
	r.release()
	return nil
}

// SetMulti stores every item as Set does, in one pipelined request per
// server (quiet "ms" commands ended by "mn"), the servers in parallel. It
// returns nil if every item was stored, or a *backend.MultiError naming
// the items that failed while the others were stored: an invalid key
// (backend.ErrInvalidKey), a value over max_value_length or too large for
// the server's item_size_max (backend.ErrValueTooLarge, nothing sent), an
// invalid TTL (backend.ErrInvalidTTL), a server marked down or that
// cannot be connected to (backend.ErrUnavailable, nothing sent), a server
// still being connected to when ctx ended (an error wrapping ctx's and
// naming the server, nothing sent) while others were written. Any other
// error (the context done while a write was awaited or before any server
// answered, a connection lost, an unexpected reply, backend.ErrClosed)
// means the outcome of every item is unknown.
func (c *Client) SetMulti(ctx context.Context, items []backend.Item) error {
	const op = "set_multi"
	tk, err := c.enterMulti(ctx, op)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	var me backend.MultiError
	var valid []string
	byKey := make(map[string]int, len(items))
	for i, it := range items {
		if err := checkKey("set", it.Key); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: err})
			continue
		}
		valid = append(valid, it.Key)
		byKey[it.Key] = i // the last write of a key wins, as it would in order
	}
	// check turns the keys of a server into its items, once its
	// item_size_max is known if it can be (see startWrite). It runs in the
	// goroutine of a server being connected to: its failures go to nc.errs.
	check := func(nc *nodeCall) {
		seen := make(map[string]bool, len(nc.keys))
		for _, k := range nc.keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			it := items[byKey[k]]
			exp, err := c.checkWrite(nc.n, "set", it)
			if err != nil {
				nc.errs = append(nc.errs, backend.KeyError{Key: k, Err: err})
				continue
			}
			nc.items = append(nc.items, it)
			nc.exps = append(nc.exps, exp)
		}
		nc.keys = nil
	}
	return c.multiWrite(ctx, op, "set", kindSetMulti, c.groupKeys(valid), c.deadline(ctx), &me, check)
}

// DeleteMulti removes every key as Delete does, in one pipelined request
// per server (quiet "md" commands ended by "mn"), the servers in
// parallel, with the error rules of SetMulti. A key that was absent is
// named in the *backend.MultiError with an error wrapping
// backend.ErrNotFound.
func (c *Client) DeleteMulti(ctx context.Context, keys []string) error {
	const op = "delete_multi"
	tk, err := c.enterMulti(ctx, op)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	var me backend.MultiError
	var valid []string
	for _, k := range keys {
		if err := checkKey("delete", k); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
			continue
		}
		valid = append(valid, k)
	}
	calls := c.groupKeys(valid)
	return c.multiWrite(ctx, op, "delete", kindDeleteMulti, calls, c.deadline(ctx), &me, nil)
}

// multiWrite sends the writes of each server and adds the failures of
// single keys to me. check, if not nil (SetMulti), turns a server's keys
// into its items before they are sent (see startWrite). It returns me if
// it names any key, nil if none, or the error of the servers whose
// outcome is unknown.
func (c *Client) multiWrite(ctx context.Context, op, cmd string, kind uint8, calls []*nodeCall,
	dl due, me *backend.MultiError, check func(*nodeCall)) error {
	var fatal []error
	// The outcome of every item is unknown once a write was sent and ctx
	// ended before its reply was read (unknown); the keys of a server
	// that was sent nothing when ctx ended are named with ctx's error
	// (ctxErr), unless no server answered: then the call fails as a whole.
	var unknown, ctxErr error
	answered := false
	keys := func(nc *nodeCall) []string {
		if kind != kindSetMulti {
			return nc.keys
		}
		ks := make([]string, len(nc.items))
		for i, it := range nc.items {
			ks[i] = it.Key
		}
		return ks
	}
	// failAll names every key of nc, to which nothing was sent, with
	// the error ef gives for it.
	failAll := func(nc *nodeCall, ef func(k string) error) {
		for _, k := range keys(nc) {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: ef(k)})
		}
		nc.done = true
	}
	ended := func(nc *nodeCall, err error) {
		ctxErr = err
		failAll(nc, func(k string) error { return &opError{Op: cmd, Key: k, Addr: nc.n.addr, Err: err} })
	}
	var st starts
	for i, nc := range calls {
		if len(nc.keys) == 0 {
			nc.done = true
			continue
		}
		if err := nc.n.admit(); err != nil {
			// Nothing is sent: every key of the server is known to have failed.
			nc.check(check)
			failAll(nc, func(k string) error {
				return &opError{Op: cmd, Key: k, Addr: nc.n.addr, Kind: backend.ErrUnavailable, Err: err}
			})
			continue
		}
		if err := ctx.Err(); err != nil {
			nc.check(check)
			ended(nc, err) // nothing more is sent
			continue
		}
		if len(calls) == 1 {
			c.startWrite(ctx, nc, kind, cmd, dl, check, false)
		} else if !c.startWrite(ctx, nc, kind, cmd, dl, check, true) {
			st.run(i, len(calls), func() { c.startWrite(ctx, nc, kind, cmd, dl, check, false) })
		}
	}
	for i, nc := range calls {
		st.await(i)
		me.Errors = append(me.Errors, nc.errs...)
		if nc.text {
			switch err := nc.err; {
			case err == nil:
				answered = true
			case isCtxErr(err):
				if unknown == nil {
					unknown = err
				}
			default:
				fatal = append(fatal, err)
			}
			continue
		}
		switch err := nc.err; {
		case err == nil:
		case isCtxErr(err):
			ended(nc, err)
		default:
			// No connection (a dial refused, a handshake failed): nothing
			// is sent, so every key of the server is known to have failed.
			cause := c.result(nc.n, op, "", err)
			failAll(nc, func(string) error { return cause })
		}
		if nc.done {
			continue
		}
		// Once ctx has ended, wait takes a request already complete and
		// abandons the others at once.
		if err := nc.n.pool.wait(ctx, nc.cn, nc.r); err != nil {
			if isCtxErr(err) {
				if unknown == nil {
					unknown = fmt.Errorf("memcached: %s: %w", op, err)
				}
				continue
			}
			fatal = append(fatal, c.result(nc.n, op, "", err))
			continue
		}
		answered = true
		for _, f := range nc.r.fails {
			var k string
			if kind == kindSetMulti {
				k = nc.items[f.index].Key
			} else {
				k = nc.keys[f.index]
			}
			var kind error
			switch f.status {
			case replyNotStored:
				kind = backend.ErrNotStored
			case replyExists:
				kind = backend.ErrCASConflict
			default:
				kind = backend.ErrNotFound
			}
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: &opError{Op: cmd, Key: k, Addr: nc.n.addr, Kind: kind}})
		}
		nc.r.release()
		nc.n.success()
	}
	switch {
	case unknown != nil:
		return unknown
	case len(fatal) == 1:
		return fatal[0]
	case len(fatal) > 1:
		return errors.Join(fatal...)
	case ctxErr != nil && !answered:
		return fmt.Errorf("memcached: %s: %w", op, ctxErr)
	case len(me.Errors) > 0:
		return me
	}
	return nil
}

// check runs check, if not nil, on nc once: it turns nc's keys into its
// items (see SetMulti).
func (nc *nodeCall) check(check func(*nodeCall)) {
	if check != nil && nc.keys != nil {
		check(nc)
	}
}

// startWrite queues the writes of nc on a connection of its server (see
// multiWrite): nc.r and nc.cn, or nc.err if nothing was sent; on a
// text-only server it does them (nc.text, nc.errs, and nc.err their
// outcome). check turns nc's keys into its items once connected, if it
// is to a server whose item_size_max was not known yet: the handshake
// reads it, and the sizes are checked against it. With noWait, it does
// nothing and returns false if it would have to wait: for a connect, or
// for the text protocol's exchanges. It may run in a goroutine of its
// own: it touches nothing but nc.
func (c *Client) startWrite(ctx context.Context, nc *nodeCall, kind uint8, cmd string, dl due, check func(*nodeCall), noWait bool) bool {
	if nc.n.text.Load() == nil {
		p := nc.n.pool
		s := p.pick()
		if noWait && !s.connected() {
			return false
		}
		// A connect may take until ctx's end, after which nothing is sent.
		err := p.connectFirst(ctx, s, dl)
		if err == nil {
			nc.check(check)
			if len(nc.items) == 0 && len(nc.keys) == 0 {
				nc.done = true // every item failed its checks
				return true
			}
			r := newRequest(kind)
			r.keys, r.items, r.exps = nc.keys, nc.items, nc.exps
			var ok bool
			if nc.cn, ok, err = p.queueOn(ctx, s, r, dl, noWait); !ok {
				return false
			}
			if err == nil {
				nc.r = r
			}
		}
		if err != errTextProtocol {
			nc.check(check)
			nc.err = err
			return true
		}
	}
	if noWait {
		return false
	}
	nc.check(check)
	if err := ctx.Err(); err != nil {
		nc.err = err // nothing is sent
		return true
	}
	kes, err := c.textMulti(ctx, nc.n, nc.n.text.Load(), dl, cmd, nc.items, nc.exps, nc.keys)
	nc.errs, nc.err = append(nc.errs, kes...), err
	nc.text = true
	return true
}
