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
