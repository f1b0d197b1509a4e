package memdict_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// rvCounting is a memory Store (Locker included) that counts the Gets of
// each key, and those made with a context marked by rvMark.
type rvCounting struct {
	*memory.Store
	mu     sync.Mutex
	reads  map[string]int
	marked int
	onGet  func(ctx context.Context, key string) // if set, called first
}

type rvMark struct{}

func (c *rvCounting) Get(ctx context.Context, key string) (backend.Item, error) {
	if c.onGet != nil {
		c.onGet(ctx, key)
	}
	c.mu.Lock()
	c.reads[key]++
	if ctx.Value(rvMark{}) != nil {
		c.marked++
	}
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *rvCounting) markedReads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marked
}

func (c *rvCounting) readsOf(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[key]
}

// The caller that leads a process's flight waits for another process's
// fill; when its own context ends, the callers of the process that joined
// its flight with live contexts go on waiting (and load once the other
// process gives up) instead of failing with the leader's context error.
func TestLeaderCancelDoesNotFailWaiters(t *testing.T) {
	ctx := testCtx(t)
	be := &rvCounting{Store: memory.New(), reads: map[string]int{}}
	d1, _ := rvDicts(t, be)
	bkey := d1.BackendKey("k")
	lk := d1.LockKey("k")
	// Another process holds the fill lock.
	tok := backend.NewLockToken()
	if ok, err := backend.TryLock(ctx, be, lk, tok, time.Minute); !ok || err != nil {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	load := func(context.Context, string) (string, error) { return "v", nil }

	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	leader := make(chan error, 1)
	go func() {
		_, err := d1.GetOrLoad(ctx1, "k", load)
		leader <- err
	}()
	waitFor(t, "the leader's read", func() bool { return be.readsOf(bkey) >= 1 })
	type res struct {
		v   string
		err error
	}
	waiter := make(chan res, 1)
	go func() {
		v, err := d1.GetOrLoad(context.WithValue(ctx, rvMark{}, true), "k", load)
		waiter <- res{v, err}
	}()
	waitFor(t, "the waiter's read", func() bool { return be.markedReads() >= 1 })
	cancel1()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("the leader's GetOrLoad: %v, want its context's error", err)
	}
	select {
	case r := <-waiter:
		t.Fatalf("a waiter with a live context returned %q, %v when the leader's context ended", r.v, r.err)
	default:
	}
	if ok, err := backend.Unlock(ctx, be, lk, tok); !ok || err != nil {
		t.Fatalf("Unlock: %v, %v", ok, err)
	}
	if r := <-waiter; r.err != nil || r.v != "v" {
		t.Fatalf("the waiter's GetOrLoad = %q, %v", r.v, r.err)
	}
}

// A caller waiting for another process's fill whose context ends while it
// reads again returns its context's error; it does not take the read's
// failure for an outage and call the loader without the lock.
func TestWaiterCancelledDuringReadDoesNotLoad(t *testing.T) {
	ctx := testCtx(t)
	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	be := &rvCounting{Store: memory.New(), reads: map[string]int{}}
	d1, _ := rvDicts(t, be)
	bkey := d1.BackendKey("k")
	be.onGet = func(_ context.Context, key string) {
		if key == bkey && be.readsOf(bkey) == 1 {
			cancel1() // during the first read after a wait
		}
	}
	lk := d1.LockKey("k")
	if ok, err := backend.TryLock(ctx, be, lk, backend.NewLockToken(), time.Minute); !ok || err != nil {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	loads := 0
	_, err := d1.GetOrLoad(ctx1, "k", func(context.Context, string) (string, error) {
		loads++
		return "v", nil
	})
	if !errors.Is(err, context.Canceled) || loads != 0 {
		t.Fatalf("GetOrLoad whose context ended while it waited: %v after %d loads; want context.Canceled and no load", err, loads)
	}
}
