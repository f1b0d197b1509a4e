package memdict_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/testing/memdicttest"
)

// A server that answers reads but not the touch that renews the
// generation key's TTL (a hung write path): the renewal fails nothing, as
// a failed touch fails nothing, and the read that made it due is not held
// by it. Before, the touch ran within that read's call and used up its
// whole timeout, and the read failed with it ('context deadline
// exceeded' after 300 ms) though the generation and the value were read.
func TestGenerationTTLTouchHangs(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	var touches atomic.Int32
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	be := backend.Wrap(mem, func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			if c.Op == backend.OpTouch {
				touches.Add(1)
				select {
				case <-ctx.Done():
					return backend.Result{Err: ctx.Err()}
				case <-hung:
				}
			}
			return next(ctx, c)
		}
	})
	const timeout = 300 * time.Millisecond
	d := newDict[string](t, be, "p", memdict.WithClock(clock.Now), memdict.WithTimeout(timeout))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(memdict.DefaultGenerationTTL/10 + time.Second)
	memdict.MarkGenerationDue(d)
	start := time.Now()
	v, ok, err := d.Lookup(ctx, "k")
	if err != nil || !ok || v != "v" {
		t.Fatalf("Lookup while the renewal's touch hangs = %q, %v, %v; want v", v, ok, err)
	}
	if took := time.Since(start); took >= timeout {
		t.Fatalf("Lookup took %v while the renewal's touch hung: held by it", took)
	}
	for end := time.Now().Add(5 * time.Second); touches.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the generation key was not touched")
		}
	}
}

// A longer GenerationTTL (a Tool's plugin given another generation_ttl,
// SharedSettings.Store) renews the key with it at once: before, the key
// kept the hour left of the shorter TTL, which the Dict renewed only a
// tenth of the new one (three days) after its last renewal, so that it
// expired in use and a new Dict stored another generation, under which
// the values stored were misses.
func TestGenerationTTLChangeRenews(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	st := memdict.DefaultSettings()
	st.GenerationTTL = time.Hour
	sh, err := memdict.NewSharedSettings(st)
	if err != nil {
		t.Fatal(err)
	}
	// A generation a Clear made long ago: not the one a new Dict adds
	// if the key is gone.
	if err := mem.Add(ctx, backend.Item{Key: genKey("p"), Value: []byte("1000"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	d := newDict[string](t, mem, "p", memdict.WithSettings(sh), memdict.WithClock(clock.Now))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	st.GenerationTTL = memdict.DefaultGenerationTTL
	if err := sh.Store(st); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("Lookup after the TTL's change = %q, %v, %v; want v", v, ok, err)
	}
	memdict.WaitGenerationRenewals(d)
	checkLeft(t, mem, "p", "after the TTL's change", memdict.DefaultGenerationTTL, 0)
	clock.Advance(time.Hour + time.Second)
	n := newDict[string](t, mem, "p", memdict.WithSettings(sh), memdict.WithClock(clock.Now))
	if v, ok, err := n.Lookup(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("a new Dict's Lookup an hour later = %q, %v, %v; want v", v, ok, err)
	}
}
