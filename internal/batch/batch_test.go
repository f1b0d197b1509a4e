package batch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// store is a fake multi-get: keys starting with "miss" are absent, keys
// starting with "err" make the whole fetch fail.
type store struct {
	mu      sync.Mutex
	fetches [][]string
	groups  []string
	gate    chan struct{} // if non-nil, each fetch waits for a receive... or close
	started chan struct{} // if non-nil, each fetch signals here first
}

var errFetch = errors.New("fetch failed")

func (s *store) fetch(ctx context.Context, group string, keys []string) (map[string]backend.Item, error) {
	s.mu.Lock()
	s.fetches = append(s.fetches, slices.Clone(keys))
	s.groups = append(s.groups, group)
	s.mu.Unlock()
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m := make(map[string]backend.Item)
	var err error
	for _, k := range keys {
		switch {
		case len(k) >= 4 && k[:4] == "miss":
		case len(k) >= 3 && k[:3] == "err":
			err = errFetch
		default:
			m[k] = backend.Item{Key: k, Value: []byte("v:" + k)}
		}
	}
	return m, err
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fetches)
}

func TestLoneCallerRunsInline(t *testing.T) {
	s := &store{}
	b := batch.New(s.fetch, batch.Options{})
	defer b.Close()
	for _, tc := range []struct {
		key     string
		want    string
		wantErr error
	}{
		{"a", "v:a", nil},
		{"miss1", "", backend.ErrNotFound},
		{"err1", "", errFetch},
	} {
		it, err := b.Get(context.Background(), tc.key)
		if !errors.Is(err, tc.wantErr) || string(it.Value) != tc.want {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.key, it.Value, err, tc.want, tc.wantErr)
		}
	}
	if got := s.count(); got != 3 {
		t.Errorf("%d fetches, want 3 (one per lone call)", got)
	}
}

func TestCancellableLoneCaller(t *testing.T) {
	s := &store{}
	b := batch.New(s.fetch, batch.Options{})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it, err := b.Get(ctx, "k")
	if err != nil || string(it.Value) != "v:k" {
		t.Fatalf("Get = %q, %v", it.Value, err)
	}
}

// TestCoalesce: while one fetch is in flight, queued callers go out as one
// multi-key fetch, each getting its own result.
func TestCoalesce(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1})
	defer b.Close()

	type res struct {
		key string
		it  backend.Item
		err error
	}
	out := make(chan res, 100)
	get := func(k string) {
		it, err := b.Get(context.Background(), k)
		out <- res{k, it, err}
	}
	go get("first")
	<-s.started // "first" holds the only slot
	keys := []string{"a", "b", "miss1", "a", "c", "err1"}
	for _, k := range keys {
		go get(k)
	}
	waitFor(t, func() bool { return b.Queued("") == len(keys) })
	s.gate <- struct{}{} // first fetch returns
	<-s.started          // the batch fetch starts
	s.gate <- struct{}{}
	for range len(keys) + 1 {
		r := <-out
		switch {
		case r.key == "miss1":
			// Absent from a fetch that failed: the caller cannot be told
			// it is a miss, it gets the error.
			if !errors.Is(r.err, errFetch) {
				t.Errorf("%s: err %v, want %v", r.key, r.err, errFetch)
			}
		case r.key == "err1", r.key == "a" || r.key == "b" || r.key == "c":
			// The batch holding err1 failed, but the items it did read
			// still reach their callers.
			if r.key == "err1" {
				if !errors.Is(r.err, errFetch) {
					t.Errorf("%s: err %v, want %v", r.key, r.err, errFetch)
				}
				continue
			}
			fallthrough
		default:
			if r.err != nil || string(r.it.Value) != "v:"+r.key {
				t.Errorf("%s: got %q, %v", r.key, r.it.Value, r.err)
			}
		}
	}
	if got := s.count(); got != 2 {
		t.Fatalf("%d fetches, want 2: %v", got, s.fetches)
	}
	second := slices.Clone(s.fetches[1])
	slices.Sort(second)
	if want := []string{"a", "b", "c", "err1", "miss1"}; !slices.Equal(second, want) {
		t.Errorf("batched fetch keys %v, want %v (duplicates once)", second, want)
	}
}

func TestMaxBatch(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1, MaxBatch: 3})
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Get(context.Background(), "first") }()
	<-s.started
	for i := range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Get(context.Background(), fmt.Sprint("k", i)) }()
	}
	waitFor(t, func() bool { return b.Queued("") == 7 })
	close(s.gate)
	for range 3 {
		<-s.started
	}
	wg.Wait()
	for _, f := range s.fetches[1:] {
		if len(f) > 3 {
			t.Errorf("fetch of %d keys, MaxBatch 3", len(f))
		}
	}
	if got := s.count(); got != 4 {
		t.Errorf("%d fetches, want 4 (1 + 3+3+1)", got)
	}
}

// TestGroupsIndependent: a stuck group does not hold up another.
func TestGroupsIndependent(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	group := func(k string) string { return k[:1] }
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1, Group: group})
	defer b.Close()
	done := make(chan error, 1)
	go func() { _, err := b.Get(context.Background(), "x1"); done <- err }()
	<-s.started
	go func() { _, err := b.Get(context.Background(), "y1"); done <- err }()
	<-s.started // y's fetch starts although x's is in flight
	close(s.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if !slices.Contains(s.groups, "x") || !slices.Contains(s.groups, "y") {
		t.Errorf("groups %v", s.groups)
	}
}

// TestCallerContextEnds: a queued caller and a cancellable leader both
// return promptly when their ctx ends, while the fetch is stuck.
func TestCallerContextEnds(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1})
	defer b.Close()

	ctx1, cancel1 := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := b.Get(ctx1, "lead"); leader <- err }()
	<-s.started

	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err := b.Get(ctx2, "queued")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued caller: err %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second { // 50ms asked; generous for a loaded machine
		t.Errorf("queued caller returned after %v", d)
	}
	cancel1()
	select {
	case err := <-leader:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("leader: err %v, want canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("leader did not return within 3s of its cancel")
	}
	// The abandoned queued caller is not fetched; the stuck fetch ends.
	close(s.gate)
	waitFor(t, func() bool { return b.InFlight("") == 0 })
	if got := s.count(); got != 1 {
		t.Errorf("%d fetches, want 1 (the abandoned key is dropped)", got)
	}
	if _, err := b.Get(context.Background(), "after"); err != nil {
		t.Errorf("Get after: %v", err)
	}
	// A done ctx fails before anything is sent.
	if _, err := b.Get(ctx1, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with done ctx: %v", err)
	}
}

func TestClose(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 10)
	go func() { _, err := b.Get(ctx, "lead"); errs <- err }()
	<-s.started
	for i := range 5 {
		go func() { _, err := b.Get(context.Background(), fmt.Sprint("q", i)); errs <- err }()
	}
	waitFor(t, func() bool { return b.Queued("") == 5 })
	// Close cancels the worker's fetch (the store honours ctx) and fails
	// the queue.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		err := <-errs
		if !errors.Is(err, backend.ErrClosed) && !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want closed or canceled", err)
		}
	}
	if _, err := b.Get(context.Background(), "x"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestStress: many goroutines, random keys and cancellations; every
// answer belongs to its own key.
func TestStress(t *testing.T) {
	var fetches atomic.Int64
	fetch := func(ctx context.Context, group string, keys []string) (map[string]backend.Item, error) {
		fetches.Add(1)
		time.Sleep(50 * time.Microsecond)
		m := make(map[string]backend.Item, len(keys))
		for _, k := range keys {
			if k[len(k)-1] != '7' {
				m[k] = backend.Item{Key: k, Value: []byte(group + "/" + k)}
			}
		}
		return m, nil
	}
	b := batch.New(fetch, batch.Options{Group: func(k string) string { return k[:1] }, MaxInFlight: 2, MaxBatch: 16})
	var wg sync.WaitGroup
	var calls atomic.Int64
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("%c%d", 'a'+(g+i)%3, (g*7+i)%50)
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if i%10 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
				}
				it, err := b.Get(ctx, k)
				cancel()
				calls.Add(1)
				switch {
				case errors.Is(err, context.DeadlineExceeded) && i%10 == 0:
					// Only the callers given a deadline may time out.
				case k[len(k)-1] == '7':
					if !errors.Is(err, backend.ErrNotFound) {
						t.Errorf("%s: %v, want not found", k, err)
					}
				case err != nil || string(it.Value) != k[:1]+"/"+k:
					t.Errorf("%s: got %q, %v", k, it.Value, err)
				}
			}
		}()
	}
	wg.Wait()
	b.Close()
	t.Logf("%d calls, %d fetches", calls.Load(), fetches.Load())
	if fetches.Load() >= calls.Load() {
		t.Errorf("no coalescing: %d fetches for %d calls", fetches.Load(), calls.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: only scheduling is awaited
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFetchOne: single keys go to FetchOne, batches to Fetch.
func TestFetchOne(t *testing.T) {
	s := &store{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	var ones atomic.Int64
	fetchOne := func(ctx context.Context, group, key string) (backend.Item, error) {
		ones.Add(1)
		items, err := s.fetch(ctx, group, []string{key})
		if it, ok := items[key]; ok {
			return it, nil
		}
		if err == nil {
			err = backend.ErrNotFound
		}
		return backend.Item{}, err
	}
	b := batch.New(s.fetch, batch.Options{MaxInFlight: 1, FetchOne: fetchOne})
	defer b.Close()
	done := make(chan error, 10)
	go func() { _, err := b.Get(context.Background(), "first"); done <- err }()
	<-s.started
	for _, k := range []string{"a", "miss1"} {
		go func() { _, err := b.Get(context.Background(), k); done <- err }()
	}
	waitFor(t, func() bool { return b.Queued("") == 2 })
	close(s.gate)
	for range 3 {
		err := <-done
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			t.Error(err)
		}
	}
	if _, err := b.Get(context.Background(), "miss2"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("lone miss: %v", err)
	}
	if ones.Load() != 2 || s.count() != 3 {
		t.Errorf("%d FetchOne calls, %d fetches; want 2 (lone callers) and 3", ones.Load(), s.count())
	}
}

type ctxKey struct{}

// TestContextAware: with ContextAware, a lone caller's fetch runs with the
// caller's own (cancellable) context; without it, with the Batcher's.
func TestContextAware(t *testing.T) {
	for _, aware := range []bool{false, true} {
		var sawCallerCtx atomic.Bool
		fetchOne := func(ctx context.Context, group, key string) (backend.Item, error) {
			sawCallerCtx.Store(ctx.Value(ctxKey{}) != nil)
			return backend.Item{Key: key}, nil
		}
		fetch := func(ctx context.Context, group string, keys []string) (map[string]backend.Item, error) {
			return nil, nil
		}
		b := batch.New(fetch, batch.Options{FetchOne: fetchOne, ContextAware: aware})
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, 1))
		if _, err := b.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		cancel()
		b.Close()
		if sawCallerCtx.Load() != aware {
			t.Errorf("ContextAware %v: fetch saw the caller's context: %v", aware, sawCallerCtx.Load())
		}
	}
}
