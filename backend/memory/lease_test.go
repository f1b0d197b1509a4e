package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

func TestLocker(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	var l backend.Locker = s
	if won, err := l.TryLock(ctx, "lock", "a", time.Second); !won || err != nil {
		t.Fatalf("TryLock = %v, %v", won, err)
	}
	if won, err := l.TryLock(ctx, "lock", "b", time.Second); won || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v", won, err)
	}
	if ok, err := l.Unlock(ctx, "lock", "b"); ok || err != nil {
		t.Fatalf("Unlock with another token = %v, %v", ok, err)
	}
	if ok, err := l.Unlock(ctx, "lock", "a"); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, "lock"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the lock is still there: %v", err)
	}
	if ok, err := l.Unlock(ctx, "lock", "a"); ok || err != nil {
		t.Fatalf("Unlock of a free lock = %v, %v", ok, err)
	}
	// A value that is not a lock is not taken, nor deleted.
	if err := s.Set(ctx, backend.Item{Key: "data", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if won, _ := l.TryLock(ctx, "data", "x2", time.Second); won {
		t.Fatal("TryLock took an existing item")
	}
	if ok, _ := l.Unlock(ctx, "data", "y"); ok {
		t.Fatal("Unlock deleted an item holding another value")
	}
	// Expiry.
	if won, _ := l.TryLock(ctx, "lock", "a", time.Second); !won {
		t.Fatal("TryLock lost")
	}
	clock.Advance(time.Second)
	if ok, _ := l.Unlock(ctx, "lock", "a"); ok {
		t.Fatal("Unlock released an expired lock")
	}
	if won, _ := l.TryLock(ctx, "lock", "b", time.Second); !won {
		t.Fatal("TryLock of an expired lock lost")
	}
	// Errors.
	if _, err := l.TryLock(ctx, "lock2", "a", 0); !errors.Is(err, backend.ErrInvalidTTL) {
		t.Fatalf("TTL 0: %v", err)
	}
	if _, err := l.TryLock(ctx, "lock2", "", time.Second); err == nil {
		t.Fatal("empty token accepted")
	}
	if _, err := l.Unlock(ctx, "bad key", "a"); !errors.Is(err, backend.ErrInvalidKey) {
		t.Fatalf("Unlock of a bad key: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.TryLock(cctx, "lock3", "a", time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("TryLock with a done context: %v", err)
	}
	if _, err := l.Unlock(cctx, "lock", "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unlock with a done context: %v", err)
	}
	s.Close()
	if _, err := l.TryLock(ctx, "lock3", "a", time.Second); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("TryLock after Close: %v", err)
	}
	if _, err := l.Unlock(ctx, "lock", "b"); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Unlock after Close: %v", err)
	}
}
