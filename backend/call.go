package backend

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// Calls as values.
//
// Every method of a Backend, and of each optional ability, can be described
// by a Call value and its outcome by a Result. Do performs a Call on any
// Backend: on a driver, it calls the method or ability the Call names, or
// reports that the driver lacks it (an error wrapping ErrNotSupported); on a
// wrapper (a Handler: the backends Wrap returns, the Tool's plugin
// backends), it hands the Call to the wrapper, which decides what to do
// with it. This is the one way in which memdict reaches the abilities of a
// backend through any number of wrappers, and across a Tool's plugin
// swaps: a wrapper passes every Call on, abilities included, and only the
// innermost driver's method set decides what is supported, at the time of
// the call.

// Op names a Backend method or optional ability, in a Call.
type Op uint8

// The operations. Their String form is the lower-case name used in
// metrics and fault injection ("get", "cas", "setmulti", ...).
const (
	OpGet            Op = iota + 1 // Backend.Get
	OpGetMulti                     // Backend.GetMulti
	OpSet                          // Backend.Set
	OpAdd                          // Backend.Add
	OpCompareAndSwap               // Backend.CompareAndSwap
	OpDelete                       // Backend.Delete
	OpTouch                        // Backend.Touch
	OpIncrement                    // Backend.Increment
	OpClose                        // Backend.Close
	OpKeys                         // Lister.Keys
	OpServerStats                  // StatsReporter.ServerStats
	OpFlush                        // Flusher.Flush
	OpPing                         // Pinger.Ping
	OpSetMulti                     // MultiWriter.SetMulti
	OpDeleteMulti                  // MultiWriter.DeleteMulti
	OpGetLease                     // Leaser.GetLease
	OpReleaseLease                 // Leaser.ReleaseLease
	OpMarkStale                    // Leaser.MarkStale
	OpTryLock                      // Locker.TryLock
	OpUnlock                       // Locker.Unlock
	OpTrack                        // Invalidator.Track
	OpServerFor                    // Locator.ServerFor
	OpTimeout                      // Timeouter.Timeout
	OpDescribe                     // Describer.Describe
	OpGetTTL                       // TTLReader.GetTTL

	numOps // one past the last
)

// opInfo is what the package knows of each Op: its name, for an optional
// ability what a caller asked for ("listing keys"), which the error of a
// backend without it names, and whether it is a property (see
// Op.Property).
var opInfo = [numOps]struct {
	name, ability string
	property      bool
}{
	OpGet:            {name: "get"},
	OpGetMulti:       {name: "getmulti"},
	OpSet:            {name: "set"},
	OpAdd:            {name: "add"},
	OpCompareAndSwap: {name: "cas"},
	OpDelete:         {name: "delete"},
	OpTouch:          {name: "touch"},
	OpIncrement:      {name: "increment"},
	OpClose:          {name: "close"},
	OpKeys:           {name: "keys", ability: "listing keys"},
	OpServerStats:    {name: "stats", ability: "server statistics"},
	OpFlush:          {name: "flush", ability: "flush"},
	OpPing:           {name: "ping", ability: "ping"},
	OpSetMulti:       {name: "setmulti", ability: "writing many keys at once"},
	OpDeleteMulti:    {name: "deletemulti", ability: "deleting many keys at once"},
	OpGetLease:       {name: "getlease", ability: "leases"},
	OpReleaseLease:   {name: "releaselease", ability: "leases"},
	OpMarkStale:      {name: "markstale", ability: "leases"},
	OpTryLock:        {name: "trylock", ability: "locks"},
	OpUnlock:         {name: "unlock", ability: "locks"},
	OpTrack:          {name: "track", ability: "tracking changes"},
	OpServerFor:      {name: "serverfor", ability: "locating keys", property: true},
	OpTimeout:        {name: "timeout", ability: "a timeout of its calls", property: true},
	OpDescribe:       {name: "describe", ability: "describing itself", property: true},
	OpGetTTL:         {name: "getttl", ability: "reading TTLs"},
}

// unsupportedErrs holds, per optional ability, the error of a backend that
// lacks it: made once, so that asking a backend for an ability it lacks
// costs no allocation.
var unsupportedErrs = func() (errs [numOps]error) {
	for op, in := range opInfo {
		if in.ability != "" {
			errs[op] = unsupported(in.ability)
		}
	}
	return errs
}()

// String returns the operation's name ("get", "setmulti", ...), or
// "op(N)" for a value that names none.
func (op Op) String() string {
	if op > 0 && op < numOps {
		return opInfo[op].name
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// Optional reports whether op is an optional ability (Lister.Keys,
// MultiWriter.SetMulti, Leaser.GetLease, ...) rather than a method of
// Backend.
func (op Op) Optional() bool { return op > 0 && op < numOps && opInfo[op].ability != "" }

// Property reports whether op asks a property of the backend, which it
// answers without I/O (ServerFor, Timeout, Describe), rather than making a call: a wrapper
// answers it at once from the backend it wraps now, without opening a
// connection, waiting or injecting faults.
func (op Op) Property() bool { return op > 0 && op < numOps && opInfo[op].property }

// Ops returns every operation, in their numeric order.
func Ops() []Op {
	ops := make([]Op, 0, numOps-1)
	for op := OpGet; op < numOps; op++ {
		ops = append(ops, op)
	}
	return ops
}

// Call is one call of a Backend method or optional ability, described by
// value: the operation and its arguments. Only the fields the operation
// takes are set; the others are zero.
type Call struct {
	// Op is the operation.
	Op Op
	// Key is the key of Get, Delete, Touch, Increment, GetLease,
	// MarkStale, TryLock, Unlock, ServerFor and GetTTL, and the key of the lease
	// ReleaseLease gives up.
	Key string
	// Keys are the keys of GetMulti and DeleteMulti.
	Keys []string
	// Prefix is the prefix of Keys and Track.
	Prefix string
	// Item is the item written by Set, Add and CompareAndSwap.
	Item Item
	// Items are the items written by SetMulti.
	Items []Item
	// TTL is the TTL of Touch, MarkStale and TryLock.
	TTL time.Duration
	// Delta is the delta of Increment.
	Delta int64
	// Token is the lock token of TryLock and Unlock.
	Token string
	// LeaseOptions are the options of GetLease.
	LeaseOptions LeaseOptions
	// Lease is the lease ReleaseLease gives up.
	Lease Lease
	// OnInvalidation is the function Track reports changes to.
	OnInvalidation func(Invalidation)
}

// Result is the outcome of a Call. Only the fields the operation returns
// are set, and Err.
type Result struct {
	// Item is the item Get (or GetTTL) read.
	Item Item
	// Private says that Item.Value, read by Get, or each Value of Items,
	// read by GetMulti, is the caller's own (the backend is a
	// PrivateReader whose reads are private): the caller may modify it.
	Private bool
	// Items are the items GetMulti found.
	Items map[string]Item
	// N is the new value of Increment.
	N uint64
	// OK is the outcome of TryLock and Unlock.
	OK bool
	// Lease is the lease GetLease handed out.
	Lease Lease
	// Stats are the statistics ServerStats returned.
	Stats []NodeStats
	// Keys yields the keys Keys lists, when Err is nil.
	Keys iter.Seq2[string, error]
	// Tracking is the registration Track made.
	Tracking Tracking
	// Addr is the server ServerFor named ("" if the backend cannot tell).
	Addr string
	// Timeout is the bound of one call Timeout said (0: none).
	Timeout time.Duration
	// Description is what Describe said (the zero Description if the
	// backend cannot tell).
	Description Description
	// Err is the error the call returned. A backend that lacks the
	// optional ability a Call names returns an error wrapping
	// ErrNotSupported (and not a *MultiError), having done nothing.
	Err error
}

// Handler is implemented by backends that take every call as a Call value:
// a wrapper, which hands each call on to the backend under it (the
// backends Wrap returns, the Tool's plugin backends). Do gives a Handler
// every Call, optional abilities included, instead of looking for the
// ability in its method set, so that a wrapper keeps every ability of the
// backend under it, and follows it when it changes.
//
// Handle must perform c as the Backend method or optional ability c.Op
// names would, with the same contract, and return its outcome; a Call for
// an ability that the backend under it lacks returns an error wrapping
// ErrNotSupported.
type Handler interface {
	Backend
	Handle(ctx context.Context, c Call) Result
}

// Do performs c on be and returns its outcome: through be's Handle if be
// is a Handler, else with be's method or optional ability c.Op names (Get
// for OpGet, Lister.Keys for OpKeys, ...). Over a backend that lacks the
// ability, the Result's Err wraps ErrNotSupported and names what was
// asked ("listing keys: backend: not supported"), and nothing was done.
//
// Do is the one place where memdict looks for an optional ability; the
// functions of this package that use one (SetMulti, TryLock, Keys, ...)
// call it, and fall back as they document when the ability is missing.
// For OpServerFor, which does no I/O, ctx is not used.
func Do(ctx context.Context, be Backend, c Call) Result {
	if h, ok := be.(Handler); ok {
		return h.Handle(ctx, c)
	}
	return dispatch(ctx, be, &c)
}

// NotSupported reports whether err says that a backend lacks the optional
// ability a call asked for: it wraps ErrNotSupported and is not a
// *MultiError (whose keys may each have failed for their own reasons).
// Such a call did nothing, so a caller may fall back on other means.
func NotSupported(err error) bool {
	if _, ok := err.(*unsupportedError); ok {
		return true // the common case, without walking the error's tree
	}
	if err == nil || !errors.Is(err, ErrNotSupported) {
		return false
	}
	_, multi := KeyErrors(err)
	return !multi
}

// dispatch performs c with the methods of be, which is not a Handler. It
// takes c by pointer, which does not escape, to spare a copy.
func dispatch(ctx context.Context, be Backend, c *Call) Result {
	switch c.Op {
	case OpGet:
		it, err := be.Get(ctx, c.Key)
		r := Result{Item: it, Err: err}
		if err == nil {
			if pr, ok := be.(PrivateReader); ok {
				r.Private = pr.PrivateReads()
			}
		}
		return r
	case OpGetMulti:
		items, err := be.GetMulti(ctx, c.Keys)
		r := Result{Items: items, Err: err}
		if pr, ok := be.(PrivateReader); ok {
			r.Private = pr.PrivateReads()
		}
		return r
	case OpSet:
		return Result{Err: be.Set(ctx, c.Item)}
	case OpAdd:
		return Result{Err: be.Add(ctx, c.Item)}
	case OpCompareAndSwap:
		return Result{Err: be.CompareAndSwap(ctx, c.Item)}
	case OpDelete:
		return Result{Err: be.Delete(ctx, c.Key)}
	case OpTouch:
		return Result{Err: be.Touch(ctx, c.Key, c.TTL)}
	case OpIncrement:
		n, err := be.Increment(ctx, c.Key, c.Delta)
		return Result{N: n, Err: err}
	case OpClose:
		return Result{Err: be.Close()}
	case OpKeys:
		if l, ok := be.(Lister); ok {
			return Result{Keys: l.Keys(ctx, c.Prefix)}
		}
	case OpServerStats:
		if s, ok := be.(StatsReporter); ok {
			st, err := s.ServerStats(ctx)
			return Result{Stats: st, Err: err}
		}
	case OpFlush:
		if f, ok := be.(Flusher); ok {
			return Result{Err: f.Flush(ctx)}
		}
	case OpPing:
		if p, ok := be.(Pinger); ok {
			return Result{Err: p.Ping(ctx)}
		}
	case OpSetMulti:
		if mw, ok := be.(MultiWriter); ok {
			return Result{Err: mw.SetMulti(ctx, c.Items)}
		}
	case OpDeleteMulti:
		if mw, ok := be.(MultiWriter); ok {
			return Result{Err: mw.DeleteMulti(ctx, c.Keys)}
		}
	case OpGetLease:
		if l, ok := be.(Leaser); ok {
			lease, err := l.GetLease(ctx, c.Key, c.LeaseOptions)
			return Result{Lease: lease, Err: err}
		}
	case OpReleaseLease:
		if l, ok := be.(Leaser); ok {
			return Result{Err: l.ReleaseLease(ctx, c.Lease)}
		}
	case OpMarkStale:
		if l, ok := be.(Leaser); ok {
			return Result{Err: l.MarkStale(ctx, c.Key, c.TTL)}
		}
	case OpTryLock:
		if l, ok := be.(Locker); ok {
			won, err := l.TryLock(ctx, c.Key, c.Token, c.TTL)
			return Result{OK: won, Err: err}
		}
	case OpUnlock:
		if l, ok := be.(Locker); ok {
			done, err := l.Unlock(ctx, c.Key, c.Token)
			return Result{OK: done, Err: err}
		}
	case OpTrack:
		if inv, ok := be.(Invalidator); ok {
			tr, err := inv.Track(ctx, c.Prefix, c.OnInvalidation)
			return Result{Tracking: tr, Err: err}
		}
	case OpServerFor:
		return property(be, c)
	case OpTimeout:
		return property(be, c)
	case OpDescribe:
		return property(be, c)
	case OpGetTTL:
		if t, ok := be.(TTLReader); ok {
			it, err := t.GetTTL(ctx, c.Key)
			return Result{Item: it, Err: err}
		}
	default:
		return Result{Err: fmt.Errorf("backend: %v: %w", c.Op, ErrNotSupported)}
	}
	return Result{Err: unsupportedErrs[c.Op]}
}

// property answers c, which asks a property (ServerFor, Timeout), on a
// backend that is not a Handler: from its own ability, or the one of the
// backend it wraps through an Unwrap() Backend method.
func property(be Backend, c *Call) Result {
	for range 16 { // a bound against a wrapper that returns itself
		if l, ok := be.(Locator); ok && c.Op == OpServerFor {
			return Result{Addr: l.ServerFor(c.Key)}
		}
		if t, ok := be.(Timeouter); ok && c.Op == OpTimeout {
			return Result{Timeout: t.Timeout()}
		}
		if d, ok := be.(Describer); ok && c.Op == OpDescribe {
			return Result{Description: d.Describe()}
		}
		switch b := be.(type) {
		case Handler:
			return b.Handle(context.Background(), *c)
		case interface{ Unwrap() Backend }:
			be = b.Unwrap()
			continue
		}
		break
	}
	return Result{Err: unsupportedErrs[c.Op]}
}
