package backend

import (
	"context"
	"iter"
	"time"
)

// Wrapping a backend.
//
// A wrapper that forwards each method by hand hides every ability it does
// not forward, and must be edited for each new one. Wrap instead builds a
// backend from middleware: functions that each see every call as a Call
// value, abilities included, and pass it on with next. The backend Wrap
// returns has every optional ability; each one it is asked for goes down
// the chain of middleware to the backend under it, which performs it or
// reports ErrNotSupported, so the wrapper keeps exactly the abilities of
// what it wraps, whatever they are, and whatever they become.

// CallFunc performs a Call and returns its outcome.
type CallFunc func(ctx context.Context, c Call) Result

// Middleware wraps the calls of a backend: given next, the function that
// performs a call further down the chain, it returns the function that
// takes its place. That function sees every call, of the Backend's methods
// and of every optional ability, as a Call: it may look at it (c.Op, its
// keys, and after next its Result: for metrics, logs, traces), change its
// arguments or its outcome (transform keys or values), or answer it
// without calling next (inject a fault, serve it from elsewhere). It must
// be safe for concurrent use, and keep the contract of each operation it
// changes: in particular, an ability it answers itself for an inner
// backend without it is thereby supported, and one that makes a call
// take longer (a retry, a delay, calls of another backend) still ends it
// within the timeout the chain reports (OpTimeout, see Timeouter), or
// reports another: a Dict relies on it to bound its calls.
//
// A middleware is called once per Wrap, when the chain is built; the
// function it returns, once per call.
type Middleware func(next CallFunc) CallFunc

// Wrapped is a backend built by Wrap or WrapFunc: every call of its
// methods is described by a Call and goes through its chain of middleware
// to the backend (or function) it wraps. It implements Backend, Handler
// and every optional ability (Lister, StatsReporter, Flusher, Pinger,
// MultiWriter, Leaser, Locker, Invalidator, Locator, Describer, TTLReader); a method whose
// ability the backend under it lacks returns an error wrapping
// ErrNotSupported, and the functions of this package then fall back as
// each documents. The values of Get and GetMulti are private to the
// caller when those of the backend under it are (see Do and
// PrivateReader).
//
// Do hands a Wrapped every Call through Handle, not through its methods:
// to change what a Wrapped does, add a middleware rather than embedding it
// in a type with methods of its own.
//
// A Wrapped is safe for concurrent use if its middleware and the backend
// under it are.
type Wrapped struct {
	call  CallFunc
	inner Backend
}

// Wrap returns a backend that performs every call on be through mw: the
// first middleware sees each call first, and the last one passes it to be
// (with Do, so that be may itself be a wrapper). With no middleware it
// forwards every call as it is. Closing the returned backend closes be.
func Wrap(be Backend, mw ...Middleware) *Wrapped {
	var next CallFunc
	if h, ok := be.(Handler); ok {
		next = h.Handle
	} else {
		next = func(ctx context.Context, c Call) Result { return dispatch(ctx, be, &c) }
	}
	w := WrapFunc(next, mw...)
	w.inner = be
	return w
}

// WrapFunc returns a backend that performs every call with fn, through
// mw, as Wrap does for a backend: fn receives every Call, OpClose
// included, and must keep the contract of each operation, returning an
// error wrapping ErrNotSupported for the abilities it lacks. It is the
// form for a wrapper that chooses its backend per call, as the Tool's
// plugin backends do.
func WrapFunc(fn CallFunc, mw ...Middleware) *Wrapped {
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] != nil {
			fn = mw[i](fn)
		}
	}
	return &Wrapped{call: fn}
}

// Unwrap returns the backend given to Wrap, or nil for WrapFunc's.
func (w *Wrapped) Unwrap() Backend { return w.inner }

// Handle implements Handler: it performs c through the middleware.
func (w *Wrapped) Handle(ctx context.Context, c Call) Result { return w.call(ctx, c) }

// Get implements Backend.
func (w *Wrapped) Get(ctx context.Context, key string) (Item, error) {
	r := w.call(ctx, Call{Op: OpGet, Key: key})
	return r.Item, r.Err
}

// GetMulti implements Backend.
func (w *Wrapped) GetMulti(ctx context.Context, keys []string) (map[string]Item, error) {
	r := w.call(ctx, Call{Op: OpGetMulti, Keys: keys})
	return r.Items, r.Err
}

// Set implements Backend.
func (w *Wrapped) Set(ctx context.Context, item Item) error {
	return w.call(ctx, Call{Op: OpSet, Item: item}).Err
}

// Add implements Backend.
func (w *Wrapped) Add(ctx context.Context, item Item) error {
	return w.call(ctx, Call{Op: OpAdd, Item: item}).Err
}

// CompareAndSwap implements Backend.
func (w *Wrapped) CompareAndSwap(ctx context.Context, item Item) error {
	return w.call(ctx, Call{Op: OpCompareAndSwap, Item: item}).Err
}

// Delete implements Backend.
func (w *Wrapped) Delete(ctx context.Context, key string) error {
	return w.call(ctx, Call{Op: OpDelete, Key: key}).Err
}

// Touch implements Backend.
func (w *Wrapped) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return w.call(ctx, Call{Op: OpTouch, Key: key, TTL: ttl}).Err
}

// Increment implements Backend.
func (w *Wrapped) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	r := w.call(ctx, Call{Op: OpIncrement, Key: key, Delta: delta})
	return r.N, r.Err
}

// Close implements Backend: an OpClose call, which the backend under the
// middleware performs by closing itself.
func (w *Wrapped) Close() error {
	return w.call(context.Background(), Call{Op: OpClose}).Err
}

// Keys implements Lister. The call is made when the iteration starts.
func (w *Wrapped) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return keysOf(ctx, w, prefix)
}

// ServerStats implements StatsReporter.
func (w *Wrapped) ServerStats(ctx context.Context) ([]NodeStats, error) {
	r := w.call(ctx, Call{Op: OpServerStats})
	return r.Stats, r.Err
}

// Flush implements Flusher.
func (w *Wrapped) Flush(ctx context.Context) error {
	return w.call(ctx, Call{Op: OpFlush}).Err
}

// Ping implements Pinger.
func (w *Wrapped) Ping(ctx context.Context) error {
	return w.call(ctx, Call{Op: OpPing}).Err
}

// SetMulti implements MultiWriter.
func (w *Wrapped) SetMulti(ctx context.Context, items []Item) error {
	return w.call(ctx, Call{Op: OpSetMulti, Items: items}).Err
}

// DeleteMulti implements MultiWriter.
func (w *Wrapped) DeleteMulti(ctx context.Context, keys []string) error {
	return w.call(ctx, Call{Op: OpDeleteMulti, Keys: keys}).Err
}

// GetLease implements Leaser.
func (w *Wrapped) GetLease(ctx context.Context, key string, o LeaseOptions) (Lease, error) {
	r := w.call(ctx, Call{Op: OpGetLease, Key: key, LeaseOptions: o})
	return r.Lease, r.Err
}

// ReleaseLease implements Leaser.
func (w *Wrapped) ReleaseLease(ctx context.Context, l Lease) error {
	return w.call(ctx, Call{Op: OpReleaseLease, Key: l.Item.Key, Lease: l}).Err
}

// MarkStale implements Leaser.
func (w *Wrapped) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	return w.call(ctx, Call{Op: OpMarkStale, Key: key, TTL: ttl}).Err
}

// TryLock implements Locker.
func (w *Wrapped) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	r := w.call(ctx, Call{Op: OpTryLock, Key: key, Token: token, TTL: ttl})
	return r.OK, r.Err
}

// Unlock implements Locker.
func (w *Wrapped) Unlock(ctx context.Context, key, token string) (bool, error) {
	r := w.call(ctx, Call{Op: OpUnlock, Key: key, Token: token})
	return r.OK, r.Err
}

// Track implements Invalidator.
func (w *Wrapped) Track(ctx context.Context, prefix string, fn func(Invalidation)) (Tracking, error) {
	r := w.call(ctx, Call{Op: OpTrack, Prefix: prefix, OnInvalidation: fn})
	return r.Tracking, r.Err
}

// Describe implements Describer: the zero Description when the backend
// under the middleware cannot tell.
func (w *Wrapped) Describe() Description {
	return w.call(context.Background(), Call{Op: OpDescribe}).Description
}

// ServerFor implements Locator: "" when the backend under the middleware
// cannot tell.
func (w *Wrapped) ServerFor(key string) string {
	return w.call(context.Background(), Call{Op: OpServerFor, Key: key}).Addr
}

// Timeout implements Timeouter: 0 when the backend under the middleware
// has no timeout of its own.
func (w *Wrapped) Timeout() time.Duration {
	return w.call(context.Background(), Call{Op: OpTimeout}).Timeout
}

// GetTTL implements TTLReader.
func (w *Wrapped) GetTTL(ctx context.Context, key string) (Item, error) {
	r := w.call(ctx, Call{Op: OpGetTTL, Key: key})
	return r.Item, r.Err
}

var (
	_ TTLReader     = (*Wrapped)(nil)
	_ Handler       = (*Wrapped)(nil)
	_ Lister        = (*Wrapped)(nil)
	_ StatsReporter = (*Wrapped)(nil)
	_ Flusher       = (*Wrapped)(nil)
	_ Pinger        = (*Wrapped)(nil)
	_ MultiWriter   = (*Wrapped)(nil)
	_ Leaser        = (*Wrapped)(nil)
	_ Locker        = (*Wrapped)(nil)
	_ Invalidator   = (*Wrapped)(nil)
	_ Locator       = (*Wrapped)(nil)
	_ Timeouter     = (*Wrapped)(nil)
	_ Describer     = (*Wrapped)(nil)
)
