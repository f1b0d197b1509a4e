// Package backend defines the byte-level storage interface under memdict's
// typed Dict, the errors every driver reports, and a registry that opens
// drivers from URLs.
//
// A Backend stores opaque []byte values under already-encoded keys. It knows
// nothing of Dicts, codecs or generics: the root memdict package builds keys
// and encodes values, then hands them to a Backend. Drivers live in
// sub-packages (backend/memory, backend/memcached, backend/redis) and register
// a URL scheme in their init function, so that a program opens a backend with
//
//	import _ "github.com/memdict/memdict/backend/memory"
//
//	be, err := backend.Open(ctx, "mem://?max_bytes=67108864")
//
// Each method's contract, including which sentinel error it returns when, is
// written on the Backend interface. The conformance suite in
// github.com/memdict/memdict/testing/backendtest checks a driver against it.
//
// Optional abilities (listing keys, leases, locks, batched writes, server
// invalidation, ...) are small extra interfaces that drivers implement;
// callers use them through this package's functions, which find them with
// Do and fall back when a backend lacks them. A wrapper of a backend (for
// metrics, logs, traces, fault injection, value transforms) is built with
// Wrap from Middleware: functions that see every call, abilities included,
// as a Call value, so that the wrapper keeps every ability of what it
// wraps:
//
//	be = backend.Wrap(be, func(next backend.CallFunc) backend.CallFunc {
//		return func(ctx context.Context, c backend.Call) backend.Result {
//			start := time.Now()
//			r := next(ctx, c)
//			observe(c.Op, time.Since(start), r.Err)
//			return r
//		}
//	})
package backend

import (
	"context"
	"errors"
	"iter"
	"time"
)

// Sentinel errors. Drivers return them, or errors that wrap them (keeping
// their client library's original error in the Unwrap chain too), so that
// callers test with errors.Is.
var (
	// ErrNotFound: the key does not exist or has expired.
	ErrNotFound = errors.New("backend: not found")
	// ErrNotStored: a conditional write (Add) did not happen because its
	// condition failed; for Add, the key already exists.
	ErrNotStored = errors.New("backend: not stored")
	// ErrCASConflict: CompareAndSwap lost a race: the item was written or
	// touched by someone else since the CAS token was read.
	ErrCASConflict = errors.New("backend: compare-and-swap conflict")
	// ErrInvalidKey: the key is empty, too long or holds bytes the backend
	// cannot carry (for memcached: spaces and control bytes).
	ErrInvalidKey = errors.New("backend: invalid key")
	// ErrValueTooLarge: the value is larger than the backend accepts. Nothing
	// was written and the previous value, if any, is untouched.
	ErrValueTooLarge = errors.New("backend: value too large")
	// ErrNotNumeric: Increment was called on a value that is not a decimal
	// unsigned 64-bit number.
	ErrNotNumeric = errors.New("backend: value is not a decimal number")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("backend: closed")
	// ErrUnavailable: the server could not be reached or is marked down; the
	// operation may succeed later.
	ErrUnavailable = errors.New("backend: server unavailable")
	// ErrNotSupported: the backend lacks an optional ability.
	ErrNotSupported = errors.New("backend: not supported")
	// ErrInvalidTTL: a TTL is negative.
	ErrInvalidTTL = errors.New("backend: invalid TTL")
	// ErrWriteRefused: the server refused a write because this client may
	// not write there: a read-only replica (Redis READONLY) or a user whose
	// ACL denies the write (Redis NOPERM on a write). Nothing was written;
	// reads may still succeed. It is wrapped together with whatever else
	// the driver reports (backend/redis: ErrAuth for NOPERM).
	ErrWriteRefused = errors.New("backend: write refused")
)

// Item is one stored entry.
type Item struct {
	// Key is the backend key, already encoded by the caller.
	Key string
	// Value is the stored bytes.
	//
	// On writes (Set, Add, CompareAndSwap) the backend takes ownership of
	// Value, as bytes.NewBuffer does of its argument: the caller must not
	// modify it after the call. On reads (Get, GetMulti) Value is read-only
	// and stays valid: it may share memory with the backend's storage, but
	// neither the backend nor the caller ever modifies it (a backend never
	// reuses a buffer it has returned), so the caller may keep it.
	Value []byte
	// TTL is the time to live on writes (Set, Add, CompareAndSwap; Touch
	// takes one as an argument). This is the TTL rule of every backend, which
	// the drivers' documentation refers to:
	//
	//   - 0 means the item does not expire.
	//   - A negative TTL is rejected with ErrInvalidTTL, and nothing is
	//     written.
	//   - A positive TTL is rounded up, never down, to the backend's
	//     resolution, so that an item does not expire before its TTL has
	//     passed (it may still be evicted sooner): backend/memory keeps
	//     nanoseconds, backend/redis milliseconds, backend/memcached whole
	//     seconds.
	//   - Increment keeps the item's TTL; Touch replaces it.
	//
	// Reads leave it zero.
	TTL time.Duration
	// CAS is the compare-and-swap token. Reads set it; it is never 0 and
	// changes on every write of the key. CompareAndSwap requires the token
	// of an earlier read.
	CAS uint64
	// Flags are memcached's client flags: 32 bits stored beside the value,
	// which the server keeps and returns but never reads. Python's
	// memcached clients (python-memcached, pymemcache) say with them what
	// the value's bytes are (package codec/python); memdict's own values
	// carry 0. Writes (Set, Add, CompareAndSwap, SetMulti) store them and
	// reads (Get, GetMulti, GetLease) return them; Increment and Touch
	// keep them.
	//
	// backend/memcached and backend/memory carry them. backend/redis does
	// not: it reads every item with Flags 0, and refuses a write with
	// non-zero Flags with an error wrapping ErrNotSupported, writing
	// nothing, rather than lose them.
	Flags uint32
	// Stale, set by Get, says the server holds the item marked stale by
	// MarkStale (a Leaser's server-side mark: memcached's meta protocol,
	// whose reads report it with the X flag) and not written since. A
	// rewrite of the item (CompareAndSwap, Set) clears the mark on the
	// server; a caller that means to keep the item stale must say so in
	// the value it writes (memdict's Dict.Touch does, in its envelope).
	// Backends without a Leaser never set it; GetMulti leaves it false
	// (over memcached it reads with the text protocol, which does not
	// report the mark), as GetLease does, which reports it in
	// Lease.Stale. Writes ignore it.
	Stale bool
}

// Backend is a byte-level key/value store with memcached's semantics.
//
// Implementations must be safe for concurrent use by multiple goroutines.
// Every method that does I/O takes a context first: a method whose context is
// done returns promptly with an error that wraps ctx.Err(). After Close every
// method returns ErrClosed.
//
// Keys handed to a Backend are already encoded by memdict: non-empty, at
// most 250 bytes unless a Dict was configured otherwise, without spaces or
// control bytes. A backend that cannot carry a key returns ErrInvalidKey
// rather than altering it.
type Backend interface {
	// Get returns the item stored under key, with its Value and CAS token.
	// A missing or expired key gives ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)

	// GetMulti returns the items found among keys, keyed by key. Missing
	// keys are simply absent from the map; that is not an error. If only
	// some keys could not be read (one server of several is down, or has
	// not answered when the context ends), it returns what was found
	// elsewhere and a *MultiError naming each key that could not be read,
	// with its cause; keys it does not name were read (found or missing).
	// A key not read because the context ended (its deadline, a
	// cancellation) while other servers had answered has a cause wrapping
	// ctx's error (context.DeadlineExceeded or context.Canceled), and
	// naming its server where the backend knows it: a caller's deadline no
	// longer than the backend's timeout, the usual case, does not cost
	// what the servers that answered sent. Any other error means the
	// lookup as a whole failed: the context was done when the call began,
	// or ended before any server answered (always so with a single
	// server), the backend is closed.
	GetMulti(ctx context.Context, keys []string) (map[string]Item, error)

	// Set stores item unconditionally. It returns ErrValueTooLarge (and
	// stores nothing, leaving any previous value in place) if the value is
	// larger than the backend accepts.
	Set(ctx context.Context, item Item) error

	// Add stores item only if its key is absent (or expired); if the key
	// holds a live value it returns ErrNotStored and changes nothing.
	Add(ctx context.Context, item Item) error

	// CompareAndSwap stores item only if the key still holds the version
	// whose token is item.CAS. It returns ErrCASConflict if the key was
	// written or deleted-and-re-added since, and ErrNotFound if the key is
	// absent. Whether a Touch in between counts as a write is the
	// backend's: memcached keeps the token on touch, the Redis driver
	// changes it.
	CompareAndSwap(ctx context.Context, item Item) error

	// Delete removes key. It returns ErrNotFound if the key was absent.
	Delete(ctx context.Context, key string) error

	// Touch gives key a new TTL (0: never expires; see Item.TTL) without
	// changing its value. It returns ErrNotFound if the key is absent.
	Touch(ctx context.Context, key string, ttl time.Duration) error

	// Increment adds delta to the decimal unsigned 64-bit number stored
	// under key and returns the new value. A negative delta decrements; as
	// in memcached, a decrement stops at 0 and an increment wraps around at
	// 2^64. The key keeps its TTL. A missing key gives ErrNotFound; a value
	// that is not a decimal number gives ErrNotNumeric. After a decrement
	// memcached may pad the stored digits with trailing spaces; readers of
	// counters trim them.
	Increment(ctx context.Context, key string, delta int64) (uint64, error)

	// Close releases the backend's resources (connections, goroutines).
	// Calls after Close return ErrClosed; a second Close returns nil.
	Close() error
}

// Optional abilities. A backend implements the ones it can. Callers use
// them through this package's functions (SetMulti, DeleteMulti, Keys,
// ServerStats, Flush, Ping, TryLock, GetLease, Track, ServerFor, Timeout,
// Describe, ...), which find them with Do, as database/sql does for
// database/sql/driver's interfaces, and say in one place what happens
// without them. Do finds an
// ability in a driver's method set, and asks a wrapper (a Handler) for it
// at each call, so that no wrapper hides one.

// Lister is implemented by backends that can enumerate their keys.
type Lister interface {
	// Keys yields the live keys that start with prefix, each once, in no
	// particular order. A failure is yielded as a final ("", err) pair.
	Keys(ctx context.Context, prefix string) iter.Seq2[string, error]
}

// NodeStats are the statistics one server reports, as name/value pairs in
// the server's own vocabulary (memcached's "stats", Redis's INFO).
type NodeStats struct {
	// Addr names the server (host:port, or "memory").
	Addr string
	// Stats holds the server's counters and settings.
	Stats map[string]string
	// Err is set when this server could not be asked.
	Err error
}

// StatsReporter is implemented by backends that report server statistics.
type StatsReporter interface {
	// ServerStats returns one entry per server.
	ServerStats(ctx context.Context) ([]NodeStats, error)
}

// Flusher is implemented by backends that can drop every item they hold.
// It affects every user of the server, not only one Dict.
type Flusher interface {
	// Flush removes every item.
	Flush(ctx context.Context) error
}

// Pinger is implemented by backends that can check that their servers
// answer.
type Pinger interface {
	// Ping returns nil if every server answers, or an error naming the ones
	// that do not.
	Ping(ctx context.Context) error
}

// Timeouter is implemented by backends that bound each call by a timeout
// of their own (the memcached and Redis drivers' WithTimeout, URL
// parameter timeout). memdict bounds a Dict call that makes several
// backend calls (a namespace generation read and then the read, Update's
// read and compare-and-swap, ...) by the same timeout as a whole, unless
// memdict.WithTimeout says otherwise. Use it through the function Timeout.
type Timeouter interface {
	// Timeout returns the bound of one call: every call ends within it,
	// or by its context's deadline if that is sooner. 0 means none.
	Timeout() time.Duration
}

// PrivateReader is implemented by backends whose reads hand the caller a
// Value nobody else holds: Get returns a buffer made for that call, which
// the backend never keeps, reuses or shares (with its storage or with
// another caller). The caller may then modify it, so memdict returns it
// to a Dict[[]byte] caller without copying it. The same holds of the
// Values GetMulti returns: each is private, and none shares memory with
// another (values packed into one buffer are each capped at their end, so
// that appending to one cannot write into the next). A backend whose reads
// may share memory with its storage (the memory backend) must not
// implement it, or must return false.
//
// Through a wrapper (Wrap, a Tool's plugin) the answer belongs to each
// read, since the backend under the wrapper may change between calls: use
// GetPrivate, which says whether the Value it returns is private.
type PrivateReader interface {
	// PrivateReads reports whether the Values of Get and GetMulti are
	// private to the caller.
	PrivateReads() bool
}

// OrderedGetter is implemented by backends that can hand GetMulti's items
// over in the order of the keys asked, sparing the map GetMulti builds.
// It is a faster form of GetMulti, not an ability: memdict's Dict uses it
// over a backend that is not a wrapper (a Handler), and GetMulti
// otherwise, with the same outcome.
//
// GetMultiOrdered reads keys as GetMulti does and puts the items found in
// found, which the caller makes as long as keys: found[i] is the item of
// keys[i], or the zero Item (an empty Key) if it was not found or could
// not be read. found's length must equal keys', or it fails. Its error is
// GetMulti's: a *MultiError names the keys that could not be read while
// the others were (as when the context ends with some servers answered),
// and any other error may leave some items found.
//
// A type that embeds an OrderedGetter and changes what GetMulti does must
// change GetMultiOrdered too (or hide it), since a Dict calls the one it
// finds: as with any method promoted from an embedded type.
type OrderedGetter interface {
	GetMultiOrdered(ctx context.Context, keys []string, found []Item) error
}

// GetPrivate reads key as Get does and also reports whether the Value is
// private to the caller (the backend that read it is a PrivateReader
// whose reads are private), who may then modify it.
func GetPrivate(ctx context.Context, be Backend, key string) (Item, bool, error) {
	r := Do(ctx, be, Call{Op: OpGet, Key: key})
	return r.Item, r.Private, r.Err
}
