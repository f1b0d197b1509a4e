package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// Keys and All over a listing that fails half-way (a server gone during a
// memcached crawl or a Redis SCAN) dropped the keys listed since the last
// whole batch of value reads (up to 100): 100 of 150 listed keys were
// yielded before the error. Every live key listed before the failure is
// now yielded, then the error.
func TestKeysListingCutYieldsListedKeys(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	const after = 150
	listed := map[string]bool{}
	be := backend.Wrap(mem, func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			r := next(ctx, c)
			if c.Op != backend.OpKeys || r.Err != nil {
				return r
			}
			keys := r.Keys
			r.Keys = func(yield func(string, error) bool) {
				clear(listed)
				for k, err := range keys {
					if len(listed) == after {
						yield("", fmt.Errorf("listing: %w: connection reset", backend.ErrUnavailable))
						return
					}
					listed[k] = true
					if !yield(k, err) {
						return
					}
				}
			}
			return r
		}
	})
	d := newDict[string](t, be, "p")
	for i := range 250 {
		if err := d.Store(ctx, fmt.Sprintf("k%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var lerr error
	for k, err := range d.Keys(ctx) {
		if err != nil {
			lerr = err
			continue
		}
		if lerr != nil {
			t.Fatalf("Keys yielded %q after the error %v", k, lerr)
		}
		if !listed[d.BackendKey(k)] {
			t.Fatalf("Keys yielded %q, which the listing did not give", k)
		}
		got = append(got, k)
	}
	if !errors.Is(lerr, backend.ErrUnavailable) {
		t.Fatalf("Keys over a cut listing ended with %v, want the listing's error", lerr)
	}
	if len(got) != after {
		t.Errorf("Keys yielded %d keys before the error, want the %d listed", len(got), after)
	}
	n := 0
	for e, err := range d.All(ctx) {
		if err == nil && e.Value == "v" {
			n++
		}
	}
	if n != after {
		t.Errorf("All yielded %d entries before the error, want the %d listed", n, after)
	}
}
