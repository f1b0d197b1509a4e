package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

func TestGetOrLoadOneLoadFor100Callers(t *testing.T) {
	ctx := context.Background()
	d := newDict[string](t, memory.New(), "p")
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, key string) (string, error) {
		loads.Add(1)
		<-release
		return "loaded:" + key, nil
	}
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for range 100 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			v, err := d.GetOrLoad(ctx, "k", load)
			if err != nil || v != "loaded:k" {
				t.Errorf("GetOrLoad = %q, %v", v, err)
			}
		})
	}
	started.Wait()
	waitMisses(t, d, 100+1) // every caller missed (and the leader looked again)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
	if v, ok := d.Get("k"); !ok || v != "loaded:k" {
		t.Fatalf("not stored: %q, %v", v, ok)
	}
	if st := d.Stats(); st.Loads != 1 {
		t.Fatalf("Stats.Loads = %d", st.Loads)
	}
}

func TestGetOrLoadErrorGoesToEveryWaiterAndNothingIsStored(t *testing.T) {
	ctx := context.Background()
	d := newDict[int](t, memory.New(), "p")
	boom := errors.New("database down")
	var loads atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range 20 {
		wg.Go(func() {
			_, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (int, error) {
				loads.Add(1)
				<-release
				return 0, boom
			})
			if errors.Is(err, boom) {
				errs.Add(1)
			}
		})
	}
	waitMisses(t, d, 20+1) // every caller missed (and the leader looked again)
	close(release)
	wg.Wait()
	if errs.Load() != 20 || loads.Load() != 1 {
		t.Fatalf("%d callers got the error, %d loads", errs.Load(), loads.Load())
	}
	if _, ok := d.Get("k"); ok {
		t.Fatal("a failed load stored a value")
	}
	// The next call loads again.
	v, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (int, error) { return 5, nil })
	if err != nil || v != 5 {
		t.Fatalf("GetOrLoad after failure = %v, %v", v, err)
	}
}

// waitMisses waits until d has counted n misses, then a little more so
// that the callers that missed have joined the flight.
func waitMisses[V any](t *testing.T, d *memdict.Dict[V], n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Misses < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d misses after 10s, want %d", d.Stats().Misses, n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

func TestGetOrLoadWaiterContext(t *testing.T) {
	d := newDict[int](t, memory.New(), "p")
	release := make(chan struct{})
	defer close(release)
	go d.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) { <-release; return 1, nil })
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (int, error) { return 2, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter err = %v", err)
	}
}

func BenchmarkGetOrLoadHit(b *testing.B) {
	ctx := context.Background()
	d := newDict[string](b, memory.New(), "bench")
	_ = d.Put("some_key", "a value of some thirty-two bytes")
	load := func(context.Context, string) (string, error) { return "", errors.New("no") }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.GetOrLoad(ctx, "some_key", load); err != nil {
			b.Fatal(err)
		}
	}
}

// GetOrLoad calls the loader on a miss, once per key however many callers
// miss together, and stores the result.
func ExampleDict_GetOrLoad() {
	ctx := context.Background()
	d, _ := memdict.New[string](memory.New(), "profiles", memdict.WithDefaultTTL(time.Minute))
	load := func(ctx context.Context, key string) (string, error) {
		fmt.Println("loading", key)
		return "profile of " + key, nil
	}
	for range 2 {
		v, err := d.GetOrLoad(ctx, "ada", load)
		fmt.Println(v, err)
	}
	// Output:
	// loading ada
	// profile of ada <nil>
	// profile of ada <nil>
}
