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
	"errors"
	"fmt"
	"iter"
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

// Op names a Backend method, for fault injection.
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
)

// Faulty wraps a Backend and injects faults: failing the next calls,
// failing every call of one operation, failing the calls on some keys (as
// when one server of several is down: FailKeys), adding latency, or acting
// as a server that is down. With no fault set it forwards every call unchanged,
// including the optional abilities Lister, StatsReporter, Flusher,
// Pinger and Timeouter, by package backend's helpers (backend.Keys, ...): an error
// wrapping backend.ErrNotSupported where the wrapped backend lacks them.
// It has no MultiWriter: Tx.Commit and PutMulti write through it key by
// key, so that every key meets the faults. It counts calls per operation.
//
// A Faulty is safe for concurrent use; faults can be changed while calls
// are in flight.
type Faulty struct {
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
	return &Faulty{be: be, failOps: map[Op]error{}, calls: map[Op]int{}}
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
// the server holding those keys were down while the others answer: Get,
// the writes, Delete, Touch and Increment of such a key return err, and
// GetMulti reads the other keys and names each failed key in a
// *backend.MultiError, as the backend contract says. A nil match removes
// the fault.
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

// SetLatency delays every call by d before it is forwarded (or fails). A
// call whose context ends first returns the context's error.
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
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("memdicttest: %s: %w", op, ctx.Err())
		}
	}
	if err != nil {
		return fmt.Errorf("memdicttest: injected fault in %s: %w", op, err)
	}
	return nil
}

// Get implements backend.Backend.
func (f *Faulty) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := f.enter(ctx, OpGet); err != nil {
		return backend.Item{}, err
	}
	if err := f.keyFault(OpGet, key); err != nil {
		return backend.Item{}, err
	}
	return f.be.Get(ctx, key)
}

// GetMulti implements backend.Backend.
func (f *Faulty) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := f.enter(ctx, OpGetMulti); err != nil {
		return nil, err
	}
	var me backend.MultiError
	ok := make([]string, 0, len(keys))
	for _, k := range keys {
		if err := f.keyFault(OpGetMulti, k); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: k, Err: err})
		} else {
			ok = append(ok, k)
		}
	}
	items, err := f.be.GetMulti(ctx, ok)
	if err != nil || len(me.Errors) == 0 {
		return items, err
	}
	return items, &me
}

// Set implements backend.Backend.
func (f *Faulty) Set(ctx context.Context, item backend.Item) error {
	if err := f.enter(ctx, OpSet); err != nil {
		return err
	}
	if err := f.keyFault(OpSet, item.Key); err != nil {
		return err
	}
	return f.be.Set(ctx, item)
}

// Add implements backend.Backend.
func (f *Faulty) Add(ctx context.Context, item backend.Item) error {
	if err := f.enter(ctx, OpAdd); err != nil {
		return err
	}
	if err := f.keyFault(OpAdd, item.Key); err != nil {
		return err
	}
	return f.be.Add(ctx, item)
}

// CompareAndSwap implements backend.Backend.
func (f *Faulty) CompareAndSwap(ctx context.Context, item backend.Item) error {
	if err := f.enter(ctx, OpCompareAndSwap); err != nil {
		return err
	}
	if err := f.keyFault(OpCompareAndSwap, item.Key); err != nil {
		return err
	}
	return f.be.CompareAndSwap(ctx, item)
}

// Delete implements backend.Backend.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.enter(ctx, OpDelete); err != nil {
		return err
	}
	if err := f.keyFault(OpDelete, key); err != nil {
		return err
	}
	return f.be.Delete(ctx, key)
}

// Touch implements backend.Backend.
func (f *Faulty) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := f.enter(ctx, OpTouch); err != nil {
		return err
	}
	if err := f.keyFault(OpTouch, key); err != nil {
		return err
	}
	return f.be.Touch(ctx, key, ttl)
}

// Increment implements backend.Backend.
func (f *Faulty) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	if err := f.enter(ctx, OpIncrement); err != nil {
		return 0, err
	}
	if err := f.keyFault(OpIncrement, key); err != nil {
		return 0, err
	}
	return f.be.Increment(ctx, key, delta)
}

// Close closes the wrapped backend.
func (f *Faulty) Close() error { return f.be.Close() }

// Keys implements backend.Lister with backend.Keys.
func (f *Faulty) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := f.enter(ctx, OpKeys); err != nil {
			yield("", err)
			return
		}
		for k, err := range backend.Keys(ctx, f.be, prefix) {
			if !yield(k, unsupported(err)) {
				return
			}
		}
	}
}

// ServerStats implements backend.StatsReporter with backend.ServerStats.
func (f *Faulty) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	if err := f.enter(ctx, OpStats); err != nil {
		return nil, err
	}
	st, err := backend.ServerStats(ctx, f.be)
	return st, unsupported(err)
}

// Flush implements backend.Flusher with backend.Flush.
func (f *Faulty) Flush(ctx context.Context) error {
	if err := f.enter(ctx, OpFlush); err != nil {
		return err
	}
	return unsupported(backend.Flush(ctx, f.be))
}

// Ping implements backend.Pinger with backend.Ping: like the other
// optional abilities, it returns an error wrapping
// backend.ErrNotSupported when the wrapped backend is not a
// backend.Pinger.
func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.enter(ctx, OpPing); err != nil {
		return err
	}
	return unsupported(backend.Ping(ctx, f.be))
}

// Timeout implements backend.Timeouter with backend.Timeout: the wrapped
// backend's bound of one call (0 if it has none). The latency SetLatency
// adds is not bounded by it, only by the call's context.
func (f *Faulty) Timeout() time.Duration { return backend.Timeout(f.be) }

// unsupported prefixes an error saying the wrapped backend lacks an
// ability with the package's name; other errors are the backend's own.
func unsupported(err error) error {
	if err != nil && errors.Is(err, backend.ErrNotSupported) {
		return fmt.Errorf("memdicttest: %w", err)
	}
	return err
}
