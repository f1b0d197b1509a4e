// Package backendtest is the conformance suite for memdict backends: every
// driver runs it from its own tests, against a fake, a local server or both,
// to show that it keeps the contract written on backend.Backend.
//
// A driver's test calls Run with a function that makes a fresh backend and
// Options saying what the backend can do:
//
//	func TestConformance(t *testing.T) {
//		srv := testserver.Memcached(t)
//		backendtest.Run(t, func(t *testing.T) backend.Backend {
//			be, err := backend.Open(t.Context(), "memcached://"+srv.Addr)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return be
//		}, backendtest.Options{TTLGranularity: time.Second})
//	}
//
// Run calls the function once per subtest, so a subtest may close its
// backend, and closes every backend it gets when the subtest ends. Each
// subtest writes only keys under its own random prefix and deletes them at
// the end, so backends may share one server with each other and with other
// tests; the suite never calls Flush.
//
// Subtests are named by layer and feature ("Raw/CAS/Conflict",
// "Raw/TTL/Touch", ...), so that
//
//	go test -run 'Conformance/Raw/TTL'
//
// runs one group. "Raw" subtests use the backend.Backend methods directly;
// "Dict" subtests (in dict.go) go through memdict's typed Dict, "Power"
// subtests through its Tx, Update, GetOrLoad, Clear, Keys and Counters;
// "Lease" subtests (in lease.go) GetOrLoad across processes — two Dicts on
// one backend — with stale-while-revalidate, Invalidate, negative caching,
// logical expiry and the takeover of a lease whose winner never fills;
// "NearCache" runs the Dict, Power and Lease subtests again with every Dict
// near-cached (memdict.WithNearCache, see Options.NearCache), so that a
// driver's conformance test checks the near cache over it with no line
// of its own.
//
// RunParity is the suite of a wrapper (backend.Wrap's middleware, a Tool's
// plugin, memdicttest.Faulty, a user's own): it checks that every optional
// ability of the backend under the wrapper is there through it, and
// behaves the same.
//
// With Options.Advance the suite moves the backend's clock (a
// memory.FakeClock, miniredis's FastForward) instead of sleeping, and gives
// every Dict a clock (memdict.WithClock) that Advance moves too; without
// it, TTL subtests sleep a few multiples of Options.TTLGranularity, in
// parallel with each other.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// Options describe what the backend under test can do. The zero value
// describes a memcached-like backend with a real clock of millisecond
// resolution.
type Options struct {
	// Advance moves the backend's clock forward by d, for backends with a
	// fake clock (memory.FakeClock.Advance, miniredis's FastForward). The
	// backends newBackend makes must all read the clock Advance moves.
	// Nil: the suite uses real TTLs and sleeps.
	Advance func(d time.Duration)

	// TTLGranularity is the backend's TTL resolution: time.Second for
	// memcached, time.Millisecond for Redis. Zero means a millisecond.
	//
	// On a real clock, items meant to expire untouched get a TTL of one
	// granularity, and items that must outlive a following call (a Touch,
	// an Increment) get max(2 granularities, 200ms); the suite then sleeps
	// 2.5 times the TTL. With Advance, TTLs are ten and twenty
	// granularities and the clock moves one granularity past them.
	TTLGranularity time.Duration

	// MaxValueSize is the largest value the backend accepts; zero means
	// 1 MiB. The suite stores a value of exactly this size and expects it
	// back, then one byte more and expects backend.ErrValueTooLarge with
	// the previous value left in place. A negative MaxValueSize skips both
	// (for a backend whose limit is too large to test).
	MaxValueSize int

	// MaxKeyLen is the longest key the backend accepts; zero means 250, as
	// memcached. A key of exactly this length must work and, unless
	// AnyKeyBytes is set, a longer one must give backend.ErrInvalidKey. A
	// negative MaxKeyLen skips the key length subtests.
	MaxKeyLen int

	// AnyKeyBytes says the backend stores keys with spaces and control bytes
	// faithfully (as Redis does) instead of rejecting them with
	// backend.ErrInvalidKey (as memcached must), and keys longer than
	// MaxKeyLen too. The suite then checks that such keys round-trip
	// exactly instead of expecting ErrInvalidKey.
	AnyKeyBytes bool

	// NoFlags says the backend keeps no client flags (backend.Item.Flags),
	// as Redis: it must then refuse a write with non-zero flags with an
	// error wrapping backend.ErrNotSupported, leaving the stored value in
	// place, and read every item with flags 0. Otherwise the suite checks
	// that every write stores the flags and every read returns them, and
	// that Touch and Increment keep them.
	NoFlags bool

	// Concurrency is the number of goroutines the concurrency subtests run;
	// zero means 8.
	Concurrency int

	// NearCache configures the near cache of the "NearCache" group, which
	// runs every Dict and Power subtest again with each Dict made with
	// memdict.WithNearCache. Its zero value means 1000 entries and a
	// MaxStale of five TTL granularities with Advance, else a tenth of a
	// second (short enough for the TTL subtests; over Redis, server
	// invalidation is on as well), on a clock that Advance moves. Set
	// SkipNearCache to leave the group out.
	NearCache memdict.NearCache

	// SkipNearCache leaves out the "NearCache" group.
	SkipNearCache bool

	near *memdict.NearCache // set in the NearCache group
	now  func() time.Time   // with Advance: the Dicts' clock, which Advance moves
}

// withDefaults returns o with its zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.TTLGranularity <= 0 {
		o.TTLGranularity = time.Millisecond
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = 1 << 20
	}
	if o.MaxKeyLen == 0 {
		o.MaxKeyLen = 250
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.NearCache.MaxEntries == 0 && o.NearCache.MaxBytes == 0 {
		o.NearCache.MaxEntries = 1000
	}
	if o.NearCache.MaxStale == 0 {
		o.NearCache.MaxStale = 100 * time.Millisecond
		if o.Advance != nil {
			o.NearCache.MaxStale = 5 * o.TTLGranularity
		}
	}
	return o
}

// Run runs every conformance subtest against backends made by newBackend.
// It calls newBackend once per subtest, from that subtest's goroutine, and
// closes the backend when the subtest ends; newBackend reports its own
// failures with t.Fatal. Every subtest uses its own random key prefix.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	t.Helper()
	opts = opts.withDefaults()
	if opts.Advance != nil {
		// Dicts write and compare the times in their values' envelopes
		// (logical expiry, stale-while-revalidate) on a clock that moves
		// with the backend's, only when Advance moves it.
		var offset atomic.Int64
		base, advance := time.Now(), opts.Advance
		opts.Advance = func(d time.Duration) {
			offset.Add(int64(d))
			advance(d)
		}
		opts.now = func() time.Time { return base.Add(time.Duration(offset.Load())) }
	}
	t.Run("Raw", func(t *testing.T) { runRaw(t, newBackend, opts) })
	t.Run("Dict", func(t *testing.T) { runDict(t, newBackend, opts) })
	t.Run("Power", func(t *testing.T) { runPower(t, newBackend, opts) })
	t.Run("Lease", func(t *testing.T) { runLease(t, newBackend, opts) })
	if !opts.SkipNearCache {
		t.Run("NearCache", func(t *testing.T) {
			near := withNearCache(opts)
			t.Run("Dict", func(t *testing.T) { runDict(t, newBackend, near) })
			t.Run("Power", func(t *testing.T) { runPower(t, newBackend, near) })
			t.Run("Lease", func(t *testing.T) { runLease(t, newBackend, near) })
		})
	}
}

// withNearCache returns opts for the NearCache group: Dicts get a near
// cache, whose clock Advance moves along with the backend's.
func withNearCache(opts Options) Options {
	nc := opts.NearCache
	if opts.Advance != nil && nc.Now == nil {
		var offset atomic.Int64
		advance := opts.Advance
		opts.Advance = func(d time.Duration) {
			offset.Add(int64(d))
			advance(d)
		}
		nc.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}
	opts.near = &nc
	return opts
}

// harness is one subtest's view of a fresh backend: its key prefix, its
// options and helpers that fail the test with a clear message.
type harness struct {
	t      *testing.T
	be     backend.Backend
	opts   Options
	prefix string

	mu   sync.Mutex
	keys []string // written keys, deleted at cleanup
}

// newHarness makes a backend with newBackend for the subtest t and
// registers its cleanup: delete the keys made by key, then Close.
func newHarness(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) *harness {
	t.Helper()
	be := newBackend(t)
	if be == nil {
		t.Fatal("backendtest: newBackend returned a nil backend")
	}
	h := &harness{t: t, be: be, opts: opts, prefix: RandomPrefix()}
	t.Cleanup(func() { _ = be.Close() })
	t.Cleanup(h.deleteKeys) // runs before Close
	return h
}

// supports reports whether the backend has the optional ability op now,
// by asking it (backend.Do) with a call that changes nothing: a wrapper
// (backend.Wrap, a Tool's plugin) has every ability's method and says
// backend.ErrNotSupported at the call for those the backend under it
// lacks. op is one of OpKeys, OpServerStats, OpPing, OpSetMulti,
// OpDeleteMulti, OpGetLease and OpTryLock (on keys of the subtest).
func (h *harness) supports(op backend.Op) bool {
	h.t.Helper()
	return h.supportsOn(h.be, op)
}

// supportsOn is supports for be, a backend on the subtest's server. A
// driver (not a backend.Handler) has the abilities of its method set; a
// wrapper is asked.
func (h *harness) supportsOn(be backend.Backend, op backend.Op) bool {
	h.t.Helper()
	if _, wrapper := be.(backend.Handler); !wrapper {
		var ok bool
		switch op {
		case backend.OpKeys:
			_, ok = be.(backend.Lister)
		case backend.OpServerStats:
			_, ok = be.(backend.StatsReporter)
		case backend.OpPing:
			_, ok = be.(backend.Pinger)
		case backend.OpSetMulti, backend.OpDeleteMulti:
			_, ok = be.(backend.MultiWriter)
		case backend.OpTryLock:
			_, ok = be.(backend.Locker)
		default:
			ok = true // asked below: a Leaser may find its server cannot lease
		}
		if !ok || op != backend.OpGetLease {
			return ok
		}
	}
	ctx := h.ctx()
	var err error
	switch op {
	case backend.OpKeys:
		for _, e := range backend.Keys(ctx, be, h.prefix+"probe/") {
			err = e
			break
		}
	case backend.OpServerStats, backend.OpPing, backend.OpSetMulti, backend.OpDeleteMulti:
		err = backend.Do(ctx, be, backend.Call{Op: op}).Err
	case backend.OpGetLease:
		k := h.key("probe-lease")
		var l backend.Lease
		l, err = backend.GetLease(ctx, be, k, backend.LeaseOptions{TTL: time.Second})
		if err == nil && l.Won {
			_ = backend.ReleaseLease(ctx, be, l)
		}
	case backend.OpTryLock:
		k, token := h.key("probe-lock"), backend.NewLockToken()
		r := backend.Do(ctx, be, backend.Call{Op: backend.OpTryLock, Key: k, Token: token, TTL: time.Second})
		if err = r.Err; err == nil && r.OK {
			_, _ = backend.Unlock(ctx, be, k, token)
		}
	default:
		h.t.Fatalf("backendtest: supportsOn(%v): not a probe of this suite", op)
	}
	return !backend.NotSupported(err)
}

// RandomPrefix returns a fresh key prefix such as "bt-3k9x0c1q7m2f/", made of
// characters every backend accepts in keys, so that tests sharing a server
// do not see each other's keys.
func RandomPrefix() string {
	return "bt-" + strconv.FormatUint(rand.Uint64(), 36) + "/"
}

// key returns the backend key for name under the subtest's prefix, and
// remembers it for deletion at cleanup.
func (h *harness) key(name string) string {
	k := h.prefix + name
	h.mu.Lock()
	h.keys = append(h.keys, k)
	h.mu.Unlock()
	return k
}

// deleteKeys removes the subtest's keys from the server, ignoring errors
// (the backend may be closed, the keys absent).
func (h *harness) deleteKeys() {
	h.mu.Lock()
	keys := h.keys
	h.keys = nil
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range keys {
		_ = h.be.Delete(ctx, k)
	}
}

func (h *harness) ctx() context.Context { return h.t.Context() }

// set stores value under key with ttl, failing the test on error.
func (h *harness) set(key string, value []byte, ttl time.Duration) {
	h.t.Helper()
	if err := h.be.Set(h.ctx(), backend.Item{Key: key, Value: value, TTL: ttl}); err != nil {
		h.t.Fatalf("Set(%q, %d bytes, TTL %v): %v", key, len(value), ttl, err)
	}
}

// get returns the item under key, failing the test on error.
func (h *harness) get(key string) backend.Item {
	h.t.Helper()
	it, err := h.be.Get(h.ctx(), key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", key, err)
	}
	return it
}

// wantValue fails the test unless key holds exactly want.
func (h *harness) wantValue(key string, want []byte) {
	h.t.Helper()
	it, err := h.be.Get(h.ctx(), key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v, want value %s", key, err, show(want))
	}
	if !bytes.Equal(it.Value, want) {
		h.t.Fatalf("Get(%q) = %s, want %s", key, show(it.Value), show(want))
	}
}

// wantNumber fails the test unless key holds the decimal n. Trailing spaces
// are ignored: memcached may pad a decremented number with them.
func (h *harness) wantNumber(key string, n uint64) {
	h.t.Helper()
	it := h.get(key)
	if got := string(bytes.TrimRight(it.Value, " ")); got != strconv.FormatUint(n, 10) {
		h.t.Fatalf("Get(%q) = %q, want %d", key, it.Value, n)
	}
}

// wantMissing fails the test unless Get(key) gives backend.ErrNotFound.
func (h *harness) wantMissing(key string) {
	h.t.Helper()
	it, err := h.be.Get(h.ctx(), key)
	if !errors.Is(err, backend.ErrNotFound) {
		if err == nil {
			h.t.Fatalf("Get(%q) = %s, want ErrNotFound", key, show(it.Value))
		}
		h.t.Fatalf("Get(%q): error %v, want one wrapping ErrNotFound", key, err)
	}
}

// wantErr fails the test unless err wraps want.
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		if err == nil {
			t.Fatalf("%s: no error, want one wrapping %v", what, want)
		}
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, want)
	}
}

// noErr fails the test if err is not nil.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// show formats a value for a failure message, shortening long ones.
func show(v []byte) string {
	if len(v) <= 64 {
		return strconv.Quote(string(v))
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:64], len(v))
}

// Time.

// shortTTL is the TTL that TTL subtests give items meant to expire.
func (h *harness) shortTTL() time.Duration {
	g := h.opts.TTLGranularity
	if h.opts.Advance != nil {
		return 10 * g
	}
	return g
}

// survivingTTL is the TTL of items that must outlive one more call before
// the clock moves. On a real clock it is at least a second, so that a few
// calls on a loaded machine (a 2-core CI runner building beside the tests)
// cannot outlast it.
func (h *harness) survivingTTL() time.Duration {
	g := h.opts.TTLGranularity
	if h.opts.Advance != nil {
		return 20 * g
	}
	return max(2*g, time.Second)
}

// longTTL is a TTL that does not run out during a subtest.
func (h *harness) longTTL() time.Duration { return time.Hour }

// pass lets d pass for the backend: Advance, or sleep.
func (h *harness) pass(d time.Duration) {
	if h.opts.Advance != nil {
		h.opts.Advance(d)
		return
	}
	time.Sleep(d)
}

// expire lets enough time pass for items with TTL ttl, written just now, to
// be gone: ttl plus one granularity with Advance; 2.5 times ttl (and at
// least one granularity more) on a real clock, to allow for a server that
// counts whole seconds.
func (h *harness) expire(ttl time.Duration) {
	g := h.opts.TTLGranularity
	if h.opts.Advance != nil {
		h.pass(ttl + g)
		return
	}
	h.pass(max(ttl*5/2, ttl+g))
}

// realTime reports whether the suite sleeps rather than moving a fake
// clock; TTL subtests then run in parallel.
func (h *harness) realTime() bool { return h.opts.Advance == nil }
