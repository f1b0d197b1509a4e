package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// Server health: see WithFailureLimit. Each lane (a standalone server, one
// master of a cluster, or one shard of a Ring) counts the flushes in a row that failed without
// an answer from its server (a timeout, a refused or dropped connection).
// At cfg.failureLimit the server is marked down: calls for it fail at once
// and a background goroutine PINGs it every cfg.retryInterval, bounded by
// cfg.timeout, until it answers; then it is up again. A multi-key call
// cut short by its caller's deadline, sooner than the timeout, does not
// count, but has the server PINGed, bounded by the timeout, and that
// counts (see askServer).

// admit returns nil if calls may go to the server, or the error that calls
// fail with while it is marked down.
func (l *lane) admit() error {
	if !l.down.Load() {
		return nil
	}
	return &backend.ServerError{Addr: l.addr, Err: fmt.Errorf("%w: server %s marked down after %d failures in a row (probed every %v)",
		backend.ErrUnavailable, l.addr, l.downFor.Load(), l.b.cfg.retryInterval)}
}

// record counts the outcome of a flush: err is nil when the server
// answered, or the transport error.
func (l *lane) record(err error) {
	if err == nil {
		if l.fails.Load() != 0 {
			l.fails.Store(0)
		}
		return
	}
	if l.b.closed.Load() {
		return // Close dropped the connections; the server is not to blame
	}
	n := l.fails.Add(1)
	limit := int64(l.b.cfg.failureLimit)
	if limit <= 0 || n < limit {
		return
	}
	if l.down.CompareAndSwap(false, true) {
		l.downFor.Store(n)
		probe := l.probe
		if l.b.sentinel != nil {
			probe = l.sentinelProbe
		}
		if !l.b.spawn(probe) {
			l.down.Store(false)
		}
	}
}

// callerTimedOut reports whether err, the outcome of a call bounded by
// ctx (bounded's), is a timeout of the caller's deadline, earlier than the
// timeout: its server's health does not count it, neither a failure (the
// server may have answered within the timeout, as a flush, which the
// timeout alone bounds, would have seen) nor an answer.
func callerTimedOut(ctx context.Context, err error) bool {
	bc, ok := ctx.(boundCtx)
	if !ok || !bc.callers {
		return false
	}
	if dl, _ := bc.Deadline(); time.Now().Before(dl) {
		// A timeout before the caller's deadline (a shorter socket
		// timeout) is the server's.
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// askServer counts for the server's health a PING bounded by the
// timeout, in the background (at most one at a time per lane), after a
// call that the caller's deadline, sooner than the timeout, cut short
// (callerTimedOut). Such a call says nothing of the server, which may
// have answered within the timeout; but if it is not counted, a server
// that hangs is never marked down while every caller's deadline is
// shorter than the timeout (as in a service), and every call waits its
// caller's whole deadline. The PING asks what a flush, bounded by the
// timeout, would have told.
func (l *lane) askServer() {
	if l.down.Load() || !l.asking.CompareAndSwap(false, true) {
		return // down: its probe asks already
	}
	if !l.b.spawn(func() {
		defer l.asking.Store(false)
		l.record(l.pingErr())
	}) {
		l.asking.Store(false)
	}
}

// probe PINGs the server every retryInterval until it answers, then marks
// it up; it returns early when the Backend is closed, and when go-redis
// closed the client of a cluster node (see left).
func (l *lane) probe() {
	t := time.NewTicker(l.b.cfg.retryInterval)
	defer t.Stop()
	for {
		select {
		case <-l.b.stop:
			return
		case <-t.C:
		}
		n := l.node.Load()
		err := l.pingErr()
		if err == nil {
			l.fails.Store(0)
			l.down.Store(false)
			return
		}
		if n != nil && errors.Is(err, goredis.ErrClosed) && !l.b.closed.Load() && l.left(n) {
			return
		}
		// Else a call gave the lane go-redis's new client for the
		// address meanwhile: the next tick probes that one.
	}
}

// left drops the lane, whose node's client n go-redis closed: it does
// so a minute after the node left the cluster, and at once for a shard
// SetAddrs removed from a Ring (or when the Ring is closed). Else the lane of every
// address that ever left while marked down would keep a goroutine
// probing a closed client, until Close. If the address comes back, its
// next call makes a lane anew (with the client go-redis then makes).
// It reports whether the probe is to end: not if the lane is still the
// address's with another client, which it must go on probing (the lane
// stays marked down until a probe succeeds).
func (l *lane) left(n *goredis.Client) bool {
	b := l.b
	b.lanesMu.Lock()
	defer b.lanesMu.Unlock()
	switch {
	case b.lanes[l.addr] != l:
		return true // dropped already, or by Close
	case l.node.Load() != n:
		return false
	}
	delete(b.lanes, l.addr)
	return true
}

// ping reports whether the server answers a PING within the timeout (see
// pingErr).
func (l *lane) ping() bool { return l.pingErr() == nil }

// pingErr PINGs the server, on a connection of the pool or a new one
// (whose handshake is pipelined with the PING: a probe costs what a call
// costs), bounded by the timeout, and returns nil if it answered, or the
// transport error. A panic counts as no answer.
func (l *lane) pingErr() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("redis: ping %s panicked: %v", l.addr, r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), l.b.cfg.timeout)
	defer cancel()
	if n := l.node.Load(); n != nil {
		err = n.Ping(ctx).Err()
	} else {
		err = l.b.client.Ping(ctx).Err()
	}
	return transportErr(err)
}
