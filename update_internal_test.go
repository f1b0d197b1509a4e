package memdict

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// TestUpdateMemberReturnsOnItsCtx: a caller taken into a round that
// another caller leads returns as soon as its own ctx ends (not when the
// leader's slow read returns), and its change is not written, even if
// its fn had already run in the round; the others' are.
func TestUpdateMemberReturnsOnItsCtx(t *testing.T) {
	t.Run("InRead", func(t *testing.T) { updateMemberGivesUp(t, false) })
	t.Run("InItsFn", func(t *testing.T) { updateMemberGivesUp(t, true) })
}

// updateMemberGivesUp has L lead a round while A and B queue, then A lead
// the next with B, whose ctx is cancelled while A's round reads (inFn
// false) or while B's fn runs in it (inFn true).
func updateMemberGivesUp(t *testing.T, inFn bool) {
	ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
	defer cancelAll()
	var gets atomic.Int64
	gates := []chan struct{}{make(chan struct{}), make(chan struct{})}
	be := backend.Wrap(memory.New(), func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpGet && strings.HasSuffix(c.Key, ":k") {
				if n := gets.Add(1); n <= 2 {
					<-gates[n-1] // the reads of rounds 1 and 2
				}
			}
			return next(ctx, c)
		}
	})
	d, err := New[string](be, "u", WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	appendFn := func(s string) func(string, bool) (string, error) {
		return func(old string, _ bool) (string, error) { return old + s, nil }
	}
	pending := func() int {
		d.updates.mu.Lock()
		defer d.updates.mu.Unlock()
		if uq := d.updates.m["k"]; uq != nil {
			return len(uq.pending)
		}
		return 0
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
		}
	}
	var wg sync.WaitGroup
	errL, errA, errB := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	wg.Go(func() { _, err := d.Update(ctx, "k", appendFn("L")); errL <- err })
	poll("round 1's read", func() bool { return gets.Load() == 1 })
	wg.Go(func() { _, err := d.Update(ctx, "k", appendFn("A")); errA <- err })
	poll("A to queue", func() bool { return pending() == 1 })
	bctx, cancelB := context.WithCancel(ctx)
	defer cancelB()
	returned := make(chan struct{})
	fnB := appendFn("B")
	if inFn {
		fnB = func(old string, ok bool) (string, error) {
			cancelB()
			select {
			case <-returned:
			case <-time.After(10 * time.Second): // fails below
			}
			return old + "B", nil
		}
	}
	wg.Go(func() { _, err := d.Update(bctx, "k", fnB); errB <- err; close(returned) })
	poll("B to queue", func() bool { return pending() == 2 })
	close(gates[0]) // round 1 writes L; A leads round 2 with B
	poll("round 2's read", func() bool { return gets.Load() == 2 })
	if inFn {
		close(gates[1])
	} else {
		cancelB()
	}
	select {
	case err := <-errB:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Update of B, cancelled in A's round = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Update of B, cancelled in A's round, did not return while the round's read was in flight")
	}
	if !inFn {
		close(gates[1])
	}
	wg.Wait()
	if err := <-errL; err != nil {
		t.Fatalf("Update of L: %v", err)
	}
	if err := <-errA; err != nil {
		t.Fatalf("Update of A: %v", err)
	}
	if v, ok := d.Get("k"); !ok || v != "LA" {
		t.Fatalf("after the rounds the key holds %q, %v; want LA (not B's change)", v, ok)
	}
}
