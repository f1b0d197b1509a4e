package memdict

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/keyspace"
)

// maxClearAttempts bounds Clear's compare-and-swap loop.
const maxClearAttempts = 100

// Clear makes every key of the Dict unreachable at once, in O(1): it moves
// the Dict's namespace (its site id and prefix) to a new generation, stored
// in the backend, so that later reads and writes use new backend keys. It
// does not use flush_all and touches no other prefix; the old entries stay
// in the server until their TTL or its eviction removes them.
//
// This Dict sees the clear at once. Other Dicts on the same site id and
// prefix — in this process or another — see it within their
// GenerationRefresh interval (one second by default) plus one round trip;
// until then they still read and write the old generation.
//
// The generation is one key in the backend, and may be lost (an eviction,
// a restart, its memcached server ejected, or flushed on its return). A
// Dict that knows a generation writes it back when it finds the key
// missing, and raises a generation older than its own (written back by a
// Dict that had not yet seen the Clear), so the Dicts that run converge
// within a refresh on the newest. A Dict made while the key is missing,
// before any Dict that knows it has written it back, stores a new
// generation (the time in Unix seconds), not generation 0, which would
// show the entries written before the first Clear: its entries are all
// misses, and the Dicts that knew the lost generation take the new one
// within a refresh. The same holds for a namespace that never had a Clear
// and whose entries were written at generation 0 by an earlier release,
// which stored no generation until the first Clear: they are missed once.
// Only if a generation that Clears left is ahead of the new Dict's clock
// (Clears faster than one a second, one in the second the namespace's
// generation was first stored, or one made on a clock ahead) may it store
// that generation again, until a Dict that knew the lost one raises it
// back.
//
// A Dict whose client may not write (a Redis replica, an ACL user that may
// only read: the add refused with backend.ErrWriteRefused) and that finds
// no generation key reads the namespace as empty, with a generation of its
// own not stored, and takes the generation a writer stores within a
// refresh; until then its writes, Clear included, fail with an error
// wrapping ErrWriteRefused.
//
// The generation key expires when no Dict has used the namespace for
// Settings.GenerationTTL (WithGenerationTTL; 30 days by default): Clear
// and every other write of it give it that TTL, and the Dicts that use
// the namespace renew it, at most once each tenth of it. The next Dict to
// use the namespace after it expired stores a new generation, as after a
// lost key: the entries of the old one are misses.
//
// Clear returns an error if the backend fails, or one wrapping
// ErrCASConflict if the generation cannot be moved after many
// compare-and-swap conflicts.
func (d *Dict[V]) Clear(ctx context.Context) (err error) {
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "clear", "", 0)
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opClear)
	defer d.m.end(opClear, t0)
	s := d.settings.load()
	if d.be == nil {
		return d.m.failWhole(ctx, opClear, errNotMade)
	}
	if s.Format.python() {
		return d.m.failWhole(ctx, opClear, fmt.Errorf("memdict: clear %q: %w", d.prefix, d.notAvailable(s, "Clear")))
	}
	mk, ttl := d.metaKey(s), s.genTTL()
	var known uint64
	if v := d.view.Load(); v != nil && v.s == s {
		known = v.storedGen()
	}
	b := bound{parent: ctx}
	defer b.end()
	b.timeout, b.own = d.callTimeout()
	b.begin() // a read and a compare-and-swap, or more
	for range maxClearAttempts {
		it, err := d.be.Get(b.next(), mk)
		switch {
		case err == nil:
			old, perr := parseGen(it.Value)
			if perr != nil {
				// Overwrite garbage with a fresh generation.
				old = known
			}
			gen := newGen(old, known)
			err = d.be.CompareAndSwap(b.next(), backend.Item{Key: mk, Value: strconv.AppendUint(nil, gen, 10), TTL: ttl, CAS: it.CAS})
			if err == nil {
				d.touched(mk, 0)
				d.install(s, gen, nil)
				d.nearReset()
				return nil
			}
		case errors.Is(err, backend.ErrNotFound):
			gen := newGen(known)
			err = d.be.Add(b.next(), backend.Item{Key: mk, Value: strconv.AppendUint(nil, gen, 10), TTL: ttl})
			if err == nil {
				d.touched(mk, 0)
				d.install(s, gen, nil)
				d.nearReset()
				return nil
			}
		}
		if !errors.Is(err, backend.ErrCASConflict) && !errors.Is(err, backend.ErrNotStored) && !errors.Is(err, backend.ErrNotFound) {
			// The generation key is internal: the error names the
			// server and the cause, not the key.
			return d.m.failWhole(ctx, opClear, fmt.Errorf("memdict: clear %q: %w", d.prefix, d.genErr(s, known, mk, b.check(err))))
		}
	}
	return d.m.failWhole(ctx, opClear, fmt.Errorf("memdict: clear %q: %w: the namespace generation kept changing", d.prefix, ErrCASConflict))
}

// Generation returns the namespace generation the Dict currently uses
// (see Clear), reading it from the backend if it has none yet (and
// storing a new one there if the backend holds none). Its error
// is an *OpError with Op "generation" and no Key, whose message names the
// Dict's prefix and the server. A Dict whose client may not store a
// generation where none is stored returns the one of its own it reads
// under, not stored (see Clear).
func (d *Dict[V]) Generation(ctx context.Context) (uint64, error) {
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.current(&b)
	if err != nil {
		return 0, &OpError{Op: "generation", Err: err}
	}
	if vw.python {
		return 0, &OpError{Op: "generation", Err: d.notAvailable(vw.s, "a namespace generation")}
	}
	return vw.gen, nil
}

// genError is the error of an operation that needed the namespace
// generation and could not read it. Errors name the operation, its key and
// the server; the generation key itself is internal (it starts "#!gen")
// and appears in no message. The generation is named only when it is the
// problem: when its server is not the one the operation's key lives on
// (about), or when the operation is about the generation (Clear,
// Generation, the Dict's periodic re-read).
type genError struct {
	prefix string
	addr   string // the server of the generation key; "" if not known
	server bool   // the cause is the server (backend.ErrUnavailable)
	cause  error  // the backend's error
	clean  string // cause's message without the generation key; may be ""
	// keyServer returns the server a Dict key lives on under the
	// generation last known (0 if none: a guess, the generation being
	// what could not be read), or "" if the backend cannot tell.
	keyServer func(key string) string
}

// genErr makes the genError of err, the backend's failure to read or
// write mk, the generation key of s; known is the generation the Dict
// knew.
func (d *Dict[V]) genErr(s *Settings, known uint64, mk string, err error) error {
	ge := &genError{
		prefix: d.prefix,
		server: errors.Is(err, backend.ErrUnavailable),
		cause:  err,
		clean:  cleanCause(err, mk),
	}
	// Prefer the backend's own placement, which uses the names the keys'
	// placement compares with; a refused connection names a resolved
	// address.
	if ge.addr = backend.ServerFor(d.be, mk); ge.addr != "" {
		ns := keyspace.Namespace(s.SiteID, d.prefix, known, s.MaxKeyLen)
		ge.keyServer = func(key string) string {
			bk, _ := keyspace.Key(ns, key, s.MaxKeyLen)
			return backend.ServerFor(d.be, bk)
		}
	} else {
		ge.addr = backend.ServerOf(err)
	}
	return ge
}

// Error returns the message without a key: the server and the cause.
func (e *genError) Error() string { return e.about("") }

// Unwrap returns the backend's error, so errors.Is(err, ErrUnavailable)
// and errors.As to a driver's error type work.
func (e *genError) Unwrap() error { return e.cause }

// about returns the message for an operation on key ("" for none).
func (e *genError) about(key string) string {
	tail := ""
	if e.clean != "" {
		tail = ": " + e.clean
	}
	if !e.server {
		if e.addr != "" {
			return "server " + e.addr + tail
		}
		return strings.TrimPrefix(tail, ": ")
	}
	if key != "" && e.addr != "" && e.keyServer != nil {
		if ks := e.keyServer(key); ks != "" && ks != e.addr {
			return fmt.Sprintf("the namespace generation of prefix %q (on %s) could not be read: server unavailable%s", e.prefix, e.addr, tail)
		}
	}
	if e.addr != "" {
		return "server " + e.addr + " unavailable" + tail
	}
	return "server unavailable" + tail
}

// cleanCause returns the message of err without the internal key mk: the
// first error in err's tree whose message does not name mk (else err's own
// message with mk cut out), less the backend sentinels' words it starts
// with ("backend: server unavailable: ..."); "" for a bare sentinel.
func cleanCause(err error, mk string) string {
	var msg string
	var walk func(error) bool
	walk = func(e error) bool {
		if e == nil {
			return false
		}
		if m := e.Error(); !strings.Contains(m, mk) && !isSentinel(e) {
			msg = m
			return true
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				if walk(c) {
					return true
				}
			}
		case interface{ Unwrap() error }:
			return walk(u.Unwrap())
		}
		return false
	}
	if !walk(err) {
		// Every message names mk: take the outermost without it.
		msg = strings.ReplaceAll(err.Error(), " "+strconv.Quote(mk), "")
		msg = strings.ReplaceAll(msg, mk, "")
	}
	for changed := true; changed; {
		changed = false
		for _, s := range sentinels {
			if t, ok := strings.CutPrefix(msg, s.Error()+": "); ok {
				msg, changed = t, true
			}
		}
	}
	if msg == backend.ErrUnavailable.Error() {
		return ""
	}
	return msg
}

// sentinels are the backend's errors that say what kind of failure an
// error is, not what happened.
var sentinels = []error{
	backend.ErrUnavailable, backend.ErrClosed, backend.ErrNotFound, backend.ErrNotStored,
	backend.ErrCASConflict, backend.ErrInvalidKey, backend.ErrValueTooLarge,
	backend.ErrNotNumeric, backend.ErrNotSupported, backend.ErrInvalidTTL, backend.ErrWriteRefused,
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if err == s {
			return true
		}
	}
	return false
}
