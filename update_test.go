package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

type tally struct {
	N    int    `json:"n"`
	Note string `json:"note"`
}

func TestUpdateConcurrentIncrements(t *testing.T) {
	ctx := context.Background()
	d := newDict[tally](t, memory.New(), "p")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				if _, err := d.Update(ctx, "t", func(old tally, _ bool) (tally, error) {
					old.N++
					return old, nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, _ := d.Get("t"); v.N != 5000 {
		t.Fatalf("N = %d, want 5000", v.N)
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
