package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// failKey wraps a backend and fails every write of one backend key with
// ErrUnavailable. It has no SetMulti: Commit writes key by key.
type failKey struct {
	backend.Backend
	bad  string
	sets atomic.Int64
}

func (f *failKey) Set(ctx context.Context, it backend.Item) error {
	f.sets.Add(1)
	if it.Key == f.bad {
		return backend.ErrUnavailable
	}
	return f.Backend.Set(ctx, it)
}

// failKeyMulti is failKey with SetMulti and DeleteMulti, counting calls.
type failKeyMulti struct {
	*failKey
	multiCalls atomic.Int64
}

func (f *failKeyMulti) SetMulti(ctx context.Context, items []backend.Item) error {
	f.multiCalls.Add(1)
	var me backend.MultiError
	for _, it := range items {
		if err := f.failKey.Set(ctx, it); err != nil {
			me.Errors = append(me.Errors, backend.KeyError{Key: it.Key, Err: err})
		}
	}
	if me.Errors != nil {
		return &me
	}
	return nil
}

func (f *failKeyMulti) DeleteMulti(ctx context.Context, keys []string) error {
	f.multiCalls.Add(1)
	return f.Backend.(backend.MultiWriter).DeleteMulti(ctx, keys)
}

func TestTxReadsOwnWritesAndCommits(t *testing.T) {
	ctx := context.Background()
	d := newDict[*user](t, memory.New(), "users")
	_ = d.Put("old", &user{Name: "old"})
	_ = d.Put("gone", &user{Name: "gone"})

	tx := d.Begin()
	u := &user{Name: "ada"}
	if err := tx.Put("ada", u); err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	if got, ok := tx.Get("ada"); !ok || got != u {
		t.Fatalf("Tx.Get(ada) = %v, %v; want the very value put", got, ok)
	}
	if _, ok := tx.Get("gone"); ok {
		t.Fatal("deleted key reads as present in the Tx")
	}
	if got, ok := tx.Get("old"); !ok || got.Name != "old" {
		t.Fatalf("Tx.Get(old) = %v, %v", got, ok)
	}
	// Nothing is visible outside before Commit.
	if _, ok := d.Get("ada"); ok {
		t.Fatal("Tx write visible before Commit")
	}
	if _, ok := d.Get("gone"); !ok {
		t.Fatal("Tx delete visible before Commit")
	}
	u.Age = 7 // encoded at Commit: the change is stored
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := d.Get("ada"); !ok || got.Name != "ada" || got.Age != 7 {
		t.Fatalf("after Commit Get(ada) = %+v, %v", got, ok)
	}
	if _, ok := d.Get("gone"); ok {
		t.Fatal("deleted key still there after Commit")
	}
	if err := tx.Commit(ctx); !errors.Is(err, memdict.ErrTxDone) {
		t.Fatalf("second Commit: %v", err)
	}
	if err := tx.Put("x", nil); !errors.Is(err, memdict.ErrTxDone) {
		t.Fatalf("Put after Commit: %v", err)
	}
}

func TestTxRollback(t *testing.T) {
	d := newDict[int](t, memory.New(), "p")
	tx := d.Begin()
	_ = tx.Put("a", 1)
	_ = tx.Delete("b")
	if tx.Len() != 2 {
		t.Fatalf("Len = %d", tx.Len())
	}
	tx.Rollback()
	tx.Rollback() // twice is fine
	if err := tx.Commit(context.Background()); !errors.Is(err, memdict.ErrTxDone) {
		t.Fatalf("Commit after Rollback: %v", err)
	}
	if _, ok := d.Get("a"); ok {
		t.Fatal("rolled back write stored")
	}
}

// One bad key in the middle must not drop the writes after it (ERP5's bug),
// and the error must name it.
func TestTxCommitReportsEveryFailedKeyAndWritesTheRest(t *testing.T) {
	for _, multi := range []bool{false, true} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) {
			ctx := context.Background()
			mem := memory.New()
			probe := newDict[string](t, mem, "p")
			fk := &failKey{Backend: mem, bad: probe.BackendKey("k050")}
			var be backend.Backend = fk
			var fm *failKeyMulti
			if multi {
				fm = &failKeyMulti{failKey: fk}
				be = fm
			}
			d := newDict[string](t, be, "p", memdict.WithMaxValueLen(100))
			tx := d.Begin()
			for i := range 100 {
				_ = tx.Put(fmt.Sprintf("k%03d", i), "v")
			}
			_ = tx.Put("huge", strings.Repeat("x", 200)) // fails encoding
			_ = tx.Delete("absent")                      // not an error
			err := tx.Commit(ctx)
			var ce *memdict.CommitError
			if !errors.As(err, &ce) {
				t.Fatalf("Commit = %v, want a *CommitError", err)
			}
			if got := strings.Join(ce.Keys(), ","); got != "huge,k050" || ce.Total != 102 {
				t.Fatalf("failed keys = %q of %d; want huge,k050 of 102", got, ce.Total)
			}
			if !errors.Is(err, memdict.ErrUnavailable) || !errors.Is(err, memdict.ErrValueTooLarge) {
				t.Fatalf("causes not in the chain: %v", err)
			}
			if !strings.Contains(err.Error(), `"k050"`) || !strings.Contains(err.Error(), `"huge"`) {
				t.Fatalf("error does not name the keys: %v", err)
			}
			for i := range 100 {
				k := fmt.Sprintf("k%03d", i)
				_, ok := d.Get(k)
				if ok != (i != 50) {
					t.Fatalf("Get(%s) ok = %v", k, ok)
				}
			}
			if multi && fm.multiCalls.Load() != 2 {
				t.Fatalf("SetMulti/DeleteMulti calls = %d, want 2", fm.multiCalls.Load())
			}
			st := d.Stats()
			if st.Sets != 99 || st.Errors != 3 { // 2 keys + the commit
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

func TestTxConcurrentUse(t *testing.T) {
	d := newDict[int](t, memory.New(), "p")
	tx := d.Begin()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := fmt.Sprintf("%d-%d", g, i)
				_ = tx.Put(k, i)
				if v, ok := tx.Get(k); !ok || v != i {
					t.Errorf("Get(%s) = %v, %v", k, v, ok)
				}
			}
		})
	}
	wg.Wait()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("7-99"); !ok || v != 99 {
		t.Fatalf("Get = %v, %v", v, ok)
	}
}

func BenchmarkTxCommit100(b *testing.B) {
	ctx := context.Background()
	d := newDict[string](b, memory.New(), "bench")
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		tx := d.Begin()
		for _, k := range keys {
			_ = tx.Put(k, "a value of some thirty-two bytes")
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// A Tx buffers writes until Commit; reads inside it see them.
func ExampleTx() {
	ctx := context.Background()
	d, _ := memdict.New[string](memory.New(), "orders")
	_ = d.Put("o1", "open")

	tx := d.Begin()
	defer tx.Rollback() // does nothing after Commit
	_ = tx.Put("o2", "open")
	_ = tx.Delete("o1")
	_, inTx := tx.Get("o1")
	_, outside := d.Get("o2")
	fmt.Println(inTx, outside)

	if err := tx.Commit(ctx); err != nil {
		fmt.Println("not written:", err) // every failed key is listed
	}
	v, _ := d.Get("o2")
	_, old := d.Get("o1")
	fmt.Println(v, old)
	// Output:
	// false false
	// open false
}
