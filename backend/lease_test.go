package backend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// noLocker hides the memory Store's Locker, so that TryLock and Unlock
// take their Add, Get and Delete fallback.
type noLocker struct{ backend.Backend }

func TestTryLockUnlock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		native bool
	}{{"Fallback", false}, {"Locker", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			store := memory.New(memory.WithClock(clock))
			defer store.Close()
			var be backend.Backend = noLocker{store}
			if tc.native {
				be = store
			}
			if _, ok := be.(backend.Locker); ok != tc.native {
				t.Fatalf("Locker = %v", ok)
			}
			a, b := backend.NewLockToken(), backend.NewLockToken()
			if won, err := backend.TryLock(ctx, be, "lock", a, time.Minute); !won || err != nil {
				t.Fatalf("TryLock of a free lock = %v, %v", won, err)
			}
			if won, err := backend.TryLock(ctx, be, "lock", b, time.Minute); won || err != nil {
				t.Fatalf("TryLock of a held lock = %v, %v; want false, nil", won, err)
			}
			if ok, err := backend.Unlock(ctx, be, "lock", b); ok || err != nil {
				t.Fatalf("Unlock with another token = %v, %v", ok, err)
			}
			if it, err := store.Get(ctx, "lock"); err != nil || string(it.Value) != a {
				t.Fatalf("the lock holds %q, %v; want its holder's token", it.Value, err)
			}
			if ok, err := backend.Unlock(ctx, be, "lock", a); !ok || err != nil {
				t.Fatalf("Unlock by its holder = %v, %v", ok, err)
			}
			if ok, err := backend.Unlock(ctx, be, "lock", a); ok || err != nil {
				t.Fatalf("second Unlock = %v, %v", ok, err)
			}
			// A lock expires with its TTL; then another caller takes it.
			if won, _ := backend.TryLock(ctx, be, "lock", a, time.Minute); !won {
				t.Fatal("TryLock after Unlock lost")
			}
			clock.Advance(time.Minute)
			if won, err := backend.TryLock(ctx, be, "lock", b, time.Minute); !won || err != nil {
				t.Fatalf("TryLock of an expired lock = %v, %v", won, err)
			}
			if ok, _ := backend.Unlock(ctx, be, "lock", a); ok {
				t.Fatal("the expired holder released its successor's lock")
			}
			// Bad arguments and backend failures are errors.
			if _, err := backend.TryLock(ctx, be, "lock2", a, 0); !errors.Is(err, backend.ErrInvalidTTL) {
				t.Fatalf("TryLock with TTL 0: %v", err)
			}
			if _, err := backend.TryLock(ctx, be, "lock2", "", time.Second); err == nil {
				t.Fatal("TryLock with an empty token succeeded")
			}
			if _, err := backend.TryLock(ctx, be, "bad key", a, time.Second); !errors.Is(err, backend.ErrInvalidKey) {
				t.Fatalf("TryLock of a bad key: %v", err)
			}
			store.Close()
			if _, err := backend.TryLock(ctx, be, "lock3", a, time.Second); !errors.Is(err, backend.ErrClosed) {
				t.Fatalf("TryLock on a closed backend: %v", err)
			}
			if _, err := backend.Unlock(ctx, be, "lock", b); !errors.Is(err, backend.ErrClosed) {
				t.Fatalf("Unlock on a closed backend: %v", err)
			}
		})
	}
}

func TestNewLockToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := backend.NewLockToken()
		if len(tok) != 32 || seen[tok] {
			t.Fatalf("token %q: want 32 hex digits, each new", tok)
		}
		for _, c := range tok {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				t.Fatalf("token %q is not hexadecimal", tok)
			}
		}
		seen[tok] = true
	}
}
