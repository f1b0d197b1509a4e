package memdict

import (
	"context"
	"errors"
)

// Observing a Dict.
//
// An Observer set with WithObserver is told when each operation of the
// Dict starts and how it ended, and hands the operation the context it
// continues with: the backend calls of the operation (and, in GetOrLoad,
// the loader) see that context, so that a trace span the Observer starts
// is the parent of their spans. Package github.com/memdict/memdict/otel
// implements an Observer with OpenTelemetry. Without one, the only cost
// is a nil check per operation.

// Observer watches the operations of a Dict (WithObserver).
type Observer interface {
	// Start is called when an operation starts, with the caller's
	// context (context.Background for Get, Put and Delete). It returns
	// the context the operation continues with, which must carry ctx's
	// values, deadline and cancellation, and a function that the Dict
	// calls exactly once, with the outcome, when the operation returns.
	// Start and the function must be safe for concurrent use, and
	// quick: they run on the caller's goroutine (for "refresh", on the
	// goroutine of the background reload, where a panic of theirs is
	// recovered and reported with ErrLoaderPanicked).
	Start(ctx context.Context, op Operation) (context.Context, func(Outcome))
}

// Operation describes an operation of a Dict to an Observer.
type Operation struct {
	// Name is the operation: "get" (Get, Lookup, and Counters.Get),
	// "getmulti", "put" (Put, Store, Counters.Set), "putmulti", "add",
	// "delete" (Delete, Remove), "touch", "update", "getorload",
	// "refresh" (GetOrLoad's reload of a stale or soon stale entry, in
	// the background), "incr" (Counters.Add, Inc, Dec), "invalidate",
	// "clear" or "commit" (Tx.Commit).
	Name string
	// Prefix is the Dict's key prefix.
	Prefix string
	// Key is the Dict key of an operation on one key, "" for the
	// others.
	Key string
	// Keys is the number of distinct keys the operation is about: 1 for
	// an operation on one key, 0 for Clear.
	Keys int
}

// Outcome is how an operation of a Dict ended, for an Observer.
type Outcome struct {
	// Result is "hit" or "miss" for get and getorload (a miss of
	// getorload was loaded, by this caller or another it waited for);
	// "not_stored" for an add that found a value; "not_found" for a
	// delete or touch of an absent key; "error" for an operation that
	// failed; "ok" otherwise. A getmulti or putmulti that failed for some
	// keys only is an "error" too.
	Result string
	// Err is the error the operation returned (nil for "hit", "miss",
	// "ok" and "not_stored").
	Err error
	// NearHits and NearMisses count the keys the near cache answered,
	// and those it passed on to the backend (WithNearCache; 0 without).
	NearHits, NearMisses int
}

// WithObserver makes the Dict tell o of each of its operations (see
// Observer). The default is none. Iterating with Keys and All is not
// observed.
func WithObserver(o Observer) Option {
	return func(opts *options) error { opts.observer = o; return nil }
}

// observation is one observed operation: the end function and what the
// operation's internals found on the way (near-cache hits and misses, a
// hit of GetOrLoad), which they note through the context.
type observation struct {
	end                  func(Outcome)
	nearHits, nearMisses int
	hit                  bool
	err                  error // the failure of a background refresh
}

// obsKey is the context key of the observation in progress.
type obsKey struct{}

// observe starts the observation of an operation of d, which must have
// an Observer, and returns the context to continue with.
func (d *Dict[V]) observe(ctx context.Context, name, key string, keys int) (context.Context, *observation) {
	if ctx == nil {
		ctx = context.Background()
	}
	ob := &observation{}
	ctx, ob.end = d.obs.Start(ctx, Operation{Name: name, Prefix: d.prefix, Key: key, Keys: keys})
	if ob.end == nil {
		ob.end = func(Outcome) {}
	}
	return context.WithValue(ctx, obsKey{}, ob), ob
}

// observing returns the observation ctx carries, if d is observed.
func (d *Dict[V]) observing(ctx context.Context) *observation {
	if d.obs == nil || ctx == nil {
		return nil
	}
	ob, _ := ctx.Value(obsKey{}).(*observation)
	return ob
}

// noteNear records a near-cache hit or miss in the observation of ctx.
func (d *Dict[V]) noteNear(ctx context.Context, hits, misses int) {
	if ob := d.observing(ctx); ob != nil {
		ob.nearHits += hits
		ob.nearMisses += misses
	}
}

// done ends the observation with the result and error given.
func (ob *observation) done(result string, err error) {
	if err != nil && result != "not_found" {
		result = "error"
	}
	ob.end(Outcome{Result: result, Err: err, NearHits: ob.nearHits, NearMisses: ob.nearMisses})
}

// okOr returns "ok", or "error" if err is not nil.
func okOr(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// hitOr returns "hit" if found, else "miss".
func hitOr(found bool) string {
	if found {
		return "hit"
	}
	return "miss"
}

// notFoundOr returns "not_found" if err says the key was absent, else
// okOr(err).
func notFoundOr(err error) string {
	if err != nil && errors.Is(err, ErrNotFound) {
		return "not_found"
	}
	return okOr(err)
}
