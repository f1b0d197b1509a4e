package memcached

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/stripe"
)

// What every keyed call goes through: entering the Client, checking the key,
// finding its server, its deadline, and turning the outcome into an error.

// enter registers a call; it fails with ErrClosed after Close. On success
// the caller must call c.leave with the ticket returned.
func (c *Client) enter(op, key string) (stripe.Ticket, error) {
	t := c.active.Add(1)
	if c.closed.Load() {
		c.active.Done(t, 1)
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrClosed}
	}
	return t, nil
}

// enterMulti is enter for op, a call on many keys, that also fails if ctx
// is done. On success the caller must call c.leave with the ticket
// returned.
func (c *Client) enterMulti(ctx context.Context, op string) (stripe.Ticket, error) {
	t, err := c.enter(op, "")
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		c.leave(t)
		return 0, fmt.Errorf("memcached: %s: %w", op, err)
	}
	return t, nil
}

// leave ends the call that enter registered with ticket t.
func (c *Client) leave(t stripe.Ticket) { c.active.Done(t, 1) }

// maxKeyLen is memcached's key length limit.
const maxKeyLen = 250

// checkKey returns an error wrapping backend.ErrInvalidKey if memcached
// cannot carry key.
func checkKey(op, key string) error {
	if key == "" {
		return &opError{Op: op, Kind: backend.ErrInvalidKey, Err: errors.New("empty key")}
	}
	if len(key) > maxKeyLen {
		return &opError{Op: op, Key: key[:32] + "...", Kind: backend.ErrInvalidKey,
			Err: fmt.Errorf("key of %d bytes, memcached allows %d", len(key), maxKeyLen)}
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b == 0x7f {
			return &opError{Op: op, Key: key, Kind: backend.ErrInvalidKey,
				Err: fmt.Errorf("byte %#x at offset %d (no spaces or control bytes)", b, i)}
		}
	}
	return nil
}

// due is when a call must end: the timeout after it was made, or its
// context's deadline if that is sooner (byCtx). It is taken once, when the
// call starts, and bounds everything the call does.
type due struct {
	at    time.Time
	byCtx bool
}

// epoch is a reading of the clock, its monotonic reading included, that
// the deadlines of calls whose context has none are counted from (see
// Client.deadline).
var epoch = time.Now()

// deadline returns when a call starting now must end.
func (c *Client) deadline(ctx context.Context) due {
	if cd, ok := ctx.Deadline(); ok {
		d := time.Now().Add(c.cfg.timeout)
		if cd.Before(d) {
			return due{cd, true}
		}
		return due{d, false}
	}
	// No context deadline to compare with (one may carry no monotonic
	// reading, and then only the wall clocks compare): the monotonic clock
	// alone is read (time.Since), not the wall clock too (time.Now), which
	// takes about twice as long and was 3-5% of the client's CPU in
	// memcachedbench's get-64. Whatever a due is used for (comparisons
	// with other dues and with time.Now, timers, time.Until, net
	// deadlines, the context of a text-protocol call) reads its monotonic
	// reading, which is exact; none reads its wall reading, epoch's plus
	// the time elapsed since.
	since := time.Since(epoch)
	if c.cfg.timeout > math.MaxInt64-since {
		// A timeout meant as none (math.MaxInt64): the sum would wrap to
		// a due in the past; Add saturates.
		return due{epoch.Add(since).Add(c.cfg.timeout), false}
	}
	return due{epoch.Add(since + c.cfg.timeout), false}
}

// prepare checks that the Client is open and key is valid, and returns the
// node for key if it is not marked down, and when the call must end. On
// success the caller must call c.leave with the ticket returned.
func (c *Client) prepare(ctx context.Context, op, key string) (*node, due, stripe.Ticket, error) {
	if err := checkKey(op, key); err != nil {
		return nil, due{}, 0, err
	}
	t, err := c.enter(op, key)
	if err != nil {
		return nil, due{}, 0, err
	}
	dl := c.deadline(ctx)
	if err := ctx.Err(); err != nil {
		c.leave(t)
		return nil, dl, 0, fmt.Errorf("memcached: %s %q: %w", op, key, err)
	}
	n := c.pick(key)
	if err := n.admit(); err != nil {
		c.leave(t)
		return nil, dl, 0, &opError{Op: op, Key: key, Addr: n.addr, Kind: backend.ErrUnavailable, Err: err}
	}
	return n, dl, t, nil
}

// result records the outcome of a call on n and converts its error.
func (c *Client) result(n *node, op, key string, err error) error {
	if err == nil {
		n.success()
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Says nothing about the server.
		if key == "" {
			return fmt.Errorf("memcached: %s on %s: %w", op, n.addr, err)
		}
		return fmt.Errorf("memcached: %s %q on %s: %w", op, key, n.addr, err)
	}
	if errors.Is(err, backend.ErrClosed) {
		return &opError{Op: op, Key: key, Kind: backend.ErrClosed}
	}
	kind, fault := classify(err)
	if fault {
		n.failure()
	} else {
		n.success()
	}
	return &opError{Op: op, Key: key, Addr: n.addr, Kind: kind, Err: err}
}

// exec runs r on n's pipelined connections, by dl. It returns
// errTextProtocol (r released) if n turned out to have no meta commands.
func (c *Client) exec(ctx context.Context, n *node, r *request, dl due) error {
	return n.pool.do(ctx, r, dl.at, dl.byCtx)
}
