package memdict_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// A fill or refresh made under the key's lock
// never overwrites a value written while the loader ran, and a Remove
// issued while a refresh loads wins over it.

// rvDicts returns two Dicts of one prefix over be, as two processes have,
// with a default TTL of a minute.
func rvDicts(t *testing.T, be backend.Backend, opts ...memdict.Option) (*memdict.Dict[string], *memdict.Dict[string]) {
	t.Helper()
	return dicts(t, be, append([]memdict.Option{memdict.WithDefaultTTL(time.Minute)}, opts...)...)
}

// rvWaitUnlocked polls until key's fill lock on be is gone.
func rvWaitUnlocked(t *testing.T, be backend.Backend, d *memdict.Dict[string], key string) {
	t.Helper()
	lk := d.LockKey(key)
	waitFor(t, "the lock "+lk+" to be released", func() bool {
		_, err := be.Get(context.Background(), lk)
		return errors.Is(err, backend.ErrNotFound)
	})
}

func rvGet(t *testing.T, ctx context.Context, d *memdict.Dict[string], key string) (string, bool) {
	t.Helper()
	v, ok, err := d.Lookup(ctx, key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v, ok
}

func TestLockFillKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		// The source of truth changes and its writer stores the new
		// value while this (older) load is in flight.
		if err := d2.Store(ctx, key, "new"); err != nil {
			t.Error(err)
		}
		return "old", nil
	})
	if err != nil || v != "old" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "new" {
		t.Fatalf("after the fill the key holds %q, %v; want the newer Store's \"new\"", v, ok)
	}
}

func TestNegativeFillKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	_, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		if err := d2.Store(ctx, key, "real"); err != nil {
			t.Error(err)
		}
		return "", memdict.ErrNoValue
	})
	if !errors.Is(err, memdict.ErrNoValue) {
		t.Fatalf("GetOrLoad: %v, want ErrNoValue", err)
	}
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "real" {
		t.Fatalf("after the negative fill the key holds %q, %v; want the real value stored meanwhile", v, ok)
	}
}

// refreshWith stores v1 under "k" with d1, marks it stale, and has
// d1's GetOrLoad refresh it with a loader that first runs meanwhile (as
// another process writing during the load) and then loads v2. It checks
// that the stale v1 is served at once and returns once the refresh has
// ended and released the key's lock.
func refreshWith(t *testing.T, ctx context.Context, be backend.Backend, d1 *memdict.Dict[string], meanwhile func(ctx context.Context, key string) error) {
	t.Helper()
	if err := d1.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan struct{})
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		defer close(loaded)
		if err := meanwhile(ctx, key); err != nil {
			t.Error(err)
		}
		return "v2", nil
	})
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v; want v1", v, err)
	}
	<-loaded
	rvWaitUnlocked(t, be, d1, "k")
}

func TestRefreshKeepsConcurrentStore(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	refreshWith(t, ctx, be, d1, func(ctx context.Context, key string) error { return d2.Store(ctx, key, "v3") })
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "v3" {
		t.Fatalf("after the refresh the key holds %q, %v; want the newer Store's v3", v, ok)
	}
}

func TestRemoveDuringRefreshWins(t *testing.T) {
	ctx := testCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	refreshWith(t, ctx, be, d1, d2.Remove)
	if v, ok := rvGet(t, ctx, d2, "k"); ok {
		t.Fatalf("a Remove issued during the refresh was undone: the key holds %q", v)
	}
}
