package memdict_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/testing/memdicttest"
)

// In format erp5 two keys may name one backend key ("a\nb" and "ab": ERP5
// drops line ends). When that backend key's write fails, PutMulti and
// Commit must name both Dict keys, not say that one of them was stored.
func TestMultiWriteSharedBackendKeyFailureNamesEveryKey(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d := newDict[string](t, f, "p", memdict.WithFormat(memdict.FormatERP5))
	if d.BackendKey("a\nb") != d.BackendKey("ab") {
		t.Fatalf("backend keys %q and %q differ: the test needs them equal", d.BackendKey("a\nb"), d.BackendKey("ab"))
	}
	bk := d.BackendKey("ab")
	f.FailKeys(func(k string) bool { return k == bk }, backend.ErrUnavailable)
	want := []string{"a\nb", "ab"}

	err := d.PutMulti(ctx, map[string]string{"a\nb": "1", "ab": "2", "c": "3"})
	var me *memdict.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("PutMulti error %T %v, want a *memdict.MultiError", err, err)
	}
	if !slices.Equal(me.Keys(), want) {
		t.Errorf("PutMulti failed keys %q, want %q", me.Keys(), want)
	}

	tx := d.Begin()
	for k, v := range map[string]string{"a\nb": "1", "ab": "2", "c": "3"} {
		if err := tx.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	err = tx.Commit(ctx)
	var ce *memdict.CommitError
	if !errors.As(err, &ce) {
		t.Fatalf("Commit error %T %v, want a *memdict.CommitError", err, err)
	}
	var keys []string
	for _, oe := range ce.Failed {
		keys = append(keys, oe.Key)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("Commit failed keys %q, want %q", keys, want)
	}
}
