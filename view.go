package memdict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/keyspace"
)

// A Dict's view.
//
// Every operation works in a view: what the Dict derives from one version
// of its settings and one namespace generation (the key namespace and the
// codec). current returns the view in use; a view is replaced when the
// settings change (SharedSettings.Store), when Clear moves the
// generation, and when a timer marks it stale so that the generation is
// read again.

// The namespace generation.
//
// Every backend key of a Dict holds a generation number between the prefix
// and the key (<site>:<prefix>:<gen>:<key>). The current generation of a
// (site, prefix) lives in the backend under keyspace.MetaKey(site, prefix,
// "gen"), as decimal text. Clear moves it to a new number, so that every
// key written before becomes unreachable at once; those entries age out by
// their TTL or the server's eviction.
//
// A Dict keeps the generation it read in its view and reads it again when a
// timer, armed for Settings.GenerationRefresh when the view is made, marks
// the view stale: the hot path then costs two atomic loads, no clock read.
// The first caller that finds the view stale reads the generation while the
// others go on with the stale view.
//
// A new generation is max(old+1, Unix time in seconds), not old+1, so that
// if the server loses the generation key (a restart, an eviction), a later
// Clear does not bring back a generation still holding old entries. A Dict
// that knows a generation and finds the key gone writes its generation back,
// and one that finds an older generation there raises it to its own (one
// written back by a Dict that had not yet seen a Clear): a generation never
// goes back.
//
// A Dict that knows no generation and finds the key absent does not take
// generation 0: the key may be one lost while the values of the
// generations before survive on other servers, and generation 0 holds
// those written before the first Clear. It adds a new generation, the
// time in Unix seconds (later than any generation a Clear made before,
// unless one was ahead of this clock: Clears faster than one a second, or
// on a clock ahead), and uses it once stored, or the one another Dict's
// add stored first; the Dicts that knew the lost generation take the new
// one at their next refresh, or raise it back to theirs if it is older.
// The cost is one miss of each entry of the namespace after its key is
// lost, and also on the first use of a namespace that never had a Clear
// and whose entries an earlier release of memdict wrote at generation 0
// (it stored a generation only at the first Clear): nothing tells such a
// namespace from one whose key was lost after a Clear (the data keys of
// other generations could, but finding them takes a listing of the
// server's keys, not a lookup).
//
// The generation key expires (Settings.GenerationTTL, 30 days by
// default), so that the key of a namespace no Dict uses any more (a
// prefix per user, per tenant) does not stay for good on a server that
// evicts nothing. Every write of it (the add, the write-back, the raise,
// Clear's) gives it the TTL, and a Dict renews it while it uses the
// namespace, at most once each tenth of the TTL (keepGen): when it reads
// the generation again and its last renewal is that old, it reads the key
// with its remaining TTL (backend.TTLReader) and touches it unless
// another Dict did within the tenth, in a goroutine of its own (renew).
// No call pays more than that read: the renewal rides on the refresh, and
// its touch holds no call. Its view goes stale each tenth of the TTL
// at least, a negative refresh included, so that a Dict that never reads
// the generation again still renews it (and reads it then). A lost key
// costs what it costs above; a refused or failed touch is not retried
// before the next tenth, and fails nothing.
//
// A Dict whose add is refused because this client may not write
// (backend.ErrWriteRefused: a Redis replica's READONLY, an ACL user's
// NOPERM) reads the namespace as empty, as a writer would after its add:
// it uses the generation it tried to add, not stored (view.refused), under
// which nothing was written unless a writer adds the same second's
// generation (whose values are then the right ones to read). It reads the
// key again at each refresh (each DefaultGenerationRefresh if the refresh
// is negative: see arm), as if it knew no generation, so that it takes
// the one a writer stores. Its writes fail (currentWrite, itemIn):
// written under a generation no other Dict reads, they would be lost, if
// its ACL let it write the data keys at all. A write reads the key again,
// and tries the add, first, at most once each refusedRetry, so that a
// writer refused during a Sentinel failover writes soon after the new
// master is up, not at its next refresh. Any other failure of the add
// fails the call.

// view is what a Dict derives from one version of its settings and one
// namespace generation. Views are immutable but for stale, which a timer
// sets when the generation is due to be read again.
type view struct {
	s       *Settings
	gen     uint64
	ns      string // keyspace namespace, ends in ':'
	codec   codec.Codec
	codecID byte
	// python says the settings' format is a Python one (format.go): no
	// generation, keys by pyKey, values by codec/python.
	python bool
	prefix string           // the Dict's prefix, for pyKey
	zstd   codec.Compressor // the codec, if it compresses
	// reuse says the codec is one of memdict's own, known to keep
	// nothing of the value it decodes into: a Dict decodes into a V of
	// its pool (Dict.decoded) rather than a new one.
	reuse bool
	stale atomic.Bool
	// refused, if not nil, is the server's refusal of the add of a
	// generation to this client (backend.ErrWriteRefused): gen is one of
	// this Dict's own, not stored, under which it reads an empty
	// namespace and may not write (writable).
	refused error
	// retryAt is when, on the Dict's clock (Unix ns), a write through a
	// view whose generation is not stored may next read it again before
	// the view is due (currentWrite).
	retryAt atomic.Int64
	// timeout bounds each Dict call (0: none); own says the backend
	// bounds each of its calls within it by itself (see timeout.go).
	timeout time.Duration
	own     bool
}

// current returns the view of the Dict's current settings and namespace
// generation, reading the generation from the backend when it is not
// known or due to be read again, within the call's bound b; it sets b's
// timeout. It fails only when no generation is known for the current
// settings and the backend cannot be read.
func (d *Dict[V]) current(b *bound) (*view, error) {
	if d.settings == nil {
		return nil, errNotMade
	}
	if v := d.view.Load(); v != nil && v.s == d.settings.load() && !v.stale.Load() {
		b.limits(v)
		return v, nil
	}
	return d.refreshView(b)
}

// currentWrite is current for an operation that writes: it also fails if
// the view's generation is not stored (view.writable), so that nothing is
// written where no other Dict reads.
//
// A write through a view whose generation is not stored reads the
// generation again (and tries its add) first, at most once each
// refusedRetry (view.retryDue), rather than fail until the view's refresh
// (a second by default): the refusal may have been a writer's during a
// Sentinel failover (the demoted master answering READONLY), and its
// writes then succeed soon after the new master is up.
func (d *Dict[V]) currentWrite(b *bound) (*view, error) {
	v, err := d.currentFill(b)
	if err == nil {
		err = v.writable(d.prefix)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// currentFill is current for an operation that may write, GetOrLoad's
// read included (a miss stores the loaded value): through a view whose
// generation is not stored, it reads the generation again first, at most
// once each refusedRetry, as currentWrite does; else GetOrLoad, which
// writes only after its read, stored none of its loads until the view's
// refresh after the new master was up.
func (d *Dict[V]) currentFill(b *bound) (*view, error) {
	v, err := d.current(b)
	if err == nil && v.refused != nil && v.retryDue(d.lease.now()) {
		v.stale.Store(true)
		v, err = d.current(b)
	}
	return v, err
}

// key returns the backend key of key and whether it is hashed. In a
// Python format, where the operations that call it check the key with
// bkey first, a key it cannot name is "", which no backend accepts.
func (v *view) key(key string) (string, bool) {
	if v.python {
		k, _ := v.pyKey(key)
		return k, false
	}
	return keyspace.Key(v.ns, key, v.s.MaxKeyLen)
}

// makeView returns a fresh view of settings s at generation gen.
func (d *Dict[V]) makeView(s *Settings, gen uint64) *view {
	if s.Format.python() {
		v := &view{s: s, python: true, prefix: d.prefix, codec: s.Codec, codecID: s.Codec.ID()}
		v.timeout, v.own = d.callTimeout()
		return v
	}
	v := &view{s: s, gen: gen, ns: keyspace.Namespace(s.SiteID, d.prefix, gen, s.MaxKeyLen), codec: s.Codec, prefix: d.prefix}
	if d.kind != kindCodec {
		v.codec = codec.Raw
	}
	v.codecID = v.codec.ID()
	v.timeout, v.own = d.callTimeout()
	v.zstd, _ = v.codec.(codec.Compressor)
	v.reuse = v.codec == codec.MsgPack || v.codec == codec.JSON || v.codec == codec.Gob
	return v
}

// arm schedules v to become stale after the refresh interval of its
// settings. A pending timer is no goroutine; when it fires it only sets a
// flag.
func (v *view) arm() *view {
	// A view in a Python format has no generation to read again, but it
	// goes stale all the same so that its timeout (the backend's, which a
	// Tool's plugin may change) is read again.
	every := v.s.GenerationRefresh
	if every == 0 || every < 0 && v.refused != nil {
		// A negative refresh keeps the generation read, but a view
		// whose generation is not stored read none: it is read again
		// until a writer stores one, or the Dict reads an empty
		// namespace, and fails its writes, for good.
		every = DefaultGenerationRefresh
	}
	if keep := v.s.genKeep(); keep > 0 && !v.python && v.refused == nil && (every < 0 || every > keep) {
		// The generation key's TTL is renewed when the generation is
		// read again (keepGen): a view whose refresh is rarer, or never,
		// reads it again as often as the key needs.
		every = keep
	}
	if every > 0 {
		time.AfterFunc(every, func() { v.stale.Store(true) })
	}
	return v
}

// writable returns nil if v's generation is stored, else the error of a
// write through v: a write at a generation that is not stored would be
// read by no other Dict, and lost at the next refresh of this one.
func (v *view) writable(prefix string) error {
	if v.refused == nil {
		return nil
	}
	return fmt.Errorf("memdict: prefix %q has no namespace generation stored and this client may not store one, so it reads the namespace as empty and may not write to it: %w", prefix, v.refused)
}

// refusedRetry is how often, at most, the writes through a view whose
// generation is not stored read the generation again before the view's
// refresh (currentWrite): one read and add each, not one a write, which a
// client that may not write would make at every call.
const refusedRetry = 100 * time.Millisecond

// retryDue reports whether a write through v, whose generation is not
// stored, is the one to read the generation again at now (the Dict's
// clock), and if so makes the next one due refusedRetry later.
func (v *view) retryDue(now time.Time) bool {
	at := v.retryAt.Load()
	return now.UnixNano() >= at && v.retryAt.CompareAndSwap(at, now.Add(refusedRetry).UnixNano())
}

// storedGen returns the generation of v if it is stored, else 0 (as if
// none were known).
func (v *view) storedGen() uint64 {
	if v.refused != nil {
		return 0
	}
	return v.gen
}

// metaKey returns the backend key that holds the generation for s.
func (d *Dict[V]) metaKey(s *Settings) string {
	return keyspace.MetaKey(s.SiteID, d.prefix, "gen", s.MaxKeyLen)
}

// refreshView is current's slow path. Reading the generation is a
// backend call before the operation's own: it starts the call's clock.
func (d *Dict[V]) refreshView(b *bound) (*view, error) {
	s := d.settings.load()
	old := d.view.Load()
	if old != nil && old.s == s {
		// A stale view of the current settings: one caller makes it
		// again, the others go on with it, as cheaply as on the fast path
		// (every call takes this path until the refresh is done: the flag
		// is read before it is written).
		if d.refreshing.Load() || !d.refreshing.CompareAndSwap(false, true) {
			b.limits(old)
			return old, nil
		}
		defer d.refreshing.Store(false)
		if cur := d.view.Load(); cur.s == s && !cur.stale.Load() {
			// Made again by another caller since this one looked.
			b.limits(cur)
			return cur, nil
		}
	}
	if s.Format.python() {
		// Keys without a generation: the view is made again only for
		// its timeout.
		v := d.install(s, 0, nil)
		b.limits(v)
		return v, nil
	}
	if old != nil && old.s == s {
		// Read the generation again.
		b.timeout, b.own = d.callTimeout()
		b.begin()
		reports := d.genReports.Load()
		// A generation not stored is none known: the key is read and
		// added again, and one a writer stored since is taken.
		gen, refused, err := d.readGen(b, s, old.storedGen())
		switch {
		case err != nil:
			// Keep the known generation and try again after an
			// interval; the operation itself goes on.
			_ = d.m.failWhole(b.parent, opClear, fmt.Errorf("memdict: the namespace generation of prefix %q could not be read again, the Dict goes on with generation %d: %w", d.prefix, old.gen, err))
			gen, refused = old.gen, old.refused
		case refused != nil && old.refused != nil:
			// Still none stored: keep the same generation of its own.
			gen = old.gen
		}
		return d.installRead(s, gen, refused, reports), nil
	}
	// No view for these settings: everyone needs the generation. Waiting
	// for the lock is part of the call's time, and ends with it: the
	// caller holding it may be reading from a server that does not
	// answer, with a longer timeout (the backend a Tool's plugin left).
	b.timeout, b.own = d.callTimeout()
	b.begin()
	select {
	case d.genLock <- struct{}{}:
	default:
		b.waited()
		select {
		case d.genLock <- struct{}{}:
		case <-b.done():
			return nil, b.expired("waiting for the namespace generation being read")
		}
	}
	defer func() { <-d.genLock }()
	if cur := d.view.Load(); cur != nil && cur.s == s && !cur.stale.Load() {
		b.waited()
		return cur, nil
	}
	var known uint64
	if old != nil && old.s.SiteID == s.SiteID && old.s.MaxKeyLen == s.MaxKeyLen {
		known = old.storedGen()
	}
	reports := d.genReports.Load()
	gen, refused, err := d.readGen(b, s, known)
	if err != nil {
		// The operation's error names it, its key and the server; the
		// generation is named only when it is itself the problem (a value
		// that is not a number says so).
		return nil, err
	}
	return d.installRead(s, gen, refused, reports), nil
}

// installRead is install for a generation read from the backend while
// d.genReports was reports. If the backend reported a change of the
// generation key meanwhile (a Clear elsewhere, reported before the read's
// answer was in place), the view it makes is stale at once, so that the
// next call reads the generation again: the report found the view before
// it to mark, and would otherwise be lost until the next refresh.
func (d *Dict[V]) installRead(s *Settings, gen uint64, refused error, reports uint64) *view {
	v := d.install(s, gen, refused)
	if d.genReports.Load() != reports {
		v.stale.Store(true)
	}
	return v
}

// install makes the view of (s, gen) current, unless a view of s with a
// later stored generation (from a concurrent Clear), not a final one (see
// final), already is, and returns the current view. refused, if not nil,
// says gen is not stored (view.refused); the generation of a view that is
// not stored is no later one: any other replaces it, and it replaces no
// fresh view of s with a stored generation, which was installed while gen
// was read (refreshView reads only when there is none): a Clear's, stored
// after the add was refused (the client's write permission came back: a
// Sentinel's new master).
func (d *Dict[V]) install(s *Settings, gen uint64, refused error) *view {
	nv := d.makeView(s, gen)
	nv.refused = refused
	if refused != nil {
		// The add was just refused: the writes through nv try again
		// only a while later.
		nv.retryAt.Store(d.lease.now().Add(refusedRetry).UnixNano())
	}
	nv.arm()
	for {
		cur := d.view.Load()
		stored := cur != nil && cur.s == s && cur.refused == nil
		if stored && refused != nil && !cur.stale.Load() {
			return cur
		}
		later := stored && cur.gen > gen && !final(cur.gen)
		if later && !cur.stale.Load() {
			return cur
		}
		if later {
			nv = d.makeView(s, cur.gen).arm()
		}
		if d.view.CompareAndSwap(cur, nv) {
			return nv
		}
	}
}

// readGen reads the generation for s, within the call's bound b. If the
// key holds an older generation than the Dict knows, it raises it to that
// one (best effort, with compare-and-swap).
//
// An older generation is one written back by a Dict that had not yet seen
// a Clear when the key was lost (an eviction, a restart, a memcached
// server ejected or flushed on its return), or one added by a new Dict
// meanwhile (below) from a clock behind the Clear's: a generation never
// goes back for the Dict that knows the later one (install), and without
// the raise the stored one stayed the one before the Clear for good, so
// that every other Dict, and every new one, read the values the Clear had
// dropped.
//
// If the key is absent (a miss, not a failed read), readGen creates it
// with an add. A Dict that knows a generation writes that one back (best
// effort: on a failure it goes on with it and tries again at its next
// refresh). A Dict that knows none writes a new one, the time in Unix
// seconds as Clear makes it, and uses it only once it is stored: the
// absent key may be one lost after a Clear, whose generation 0 still
// holds the values the Clear dropped, on servers that kept them. When
// another Dict's add wins, readGen takes what it stored, raised as above.
// If the server refuses that add because this client may not write
// (backend.ErrWriteRefused), readGen returns the generation not stored and
// the refusal, as refused, to make a view that reads an empty namespace
// and may not write (see "The namespace generation" above).
func (d *Dict[V]) readGen(b *bound, s *Settings, known uint64) (gen uint64, refused, err error) {
	mk := d.metaKey(s)
	ttl := s.genTTL()
	for range maxGenAdds {
		due := d.keepDue(s, mk)
		it, renew, err := d.readGenKey(b, mk, due)
		switch {
		case err == nil:
			gen, err := parseGen(it.Value)
			if err != nil || gen >= known || final(known) {
				if err == nil && due {
					d.keepGen(b, mk, ttl, it.TTL, renew)
				}
				return gen, nil, err
			}
			// A conflict means the key moved meanwhile (a Clear, another
			// raise): the next read takes whatever it now holds.
			if d.be.CompareAndSwap(b.next(), backend.Item{Key: mk, Value: strconv.AppendUint(nil, known, 10), TTL: ttl, CAS: it.CAS}) == nil {
				d.touched(mk, 0)
			}
			return known, nil, nil
		case !errors.Is(err, backend.ErrNotFound):
			return 0, nil, d.genErr(s, known, mk, b.check(err))
		}
		gen := known
		if gen == 0 {
			gen = newGen()
		}
		err = d.be.Add(b.next(), backend.Item{Key: mk, Value: strconv.AppendUint(nil, gen, 10), TTL: ttl})
		switch {
		case err == nil:
			d.touched(mk, 0)
			return gen, nil, nil
		case errors.Is(err, backend.ErrNotStored):
			// Someone else wrote one meanwhile: read theirs.
		case known != 0:
			return known, nil, nil
		case errors.Is(err, backend.ErrWriteRefused):
			// This client may not write (a replica, a user that may
			// only read): the namespace is empty to it, as to a writer
			// that had stored gen, which nothing was written under
			// unless a writer stores the same second's generation
			// (whose values are then the ones to read).
			return gen, d.genErr(s, known, mk, err), nil
		default:
			// Generation 0 would be the one the key may have lost, and a
			// generation of this Dict's own, not stored, one no other
			// Dict shares.
			return 0, nil, d.genErr(s, known, mk, b.check(err))
		}
	}
	// The key kept appearing to the add and vanishing to the read.
	if known != 0 {
		return known, nil, nil
	}
	return 0, nil, d.genErr(s, known, mk, fmt.Errorf("%w: the namespace generation kept vanishing after %d adds", ErrCASConflict, maxGenAdds))
}

// readGenKey reads the generation key mk, with its remaining TTL if
// withTTL and the backend can tell it (else the item's TTL is -1:
// unknown). renew says whether the key may be renewed (keepGen): not if
// the TTL could not be read for a reason that the Get did not share.
func (d *Dict[V]) readGenKey(b *bound, mk string, withTTL bool) (it backend.Item, renew bool, err error) {
	if withTTL {
		it, err := backend.GetTTL(b.next(), d.be, mk)
		switch {
		case err == nil, errors.Is(err, backend.ErrNotFound), errors.Is(err, backend.ErrUnavailable), b.parent.Err() != nil:
			return it, true, err
		case errors.Is(err, backend.ErrNotSupported):
			// It did nothing: a plain read, and a touch if the key
			// has a TTL at all.
			renew = true
		default:
			// Refused: over Redis, an ACL user that may only read
			// (+@read) may not run the script that reads a TTL.
			// Such a client may not touch the key either; the Get
			// reads the generation, as before the TTL, and the next
			// try is a tenth of the TTL later.
			d.touched(mk, 0)
		}
	}
	it, err = d.be.Get(b.next(), mk)
	it.TTL = -1
	return it, renew, err
}

// genTouch is when the generation key mk was last seen renewed, on the
// Dict's clock, and the TTL the Dict renewed it with then.
type genTouch struct {
	key string
	at  time.Time
	ttl time.Duration
}

// keepDue reports whether the TTL of the generation key mk is due to be
// renewed (see keepGen): it has one, and no renewal of it was seen within
// the last tenth of it (a clock gone back makes it due, once), with it: a
// longer TTL (the settings changed) renews the key at once, which would
// else keep the time left of the shorter one until a tenth of the longer
// and could expire in use.
func (d *Dict[V]) keepDue(s *Settings, mk string) bool {
	keep := s.genKeep()
	if keep <= 0 {
		return false
	}
	t := d.genTouched.Load()
	if t == nil || t.key != mk || t.ttl != s.genTTL() {
		return true
	}
	since := d.lease.now().Sub(t.at)
	return since >= keep || since < 0
}

// touched records that the generation key mk was renewed ago ago, with
// the current settings' TTL: that TTL, in full then, is renewed again a
// tenth of it after.
func (d *Dict[V]) touched(mk string, ago time.Duration) {
	d.genTouched.Store(&genTouch{key: mk, at: d.lease.now().Add(-ago), ttl: d.settings.load().genTTL()})
}

// keepGen renews the TTL ttl of the generation key mk, which a read found
// with left to live (0: none, negative: not known), unless another Dict
// renewed it within the tenth of ttl (left says so) or renew is false
// (readGenKey), and records the renewal. A failed touch (the server down,
// a client that may not write, the key gone meanwhile) is recorded all
// the same: the call goes on, and the next attempt is a tenth of the TTL
// later, not at every refresh.
func (d *Dict[V]) keepGen(b *bound, mk string, ttl, left time.Duration, renew bool) {
	if ago := ttl - left; left > 0 && ago < ttl/10 {
		d.touched(mk, max(ago, 0))
		return
	}
	d.touched(mk, 0)
	if renew {
		d.renew(b.parent, mk, ttl)
	}
}

// renew touches the generation key mk with ttl in a goroutine of its own,
// bounded as a Dict call is (its context's values, not its cancellation):
// the touch is best effort, and the call whose read of the generation
// made it due neither waits for it nor gives it its own time, which a
// server that answers reads but not the touch (a hung write path) used
// up, failing a read that had its generation and its value. A panic of
// the touch (a middleware's bug), which no caller waits for, is counted
// and logged as a failure of the generation's renewal.
func (d *Dict[V]) renew(ctx context.Context, mk string, ttl time.Duration) {
	ctx = context.WithoutCancel(ctx)
	cancel := context.CancelFunc(func() {})
	if t, own := d.callTimeout(); t > 0 && !own {
		ctx, cancel = context.WithTimeout(ctx, t)
	}
	d.renewals.Add(1)
	go func() {
		defer d.renewals.Done()
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				defer func() { _ = recover() }() // the logger's
				_ = d.m.failWhole(ctx, opClear, fmt.Errorf("memdict: the renewal of the namespace generation of prefix %q panicked: %v", d.prefix, p))
			}
		}()
		_ = d.be.Touch(ctx, mk, ttl)
	}()
}

// maxGenAdds bounds readGen's attempts to read back a generation key that
// another Dict added while it found none.
const maxGenAdds = 3

// newGen returns a new generation after each of olds: the time in Unix
// seconds, or the one after the latest of olds if that is not later. A
// generation lost with its key is one from before, so that a new
// generation of a later second is none of the generations whose values
// may still be stored. A final generation (see final) has none after it:
// newGen starts again from the time, as if it were garbage.
func newGen(olds ...uint64) uint64 {
	gen := uint64(time.Now().Unix())
	for _, old := range olds {
		if !final(old) {
			gen = max(gen, old+1)
		}
	}
	return gen
}

// final reports whether no generation after g can be stored: the one
// after it would be the largest uint64, which parseGen refuses. A final
// generation (garbage, or a hostile writer's) is not kept against an
// older one (install, readGen's raise), so that Clear, whose new
// generation starts again from the time, moves every Dict off it; else a
// key holding 18446744073709551614 had Clear store the largest uint64,
// which every other Dict failed to read, and the next Clear was a no-op
// for the Dict, which raised the key back to it.
func final(g uint64) bool { return g >= math.MaxUint64-1 }

// parseGen parses a stored generation. The largest uint64 is refused as
// garbage, as what is not a number: no generation is later, so a Dict
// that took it could never be cleared; Clear overwrites it. newGen never
// makes it (see final).
func parseGen(b []byte) (uint64, error) {
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: namespace generation %q is not a number", ErrDecode, b)
	}
	if g == math.MaxUint64 {
		return 0, fmt.Errorf("%w: namespace generation %q leaves no later one", ErrDecode, b)
	}
	return g, nil
}
