package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

type tally struct {
	N    int    `json:"n"`
	Note string `json:"note"`
}

// incrementTally increments the tally "t" n times with d.Update; it
// reports the first error and stops there.
func incrementTally(t *testing.T, ctx context.Context, d *memdict.Dict[tally], n int) {
	for range n {
		if _, err := d.Update(ctx, "t", func(old tally, _ bool) (tally, error) {
			old.N++
			return old, nil
		}); err != nil {
			t.Error(err)
			return
		}
	}
}

func TestUpdateConcurrentIncrements(t *testing.T) {
	ctx := context.Background()
	d := newDict[tally](t, memory.New(), "p")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			incrementTally(t, ctx, d, 100)
		})
	}
	wg.Wait()
	if v, _ := d.Get("t"); v.N != 5000 {
		t.Fatalf("N = %d, want 5000", v.N)
	}
}

// Every goroutine with a Dict of its own: no combining, only
// compare-and-swap retries.
func TestUpdateConcurrentAcrossDicts(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	var wg sync.WaitGroup
	var conflicts atomic.Uint64
	for range 20 {
		d := newDict[tally](t, be, "p", memdict.WithUpdateRetries(10000))
		wg.Go(func() {
			incrementTally(t, ctx, d, 50)
			conflicts.Add(d.Stats().Conflicts)
		})
	}
	wg.Wait()
	if v, _ := newDict[tally](t, be, "p").Get("t"); v.N != 1000 {
		t.Fatalf("N = %d, want 1000", v.N)
	}
	t.Logf("%d conflicts", conflicts.Load())
}

// Combined updates: a failing fn is skipped, the others are applied.
func TestUpdateCombinedFnError(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p")
	boom := errors.New("boom")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			_, err := d.Update(ctx, "k", func(old int, _ bool) (int, error) {
				if i%4 == 0 {
					return 0, boom
				}
				return old + 1, nil
			})
			if errors.Is(err, boom) {
				failed.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if v, _ := d.Get("k"); v != 30 || failed.Load() != 10 {
		t.Fatalf("value %d, %d failed; want 30, 10", v, failed.Load())
	}
}

func TestUpdatePanicReleasesWaiters(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p")
	inFn := make(chan struct{})
	release := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = d.Update(ctx, "k", func(int, bool) (int, error) {
			close(inFn)
			<-release
			panic("boom")
		})
	}()
	<-inFn
	waiterErr := make(chan error, 1)
	go func() {
		_, err := d.Update(ctx, "k", func(old int, _ bool) (int, error) { return old + 1, nil })
		waiterErr <- err
	}()
	waitFor(t, "the second Update to queue", func() bool { return memdict.UpdatesQueued(d, "k") == 1 })
	close(release)
	if p := <-panicked; p != "boom" {
		t.Fatalf("leader recovered %v", p)
	}
	if err := <-waiterErr; !errors.Is(err, memdict.ErrUpdatePanicked) {
		t.Fatalf("waiter err = %v", err)
	}
	// The key is usable again.
	if v, err := d.Update(ctx, "k", func(old int, _ bool) (int, error) { return old + 1, nil }); err != nil || v != 1 {
		t.Fatalf("Update after panic = %v, %v", v, err)
	}
}

func TestUpdateMissingAndErrors(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p")
	v, err := d.Update(ctx, "k", func(old int, ok bool) (int, error) {
		if ok {
			return 0, errors.New("unexpected value")
		}
		return 10, nil
	})
	if err != nil || v != 10 {
		t.Fatalf("Update on missing = %v, %v", v, err)
	}
	boom := errors.New("boom")
	if _, err := d.Update(ctx, "k", func(int, bool) (int, error) { return 0, boom }); err != boom {
		t.Fatalf("fn error = %v", err)
	}
	if v, _ := d.Get("k"); v != 10 {
		t.Fatalf("value changed by a failed fn: %d", v)
	}
}

// alwaysConflict makes every CompareAndSwap lose.
type alwaysConflict struct{ backend.Backend }

func (alwaysConflict) CompareAndSwap(context.Context, backend.Item) error {
	return backend.ErrCASConflict
}

func TestUpdateGivesUp(t *testing.T) {
	ctx := context.Background()
	be := alwaysConflict{memory.New()}
	d := newDict[int](t, be, "p", memdict.WithUpdateRetries(3))
	_ = d.Put("k", 1)
	calls := 0
	_, err := d.Update(ctx, "k", func(old int, _ bool) (int, error) { calls++; return old + 1, nil })
	if !errors.Is(err, memdict.ErrCASConflict) || calls != 4 {
		t.Fatalf("err = %v after %d calls; want ErrCASConflict after 4", err, calls)
	}
	st := d.Stats()
	if st.Conflicts != 3 || st.Ops[5].Count("conflict") != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	d := newDict[tally](b, memory.New(), "bench")
	inc := func(old tally, _ bool) (tally, error) { old.N++; return old, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Update(ctx, "t", inc); err != nil {
			b.Fatal(err)
		}
	}
}

// Update applies a change atomically, however many writers race.
func ExampleDict_Update() {
	ctx := context.Background()
	type Visits struct{ Count int }
	d, _ := memdict.New[Visits](memory.New(), "visits")
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, _ = d.Update(ctx, "home", func(v Visits, _ bool) (Visits, error) {
				v.Count++
				return v, nil
			})
		})
	}
	wg.Wait()
	v, _ := d.Get("home")
	fmt.Println(v.Count)
	// Output: 10
}

// A queued Update whose ctx is live is not failed by another caller's ctx
// ending. Here A's round is in flight while C, then B queue: C leads the
// next round, with B in it, and cancels its own ctx from its fn, before
// the round writes. B's change is still written, C's is not applied twice,
// and C reports success only if its change was written.
func TestUpdateCancelledLeaderDoesNotFailQueued(t *testing.T) {
	ctx := testCtx(t)
	d := newDict[int](t, memory.New(), "p")
	if err := d.Put("n", 0); err != nil {
		t.Fatal(err)
	}
	releaseA := holdUpdate(t, ctx, d, "n")
	ctxC, cancelC := context.WithCancel(ctx)
	defer cancelC()
	doneC := make(chan error, 1)
	go func() {
		_, err := d.Update(ctxC, "n", func(old int, _ bool) (int, error) { cancelC(); return old + 10, nil })
		doneC <- err
	}()
	waitFor(t, "C to queue", func() bool { return memdict.UpdatesQueued(d, "n") == 1 })
	doneB := make(chan error, 1)
	go func() {
		_, err := d.Update(ctx, "n", func(old int, _ bool) (int, error) { return old + 100, nil })
		doneB <- err
	}()
	waitFor(t, "B to queue behind C", func() bool { return memdict.UpdatesQueued(d, "n") == 2 })
	if err := releaseA(); err != nil {
		t.Fatalf("A: %v", err)
	}
	errC, errB := <-doneC, <-doneB
	v, _, err := d.Lookup(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if errB != nil {
		t.Fatalf("B's Update, whose ctx is live, failed: %v (stored value %d)", errB, v)
	}
	want := 101 // A's and B's changes
	if errC == nil {
		want += 10
	} else if !errors.Is(errC, context.Canceled) {
		t.Errorf("C: %v, want context.Canceled", errC)
	}
	if v != want {
		t.Fatalf("stored value %d, want %d (C's error: %v)", v, want, errC)
	}
}

// holdUpdate starts an Update of key that adds 1 and whose fn waits until
// release is called: the round it leads stays in flight, and the Updates
// of key made meanwhile queue behind it. It returns once the fn runs;
// release lets it go on and returns the Update's error.
func holdUpdate(t *testing.T, ctx context.Context, d *memdict.Dict[int], key string) (release func() error) {
	t.Helper()
	started, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := d.Update(ctx, key, func(old int, _ bool) (int, error) {
			select {
			case <-started:
			default:
				close(started)
			}
			<-gate
			return old + 1, nil
		})
		done <- err
	}()
	<-started
	return func() error {
		close(gate)
		return <-done
	}
}

// queueUpdates starts n Updates of key that add 100 each, one after the
// other, each once the previous one queued (queued of them were queued
// before), and returns the channel of their errors.
func queueUpdates(t *testing.T, ctx context.Context, d *memdict.Dict[int], key string, queued, n int) <-chan error {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := d.Update(ctx, key, func(old int, _ bool) (int, error) { return old + 100, nil })
			errs <- err
		}()
		waitFor(t, fmt.Sprintf("Update %d to queue", queued+i+1), func() bool {
			return memdict.UpdatesQueued(d, key) == queued+i+1
		})
	}
	return errs
}

// The ctx of the caller that leads a round ends while its fn runs, after
// the round read and before it writes: that caller fails with ctx's error
// and its change is not written; the callers combined in its round are put
// back in the queue and their changes are written, once each.
func TestUpdateLeaderCancelledInFn(t *testing.T) {
	ctx := testCtx(t)
	d := newDict[int](t, memory.New(), "p")
	release := holdUpdate(t, ctx, d, "n")
	ctxL, cancelL := context.WithCancel(ctx)
	defer cancelL()
	inFn := make(chan struct{})
	var calls atomic.Int32
	doneL := make(chan error, 1)
	go func() {
		_, err := d.Update(ctxL, "n", func(old int, _ bool) (int, error) {
			if calls.Add(1) == 1 {
				close(inFn)
			}
			<-ctxL.Done()
			return old + 10, nil
		})
		doneL <- err
	}()
	waitFor(t, "the leader of the next round to queue", func() bool { return memdict.UpdatesQueued(d, "n") == 1 })
	const members = 3
	errs := queueUpdates(t, ctx, d, "n", 1, members)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	<-inFn // the next round, with the members in it, is in flight
	cancelL()
	if err := <-doneL; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled leader: %v, want context.Canceled", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the cancelled leader's fn ran %d times, want once", n)
	}
	for range members {
		if err := <-errs; err != nil {
			t.Errorf("a member of the cancelled leader's round, whose ctx is live: %v", err)
		}
	}
	if v, _, err := d.Lookup(ctx, "n"); err != nil || v != 1+members*100 {
		t.Fatalf("stored value %d, %v; want %d: the first Update's and the members', not the cancelled leader's", v, err, 1+members*100)
	}
}

// casGateKey is the ctx key of a *casGate.
type casGateKey struct{}

// casGate holds a compare-and-swap made with a ctx that carries it:
// entered is closed when it starts, and it goes on when release is closed.
type casGate struct{ entered, release chan struct{} }

// gatedCAS holds the compare-and-swaps whose ctx carries a *casGate.
type gatedCAS struct{ backend.Backend }

func (g gatedCAS) CompareAndSwap(ctx context.Context, item backend.Item) error {
	if gate, ok := ctx.Value(casGateKey{}).(*casGate); ok {
		close(gate.entered)
		<-gate.release
	}
	return g.Backend.CompareAndSwap(ctx, item)
}

// The ctx of the caller that leads a round ends while the round's
// compare-and-swap is in flight: the write, which carries the other
// callers' changes too, is not cut short, and every caller of the round,
// the leader too, has its change written and succeeds.
func TestUpdateLeaderCancelledInWrite(t *testing.T) {
	ctx := testCtx(t)
	d := newDict[int](t, gatedCAS{memory.New()}, "p")
	if err := d.Store(ctx, "n", 0); err != nil {
		t.Fatal(err)
	}
	release := holdUpdate(t, ctx, d, "n")
	gate := &casGate{entered: make(chan struct{}), release: make(chan struct{})}
	ctxL, cancelL := context.WithCancel(context.WithValue(ctx, casGateKey{}, gate))
	defer cancelL()
	doneL := make(chan error, 1)
	go func() {
		_, err := d.Update(ctxL, "n", func(old int, _ bool) (int, error) { return old + 10, nil })
		doneL <- err
	}()
	waitFor(t, "the leader of the next round to queue", func() bool { return memdict.UpdatesQueued(d, "n") == 1 })
	const members = 3
	errs := queueUpdates(t, ctx, d, "n", 1, members)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	<-gate.entered
	cancelL()
	close(gate.release)
	if err := <-doneL; err != nil {
		t.Errorf("the leader, cancelled while its write was in flight: %v, want its write done", err)
	}
	for range members {
		if err := <-errs; err != nil {
			t.Errorf("a member of the cancelled leader's round, whose ctx is live: %v", err)
		}
	}
	if v, _, err := d.Lookup(ctx, "n"); err != nil || v != 1+10+members*100 {
		t.Fatalf("stored value %d, %v; want %d", v, err, 1+10+members*100)
	}
}
