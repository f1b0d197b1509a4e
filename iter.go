package memdict

import (
	"context"
	"fmt"
	"iter"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/keyspace"
)

// Entry is a key and its value, as All yields them.
type Entry[V any] struct {
	// Key is the Dict key (the original key, also for hashed long keys).
	Key string
	// Value is the decoded value; V's zero value when an error comes with
	// the entry.
	Value V
}

// allBatch is how many values All reads per GetMulti.
const allBatch = 100

// Keys returns an iterator over the Dict's live keys, each once, in no
// particular order, with a nil error. It lists only this Dict's namespace
// (site id and prefix) in its current generation, so keys removed by Clear
// are not listed; keys too long for the backend, which are stored under a
// hash, are listed as the original key (read from their value). It reads
// the values too, in batches, to leave out entries that expired by the
// time their envelope carries (on a store that ignores TTLs) and absences
// cached by GetOrLoad.
//
// Listing needs a backend that implements backend.Lister (memory; Redis
// with SCAN; memcached with lru_crawler metadump). On any other backend
// the iterator yields a single ("", err) pair whose err wraps
// ErrNotSupported. A failure yields a final ("", err) pair, after the
// keys listed before it (a listing cut half-way). A shortened
// key whose value cannot be read because its server is down (the backend
// names it in a *backend.MultiError) is yielded as (its backend key, an
// *OpError) and the iteration goes on if the loop does. Keys written or
// removed while the listing runs may or may not be seen.
func (d *Dict[V]) Keys(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		d.list(ctx, false, d.listBackend(ctx), func(k string, _ V, err error) bool {
			return yield(k, err)
		})
	}
}

// KeysOf returns an iterator over those of the backend keys bkeys (as a
// backend's listing gives them: backend.Keys, ParseBackendKey) that hold
// live keys of this Dict, each yielded as Keys would yield it: keys of
// other namespaces and of generations before the last Clear are skipped,
// a key stored under a hash is yielded as the original key, and entries
// that expired or are absences cached by GetOrLoad are left out (their
// values are read, in batches, as Keys reads them). Errors are yielded as
// Keys yields them. It lets a program that lists the backend once sort its
// keys among several Dicts, where each Dict's Keys would list the whole
// backend again (a memcached listing is a dump of every key the server
// holds): memdict's CLI lists every prefix of a site this way.
func (d *Dict[V]) KeysOf(ctx context.Context, bkeys []string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		src := func(string) iter.Seq2[string, error] {
			return func(yield func(string, error) bool) {
				for _, bk := range bkeys {
					if !yield(bk, nil) {
						return
					}
				}
			}
		}
		d.list(ctx, false, src, func(k string, _ V, err error) bool {
			return yield(k, err)
		})
	}
}

// All returns an iterator over the Dict's live entries, as Keys lists them,
// with their values, read in batches. An entry whose value cannot be
// decoded is yielded with its Key and an *OpError wrapping ErrDecode, and
// one whose value cannot be read because its server is down (the backend
// names it in a *backend.MultiError) with its Key (the backend key for a
// shortened key) and an *OpError with the cause; the iteration goes on if
// the loop does. A listing failure, or a backend
// without backend.Lister (ErrNotSupported), is yielded as a final
// (Entry{}, err) pair, after the entries of the keys listed before the
// failure. Keys removed between the listing and the reading of
// their value are skipped.
func (d *Dict[V]) All(ctx context.Context) iter.Seq2[Entry[V], error] {
	return func(yield func(Entry[V], error) bool) {
		d.list(ctx, true, d.listBackend(ctx), func(k string, v V, err error) bool {
			return yield(Entry[V]{Key: k, Value: v}, err)
		})
	}
}

// listed is a listed backend key and what Split made of it.
type listed struct {
	bkey, key string
	hashed    bool
}

// listBackend returns list's usual source: the backend's listing of the
// namespace ns.
func (d *Dict[V]) listBackend(ctx context.Context) func(ns string) iter.Seq2[string, error] {
	return func(ns string) iter.Seq2[string, error] { return backend.Keys(ctx, d.be, ns) }
}

// list calls yield with (key, value, nil) for each live key among the
// backend keys src yields for the Dict's current namespace (with values
// only if withValues), (key, zero, err) for a value it cannot decode, and a
// final ("", zero, err) for a failure, until yield returns false.
func (d *Dict[V]) list(ctx context.Context, withValues bool, src func(ns string) iter.Seq2[string, error], yield func(string, V, error) bool) {
	var zero V
	t0 := d.m.start(opList)
	defer d.m.end(opList, t0)
	// Only reading the generation is bounded here: the listing and its
	// reads are each bounded by the backend, and the whole by ctx, since
	// the caller's loop drives them.
	b := bound{parent: ctx}
	vw, err := d.current(&b)
	b.end()
	if err == nil && vw.python {
		err = d.notAvailable(vw.s, "listing keys (Keys, All)")
	}
	if err != nil {
		yield("", zero, d.m.failWhole(ctx, opList, fmt.Errorf("memdict: list %q: %w", d.prefix, err)))
		return
	}
	batch := make([]listed, 0, allBatch)
	bkeys := make([]string, 0, allBatch)
	// flush reads the batch's values and yields its entries; it returns
	// false when the iteration must stop.
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		bkeys = bkeys[:0]
		for _, l := range batch {
			bkeys = append(bkeys, l.bkey)
		}
		items, err := d.be.GetMulti(ctx, bkeys)
		var failed map[string]error // keys of a server that is down
		if err != nil {
			kes, partial := backend.KeyErrors(err)
			if !partial {
				yield("", zero, d.m.failWhole(ctx, opList, fmt.Errorf("memdict: list %q: reading values: %w", d.prefix, err)))
				return false
			}
			failed = make(map[string]error, len(kes))
			for _, ke := range kes {
				failed[ke.Key] = ke.Err
			}
		}
		for _, l := range batch {
			it, found := items[l.bkey]
			if cause, bad := failed[l.bkey]; bad && !found {
				// Unreadable, not absent: say so, and go on with the
				// others. A shortened key's original is in its value:
				// name its backend key.
				key := l.key
				if l.hashed {
					key = l.bkey
				}
				if !yield(key, zero, d.m.fail(ctx, opGet, key, cause)) {
					return false
				}
				continue
			}
			if !found {
				continue // removed since it was listed
			}
			key := l.key
			h, _, perr := envelope.Parse(it.Value)
			if l.hashed {
				if perr != nil || !h.HasKey {
					continue // not a value of ours
				}
				key = string(h.Key)
			}
			if perr == nil && h.Meta != (envelope.Meta{}) {
				if st := d.lease.state(h.Meta); st != entryFresh && st != entryStale {
					continue // expired, or a cached absence
				}
			}
			if !withValues {
				if !yield(key, zero, nil) {
					return false
				}
				continue
			}
			v, ok, err := d.decode(vw, key, l.hashed, it)
			switch {
			case err != nil:
				if !yield(key, zero, &OpError{Op: "get", Key: key, Err: err}) {
					return false
				}
			case ok:
				if !yield(key, v, nil) {
					return false
				}
			}
		}
		batch = batch[:0]
		return true
	}
	for bk, err := range src(vw.ns) {
		if err != nil {
			// The keys listed before the failure are yielded first:
			// the caller has the part of the listing that was made.
			if flush() {
				yield("", zero, d.m.failWhole(ctx, opList, fmt.Errorf("memdict: list %q: %w", d.prefix, err)))
			}
			return
		}
		key, hashed, err := keyspace.Split(vw.ns, bk)
		if err != nil {
			continue // another namespace that shares the text prefix
		}
		// Keys reads values too: an entry may be expired by its envelope
		// (on a store that ignores TTLs) or be a cached absence.
		batch = append(batch, listed{bk, key, hashed})
		if len(batch) == allBatch && !flush() {
			return
		}
	}
	flush()
}
