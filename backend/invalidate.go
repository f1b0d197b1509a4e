package backend

import "context"

// Invalidator is implemented by backends whose servers tell a client when
// keys it may hold copies of change: Redis's server-assisted client-side
// caching (CLIENT TRACKING). memdict's near cache (memdict.WithNearCache)
// uses it to drop local copies of keys that another client wrote; over a
// backend without it, a near cache bounds its staleness by time only.
type Invalidator interface {
	// Track starts reporting the changes of every key that begins with
	// prefix: fn receives the changed keys as the server reports them
	// (a write, a delete, an expiry or an eviction by anyone, this
	// process included), or an Invalidation with All set when every key
	// must be taken as changed (the server was flushed, the connection
	// that carries the reports was lost, or tracking was set up anew).
	//
	// Track does no I/O of its own: it registers prefix and returns at
	// once; the backend sets tracking up in the background. Until the
	// server has confirmed it, and again while the connection carrying the
	// reports is down, the returned Tracking's Live is false: keys read
	// then may change unreported. fn is called from one goroutine of the
	// backend, never concurrently with itself for one Tracking; it must be
	// quick and must not call the backend.
	//
	// Track returns an error wrapping ErrNotSupported if the server
	// cannot track keys (the backend then knows it before any I/O, or
	// Live stays false), and ErrClosed after Close. Close stops every
	// Tracking.
	Track(ctx context.Context, prefix string, fn func(Invalidation)) (Tracking, error)
}

// Invalidation is one report of changed keys from an Invalidator.
type Invalidation struct {
	// Keys are the backend keys that changed.
	Keys []string
	// All says every key under the tracked prefix may have changed: drop
	// every copy. Keys is then empty.
	All bool
}

// Tracking is one registration made by Invalidator.Track. Its methods are
// safe for concurrent use.
type Tracking interface {
	// Live reports whether changes are being reported now. A key read
	// while Live is true will have its next change reported; one read
	// while it is false may not.
	Live() bool
	// Supported reports false once the backend knows its server cannot
	// track keys (as miniredis cannot); Live then stays false.
	Supported() bool
	// Stop ends the registration; fn is not called after Stop returns.
	Stop()
}

// Track starts reporting the changes of the keys of be under prefix to fn,
// through be's Invalidator, as Invalidator.Track does; without one it
// returns an error wrapping ErrNotSupported.
func Track(ctx context.Context, be Backend, prefix string, fn func(Invalidation)) (Tracking, error) {
	r := Do(ctx, be, Call{Op: OpTrack, Prefix: prefix, OnInvalidation: fn})
	return r.Tracking, r.Err
}
