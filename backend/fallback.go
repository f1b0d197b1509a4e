package backend

import (
	"context"
	"iter"
	"sync"
	"time"
)

// Using the optional abilities.
//
// The functions below are the one place where memdict decides what to do
// when a backend lacks an optional ability, as database/sql's helpers do
// for driver interfaces: each asks be for the ability with Do, and falls
// back when the answer is an error wrapping ErrNotSupported (see
// NotSupported). memdict's Dict and Tx, the memdict command and the admin
// page all call them, so a backend behaves the same whichever of them uses
// it. Since the answer is given per call, a wrapper whose backend changes
// (a Tool's plugin) is followed at once. A wrapper around a Backend is
// built with Wrap (see Middleware), which passes every ability on.
//
// The rule: writing and deleting many keys always work (one call per key
// when the backend cannot batch them); listing keys, server statistics,
// flushing and pinging need the ability, and without it return an error
// wrapping ErrNotSupported that names what was asked ("listing keys",
// "server statistics", "flush", "ping"). Ping has no fallback: a backend
// that answers a Get may be a wrapper or a local store answering for a
// server it cannot check, so only a Pinger can say that its servers answer.
// Timeout, without a Timeouter, is 0: no bound is known.

// fallbackParallel is how many per-key calls SetMulti and DeleteMulti run
// at once on a backend without MultiWriter.
const fallbackParallel = 16

// SetMulti stores every item as Set does, trying every item even when
// some fail, with the same error rules as MultiWriter.SetMulti: nil if all
// were stored, a *MultiError naming each key that was not, or another
// error when the outcome of every key is unknown. It uses be's MultiWriter
// when be has one (a few round trips), else one Set per item, several at a
// time. No items: nil, and no call.
func SetMulti(ctx context.Context, be Backend, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := Do(ctx, be, Call{Op: OpSetMulti, Items: items}).Err; !NotSupported(err) {
		return err
	}
	return inParallel(len(items), func(lo, hi int) error { return SetEach(ctx, be, items[lo:hi]) })
}

// DeleteMulti removes every key as Delete does, with the rules of
// SetMulti: a key that was absent is a failure wrapping ErrNotFound in the
// *MultiError. It uses be's MultiWriter when be has one, else one Delete
// per key, several at a time.
func DeleteMulti(ctx context.Context, be Backend, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := Do(ctx, be, Call{Op: OpDeleteMulti, Keys: keys}).Err; !NotSupported(err) {
		return err
	}
	return inParallel(len(keys), func(lo, hi int) error { return DeleteEach(ctx, be, keys[lo:hi]) })
}

// SetEach stores items one after the other with be.Set, trying every item
// even when some fail, and returns nil or a *MultiError naming each item
// that failed. It is SetMulti's fallback, and the MultiWriter.SetMulti of a
// driver that has no batched form of its own (the memory backend).
func SetEach(ctx context.Context, be Backend, items []Item) error {
	var me MultiError
	for _, it := range items {
		if err := be.Set(ctx, it); err != nil {
			me.Errors = append(me.Errors, KeyError{Key: it.Key, Err: err})
		}
	}
	if len(me.Errors) > 0 {
		return &me
	}
	return nil
}

// DeleteEach removes keys one after the other with be.Delete, as SetEach
// stores items; an absent key is a failure wrapping ErrNotFound.
func DeleteEach(ctx context.Context, be Backend, keys []string) error {
	var me MultiError
	for _, k := range keys {
		if err := be.Delete(ctx, k); err != nil {
			me.Errors = append(me.Errors, KeyError{Key: k, Err: err})
		}
	}
	if len(me.Errors) > 0 {
		return &me
	}
	return nil
}

// inParallel splits [0, n) into at most fallbackParallel runs, calls
// each(lo, hi) for every run at once, and merges the *MultiErrors they
// return, in key order.
func inParallel(n int, each func(lo, hi int) error) error {
	runs := min(n, fallbackParallel)
	if runs == 1 {
		return each(0, n)
	}
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for r := range runs {
		wg.Go(func() { errs[r] = each(r*n/runs, (r+1)*n/runs) })
	}
	wg.Wait()
	var me MultiError
	for _, err := range errs {
		if kes, ok := KeyErrors(err); ok {
			me.Errors = append(me.Errors, kes...)
		}
	}
	if len(me.Errors) > 0 {
		return &me
	}
	return nil
}

// Keys yields the live keys of be that start with prefix, as Lister.Keys
// does. Without a Lister it yields one ("", err) pair, err wrapping
// ErrNotSupported. The backend is asked when the iteration starts.
func Keys(ctx context.Context, be Backend, prefix string) iter.Seq2[string, error] {
	return keysOf(ctx, be, prefix)
}

// keysOf is Keys: the OpKeys call is made when the iteration starts, and
// its failure to start is yielded as a final ("", err).
func keysOf(ctx context.Context, be Backend, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		r := Do(ctx, be, Call{Op: OpKeys, Prefix: prefix})
		if r.Err != nil {
			yield("", r.Err)
			return
		}
		if r.Keys == nil {
			return
		}
		for k, err := range r.Keys {
			if !yield(k, err) {
				return
			}
		}
	}
}

// ServerStats returns the statistics of be's servers, as
// StatsReporter.ServerStats does, or an error wrapping ErrNotSupported
// without a StatsReporter.
func ServerStats(ctx context.Context, be Backend) ([]NodeStats, error) {
	r := Do(ctx, be, Call{Op: OpServerStats})
	return r.Stats, r.Err
}

// Flush removes every item of be, as Flusher.Flush does, or returns an
// error wrapping ErrNotSupported without a Flusher. Flush affects every
// user of the server.
func Flush(ctx context.Context, be Backend) error {
	return Do(ctx, be, Call{Op: OpFlush}).Err
}

// Ping returns nil if every server of be answers, as Pinger.Ping does, or
// an error wrapping ErrNotSupported without a Pinger (see the rule above:
// there is no fallback).
func Ping(ctx context.Context, be Backend) error {
	return Do(ctx, be, Call{Op: OpPing}).Err
}

// Timeout returns the bound of one call of be (Timeouter.Timeout), or 0
// if be does not say: its calls are then bounded only by their contexts.
// Through a wrapper (a Handler, or a backend with an Unwrap() Backend
// method) it is the timeout of the backend under it, asked at each call,
// without I/O.
func Timeout(be Backend) time.Duration {
	return max(Do(context.Background(), be, Call{Op: OpTimeout}).Timeout, 0)
}

// unsupported is the error of asking for an ability a backend lacks:
// `<what>: backend: not supported`, for the caller to prefix with its own
// name.
func unsupported(what string) error { return &unsupportedError{what} }

// unsupportedError is the error of a backend that lacks the ability
// named what; it wraps ErrNotSupported.
type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string { return e.what + ": " + ErrNotSupported.Error() }

func (e *unsupportedError) Unwrap() error { return ErrNotSupported }
