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
	waitWaiters(t, d, "k", 99) // every other caller waits for the one load
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
	waitWaiters(t, d, "k", 19) // every other caller waits for the one load
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

// waitFor polls cond until it holds, failing the test after a deadline
// generous enough for a loaded machine: the goroutines it waits for only
// need to be scheduled.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWaiters waits until n GetOrLoad callers wait for the load of key in
// flight: they are the callers that missed while it ran.
func waitWaiters[V any](t *testing.T, d *memdict.Dict[V], key string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d callers waiting for the load of %q", n, key), func() bool {
		return memdict.FlightWaiters(d, key) >= n
	})
}

func TestGetOrLoadWaiterContext(t *testing.T) {
	d := newDict[int](t, memory.New(), "p")
	release := make(chan struct{})
	defer close(release)
	go d.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) { <-release; return 1, nil })
	waitFor(t, "the first load to start", func() bool { return memdict.InFlight(d, "k") })
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
