package memdict

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memdict/memdict/backend"
)

// Timeouts.
//
// A Dict call is bounded by one timeout, taken when the call starts and
// covering every backend call it makes: the namespace generation read
// when it is due, Update's read, compare-and-swap and retries, Touch's
// read and rewrite, a counter's increment and creation, the writes and
// deletes of a Tx commit, Clear's loop, GetOrLoad's read and fill. By
// default the timeout is the backend's own (backend.Timeouter: the
// memcached and Redis drivers' timeout), so that a Dict call ends within
// the same time as one backend call; WithTimeout sets another.
//
// The bound costs nothing on a call that makes a single backend call when
// the backend bounds its calls itself (the common Get and Put): the
// backend's own timeout bounds that call. Only when a call is about to
// make a second backend call does it derive a context with the call's
// deadline; calls that may make several read the clock when they start.
// The first backend call of a call goes out with the caller's own context,
// so that the backend counts its timeout as its server's failure (marking
// a hung server down); later ones carry the call's deadline.

// WithTimeout sets the timeout of one Dict call: every method returns
// within it (plus scheduling noise), whatever number of backend calls it
// makes; one that runs out of it fails with an error wrapping
// ErrUnavailable and context.DeadlineExceeded that says so. A ctx with an
// earlier deadline still ends a call earlier.
//
// 0, the default, means the backend's own timeout (backend.Timeout: the
// memcached and Redis drivers' WithTimeout or URL parameter timeout; none
// for the memory backend). A negative d means none: each backend call is
// then bounded by the backend alone, and a call that makes several may
// take several times its timeout. A d shorter than the backend's own
// costs a context per call (the backend's bound is then not short
// enough); otherwise only calls that make more than one backend call
// derive one.
//
// What the timeout does not bound: the loader of GetOrLoad, and a
// GetOrLoad caller's wait for another caller's load (bounded by ctx and
// the lease TTL, see WithLeaseTTL); a queued Update's wait for a round in
// progress is bounded. Keys and All are bounded per backend call, not as
// a whole, since the caller's loop drives them.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error { o.timeout = d; return nil }
}

// callTimeout returns the timeout of the Dict's calls (0: none) and
// whether the backend bounds each of its calls within it by itself.
func (d *Dict[V]) callTimeout() (time.Duration, bool) {
	own := backend.Timeout(d.be)
	t := d.timeout
	switch {
	case t < 0:
		return 0, true
	case t == 0:
		t = own
	}
	return t, own > 0 && own <= t
}

// A bound is the deadline of one Dict call, kept on the call's stack.
// Methods that make backend calls take a *bound and get the context of
// each backend call from next.
type bound struct {
	parent context.Context // the caller's
	// ctx is parent with the call's deadline, derived when a backend call
	// needs it (nil before, and after pause).
	ctx    context.Context
	cancel context.CancelFunc

	timeout time.Duration // 0: none
	own     bool          // the backend bounds each call within timeout itself
	start   time.Time     // when the call's time began; zero until needed
	// excluded is time not counted against the timeout (GetOrLoad's
	// load); pausedAt is when the current exclusion began.
	excluded time.Duration
	pausedAt time.Time
	// used says a backend call was made or the call waited: a backend
	// call now cannot go out with the caller's context alone.
	used bool
}

// limits sets the timeout of the call from view vw.
func (b *bound) limits(vw *view) { b.timeout, b.own = vw.timeout, vw.own }

// begin starts the call's clock. A call that may make more than one
// backend call calls it before the first; one that makes a single call
// does not, and costs no clock reading.
func (b *bound) begin() {
	if b.timeout > 0 && b.start.IsZero() {
		b.start = time.Now()
	}
}

// waited says the call waited (in a queue) before its first backend call,
// which therefore needs the call's deadline too.
func (b *bound) waited() { b.used = true }

// next returns the context of the call's next backend call: the caller's
// own for the first, when the backend bounds it within the timeout by
// itself; else the caller's with the call's deadline.
func (b *bound) next() context.Context {
	if b.timeout <= 0 || !b.pausedAt.IsZero() {
		return b.parent
	}
	if !b.used {
		b.used = true
		if b.own {
			return b.parent
		}
	}
	return b.deadlined()
}

// many returns the context of a call that writes or deletes many keys
// through be (backend.SetMulti, backend.DeleteMulti): next if be batches
// them itself (one bounded call), else the call's deadline, since the
// fallback makes one backend call per key.
func (b *bound) many(be backend.Backend) context.Context {
	// A wrapper (a Tool's plugin, Wrap) has the method whether or not
	// the backend under it batches: only a backend's own counts.
	if _, ok := be.(backend.MultiWriter); ok {
		if _, wrapper := be.(backend.Handler); !wrapper {
			return b.next()
		}
	}
	b.used = true
	return b.next()
}

// deadlined returns the caller's context bounded by the call's deadline,
// deriving it the first time.
func (b *bound) deadlined() context.Context {
	if b.timeout <= 0 || !b.pausedAt.IsZero() {
		return b.parent
	}
	if b.ctx == nil {
		b.begin()
		dl, _ := b.deadline()
		b.ctx, b.cancel = context.WithDeadline(b.parent, dl)
	}
	return b.ctx
}

// deadline returns the call's deadline, if it has one now (not while
// paused).
func (b *bound) deadline() (time.Time, bool) {
	if b.timeout <= 0 || b.start.IsZero() || !b.pausedAt.IsZero() {
		return time.Time{}, false
	}
	return b.start.Add(b.timeout + b.excluded), true
}

// done returns a channel closed when the call's time is up or the caller's
// context ends.
func (b *bound) done() <-chan struct{} { return b.deadlined().Done() }

// pause stops counting the call's time (GetOrLoad's load); resume starts
// again. Backend calls made in between are bounded by the backend only.
func (b *bound) pause() {
	if b.start.IsZero() || !b.pausedAt.IsZero() {
		return
	}
	b.pausedAt = time.Now()
	b.end()
	b.ctx, b.cancel = nil, nil
}

// resume ends a pause.
func (b *bound) resume() {
	if !b.pausedAt.IsZero() {
		b.excluded += time.Since(b.pausedAt)
		b.pausedAt = time.Time{}
	}
}

// end releases the derived context; every Dict call that makes a bound
// defers it.
func (b *bound) end() {
	if b.cancel != nil {
		b.cancel()
	}
}

// check returns err, or a *timeoutError wrapping it if err is the call's
// deadline running out (rather than the caller's ctx ending, or the
// backend's own timeout).
func (b *bound) check(err error) error {
	if b.ctx == nil || b.parent.Err() != nil {
		return err
	}
	return b.timedOut(b.ctx, err)
}

// timedOut returns err, or a *timeoutError wrapping it if err is ctx, a
// context bounded by the call's deadline, running out.
func (b *bound) timedOut(ctx context.Context, err error) error {
	if err == nil {
		return err
	}
	if ctx.Err() == nil {
		// A backend may see the deadline pass (a socket's) a hair before
		// ctx's timer says so.
		dl, ok := ctx.Deadline()
		if !ok || time.Now().Before(dl) {
			return err
		}
		if pdl, ok := b.parent.Deadline(); ok && pdl.Equal(dl) {
			// ctx's deadline is the caller's (sooner than the call's),
			// not the call's: as check says once the caller's ctx
			// reports it.
			return err
		}
	}
	var te *timeoutError
	if errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &timeoutError{timeout: b.timeout, err: err}
}

// detached returns the context of a backend call that the caller's ctx
// ending must not cut short (Update's write, which carries other callers'
// changes too): the caller's values without its cancellation or deadline,
// bounded by the call's deadline if it has one. An error of the call goes
// through timedOut with this context.
func (b *bound) detached() (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(b.parent)
	if dl, ok := b.deadline(); ok {
		return context.WithDeadline(ctx, dl)
	}
	return ctx, func() {}
}

// timeoutError is the error of a Dict call that ran out of its timeout
// (WithTimeout) in a backend call after the first.
type timeoutError struct {
	timeout time.Duration
	err     error // the backend's
}

// Error says that the call ran out of its timeout, and why.
func (e *timeoutError) Error() string {
	return fmt.Sprintf("the call did not end within its timeout of %v: %v", e.timeout, e.err)
}

// Unwrap returns ErrUnavailable (the backend did not answer in time) and
// the backend's error, which wraps context.DeadlineExceeded.
func (e *timeoutError) Unwrap() []error { return []error{backend.ErrUnavailable, e.err} }

// expired returns the error of a call whose time ran out while it waited
// (doing what says): the cause of the caller's context if it ended, else
// a *timeoutError.
func (b *bound) expired(doing string) error {
	if b.parent.Err() != nil {
		return context.Cause(b.parent)
	}
	return &timeoutError{timeout: b.timeout, err: fmt.Errorf("%s: %w", doing, context.DeadlineExceeded)}
}
