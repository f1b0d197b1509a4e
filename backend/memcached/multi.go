package memcached

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/memdict/memdict/backend"
)

// The pipelined write path of backend.MultiWriter. SetMulti and
// DeleteMulti group their keys by server and, on one pooled connection of
// the read path per server, send the commands of up to pipelineMax keys at
// once, then read their replies in order: a commit of a hundred keys costs
// one round trip per server instead of a hundred.

// pipelineMax bounds the commands sent before their replies are read.
// memcached answers while it reads; the replies of pipelineMax commands
// (at most a few dozen bytes each) fit in the socket buffers, so neither
// side can block on a full buffer while the other waits for it.
const pipelineMax = 256

var _ backend.MultiWriter = (*Client)(nil)

// multiCmd is one command of a pipeline.
type multiCmd struct {
	key   string
	value []byte // set only
	exp   int32  // set only
}

var (
	replyStored    = []byte("STORED\r\n")
	replyDeleted   = []byte("DELETED\r\n")
	replyNotStored = []byte("NOT_STORED\r\n")
	replyExists    = []byte("EXISTS\r\n")
	replyNotFound  = []byte("NOT_FOUND\r\n")
	replyTooLarge  = []byte("SERVER_ERROR object too large")
)

// SetMulti stores every item as Set does, pipelining the items of each
// server on one connection, the servers in parallel. It returns nil if
// every item was stored, or a *backend.MultiError naming the items that
// failed while the others were stored: an invalid key
// (backend.ErrInvalidKey), a value over max_value_size or refused by the
// server as too large (backend.ErrValueTooLarge), an invalid TTL
// (backend.ErrInvalidTTL), a server marked down (backend.ErrUnavailable,
// nothing sent). Any other error (the context done, a connection lost, an
// unexpected reply, backend.ErrClosed) means the outcome of every item is
// unknown.
func (c *Client) SetMulti(ctx context.Context, items []backend.Item) error {
	const op = "set_multi"
	if err := c.enter(op, ""); err != nil {
		return err
	}
	defer c.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcached: %s: %w", op, err)
	}
	var me backend.MultiError
	perNode := make(map[*node][]multiCmd)
	for _, it := range items {
		if err := checkKey("set", it.Key); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: err})
			continue
		}
		exp, err := c.checkWrite("set", it)
		if err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: err})
			continue
		}
		n := c.nodes[c.ring.index(it.Key)]
		perNode[n] = append(perNode[n], multiCmd{key: it.Key, value: it.Value, exp: exp})
	}
	return c.multi(ctx, op, "set", perNode, &me)
}

// DeleteMulti removes every key as Delete does, pipelining the keys of
// each server on one connection, the servers in parallel, with the error
// rules of SetMulti. A key that was absent is named in the
// *backend.MultiError with an error wrapping backend.ErrNotFound.
func (c *Client) DeleteMulti(ctx context.Context, keys []string) error {
	const op = "delete_multi"
	if err := c.enter(op, ""); err != nil {
		return err
	}
	defer c.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcached: %s: %w", op, err)
	}
	var me backend.MultiError
	perNode := make(map[*node][]multiCmd)
	for _, k := range keys {
		if err := checkKey("delete", k); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
			continue
		}
		n := c.nodes[c.ring.index(k)]
		perNode[n] = append(perNode[n], multiCmd{key: k})
	}
	return c.multi(ctx, op, "delete", perNode, &me)
}

// multi runs the commands of each server (cmd "set" or "delete") in
// parallel and adds the failures of single keys to me. It returns me if it
// names any key, nil if none, or the error of the servers whose outcome is
// unknown.
func (c *Client) multi(ctx context.Context, op, cmd string, perNode map[*node][]multiCmd, me *backend.MultiError) error {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		fatal []error
	)
	collect := func(kes []backend.KeyError, err error) {
		mu.Lock()
		defer mu.Unlock()
		me.Errors = append(me.Errors, kes...)
		if err != nil {
			fatal = append(fatal, err)
		}
	}
	for n, cmds := range perNode {
		if err := n.admit(); err != nil {
			// Nothing is sent: every key of n is known to have failed.
			kes := make([]backend.KeyError, len(cmds))
			for i, mc := range cmds {
				kes[i] = backend.KeyError{Key: mc.key,
					Err: &opError{Op: cmd, Key: mc.key, Addr: n.addr, Kind: backend.ErrUnavailable, Err: err}}
			}
			collect(kes, nil)
			continue
		}
		if len(perNode) == 1 {
			collect(c.pipelineNode(ctx, n, op, cmd, cmds))
			break
		}
		// The I/O of every goroutine is interrupted when ctx ends (see
		// begin) and bounded by the timeout: waiting for them is bounded.
		wg.Go(func() { collect(c.pipelineNode(ctx, n, op, cmd, cmds)) })
	}
	wg.Wait()
	switch {
	case len(fatal) == 1:
		return fatal[0]
	case len(fatal) > 1:
		return errors.Join(fatal...)
	case len(me.Errors) > 0:
		return me
	}
	return nil
}

// pipelineNode sends cmds to n and returns the failures of single keys,
// or an error if the outcome of the keys is unknown. It records the
// outcome on n.
func (c *Client) pipelineNode(ctx context.Context, n *node, op, cmd string, cmds []multiCmd) ([]backend.KeyError, error) {
	for attempt := 0; ; attempt++ {
		mc, reused, end, err := c.begin(ctx, n, attempt > 0)
		if err != nil {
			return nil, c.multiResult(n, op, err)
		}
		kes, replied, err := mc.pipeline(n.addr, cmd, cmds)
		err = end(err)
		if err != nil && reused && replied == 0 && staleConn(err) && ctx.Err() == nil {
			// The server had closed the idle connection before reading
			// any command: send them again (set and delete are
			// idempotent) on a new one.
			continue
		}
		if err != nil {
			return nil, c.multiResult(n, op, err)
		}
		n.success()
		return kes, nil
	}
}

// multiResult records a failed exchange with n and converts its error.
func (c *Client) multiResult(n *node, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("memcached: %s on %s: %w", op, n.addr, err)
	}
	return c.result(n, op, "", err)
}

// pipeline sends cmds in groups of at most pipelineMax, reading the
// replies of each group before sending the next. It returns the failures
// of single keys and the number of replies read; an error means the
// connection is no longer usable and the outcome of the keys not yet
// answered is unknown.
func (mc *mconn) pipeline(addr, cmd string, cmds []multiCmd) (kes []backend.KeyError, replied int, err error) {
	var scratch [64]byte
	for len(cmds) > 0 {
		group := cmds[:min(len(cmds), pipelineMax)]
		cmds = cmds[len(group):]
		for _, m := range group {
			b := append(scratch[:0], cmd...)
			b = append(b, ' ')
			mc.w.Write(b)
			mc.w.WriteString(m.key)
			if cmd == "set" {
				b = append(scratch[:0], " 0 "...)
				b = strconv.AppendInt(b, int64(m.exp), 10)
				b = append(b, ' ')
				b = strconv.AppendInt(b, int64(len(m.value)), 10)
				b = append(b, "\r\n"...)
				mc.w.Write(b)
				mc.w.Write(m.value)
			}
			mc.w.WriteString("\r\n")
		}
		if err := mc.w.Flush(); err != nil {
			return kes, replied, err
		}
		for _, m := range group {
			line, err := mc.readLine()
			if err != nil {
				return kes, replied, unexpected(err)
			}
			replied++
			var kind error
			switch {
			case bytes.Equal(line, replyStored) && cmd == "set",
				bytes.Equal(line, replyDeleted) && cmd == "delete":
				continue
			case bytes.Equal(line, replyNotFound):
				kind = backend.ErrNotFound
			case bytes.Equal(line, replyNotStored) && cmd == "set":
				kind = backend.ErrNotStored
			case bytes.Equal(line, replyExists) && cmd == "set":
				kind = backend.ErrCASConflict
			case bytes.HasPrefix(line, replyTooLarge) && cmd == "set":
				kind = backend.ErrValueTooLarge
			case bytes.HasPrefix(line, []byte("SERVER_ERROR")):
				// The server could not do it (out of memory, ...); classify
				// maps this to backend.ErrUnavailable without blaming the
				// server. The connection is not reused.
				return kes, replied, fmt.Errorf("%s %q: memcached replied %q", cmd, m.key, bytes.TrimRight(line, "\r\n"))
			default:
				return kes, replied, protoErr(fmt.Sprintf("unexpected reply to %s %q: %q", cmd, m.key, line))
			}
			kes = append(kes, backend.KeyError{Key: m.key, Err: &opError{Op: cmd, Key: m.key, Addr: addr, Kind: kind,
				Err: errors.New(string(bytes.TrimRight(line, "\r\n")))}})
		}
	}
	return kes, replied, nil
}
