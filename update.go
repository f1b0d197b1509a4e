package memdict

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
)

// Update changes the value stored under key atomically: it reads the value,
// calls fn with it (V's zero value and false if there is none) and writes
// fn's result back with compare-and-swap — or, if there was no value, with
// Add — so that no write made meanwhile by another caller or process is
// lost. If someone else wrote first, Update waits a short, random, growing
// time and tries again with the new value, up to WithUpdateRetries times
// (DefaultUpdateRetries by default); it then gives up with an error
// wrapping ErrCASConflict. fn may therefore be called several times and
// must not have side effects; it must not call methods of the Dict.
//
// Updates of one key by several goroutines of this process at once are
// combined: while one read-modify-write is in flight, the others queue, and
// the next round applies every queued fn in turn, in arrival order, to the
// value and writes the result once. They do not conflict with one another,
// and N concurrent updates cost a few round trips rather than N. Only
// writers in other processes (or through other Dicts) cause retries. A
// combined fn runs on the goroutine of the caller that leads the round,
// not necessarily its own.
//
// A caller is not failed by another's ctx ending. If the ctx of the caller
// that leads a round ends before the round writes (before it starts,
// while it reads, while an fn runs, while it waits to retry), that caller
// returns ctx's error and its change is not written; so do the other
// callers of the round whose ctx has ended too. The rest go back to the
// queue, the first of them leads the next round, and their fns run again
// there, on the value then stored, as after a conflict. Once the write is
// sent, the leader's ctx does not cut it short (the timeout does): the
// leader waits for its reply and, if the write succeeded, returns its
// result like the others.
//
// If fn returns an error, Update returns that error as it is and its change
// is skipped (other callers' changes combined with it are still written).
// Otherwise Update returns the value as fn left it — the value it stored,
// unless a later combined fn changed it further. The value is written with
// the Dict's default TTL unless a TTL option says otherwise (with combined
// callers, the TTL of the last fn applied wins). A stored value that cannot
// be decoded gives an error wrapping ErrDecode and is left alone. Other
// failures are *OpError values. A caller whose ctx is done (or whose time
// is up) while it is queued, or while it is in a round another caller
// leads that has not sent its write, returns at once with ctx's error and
// its fn is not applied: the round applies the others' without it (an fn
// of its that the round had started is let finish on the leader's
// goroutine, and its result dropped). Once the round's write is sent, it
// waits for the reply, as the leader does.
//
// The whole call — the wait behind a round in flight, the read, the
// compare-and-swap and the retries — is bounded by the Dict's timeout
// (WithTimeout), taken when Update is called: a round runs within the
// timeout of the caller that leads it, which queued first, and each
// caller leads one round at most. A caller that runs out of time while
// queued, or in another's round before its write, returns an error
// wrapping ErrUnavailable and its fn is not applied; one that runs out
// during its round's write may have had its change written (a
// compare-and-swap whose reply did not come in time). Under
// heavy contention between processes, retries may need longer than the
// timeout: a Dict made with WithTimeout(-1) (or a longer timeout) lets
// them go on, up to WithUpdateRetries.
func (d *Dict[V]) Update(ctx context.Context, key string, fn func(old V, ok bool) (V, error), opts ...ItemOption) (_ V, err error) {
	if fn == nil {
		var zero V
		return zero, &OpError{Op: "update", Key: key, Err: errors.New("nil fn")}
	}
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "update", key, 1)
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opUpdate)
	defer d.m.end(opUpdate, t0)
	b := bound{parent: ctx}
	defer b.end()
	r := &updateReq[V]{ctx: ctx, fn: fn, opts: opts, done: make(chan struct{})}
	q := &d.updates
	q.mu.Lock()
	if q.m == nil {
		q.m = make(map[string]*updateQueue[V])
	}
	if uq, busy := q.m[key]; busy {
		// Someone leads updates of key: queue for its next round, which
		// this caller may be handed to lead. The wait counts against the
		// call's timeout.
		r.turn = &updateTurn[V]{ch: make(chan struct{})}
		uq.pending = append(uq.pending, r)
		q.mu.Unlock()
		b.timeout, b.own = d.callTimeout()
		b.begin()
		b.waited()
		select {
		case <-r.done:
			return r.v, r.err
		case <-r.turn.ch:
			return d.lead(&b, key, uq, r, r.turn.batch)
		case <-b.done():
			// Queued, or taken into a round another caller leads that has
			// not sent its write: leave; the round leaves fn out.
			if r.state.CompareAndSwap(reqQueued, reqCancelled) || r.state.CompareAndSwap(reqTaken, reqCancelled) {
				var zero V
				return zero, d.m.fail(ctx, opUpdate, key, b.expired("waiting for the update of the key in progress"))
			}
			// Handed a round to lead, or in a round whose write is in
			// flight: its result is on its way.
			select {
			case <-r.done:
				return r.v, r.err
			case <-r.turn.ch:
				return d.lead(&b, key, uq, r, r.turn.batch)
			}
		}
	}
	uq := &updateQueue[V]{}
	q.m[key] = uq
	q.mu.Unlock()
	r.state.Store(reqTaken)
	return d.lead(&b, key, uq, r, []*updateReq[V]{r})
}

// lead runs the round of batch, which r (batch[0]) leads within its
// bound b, then hands the requests the round put back (if r's ctx ended
// before it wrote) and those that queued meanwhile, in arrival order, to
// the first of them, to lead the next round, and returns r's result. Each
// caller thus leads at most one round, and returns within its own
// timeout: the rounds it waits for are led by callers that arrived
// before it, whose time is up before its.
func (d *Dict[V]) lead(b *bound, key string, uq *updateQueue[V], r *updateReq[V], batch []*updateReq[V]) (V, error) {
	q := &d.updates
	defer func() {
		// If an fn panicked, release every caller still waiting, and the
		// key, before the panic goes on.
		if p := recover(); p != nil {
			q.mu.Lock()
			waiting := append(batch, uq.pending...)
			delete(q.m, key)
			q.mu.Unlock()
			err := &OpError{Op: "update", Key: key, Err: ErrUpdatePanicked}
			for _, w := range waiting {
				w.state.Store(reqTaken)
				select {
				case <-w.done:
				default:
					w.err = err
					close(w.done)
				}
			}
			panic(p)
		}
	}()
	next := d.updateRound(b, key, batch)
	q.mu.Lock()
	for _, p := range uq.pending {
		if p.state.CompareAndSwap(reqQueued, reqTaken) {
			next = append(next, p)
		}
	}
	uq.pending = nil
	// Hand the next round to the first request that has not given up.
	for len(next) > 0 && !next[0].state.CompareAndSwap(reqTaken, reqLeading) {
		next = next[1:]
	}
	if len(next) == 0 {
		delete(q.m, key)
		q.mu.Unlock()
		return r.v, r.err
	}
	q.mu.Unlock()
	next[0].turn.batch = next
	close(next[0].turn.ch)
	return r.v, r.err
}

// updateGroup holds a Dict's in-flight updates, per key.
type updateGroup[V any] struct {
	mu sync.Mutex
	m  map[string]*updateQueue[V]
}

// updateQueue is the queue of one key: the requests that arrived while a
// round was in flight.
type updateQueue[V any] struct {
	pending []*updateReq[V]
}

// The states of an updateReq. A request that has not sent its write yet
// (queued, or taken into a round that another leads) may give up: it
// turns cancelled, and a round leaves its fn out. A round commits its
// members before it sends its write, and hands the next round to a
// request by making it leading: neither can give up then.
const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
	reqLeading
	reqCommitted
)

// updateReq is one Update call.
type updateReq[V any] struct {
	ctx   context.Context // the caller's
	fn    func(V, bool) (V, error)
	opts  []ItemOption
	state atomic.Int32
	done  chan struct{} // closed when v and err are set
	v     V
	err   error
	// turn is a queued request's (nil for the one that made the queue).
	turn *updateTurn[V]
}

// updateTurn hands the next round to a queued request: ch is closed when
// it is to lead batch.
type updateTurn[V any] struct {
	ch    chan struct{}
	batch []*updateReq[V]
}

// updateRound applies batch's functions in one read-modify-write of key,
// retrying on conflict, within the bound b of the request that leads it
// (batch[0]), and completes the requests of the batch. The other
// requests queued after it, so their time is not up before its.
//
// The reads, and the waits between attempts, carry the leader's ctx; if
// it ends before the round writes, the round gives up without writing
// (abandon): the leader, and any other request whose ctx has ended too,
// fail, and updateRound returns the others, not completed, to be put back
// in the queue. Their fns ran on a value that was not written; they run
// again in the next round, as after a conflict. The write itself goes out
// detached from the leader's cancellation, bounded by its deadline only:
// cut short, it might have been written or not, and a request put back
// after it could have its change applied twice. So a failed write, or a
// failure that is not the leader's ctx ending, fails the whole batch.
func (d *Dict[V]) updateRound(b *bound, key string, batch []*updateReq[V]) (putBack []*updateReq[V]) {
	finish := func(r *updateReq[V], v V, err error) {
		if r.state.Load() == reqCancelled {
			return // returned already
		}
		r.v, r.err = v, err
		close(r.done)
	}
	failAll := func(err error) {
		err = d.m.fail(b.parent, opUpdate, key, b.check(err)) // counts and logs once
		var zero V
		for i, r := range batch {
			if i > 0 && r.state.Load() != reqCancelled {
				d.m.ops[opUpdate].errs.Add(1)
			}
			finish(r, zero, err)
		}
	}
	abandon := func(err error) []*updateReq[V] {
		var zero V
		finish(batch[0], zero, d.m.fail(b.parent, opUpdate, key, err))
		var live []*updateReq[V]
		for _, r := range batch[1:] {
			if r.ctx.Err() != nil {
				finish(r, zero, d.m.fail(r.ctx, opUpdate, key, context.Cause(r.ctx)))
				continue
			}
			live = append(live, r)
		}
		return live
	}
	// fail ends the round on err, met before it wrote.
	fail := func(err error) []*updateReq[V] {
		if b.parent.Err() != nil {
			return abandon(err)
		}
		failAll(err)
		return nil
	}
	if b.parent.Err() != nil {
		// Handed the round as its ctx ended.
		return abandon(context.Cause(b.parent))
	}
	retries := d.updateRetries
	if retries == 0 {
		retries = DefaultUpdateRetries
	}
	results := make([]V, len(batch))
	errs := make([]error, len(batch))
	applied := make([]bool, len(batch))
	for attempt := 0; ; attempt++ {
		start := time.Now()
		vw, err := d.currentWrite(b)
		if err != nil {
			return fail(err)
		}
		b.begin() // a read and a compare-and-swap, or more
		bkey, hashed, err := vw.bkey(key)
		if err != nil {
			return fail(err)
		}
		it, err := d.be.Get(b.next(), bkey)
		exists := err == nil
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			return fail(err)
		}
		var read V
		var readOK bool
		if exists {
			if read, readOK, err = d.decode(vw, key, hashed, it); err != nil {
				return fail(err)
			}
		}
		var item backend.Item
		for {
			cur, ok := read, readOK
			var opts []ItemOption
			changed := false
			clear(results) // a fold again starts afresh
			clear(errs)
			for i, r := range batch {
				applied[i] = i == 0 || r.state.Load() != reqCancelled
				if !applied[i] {
					continue // gave up
				}
				nv, err := r.fn(cur, ok)
				errs[i] = err
				if err != nil {
					continue
				}
				cur, ok, changed, opts = nv, true, true, r.opts
				results[i] = nv
			}
			if !changed {
				for i, r := range batch {
					finish(r, results[i], errs[i])
				}
				return nil
			}
			if item, err = d.itemIn(vw, key, cur, opts); err != nil {
				return fail(err)
			}
			if b.parent.Err() != nil {
				// The leader's ctx ended while the fns ran: nothing written.
				return abandon(context.Cause(b.parent))
			}
			if commitRound(batch, applied) {
				break
			}
			// A member gave up while the fns ran: apply them again
			// without its fn.
		}
		wctx, cancel := b.detached()
		if exists {
			item.CAS = it.CAS
			err = d.be.CompareAndSwap(wctx, item)
		} else {
			err = d.be.Add(wctx, item)
		}
		err = b.timedOut(wctx, err)
		cancel()
		d.nearInvalidate(key)
		switch {
		case err == nil:
			for i, r := range batch {
				finish(r, results[i], errs[i])
			}
			return nil
		case errors.Is(err, backend.ErrCASConflict), errors.Is(err, backend.ErrNotStored),
			exists && errors.Is(err, backend.ErrNotFound):
			// Lost a race with another process: the value was written,
			// added or deleted.
		default:
			failAll(err) // might have been written
			return nil
		}
		for _, r := range batch[1:] {
			r.state.CompareAndSwap(reqCommitted, reqTaken) // nothing written: it may give up again
		}
		if attempt >= retries {
			d.m.ops[opUpdate].other.Add(uint64(len(batch)))
			err := &OpError{Op: "update", Key: key, Err: fmt.Errorf("%w: gave up after %d retries", ErrCASConflict, retries)}
			var zero V
			for _, r := range batch {
				finish(r, zero, err)
			}
			return nil
		}
		d.m.retries.Add(1)
		// Back off for a random time up to 2^attempt times the length of
		// this attempt (capped), so that contenders spread out whatever the
		// backend's latency.
		window := time.Since(start) << min(attempt+1, 8)
		window = min(max(window, 20*time.Microsecond), 50*time.Millisecond)
		t := time.NewTimer(rand.N(window))
		select {
		case <-t.C:
		case <-b.done():
			t.Stop()
			return fail(b.expired("waiting to retry"))
		}
	}
}

// commitRound commits the members of batch (all but its leader, batch[0])
// before the round's write: from now on they wait for its result. It
// reports false if a member whose fn the round applied (applied[i]) has
// given up meanwhile: the round must apply the fns again without it.
func commitRound[V any](batch []*updateReq[V], applied []bool) bool {
	ok := true
	for i, r := range batch[1:] {
		if !r.state.CompareAndSwap(reqTaken, reqCommitted) && r.state.Load() == reqCancelled && applied[i+1] {
			ok = false
		}
	}
	return ok
}
