// Package memdict gives typed, dictionary-like access to a cache server.
//
// A Dict[V] is a dictionary of V values kept in a Backend — memcached, Redis,
// or the in-memory store — under a key prefix of its own:
//
//	be, _ := backend.Open(ctx, "memcached://127.0.0.1:11211")
//	counts, _ := memdict.New[int](be, "my_first_test")
//	n, _ := counts.Get("some_key") // a miss gives 0, false
//	counts.Put("some_key", n+1)
//
// It is the Go form of ERP5's Memcached Tool (getMemcachedDict). Like the
// original, a cache may lose any value at any time, and a Dict never stores
// a value behind your back: mutating a value you got from it changes nothing
// until you Put it again.
//
// Every operation comes in two tiers. The map-like tier — Get, Put, Delete —
// uses context.Background and, for Get, treats every failure as a miss
// (counted in Stats and passed to the WithErrorHandler function), as the
// original did. The full tier — Lookup, Store, Remove, Add, Touch, GetMulti,
// PutMulti — takes a context and returns errors, for code that must tell a
// miss from an outage.
//
// Every call, of either tier, ends within one timeout taken when it starts
// (WithTimeout; by default the backend's own, the timeout of one backend
// call), however many backend calls it makes: the namespace generation
// read, Update's read and compare-and-swap, GetOrLoad's read and fill (its
// loader's time aside). A call that runs out of it fails with an error
// wrapping ErrUnavailable.
//
// Values are encoded by a codec (MessagePack by default; see package codec);
// string and []byte values are stored as they are. Each stored value starts
// with a three-byte header naming its codec, so a value of the wrong type or
// codec, or one written by another program, is a clear ErrDecode, never a
// wrong value.
//
// Beyond the map, a Dict offers:
//
//   - Begin: a Tx (unit of work) that buffers puts and deletes, reads its
//     own writes and sends everything at Commit, reporting every key that
//     failed while writing all the others (ERP5's transactional dict).
//   - Update: an atomic read-modify-write with compare-and-swap.
//   - GetOrLoad: read-through caching with one load per key at a time
//     across every process sharing the backend (memcached's meta leases,
//     or a lock key), stale-while-revalidate (WithStaleWhileRevalidate),
//     negative caching (ErrNoValue) and Invalidate, which marks an entry
//     stale instead of deleting it. Values written with a TTL carry their
//     expiry, so stores that ignore TTLs never serve expired values.
//   - Clear: an O(1) clear of the Dict's prefix by a namespace generation.
//   - Keys and All: iterators over the live keys and values, on backends
//     that can list keys.
//   - WithNearCache: an in-process tier that answers hot keys without a
//     round trip, kept coherent by the Dict's own writes, by Redis's
//     server-assisted invalidation (CLIENT TRACKING), or by a maximum
//     staleness over memcached.
//   - Stats: counts and latency histograms per operation, and WithLogger
//     for failures (rate-limited); package metrics/prometheus exports
//     them. WithObserver tells an Observer of every operation: module
//     github.com/memdict/memdict/otel traces them with OpenTelemetry.
//   - codec.Zstd: compression of large values, which every reader
//     decompresses since each value's header says so.
//
// NewCounters gives atomic counters on the server's native increment.
//
// WithFormat(FormatERP5) makes a Dict read and write the entries of ERP5's
// Memcached Tool (its keys, python-memcached's pickled values), and
// FormatPython those of Python programs using python-memcached or
// pymemcache, so that a Go service shares a cache with them; what needs
// memdict's own layout (Clear, Keys, near caches, ...) is not available
// there.
//
// Keys are any Go strings — the empty string and invalid UTF-8 included. A
// Dict maps (site id, prefix, key) one-to-one onto memcached-safe backend
// keys; keys too long for the backend are shortened to a SHA-256-based hash
// and the original key is stored beside the value and checked on every read.
package memdict

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/compress"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/valuepool"
)

// valueKind says how V is encoded.
type valueKind uint8

const (
	kindCodec  valueKind = iota // through the codec
	kindString                  // V is string: raw bytes
	kindBytes                   // V is []byte: raw bytes
	kindRaw                     // V is Raw: codec ID and payload as stored (raw.go)
)

// Dict is a typed dictionary over a Backend, under a key prefix.
//
// A Dict is safe for concurrent use by multiple goroutines. It does not own
// its Backend: closing the backend is the caller's (or the Tool's) job.
type Dict[V any] struct {
	be       backend.Backend
	prefix   string
	kind     valueKind
	settings *SharedSettings
	view     atomic.Pointer[view]
	onError  func(error)
	obs      Observer // WithObserver; nil: none
	m        metrics

	// Namespace generation (see Clear): genLock (a lock a caller waits
	// for within its call's bound) serialises reading it when there is no
	// usable view; refreshing marks the one caller that re-reads it while
	// the others go on with the stale view.
	genLock    chan struct{}
	refreshing atomic.Bool
	// genReports counts the backend's reports that the generation key
	// changed (a near cache's tracking): a read of the generation that
	// a report overtook marks the view it makes stale.
	genReports atomic.Uint64
	// genTouched is when the generation key was last seen renewed (its
	// TTL given in full: see keepGen), nil if never.
	genTouched atomic.Pointer[genTouch]
	// renewals counts the touches of the generation key under way, each
	// in a goroutine of its own (renew), for the tests to wait on.
	renewals sync.WaitGroup

	updateRetries int
	ownFormat     bool                  // WithFormat was given (errors name it, not the settings)
	timeout       time.Duration         // WithTimeout: 0 the backend's, <0 none
	privateReads  bool                  // be's Get values are the caller's own (backend.PrivateReader)
	askPrivate    bool                  // be is a wrapper: each read says whether its value is private
	ordered       backend.OrderedGetter // be's GetMulti without a map, if it has one and is not a wrapper
	near          *nearCache[V]         // nil without WithNearCache
	decoded       sync.Pool             // *V, zero: what a built-in codec decodes into (unmarshal)
	flights       flightGroup[V]
	updates       updateGroup[V]
	lease         leaseState // GetOrLoad across processes, logical expiry (lease.go)

	// selfDecoding says V holds, in its own memory, a type with a
	// decoding method of its own (decodesItself): it is never decoded
	// into a V of decoded.
	selfDecoding bool
}

// New returns a Dict of V values stored in be under prefix. It returns an
// error if be is nil or an option is invalid.
func New[V any](be backend.Backend, prefix string, opts ...Option) (*Dict[V], error) {
	if be == nil {
		return nil, errors.New("memdict: New: nil backend")
	}
	o := options{settings: DefaultSettings()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("memdict: New %q: %w", prefix, err)
		}
	}
	if err := o.settings.Validate(); err != nil {
		return nil, fmt.Errorf("memdict: New %q: %w", prefix, err)
	}
	sh := o.shared
	switch {
	case sh == nil:
		sh, _ = NewSharedSettings(o.settings)
	case len(o.changed) > 0:
		// The options override their settings of the shared ones.
		sh = sh.layered(o.settings.withDefaults(), o.changed)
	}
	d := &Dict[V]{be: be, prefix: prefix, settings: sh, onError: o.onError, obs: o.observer, updateRetries: o.updateRetries, timeout: o.timeout,
		genLock: make(chan struct{}, 1)}
	d.ownFormat = slices.Contains(o.changed, "WithFormat")
	d.lease.setup(be, &o)
	d.m.prefix, d.m.logger = prefix, o.logger
	if o.logger != nil {
		d.m.logs = newLogLimiter(o.logEvery, o.clock)
	}
	d.m.sampleMask = o.sampleMask()
	d.m.init()
	var zero V
	switch any(zero).(type) {
	case string:
		d.kind = kindString
	case []byte:
		d.kind = kindBytes
	case Raw:
		d.kind = kindRaw
	}
	d.selfDecoding = d.kind == kindCodec && decodesItself(reflect.TypeFor[V](), map[reflect.Type]bool{})
	if _, wrapper := be.(backend.Handler); wrapper {
		// The backend under a wrapper may change (a Tool's plugin): each
		// read says whether its value is private, for the value types
		// that can use it: []byte and Raw alias it, and a codec's Lookup
		// hands its buffer back to be reused (lookupIn), as through a
		// backend used directly.
		d.askPrivate = d.kind == kindBytes || d.kind == kindRaw || d.kind == kindCodec
	} else {
		if pr, ok := be.(backend.PrivateReader); ok {
			d.privateReads = pr.PrivateReads()
		}
		d.ordered, _ = be.(backend.OrderedGetter)
	}
	near, source := o.near, "WithNearCache"
	if near == nil && !o.noNear {
		near, source = sh.load().NearCache, "Settings.NearCache (a Tool plugin's near cache)"
	}
	if err := d.formatOptionErr(sh.load(), &o, near, source); err != nil {
		return nil, fmt.Errorf("memdict: New %q: %w", prefix, err)
	}
	if err := d.setupNear(near, source); err != nil {
		return nil, fmt.Errorf("memdict: New %q: %w", prefix, err)
	}
	return d, nil
}

// Prefix returns the Dict's key prefix.
func (d *Dict[V]) Prefix() string { return d.prefix }

// Settings returns the Dict's current settings.
func (d *Dict[V]) Settings() Settings { return *d.settings.load() }

// Backend returns the backend the Dict stores its values in.
func (d *Dict[V]) Backend() backend.Backend { return d.be }

// Codec returns the codec that encodes values; for Dicts of string,
// []byte and Raw it is codec.Raw. The Python formats (WithFormat) do not
// use it: their values are package codec/python's.
func (d *Dict[V]) Codec() codec.Codec {
	if d.kind != kindCodec {
		return codec.Raw
	}
	return d.settings.load().Codec
}

// BackendKey returns the backend key under which key's value is stored, for
// debugging and for tools that look at the server directly. The key
// includes the namespace generation (see Clear) the Dict last read (or
// stored, finding none; or, if its client may not store one, its own, not
// stored); if it has never read one and cannot, it assumes generation 0.
// In a Python format (WithFormat) it is the key ERP5 or a Python program
// uses, or "" for a key the format cannot name.
func (d *Dict[V]) BackendKey(key string) string {
	b := bound{parent: context.Background()}
	defer b.end()
	vw, err := d.current(&b)
	if err != nil {
		vw = d.makeView(d.settings.load(), 0)
	}
	k, _ := vw.key(key)
	return k
}

// Get returns the value stored under key and true, or V's zero value and
// false if there is none. Like reading a Go map, it never fails: a backend
// error or an undecodable value also gives false; such errors are counted in
// Stats and passed to the WithErrorHandler function. It uses
// context.Background; use Lookup to pass a context and see errors.
func (d *Dict[V]) Get(key string) (V, bool) {
	v, ok, err := d.Lookup(context.Background(), key)
	if err != nil && d.onError != nil {
		d.onError(err)
	}
	return v, ok
}

// Lookup returns the value stored under key and true; V's zero value and
// false with a nil error on a miss (absent or expired); and a non-nil
// *OpError if the backend failed (for example ErrUnavailable) or the stored
// value cannot be decoded (ErrDecode).
func (d *Dict[V]) Lookup(ctx context.Context, key string) (v V, ok bool, err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "get", key, 1)
		defer func() { ob.done(hitOr(ok), err) }()
	}
	t0 := d.m.start(opGet)
	v, ok, err = d.lookup(ctx, key)
	d.m.end(opGet, t0)
	return v, ok, err
}

// lookup is Lookup without its latency measurement.
func (d *Dict[V]) lookup(ctx context.Context, key string) (V, bool, error) {
	b := bound{parent: ctx}
	defer b.end()
	return d.lookupIn(&b, key)
}

// lookupIn is lookup within the bound b of the call it is part of.
func (d *Dict[V]) lookupIn(b *bound, key string) (V, bool, error) {
	var zero V
	ctx := b.parent
	vw, err := d.current(b)
	if err != nil {
		return zero, false, d.m.fail(ctx, opGet, key, err)
	}
	if d.near != nil && !vw.python {
		return d.lookupNear(b, vw, key)
	}
	bkey, hashed, err := vw.bkey(key)
	if err != nil {
		return zero, false, d.m.fail(ctx, opGet, key, err)
	}
	it, private, err := d.get(b.next(), bkey)
	if err != nil {
		if err == backend.ErrNotFound || errors.Is(err, backend.ErrNotFound) {
			d.m.miss(opGet)
			return zero, false, nil
		}
		return zero, false, d.m.fail(ctx, opGet, key, b.check(err))
	}
	v, ok, err := d.decodeIn(vw, key, hashed, it, private)
	if private && d.kind == kindCodec && !vw.python {
		// The codec kept nothing of the value's bytes (codec.Codec), and
		// nobody else holds them: the next read may reuse its buffer.
		valuepool.Put(it.Value)
	}
	switch {
	case err != nil:
		return zero, false, d.m.fail(ctx, opGet, key, err)
	case !ok:
		d.m.miss(opGet)
		return zero, false, nil
	}
	return v, true, nil
}

// get reads bkey from the backend, and says whether the value read is the
// caller's own (see backend.PrivateReader).
func (d *Dict[V]) get(ctx context.Context, bkey string) (backend.Item, bool, error) {
	if d.askPrivate {
		return backend.GetPrivate(ctx, d.be, bkey)
	}
	it, err := d.be.Get(ctx, bkey)
	return it, d.privateReads, err
}

// getMulti reads bkeys from the backend: the items found by key, or in
// *found (from foundPool: the caller puts it back once the items are
// decoded), in the order of bkeys, if the backend is a
// backend.OrderedGetter. It says whether the values read are the caller's
// own (see backend.PrivateReader).
func (d *Dict[V]) getMulti(ctx context.Context, bkeys []string) (items map[string]backend.Item, found *[]backend.Item, private bool, err error) {
	switch {
	case d.askPrivate:
		r := backend.Do(ctx, d.be, backend.Call{Op: backend.OpGetMulti, Keys: bkeys})
		return r.Items, nil, r.Private, r.Err
	case d.ordered != nil:
		found = foundPool.get(len(bkeys))
		err = d.ordered.GetMultiOrdered(ctx, bkeys, *found)
		return nil, found, d.privateReads, err
	}
	items, err = d.be.GetMulti(ctx, bkeys)
	return items, nil, d.privateReads, err
}

// slicePool keeps slices for reuse, every element zero, up to max
// elements each.
type slicePool[T any] struct {
	pool sync.Pool
	max  int
}

// get returns a slice of n zero elements: a pooled one if one is large
// enough, else a new one. Give it back with put.
func (sp *slicePool[T]) get(n int) *[]T {
	if s, _ := sp.pool.Get().(*[]T); s != nil && cap(*s) >= n {
		*s = (*s)[:n]
		return s
	}
	s := make([]T, n)
	return &s
}

// put clears *s (nothing may use it any more) and keeps it for get.
func (sp *slicePool[T]) put(s *[]T) {
	if s == nil || cap(*s) > sp.max {
		return
	}
	clear(*s) // get's elements are zero: those past len(*s) were cleared by earlier puts
	sp.pool.Put(s)
}

// foundPool holds the slices of items GetMultiOrdered fills: a GetMulti
// hands out what the items hold (values, copied or not), not the slice.
var foundPool = slicePool[backend.Item]{max: 4096}

// decode unpacks a stored item. ok is false if the value belongs to
// another key (a hashed key whose stored original differs).
func (d *Dict[V]) decode(vw *view, key string, hashed bool, it backend.Item) (v V, ok bool, err error) {
	return d.decodeIn(vw, key, hashed, it, false)
}

// decodeIn is decode; private says that the item's value is the caller's
// own (a Get of a backend.PrivateReader), so a []byte value may alias it.
// A stale entry is a value (ok); an expired entry and a cached absence
// are not.
func (d *Dict[V]) decodeIn(vw *view, key string, hashed bool, it backend.Item, private bool) (v V, ok bool, err error) {
	v, st, err := d.decodeEntry(vw, key, hashed, it.Value, it.Flags, private)
	return v, st == entryFresh || st == entryStale, err
}

// decodeEntry is decodeIn of the value b stored with client flags,
// saying what the entry is: fresh, stale, a cached absence, or none
// (another key's value, or expired by the envelope's time). The clock is
// read only for an envelope with times. In a Python format every value
// is fresh, decoded by its flags.
func (d *Dict[V]) decodeEntry(vw *view, key string, hashed bool, b []byte, flags uint32, private bool) (v V, st entryState, err error) {
	if vw.python {
		v, err = d.decodePy(b, flags, private)
		if err != nil {
			return v, entryNone, err
		}
		return v, entryFresh, nil
	}
	if d.kind == kindRaw {
		r, m, ok := decodeRaw(key, hashed, b, private, vw.maxDecompressed())
		if !ok {
			return v, entryNone, nil
		}
		if st = d.lease.state(m); st != entryFresh && st != entryStale {
			return v, st, nil // expired, or a cached absence
		}
		return *(*V)(unsafe.Pointer(&r)), st, nil
	}
	var codecID byte
	var payload []byte
	st = entryFresh
	if len(b) >= envelope.HeaderLen && b[0] == envelope.Magic && b[2] == 0 {
		// The common frame, read here without envelope.Parse's full
		// header: no original key, no times, no flags.
		if hashed {
			return v, entryNone, nil // a hashed key's value carries its key
		}
		codecID, payload = b[1], b[envelope.HeaderLen:]
	} else {
		h, p, err := envelope.Parse(b)
		if err != nil {
			return v, entryNone, fmt.Errorf("%w: %w", ErrDecode, err)
		}
		if hashed && (!h.HasKey || string(h.Key) != key) {
			return v, entryNone, nil
		}
		if h.Meta != (envelope.Meta{}) {
			if st = d.lease.state(h.Meta); st != entryFresh && st != entryStale {
				return v, st, nil
			}
		}
		codecID, payload = h.Codec, p
		if h.Compressed && codecID == vw.codecID {
			if payload, err = compress.Decode(p, vw.maxDecompressed()); err != nil {
				return v, entryNone, fmt.Errorf("%w: %w", ErrDecode, err)
			}
			private = true // a new slice
		}
	}
	if codecID != vw.codecID {
		return v, entryNone, fmt.Errorf("%w: value was written with codec %s, this Dict uses %s",
			ErrDecode, codec.NameOf(codecID), vw.codec.Name())
	}
	switch d.kind {
	case kindString:
		// The backend contract makes a read Value immutable and lasting, so
		// the string may share its bytes.
		s := unsafe.String(unsafe.SliceData(payload), len(payload))
		v = *(*V)(unsafe.Pointer(&s))
	case kindBytes:
		var c []byte
		if private {
			// A full slice expression: appending to the value cannot
			// write into the envelope's or anyone's bytes past it.
			c = payload[:len(payload):len(payload)]
		} else {
			c = bytes.Clone(payload)
		}
		if c == nil {
			c = []byte{}
		}
		v = *(*V)(unsafe.Pointer(&c))
	default:
		var into *sync.Pool
		if vw.reuse && !d.selfDecoding {
			into = &d.decoded
		}
		if v, err = unmarshal[V](vw.codec, payload, into); err != nil {
			return v, entryNone, fmt.Errorf("%w: %s: %w", ErrDecode, vw.codec.Name(), err)
		}
	}
	return v, st, nil
}

// unmarshal decodes with a codec. It is a function of its own so that only
// codec-decoded values, whose address the codec takes, escape to the heap.
// With a pool (of *V, for a codec that keeps nothing of the value it
// decodes into: memdict's own, and a V without a decoding method of its
// own that could: see decodesItself), it decodes into a V of the pool, which
// it zeroes and puts back once copied out, rather than allocating one per
// read: the codec takes its address through an interface, so a new V
// always escapes.
//
//go:noinline
func unmarshal[V any](c codec.Codec, payload []byte, pool *sync.Pool) (_ V, err error) {
	var v *V
	if pool != nil {
		v, _ = pool.Get().(*V)
	}
	if v == nil {
		v = new(V)
	}
	defer func() {
		// A codec that panics on bytes someone else stored fails the
		// read (ErrDecode), not the process.
		if p := recover(); p != nil {
			err = fmt.Errorf("codec %s panicked: %v", c.Name(), p)
		}
		if pool != nil {
			// The result is a copy: the V goes back zero, holding
			// nothing of it (and a codec decodes into a zero V).
			var zero V
			*v = zero
			pool.Put(v)
		}
	}()
	err = c.Unmarshal(payload, v)
	if err != nil {
		var zero V
		return zero, err
	}
	return *v, nil
}

// selfDecoders are the interfaces by which a type decodes itself under
// memdict's codecs (encoding/json, encoding/gob, MessagePack). They are
// interfaces rather than method names looked up by reflection:
// reflect.Type.MethodByName (or Method) makes the linker keep every
// exported method of every type in the program (a Redis service built
// with memdict grew from 21 to 33 MiB and linked mime/multipart).
var selfDecoders = []reflect.Type{
	reflect.TypeFor[interface{ UnmarshalJSON([]byte) error }](),
	reflect.TypeFor[interface{ UnmarshalText([]byte) error }](),
	reflect.TypeFor[interface{ UnmarshalBinary([]byte) error }](),
	reflect.TypeFor[interface{ GobDecode([]byte) error }](),
	reflect.TypeFor[msgpack.CustomDecoder](),
	reflect.TypeFor[msgpack.Unmarshaler](),
}

// trustedDecoders are the packages whose types' decoding methods are
// known to keep nothing of the value they decode into.
var trustedDecoders = map[string]bool{"time": true, "math/big": true, "net": true, "net/netip": true, "net/url": true}

// decodesItself reports whether t holds in its own memory (itself, its
// fields, the elements of its arrays; not what its pointers, slices,
// maps or interfaces point to, which a codec allocates anew) a type
// outside the standard library with a decoding method of its own. Such
// a method has the address of the V decoded into and may keep it in the
// value (a slice into an array of its own, a pointer to itself): a copy
// of a pooled V would then point into the V, zeroed and decoded into by
// the next read (unmarshal), so such a V is allocated for each read.
// Those of the standard library's packages in trustedDecoders (time.Time's
// above all) keep nothing of it. seen stops recursive types.
func decodesItself(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if trustedDecoders[t.PkgPath()] {
		return false
	}
	pt := reflect.PointerTo(t)
	for _, it := range selfDecoders {
		if pt.Implements(it) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if decodesItself(t.Field(i).Type, seen) {
				return true
			}
		}
	case reflect.Array:
		return decodesItself(t.Elem(), seen)
	}
	return false
}

// encode frames v for key, with the entry's times and flags m.
func (d *Dict[V]) encode(vw *view, key string, hashed bool, v V, m envelope.Meta) ([]byte, error) {
	var payload []byte
	switch d.kind {
	case kindString:
		s := *(*string)(unsafe.Pointer(&v))
		hl := envelope.SizeMeta(key, hashed, m)
		if err := vw.checkSize(hl + len(s)); err != nil {
			return nil, err
		}
		buf := make([]byte, 0, hl+len(s))
		buf = envelope.AppendMeta(buf, codec.RawID, key, hashed, m)
		return append(buf, s...), nil
	case kindBytes:
		payload = *(*[]byte)(unsafe.Pointer(&v))
	case kindRaw:
		return encodeRaw(vw, key, hashed, *(*Raw)(unsafe.Pointer(&v)), m)
	default:
		if ap, ok := vw.codec.(codec.Appender); ok {
			buf := envelope.AppendMeta(make([]byte, 0, 64), vw.codecID, key, hashed, m)
			hl := len(buf)
			buf, err := ap.AppendMarshal(buf, v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrEncode, vw.codec.Name(), err)
			}
			if err := vw.checkSize(len(buf)); err != nil {
				return nil, err
			}
			return vw.compress(buf, hl), nil
		}
		p, err := vw.codec.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEncode, vw.codec.Name(), err)
		}
		payload = p
	}
	hl := envelope.SizeMeta(key, hashed, m)
	n := hl + len(payload)
	if err := vw.checkSize(n); err != nil {
		return nil, err
	}
	if d.kind == kindCodec && vw.zstd != nil && len(payload) >= vw.zstd.MinLen() {
		// Compress from the codec's own slice, not a copy.
		hdr := envelope.AppendMeta(make([]byte, 0, hl+len(payload)/2+64), vw.codecID, key, hashed, m)
		if out, ok := vw.compressed(hdr, payload); ok {
			return out, nil
		}
	}
	buf := make([]byte, 0, n)
	buf = envelope.AppendMeta(buf, vw.codecID, key, hashed, m)
	return append(buf, payload...), nil
}

// maxUnlimitedDecompressed bounds what a value decompresses to in a Dict
// without a MaxValueLen.
const maxUnlimitedDecompressed = 64 << 20

// maxDecompressed is the most a compressed payload may decompress to in
// the view: the Dict's MaxValueLen, which also bounds the uncompressed
// values it writes.
func (vw *view) maxDecompressed() int {
	if vw.s.MaxValueLen > 0 {
		return vw.s.MaxValueLen
	}
	return maxUnlimitedDecompressed
}

// compress returns buf, a header of hl bytes and a payload, with the
// payload compressed if the view's codec compresses and that pays.
func (vw *view) compress(buf []byte, hl int) []byte {
	if vw.zstd == nil || len(buf)-hl < vw.zstd.MinLen() {
		return buf
	}
	hdr := append(make([]byte, 0, hl+(len(buf)-hl)/2+64), buf[:hl]...)
	if out, ok := vw.compressed(hdr, buf[hl:]); ok {
		return out
	}
	return buf
}

// compressed appends payload, compressed, to the header hdr, and reports
// whether that made the value smaller (and the payload is within what
// readers decompress). The header is marked compressed.
func (vw *view) compressed(hdr, payload []byte) ([]byte, bool) {
	if len(payload) > vw.maxDecompressed() {
		return nil, false
	}
	out := vw.zstd.Compress(hdr, payload)
	if len(out) >= len(hdr)+len(payload) {
		return nil, false
	}
	envelope.SetCompressed(out)
	return out, true
}

func (vw *view) checkSize(n int) error {
	if vw.s.MaxValueLen > 0 && n > vw.s.MaxValueLen {
		return fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrValueTooLarge, n, vw.s.MaxValueLen)
	}
	return nil
}

func (vw *view) ttl(opts []ItemOption) (time.Duration, error) {
	if len(opts) == 0 {
		return vw.s.TTL, nil
	}
	var o itemOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.hasTTL {
		return vw.s.TTL, nil
	}
	if o.ttl < 0 {
		return 0, fmt.Errorf("%w: %v", backend.ErrInvalidTTL, o.ttl)
	}
	return o.ttl, nil
}

// item builds the backend item for a write of v under key.
func (d *Dict[V]) item(b *bound, key string, v V, opts []ItemOption) (backend.Item, error) {
	vw, err := d.currentWrite(b)
	if err != nil {
		return backend.Item{}, err
	}
	return d.itemIn(vw, key, v, opts)
}

// itemIn builds the backend item for a write of v under key in view vw.
func (d *Dict[V]) itemIn(vw *view, key string, v V, opts []ItemOption) (backend.Item, error) {
	if err := vw.writable(d.prefix); err != nil {
		// A fill, whose view was a read's.
		return backend.Item{}, err
	}
	ttl, err := vw.ttl(opts)
	if err != nil {
		return backend.Item{}, err
	}
	bkey, hashed, err := vw.bkey(key)
	if err != nil {
		return backend.Item{}, err
	}
	if vw.python {
		val, flags, err := d.encodePy(vw, v)
		if err != nil {
			return backend.Item{}, err
		}
		return backend.Item{Key: bkey, Value: val, Flags: flags, TTL: ttl}, nil
	}
	m, bttl := d.lease.meta(ttl)
	val, err := d.encode(vw, key, hashed, v, m)
	if err != nil {
		return backend.Item{}, err
	}
	return backend.Item{Key: bkey, Value: val, TTL: bttl}, nil
}

// Put stores v under key with the Dict's default TTL, replacing any value.
// It uses context.Background; see Store. Storing copies v: changing v
// afterwards does not change the stored value.
func (d *Dict[V]) Put(key string, v V) error {
	return d.Store(context.Background(), key, v)
}

// Store stores v under key, replacing any value, with the Dict's default
// TTL unless a TTL option says otherwise. A value too large for the Dict's
// limit gives ErrValueTooLarge and leaves the stored value untouched.
func (d *Dict[V]) Store(ctx context.Context, key string, v V, opts ...ItemOption) (err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "put", key, 1)
		defer func() { ob.done(okOr(err), err) }()
	}
	b := bound{parent: ctx}
	defer b.end()
	return d.store(&b, key, v, opts)
}

// store is Store within the bound b of the call it is part of.
func (d *Dict[V]) store(b *bound, key string, v V, opts []ItemOption) error {
	t0 := d.m.start(opPut)
	it, err := d.item(b, key, v, opts)
	if err == nil {
		err = d.be.Set(b.next(), it)
		d.nearInvalidate(key)
	}
	if err != nil {
		err = d.m.fail(b.parent, opPut, key, b.check(err))
	}
	d.m.end(opPut, t0)
	return err
}

// Add stores v under key only if the key holds no value, and reports
// whether it stored it. An existing value is not an error: Add returns
// false, nil.
func (d *Dict[V]) Add(ctx context.Context, key string, v V, opts ...ItemOption) (stored bool, err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "add", key, 1)
		defer func() {
			if !stored && err == nil {
				ob.done("not_stored", nil)
				return
			}
			ob.done(okOr(err), err)
		}()
	}
	t0 := d.m.start(opAdd)
	defer d.m.end(opAdd, t0)
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	var it backend.Item
	if err == nil {
		it, err = d.itemIn(vw, key, v, opts)
	}
	if err == nil {
		b.begin() // an item that is no value takes more calls (addOver)
		err = d.be.Add(b.next(), it)
		if errors.Is(err, backend.ErrNotStored) && !vw.python {
			stored, err = d.addOver(&b, vw, key, it)
			if err == nil && !stored {
				err = backend.ErrNotStored
			}
		}
	}
	switch {
	case err == nil:
		d.nearInvalidate(key)
		return true, nil
	case errors.Is(err, backend.ErrNotStored):
		d.m.miss(opAdd)
		return false, nil
	}
	return false, d.m.fail(ctx, opAdd, key, b.check(err))
}

// addTries bounds the reads and compare-and-swaps of addOver.
const addTries = 3

// addOver is Add when the backend holds an item under it.Key: an item that
// is no value of key (a cached absence of GetOrLoad, an entry expired by
// its envelope's time, another key's value under a hashed key), which
// Lookup reports as a miss, is replaced by it with compare-and-swap, as
// Update does; a value is kept (false). An item that changes meanwhile is
// read again, up to addTries times; then, or over a backend without
// compare-and-swap, the key is taken to hold a value.
func (d *Dict[V]) addOver(b *bound, vw *view, key string, it backend.Item) (bool, error) {
	_, hashed := vw.key(key)
	for range addTries {
		cur, err := d.be.Get(b.next(), it.Key)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			err = d.be.Add(b.next(), it) // gone meanwhile
		case err != nil:
			return false, err
		default:
			if _, ok, derr := d.decode(vw, key, hashed, cur); ok || derr != nil {
				return false, nil // a value, or bytes that may be one
			}
			it.CAS = cur.CAS
			err = d.be.CompareAndSwap(b.next(), it)
			it.CAS = 0
		}
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, backend.ErrNotStored), errors.Is(err, backend.ErrCASConflict), errors.Is(err, backend.ErrNotFound):
			// Changed meanwhile: look again.
		case backend.NotSupported(err):
			return false, nil
		default:
			return false, err
		}
	}
	return false, nil
}

// Delete removes key. Like deleting from a Go map, removing an absent key
// is not an error. It uses context.Background; see Remove.
func (d *Dict[V]) Delete(key string) error {
	err := d.Remove(context.Background(), key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Remove removes key. It returns an error wrapping ErrNotFound if the key
// held no value, so that callers can tell; Delete ignores that case.
func (d *Dict[V]) Remove(ctx context.Context, key string) (err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "delete", key, 1)
		defer func() { ob.done(notFoundOr(err), err) }()
	}
	t0 := d.m.start(opDelete)
	defer d.m.end(opDelete, t0)
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		return d.m.fail(ctx, opDelete, key, err)
	}
	bkey, _, err := vw.bkey(key)
	if err != nil {
		return d.m.fail(ctx, opDelete, key, err)
	}
	err = d.be.Delete(b.next(), bkey)
	d.nearInvalidate(key)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			d.m.miss(opDelete)
			return &OpError{Op: "delete", Key: key, Err: err}
		}
		return d.m.fail(ctx, opDelete, key, b.check(err))
	}
	return nil
}

// Touch gives key's value a new time to live (0: never expires). It
// returns an error wrapping ErrNotFound if there is none. A value that
// carries its expiry in its envelope (every value written with a TTL), or
// that is given one, is rewritten with compare-and-swap so that the new
// expiry holds also on stores that ignore TTLs; otherwise only the
// backend's TTL changes. (A value without a TTL that fills the size limit
// has no room in its envelope for an expiry: only the backend's TTL then
// ends it, as after Invalidate.)
func (d *Dict[V]) Touch(ctx context.Context, key string, ttl time.Duration) (err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "touch", key, 1)
		defer func() { ob.done(notFoundOr(err), err) }()
	}
	t0 := d.m.start(opTouch)
	defer d.m.end(opTouch, t0)
	if ttl < 0 {
		return d.m.fail(ctx, opTouch, key, fmt.Errorf("%w: %v", backend.ErrInvalidTTL, ttl))
	}
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		return d.m.fail(ctx, opTouch, key, err)
	}
	b.begin() // a read, then a rewrite or a touch
	bkey, hashed, err := vw.bkey(key)
	if err != nil {
		return d.m.fail(ctx, opTouch, key, err)
	}
	if vw.python {
		// No envelope: the backend's TTL is the whole of it.
	} else if done, err := d.touchEnvelope(&b, vw, key, bkey, hashed, ttl); done || err != nil {
		if err != nil {
			if errors.Is(err, backend.ErrNotFound) {
				d.m.miss(opTouch)
				return &OpError{Op: "touch", Key: key, Err: err}
			}
			return d.m.fail(ctx, opTouch, key, b.check(err))
		}
		return nil
	}
	if err := d.be.Touch(b.next(), bkey, ttl); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			d.m.miss(opTouch)
			return &OpError{Op: "touch", Key: key, Err: err}
		}
		return d.m.fail(ctx, opTouch, key, b.check(err))
	}
	return nil
}

// GetMulti returns the values stored under keys, in one round trip per
// server where the backend allows. Keys without a value are absent from the
// map. If some keys could not be read (a server of several is down) or their
// values cannot be decoded, GetMulti returns what it could read together
// with a *MultiError (Op "getmulti") that names every failed key and its
// cause; keys it does not name were found or are missing. So it does when
// ctx ends (or the call's timeout runs out) while some of the servers have
// answered: their values are returned, and the keys of the others are
// named with ctx's error (or ErrUnavailable for the timeout). If the lookup
// failed as a whole (the backend is closed, the context was done before
// any server answered), every key is named.
func (d *Dict[V]) GetMulti(ctx context.Context, keys []string) (_ map[string]V, err error) {
	type want struct {
		key    string
		hashed bool
	}
	// out gets the values found: the near cache's, then the backend's,
	// made once the backend has answered (a map written right away stays
	// in the cache).
	out := map[string]V{}
	distinct := dedupe(keys)
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "getmulti", "", len(distinct))
		defer func() { ob.done(okOr(err), err) }()
	}
	if len(distinct) == 0 {
		return out, nil
	}
	me := &MultiError{Op: "getmulti", Total: len(distinct)}
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.current(&b)
	if err != nil {
		t0 := d.m.startN(opGet, len(distinct))
		defer d.m.end(opGet, t0)
		for _, k := range distinct {
			me.Failed = append(me.Failed, &OpError{Op: "get", Key: k, Err: err})
		}
		return out, d.m.failKeys(ctx, opGet, me)
	}
	var tokens map[string]fillToken
	if d.near != nil && !vw.python {
		// Near-cache hits are counted by nearGetMulti; only the rest
		// goes to the backend.
		var near map[string]V
		near, distinct, tokens = d.nearGetMulti(vw, distinct)
		d.noteNear(ctx, len(near), len(distinct))
		if near != nil {
			out = near // a map of this call's
		}
		if len(distinct) == 0 {
			return out, nil
		}
	}
	t0 := d.m.startN(opGet, len(distinct))
	defer d.m.end(opGet, t0)
	wants := make([]want, 0, len(distinct)) // wants[i]: what bkeys[i] stands for
	bkeys := make([]string, 0, len(distinct))
	// The backend keys, in one buffer (most keys are short).
	kbuf := make([]byte, 0, len(distinct)*(len(vw.ns)+16))
	for _, k := range distinct {
		bk, hashed, err := vw.bkeyIn(&kbuf, k)
		if err != nil {
			me.Failed = append(me.Failed, &OpError{Op: "get", Key: k, Err: err})
			continue
		}
		wants = append(wants, want{k, hashed})
		bkeys = append(bkeys, bk)
	}
	if len(bkeys) == 0 {
		slices.SortFunc(me.Failed, func(x, y *OpError) int { return strings.Compare(x.Key, y.Key) })
		return out, d.m.failKeys(ctx, opGet, me)
	}
	items, fp, private, err := d.getMulti(b.next(), bkeys)
	defer foundPool.put(fp) // once every item is decoded (or given up on)
	var found []backend.Item
	if fp != nil {
		found = *fp
	}
	// A value the near cache keeps is not handed over as it is, nor one
	// that two keys may share: ERP5's keys lose some bytes, so two keys
	// of a Python format may name one backend key, and one value.
	private = private && tokens == nil && !vw.python
	var failedKeys map[string]error
	if err != nil {
		if kes, ok := backend.KeyErrors(err); ok {
			failedKeys = make(map[string]error, len(kes))
			for _, ke := range kes {
				failedKeys[ke.Key] = ke.Err
			}
		} else {
			// The lookup as a whole failed: every key not returned did.
			failedKeys = make(map[string]error, len(bkeys))
			for _, bk := range bkeys {
				failedKeys[bk] = err
			}
		}
	}
	if len(out) == 0 {
		out = make(map[string]V, len(bkeys))
	}
	for i, bk := range bkeys {
		w := wants[i]
		var it backend.Item
		var got bool
		if found != nil {
			it = found[i]
			got = it.Key != ""
		} else {
			it, got = items[bk]
		}
		if !got {
			if cause, failed := failedKeys[bk]; failed {
				me.Failed = append(me.Failed, &OpError{Op: "get", Key: w.key, Err: b.check(cause)})
			} else {
				d.m.miss(opGet)
			}
			continue
		}
		v, ok, derr := d.decodeIn(vw, w.key, w.hashed, it, private)
		switch {
		case derr != nil:
			me.Failed = append(me.Failed, &OpError{Op: "get", Key: w.key, Err: derr})
		case ok:
			out[w.key] = v
			if t, want := tokens[w.key]; want && !w.hashed {
				d.near.fill(vw, w.key, t, v, it.Value, it.Stale)
			}
		default:
			d.m.miss(opGet)
		}
	}
	if len(me.Failed) == 0 {
		return out, nil
	}
	slices.SortFunc(me.Failed, func(a, b *OpError) int { return strings.Compare(a.Key, b.Key) })
	return out, d.m.failKeys(ctx, opGet, me)
}

// dedupe returns keys without repeats, in their first order: keys itself
// (not a copy) when no key repeats, which is the common case. The caller
// must not modify the slice it returns.
func dedupe(keys []string) []string {
	if len(keys) <= 16 {
		// Few keys: comparing them costs less than hashing them.
		for i, k := range keys {
			if slices.Contains(keys[:i], k) {
				return dedupeSlow(keys)
			}
		}
		return keys
	}
	// A table of the keys' hashes, open addressing, at most half full:
	// cheaper than a set of strings, and no copy. Two keys of one hash
	// (a repeat, or rarely a collision) leave it for the exact set.
	size := 1
	for size < 2*len(keys) {
		size <<= 1
	}
	mask := uint64(size - 1)
	var small [256]uint64
	var tab []uint64
	if size <= len(small) {
		tab = small[:size]
	} else {
		tp := dedupeTables.get(size)
		defer dedupeTables.put(tp)
		tab = *tp
	}
	for _, k := range keys {
		h := maphash.String(dedupeSeed, k)
		j := h & mask
		h |= 1 // never 0, the empty slot (after j: the probe starts at any slot)
		for tab[j] != 0 {
			if tab[j] == h {
				return dedupeSlow(keys)
			}
			j = (j + 1) & mask
		}
		tab[j] = h
	}
	return keys
}

// dedupeSeed seeds dedupe's hashes.
var dedupeSeed = maphash.MakeSeed()

// dedupeTables holds the tables of dedupe's larger calls, up to 2^16
// entries (512 KiB).
var dedupeTables = slicePool[uint64]{max: 1 << 16}

// dedupeSlow is dedupe with a set of the keys: exact, and a copy.
func dedupeSlow(keys []string) []string {
	out := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		// One map operation per key: the set grows by the keys not seen.
		n := len(seen)
		seen[k] = struct{}{}
		if len(seen) > n {
			out = append(out, k)
		}
	}
	return out
}

// PutMulti stores every value of m, as Store does each, in few round trips
// if the backend implements backend.MultiWriter (memcached, Redis), else
// with one call per key, several at a time. It tries every key even when
// some fail, and returns nil or a *MultiError (Op "putmulti") that names
// every key that was not stored and its cause; every other key was stored.
func (d *Dict[V]) PutMulti(ctx context.Context, m map[string]V, opts ...ItemOption) (err error) {
	if len(m) == 0 {
		return nil
	}
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "putmulti", "", len(m))
		defer func() { ob.done(okOr(err), err) }()
	}

	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t0 := d.m.startN(opPut, len(keys))
	defer d.m.end(opPut, t0)
	me := &MultiError{Op: "putmulti", Total: len(keys)}
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		for _, k := range keys {
			me.Failed = append(me.Failed, &OpError{Op: "put", Key: k, Err: err})
		}
		return d.m.failKeys(ctx, opPut, me)
	}
	items := make([]backend.Item, 0, len(keys))
	itemKeys := make([]string, 0, len(keys))
	for _, k := range keys {
		it, err := d.itemIn(vw, k, m[k], opts)
		if err != nil {
			me.Failed = append(me.Failed, &OpError{Op: "put", Key: k, Err: err})
			continue
		}
		items, itemKeys = append(items, it), append(itemKeys, k)
	}
	var errs []error
	if len(items) == 1 {
		errs = []error{d.be.Set(b.next(), items[0])}
	} else {
		errs = spread(backend.SetMulti(b.many(d.be), d.be, items), itemKeys, items, nil)
	}
	for _, k := range itemKeys {
		d.nearInvalidate(k)
	}
	for i, err := range errs {
		if err != nil {
			me.Failed = append(me.Failed, &OpError{Op: "put", Key: itemKeys[i], Err: b.check(err)})
		}
	}
	if len(me.Failed) == 0 {
		return nil
	}
	slices.SortFunc(me.Failed, func(a, b *OpError) int { return strings.Compare(a.Key, b.Key) })
	return d.m.failKeys(ctx, opPut, me)
}

// Stats returns a snapshot of the Dict's counters and latency histograms.
func (d *Dict[V]) Stats() Stats {
	st := d.m.snapshot()
	st.NearCache = d.nearStats()
	return st
}
