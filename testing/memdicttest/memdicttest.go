// Package memdicttest helps users of memdict write fast unit tests: a Dict
// on the in-memory backend with a clock the test moves, and a backend
// wrapper that injects faults, so that code can be tested for what it does
// when the cache is slow, failing or down.
//
//	func TestReport(t *testing.T) {
//		d, clock := memdicttest.NewDict[int](t, "reports")
//		... // exercise code that uses d
//		clock.Advance(time.Hour) // expire what has a TTL under an hour
//	}
//
// For integration tests against a real memcached or Redis, see package
// github.com/memdict/memdict/testing/containers.
package memdicttest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// Start is the time the fake clocks of this package start at.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewBackend returns a fresh in-memory backend whose clock is the returned
// FakeClock, closed when the test ends.
func NewBackend(t testing.TB, opts ...memory.Option) (*memory.Store, *memory.FakeClock) {
	t.Helper()
	clock := memory.NewFakeClock(Start)
	be := memory.New(append([]memory.Option{memory.WithClock(clock)}, opts...)...)
	t.Cleanup(func() { _ = be.Close() })
	return be, clock
}

// NewDict returns a Dict of V under prefix on a fresh in-memory backend,
// and the backend's clock: advance it to expire values. It fails the test
// if an option is invalid.
func NewDict[V any](t testing.TB, prefix string, opts ...memdict.Option) (*memdict.Dict[V], *memory.FakeClock) {
	t.Helper()
	be, clock := NewBackend(t)
	d, err := memdict.New[V](be, prefix, opts...)
	if err != nil {
		t.Fatalf("memdicttest.NewDict: %v", err)
	}
	return d, clock
}

// Op names a Backend method or optional ability, for fault injection: the
// name of a backend.Op (backend.Op.String).
type Op string

// The operations Faulty can fail.
const (
	OpGet            Op = "get"
	OpGetMulti       Op = "getmulti"
	OpSet            Op = "set"
	OpAdd            Op = "add"
	OpCompareAndSwap Op = "cas"
	OpDelete         Op = "delete"
	OpTouch          Op = "touch"
	OpIncrement      Op = "increment"
	OpKeys           Op = "keys"
	OpStats          Op = "stats"
	OpFlush          Op = "flush"
	OpPing           Op = "ping"
	OpSetMulti       Op = "setmulti"     // backend.MultiWriter
	OpDeleteMulti    Op = "deletemulti"  // backend.MultiWriter
	OpGetLease       Op = "getlease"     // backend.Leaser
	OpReleaseLease   Op = "releaselease" // backend.Leaser
	OpMarkStale      Op = "markstale"    // backend.Leaser
	OpTryLock        Op = "trylock"      // backend.Locker
	OpUnlock         Op = "unlock"       // backend.Locker
	OpTrack          Op = "track"        // backend.Invalidator
)

// wrapped is backend.Wrapped under a name Faulty embeds without exporting.
type wrapped = backend.Wrapped

// Faulty wraps a Backend and injects faults: failing the next calls,
// failing every call of one operation, failing the calls on some keys (as
// when one server of several is down: FailKeys), adding latency, or acting
// as a server that is down. It counts calls per operation.
//
// Faulty is built with backend.Wrap: it has every optional ability of the
// backend it wraps (leases, locks, multi-key writes, server invalidation,
// listing, statistics, ...), so that a Dict over a Faulty runs the code it
// runs over the backend itself, and the faults apply to the abilities too
// (FailOp(OpGetLease, err), FailKeys on a SetMulti). With no fault set it
// forwards every call unchanged; an ability the wrapped backend lacks
// gives an error wrapping backend.ErrNotSupported, and memdict falls back
// as it does without a Faulty. Close and the properties (backend.Op.Property:
// ServerFor, Timeout), which do no I/O, are counted but never failed or
// delayed; the latency SetLatency adds ends at the call's context or at
// the wrapped backend's Timeout, which the call then fails, as a driver's
// call to a server that slow does.
//
// A Faulty is safe for concurrent use; faults can be changed while calls
// are in flight.
type Faulty struct {
	*wrapped
	be backend.Backend

	mu       sync.Mutex
	failNext int
	nextErr  error
	failOps  map[Op]error
	latency  time.Duration
	down     bool
	calls    map[Op]int
	keyMatch func(key string) bool
	keyErr   error
}

// NewFaulty returns a Faulty around be.
func NewFaulty(be backend.Backend) *Faulty {
	f := &Faulty{be: be, failOps: map[Op]error{}, calls: map[Op]int{}}
	f.wrapped = backend.Wrap(be, f.middleware)
	return f
}

func orUnavailable(err error) error {
	if err == nil {
		return backend.ErrUnavailable
	}
	return err
}

// FailNext makes the next n calls, of any operation, fail with err
// (backend.ErrUnavailable if err is nil).
func (f *Faulty) FailNext(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.nextErr = n, orUnavailable(err)
}

// FailOp makes every call of op fail with err (backend.ErrUnavailable if
// nil) until ClearFaults.
func (f *Faulty) FailOp(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOps[op] = orUnavailable(err)
}

// FailKeys makes every call on a backend key for which match returns true
// fail with err (backend.ErrUnavailable if nil), until ClearFaults, as if
// the server holding those keys were down while the others answer: the
// one-key calls of such a key (Get, the writes, Delete, Touch, Increment,
// leases and locks) return err, and GetMulti, SetMulti and DeleteMulti do
// the other keys and name each failed key in a *backend.MultiError, as the
// backend contract says. A nil match removes the fault.
func (f *Faulty) FailKeys(match func(key string) bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyMatch, f.keyErr = match, orUnavailable(err)
}

// keyFault returns the fault FailKeys sets for key, or nil.
func (f *Faulty) keyFault(op Op, key string) error {
	f.mu.Lock()
	match, err := f.keyMatch, f.keyErr
	f.mu.Unlock()
	if match == nil || !match(key) {
		return nil
	}
	return fmt.Errorf("memdicttest: injected fault in %s: %w", op, err)
}

// SetLatency delays every call by d before it is forwarded (or fails), as
// a slow server does. A call whose context ends first returns the
// context's error. When d exceeds the wrapped backend's timeout
// (backend.Timeout; the memory backend has none), the call fails at that
// timeout with an error wrapping backend.ErrUnavailable, as a driver's
// call to a server that slow does: a Dict relies on each call of a
// backend with a timeout ending within it.
func (f *Faulty) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetDown makes every call fail with backend.ErrUnavailable, as when the
// server is unreachable, until SetDown(false).
func (f *Faulty) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// ClearFaults removes every fault and the latency.
func (f *Faulty) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.nextErr, f.latency, f.down = 0, nil, 0, false
	f.keyMatch, f.keyErr = nil, nil
	clear(f.failOps)
}

// Calls returns how many calls of op were made, failed ones included.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Unwrap returns the wrapped backend.
func (f *Faulty) Unwrap() backend.Backend { return f.be }

// enter counts a call of op, waits for the latency, and returns the fault
// to report, if any.
func (f *Faulty) enter(ctx context.Context, op Op) error {
	f.mu.Lock()
	f.calls[op]++
	latency := f.latency
	var err error
	switch {
	case f.down:
		err = backend.ErrUnavailable
	case f.failNext > 0:
		f.failNext--
		err = f.nextErr
	case f.failOps[op] != nil:
		err = f.failOps[op]
	}
	f.mu.Unlock()
	if latency > 0 {
		// A server this slow makes a driver with a timeout give up at it.
		wait, late := latency, false
		if t := backend.Timeout(f.be); t > 0 && t < latency {
			wait, late = t, true
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			if late {
				return fmt.Errorf("memdicttest: %s: no reply within the timeout of %v (the latency is %v): %w",
					op, wait, latency, backend.ErrUnavailable)
			}
		case <-ctx.Done():
			return fmt.Errorf("memdicttest: %s: %w", op, ctx.Err())
		}
	}
	if err != nil {
		return fmt.Errorf("memdicttest: injected fault in %s: %w", op, err)
	}
	return nil
}

// middleware injects the faults into every call on its way to the wrapped
// backend.
func (f *Faulty) middleware(next backend.CallFunc) backend.CallFunc {
	return func(ctx context.Context, c backend.Call) backend.Result {
		op := Op(c.Op.String())
		if c.Op == backend.OpClose || c.Op.Property() {
			f.mu.Lock()
			f.calls[op]++
			f.mu.Unlock()
			return next(ctx, c)
		}
		if err := f.enter(ctx, op); err != nil {
			return backend.Result{Err: err}
		}
		switch c.Op {
		case backend.OpGetMulti:
			return f.getMulti(ctx, c, next)
		case backend.OpSetMulti, backend.OpDeleteMulti:
			return f.writeMulti(ctx, c, next)
		case backend.OpKeys, backend.OpTrack:
		case backend.OpServerStats, backend.OpFlush, backend.OpPing:
			r := next(ctx, c)
			r.Err = unsupported(r.Err)
			return r
		default:
			key := c.Key
			switch c.Op {
			case backend.OpSet, backend.OpAdd, backend.OpCompareAndSwap:
				key = c.Item.Key
			}
			if err := f.keyFault(op, key); err != nil {
				return backend.Result{Err: err}
			}
		}
		return next(ctx, c)
	}
}

// getMulti reads the keys FailKeys does not fail, and names the others in
// a *backend.MultiError.
func (f *Faulty) getMulti(ctx context.Context, c backend.Call, next backend.CallFunc) backend.Result {
	var me backend.MultiError
	ok := make([]string, 0, len(c.Keys))
	for _, k := range c.Keys {
		if err := f.keyFault(OpGetMulti, k); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
		} else {
			ok = append(ok, k)
		}
	}
	c.Keys = ok
	r := next(ctx, c)
	if r.Err == nil && len(me.Errors) > 0 {
		r.Err = &me
	}
	return r
}

// writeMulti does SetMulti or DeleteMulti for the keys FailKeys does not
// fail, and names the others in a *backend.MultiError with the backend's
// own failures.
func (f *Faulty) writeMulti(ctx context.Context, c backend.Call, next backend.CallFunc) backend.Result {
	op := Op(c.Op.String())
	var me backend.MultiError
	if c.Op == backend.OpSetMulti {
		items := make([]backend.Item, 0, len(c.Items))
		for _, it := range c.Items {
			if err := f.keyFault(op, it.Key); err != nil {
				me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: err})
			} else {
				items = append(items, it)
			}
		}
		c.Items = items
	} else {
		keys := make([]string, 0, len(c.Keys))
		for _, k := range c.Keys {
			if err := f.keyFault(op, k); err != nil {
				me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
			} else {
				keys = append(keys, k)
			}
		}
		c.Keys = keys
	}
	if len(me.Errors) == 0 {
		return next(ctx, c)
	}
	if len(c.Items) > 0 || len(c.Keys) > 0 {
		r := next(ctx, c)
		if r.Err != nil {
			kes, ok := backend.KeyErrors(r.Err)
			if !ok {
				// Not supported (the caller then writes key by key, and
				// meets the faults again), or every key's outcome is
				// unknown.
				return r
			}
			me.Errors = append(me.Errors, kes...)
		}
	}
	return backend.Result{Err: &me}
}

// unsupported prefixes an error saying the wrapped backend lacks an
// ability with the package's name; other errors are the backend's own.
func unsupported(err error) error {
	if backend.NotSupported(err) {
		return fmt.Errorf("memdicttest: %w", err)
	}
	return err
}
