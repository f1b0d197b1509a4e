package memdict_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/keyspace"
)

// Review tests (issue 17): a fill or refresh made under the key's lock
// never overwrites a value written while the loader ran, and a Remove
// issued while a refresh loads wins over it.

// rvDicts returns two Dicts of one prefix over be, as two processes have.
func rvDicts(t *testing.T, be backend.Backend, opts ...memdict.Option) (*memdict.Dict[string], *memdict.Dict[string]) {
	t.Helper()
	opts = append([]memdict.Option{memdict.WithDefaultTTL(time.Minute)}, opts...)
	d1, err := memdict.New[string](be, "rv", opts...)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := memdict.New[string](be, "rv", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d1, d2
}

func rvCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rvWaitUnlocked polls until key's fill lock on be is gone.
func rvWaitUnlocked(t *testing.T, be backend.Backend, d *memdict.Dict[string], key string) {
	t.Helper()
	lk := keyspace.LeaseKey(d.BackendKey(key), d.Settings().MaxKeyLen)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := be.Get(context.Background(), lk)
		if errors.Is(err, backend.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock %s is still held (%v)", lk, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func rvGet(t *testing.T, ctx context.Context, d *memdict.Dict[string], key string) (string, bool) {
	t.Helper()
	v, ok, err := d.Lookup(ctx, key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v, ok
}

func TestReviewLockFillKeepsConcurrentStore(t *testing.T) {
	ctx := rvCtx(t)
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

func TestReviewNegativeFillKeepsConcurrentStore(t *testing.T) {
	ctx := rvCtx(t)
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

func TestReviewRefreshKeepsConcurrentStore(t *testing.T) {
	ctx := rvCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	if err := d1.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan struct{})
	v, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		defer close(loaded)
		if err := d2.Store(ctx, key, "v3"); err != nil {
			t.Error(err)
		}
		return "v2", nil
	})
	if err != nil || v != "v1" {
		t.Fatalf("GetOrLoad of a stale entry = %q, %v; want v1", v, err)
	}
	<-loaded
	rvWaitUnlocked(t, be, d1, "k")
	if v, ok := rvGet(t, ctx, d2, "k"); !ok || v != "v3" {
		t.Fatalf("after the refresh the key holds %q, %v; want the newer Store's v3", v, ok)
	}
}

func TestReviewRemoveDuringRefreshWins(t *testing.T) {
	ctx := rvCtx(t)
	be := memory.New()
	d1, d2 := rvDicts(t, be)
	if err := d1.Store(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan struct{})
	if _, err := d1.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		defer close(loaded)
		if err := d2.Remove(ctx, key); err != nil {
			t.Error(err)
		}
		return "v2", nil
	}); err != nil {
		t.Fatal(err)
	}
	<-loaded
	rvWaitUnlocked(t, be, d1, "k")
	if v, ok := rvGet(t, ctx, d2, "k"); ok {
		t.Fatalf("a Remove issued during the refresh was undone: the key holds %q", v)
	}
}
