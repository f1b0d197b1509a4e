package memdict

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/memdict/memdict/backend"
)

// Tx is a unit of work on a Dict, the Go form of ERP5's transactional
// dictionary: it buffers puts and deletes in memory and sends them all at
// Commit, or drops them at Rollback.
//
// Reads through the Tx see its own writes: a key it put reads as the value
// put (the very value, not a decoded copy), a key it deleted reads as a
// miss; other keys are read from the Dict. Values are encoded at Commit, so
// a value that refers to memory the caller changes before Commit (a
// pointer, a slice, a map) is stored as it is at Commit time.
//
// A Tx is safe for concurrent use by multiple goroutines: its methods lock
// the buffer. It is not isolated from other writers — a Tx is not a
// database transaction: other callers see nothing of it before Commit and
// each key's write at Commit is a plain Set, with the last writer winning.
type Tx[V any] struct {
	d    *Dict[V]
	mu   sync.Mutex
	ops  map[string]txOp[V]
	done bool
}

// txOp is a buffered write: a put of v, or a delete.
type txOp[V any] struct {
	v    V
	del  bool
	opts []ItemOption
}

// Begin starts a unit of work on the Dict. It does no I/O.
func (d *Dict[V]) Begin() *Tx[V] {
	return &Tx[V]{d: d, ops: make(map[string]txOp[V])}
}

// Dict returns the Dict the Tx writes to.
func (tx *Tx[V]) Dict() *Dict[V] { return tx.d }

// Lookup returns the value key has in the Tx: its buffered value if it put
// one, a miss (false, nil) if it deleted the key, and otherwise the Dict's
// value, as Dict.Lookup returns it. After Commit or Rollback it returns an
// error wrapping ErrTxDone.
func (tx *Tx[V]) Lookup(ctx context.Context, key string) (V, bool, error) {
	var zero V
	tx.mu.Lock()
	if tx.done {
		tx.mu.Unlock()
		return zero, false, &OpError{Op: "get", Key: key, Err: ErrTxDone}
	}
	o, buffered := tx.ops[key]
	tx.mu.Unlock()
	if buffered {
		if o.del {
			return zero, false, nil
		}
		return o.v, true, nil
	}
	return tx.d.Lookup(ctx, key)
}

// Get is Lookup with context.Background that reports every failure as a
// miss, as Dict.Get does.
func (tx *Tx[V]) Get(key string) (V, bool) {
	v, ok, err := tx.Lookup(context.Background(), key)
	if err != nil && tx.d.onError != nil && !errors.Is(err, ErrTxDone) {
		tx.d.onError(err)
	}
	return v, ok
}

// Put buffers a write of v under key (with the TTL options given, else the
// Dict's default TTL), replacing any earlier put or delete of key in the
// Tx. It returns an error wrapping ErrTxDone after Commit or Rollback.
func (tx *Tx[V]) Put(key string, v V, opts ...ItemOption) error {
	return tx.buffer(key, txOp[V]{v: v, opts: opts}, "put")
}

// Delete buffers a removal of key, replacing any earlier put of key in the
// Tx; until Commit, the Tx reads key as a miss. Deleting an absent key is
// not an error at Commit. It returns an error wrapping ErrTxDone after
// Commit or Rollback.
func (tx *Tx[V]) Delete(key string) error {
	return tx.buffer(key, txOp[V]{del: true}, "delete")
}

func (tx *Tx[V]) buffer(key string, o txOp[V], name string) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		return &OpError{Op: name, Key: key, Err: ErrTxDone}
	}
	tx.ops[key] = o
	return nil
}

// Len returns the number of keys the Tx will write or delete.
func (tx *Tx[V]) Len() int {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return len(tx.ops)
}

// Rollback drops the buffered writes. Rolling back a Tx that is already
// committed or rolled back does nothing, so that `defer tx.Rollback()` is
// safe.
func (tx *Tx[V]) Rollback() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.done = true
	tx.ops = nil
}

// Commit sends every buffered write and delete to the backend, in few round
// trips if the backend implements backend.MultiWriter (memcached, Redis),
// else with one call per key, several at a time (backend.SetMulti and
// backend.DeleteMulti). The Tx is then done.
//
// Every key is tried, whatever happens to the others. If some fail, Commit
// returns a *CommitError that lists each of them with its cause, and all
// the other keys were written. A value that cannot be encoded or is too
// large fails its key only. After Commit or Rollback, Commit returns
// ErrTxDone.
func (tx *Tx[V]) Commit(ctx context.Context) (err error) {
	tx.mu.Lock()
	if tx.done {
		tx.mu.Unlock()
		return ErrTxDone
	}
	ops := tx.ops
	tx.done, tx.ops = true, nil
	tx.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	d := tx.d
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "commit", "", len(ops))
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opCommit)
	defer d.m.end(opCommit, t0)

	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var failed []*OpError
	fail := func(o op, key string, err error) {
		var oe *OpError
		if !errors.As(d.m.fail(ctx, o, key, err), &oe) {
			oe = &OpError{Op: opInfo[o].name, Key: key, Err: err}
		}
		failed = append(failed, oe)
	}

	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		for _, k := range keys {
			name := opPut
			if ops[k].del {
				name = opDelete
			}
			d.m.count(name, 1)
			fail(name, k, err)
		}
		return d.m.failWhole(ctx, opCommit, &CommitError{Op: "commit", Failed: failed, Total: len(keys)})
	}
	var items []backend.Item
	var itemKeys, dels, delKeys []string
	for _, k := range keys {
		o := ops[k]
		if o.del {
			bk, _, err := vw.bkey(k)
			if err != nil {
				d.m.start(opDelete)
				fail(opDelete, k, err)
				continue
			}
			dels, delKeys = append(dels, bk), append(delKeys, k)
			continue
		}
		d.m.count(opPut, 1)
		it, err := d.itemIn(vw, k, o.v, o.opts)
		if err != nil {
			fail(opPut, k, err)
			continue
		}
		items, itemKeys = append(items, it), append(itemKeys, k)
	}
	d.m.count(opDelete, len(dels))

	b.begin() // the writes, then the deletes
	var setErrs, delErrs []error
	if len(items) > 0 {
		setErrs = spread(backend.SetMulti(b.many(d.be), d.be, items), itemKeys, items, nil)
	}
	if len(dels) > 0 {
		delErrs = spread(backend.DeleteMulti(b.many(d.be), d.be, dels), delKeys, nil, dels)
	}
	for _, k := range keys {
		d.nearInvalidate(k)
	}
	for i, err := range setErrs {
		if err != nil {
			fail(opPut, itemKeys[i], b.check(err))
		}
	}
	for i, err := range delErrs {
		switch {
		case err == nil:
		case errors.Is(err, backend.ErrNotFound):
			d.m.miss(opDelete)
		default:
			fail(opDelete, delKeys[i], b.check(err))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.SortFunc(failed, func(a, b *OpError) int { return strings.Compare(a.Key, b.Key) })
	return d.m.failWhole(ctx, opCommit, &CommitError{Op: "commit", Failed: failed, Total: len(keys)})
}

// spread turns the error of a SetMulti or DeleteMulti call into one error
// per key (nil for the keys that succeeded).
func spread(err error, keys []string, items []backend.Item, bkeys []string) []error {
	errs := make([]error, len(keys))
	if err == nil {
		return errs
	}
	kes, ok := backend.KeyErrors(err)
	if !ok {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// A backend key may stand for several keys (two keys of a Python
	// format that name one backend key): its failure is each one's.
	index := make(map[string]int, len(keys)) // the first key of each backend key
	var more map[int]int                     // the next key of the same backend key, by index
	for i := range keys {
		var k string
		if items != nil {
			k = items[i].Key
		} else {
			k = bkeys[i]
		}
		j, dup := index[k]
		if !dup {
			index[k] = i
			continue
		}
		if more == nil {
			more = make(map[int]int)
		}
		for n, ok := more[j]; ok; n, ok = more[j] {
			j = n
		}
		more[j] = i
	}
	for _, ke := range kes {
		for i, ok := index[ke.Key]; ok; i, ok = more[i] {
			errs[i] = ke.Err
		}
	}
	return errs
}
