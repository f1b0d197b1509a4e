package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// smoke exercises the Backend contract on b, whose keys are prefixed with
// prefix. advance moves the server's clock forward (or sleeps).
func smoke(t *testing.T, b *Backend, prefix string, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	k := func(s string) string { return prefix + s }
	if _, err := b.Get(ctx, k("k")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("get miss: %v", err)
	}
	if err := b.Set(ctx, backend.Item{Key: k("k"), Value: []byte("v1"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	it, err := b.Get(ctx, k("k"))
	if err != nil || string(it.Value) != "v1" || it.CAS == 0 {
		t.Fatalf("get: %+v %v", it, err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: k("k"), Value: []byte("v2"), CAS: it.CAS}); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: k("k"), Value: []byte("v3"), CAS: it.CAS}); !errors.Is(err, backend.ErrCASConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	it2, _ := b.Get(ctx, k("k"))
	if err := b.Touch(ctx, k("k"), time.Hour); err != nil {
		t.Fatal(err)
	}
	it3, _ := b.Get(ctx, k("k"))
	if it3.CAS == it2.CAS || string(it3.Value) != "v2" {
		t.Fatalf("touch: cas %d -> %d, value %q", it2.CAS, it3.CAS, it3.Value)
	}
	// A short TTL expires: at once where advance moves a fake clock,
	// within a bounded wait on a real server, however loaded the machine.
	if err := b.Touch(ctx, k("k"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	advance(time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := b.Get(ctx, k("k"))
		if errors.Is(err, backend.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 300ms TTL has not expired 10s later: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Touch(ctx, k("k"), time.Second); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("touch expired: %v", err)
	}
	if err := b.Add(ctx, backend.Item{Key: k("k"), Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, backend.Item{Key: k("k"), Value: []byte("a")}); !errors.Is(err, backend.ErrNotStored) {
		t.Fatalf("add existing: %v", err)
	}
	if err := b.Delete(ctx, k("k")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, k("k")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	for _, c := range []struct {
		start string
		delta int64
		want  uint64
	}{
		{"10", 5, 15}, {"10", -20, 0}, {"18446744073709551615", 2, 1}, {"007", 1, 8},
		{"5", -9223372036854775808, 0}, {"0", 0, 0},
		{"18446744073709551615", 9223372036854775807, 9223372036854775806},
		{"9999999999", 1, 10000000000},
	} {
		if err := b.Set(ctx, backend.Item{Key: k("n"), Value: []byte(c.start), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Increment(ctx, k("n"), c.delta)
		if err != nil || got != c.want {
			t.Errorf("increment %s by %+d = %d, %v; want %d", c.start, c.delta, got, err, c.want)
		}
		it, err := b.Get(ctx, k("n"))
		if err != nil || string(it.Value) != fmt.Sprint(c.want) {
			t.Errorf("after increment %s by %+d: %q, %v", c.start, c.delta, it.Value, err)
		}
	}
	for _, v := range []string{"", "x1", "-1", "1 ", "18446744073709551616", "1.5"} {
		if err := b.Set(ctx, backend.Item{Key: k("n"), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Increment(ctx, k("n"), 1); !errors.Is(err, backend.ErrNotNumeric) {
			t.Errorf("increment %q: %v, want ErrNotNumeric", v, err)
		}
	}
	if _, err := b.Increment(ctx, k("missing"), 1); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("increment missing: %v", err)
	}

	// Multi-get over many keys (many hash slots on a cluster).
	var keys []string
	for i := range 200 {
		key := k(fmt.Sprintf("m%d", i))
		keys = append(keys, key)
		if i%2 == 0 {
			if err := b.Set(ctx, backend.Item{Key: key, Value: []byte(key)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := b.GetMulti(ctx, keys)
	if err != nil || len(m) != 100 {
		t.Fatalf("getmulti: %d items, %v", len(m), err)
	}
	for key, it := range m {
		if string(it.Value) != key || it.CAS == 0 {
			t.Fatalf("getmulti %q: %+v", key, it)
		}
	}

	// Concurrent Gets (batched) each get their own answer.
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				key := keys[(g*7+i)%len(keys)]
				it, err := b.Get(ctx, key)
				hit := (g*7+i)%len(keys)%2 == 0
				switch {
				case hit && (err != nil || string(it.Value) != key):
					t.Errorf("concurrent get %q: %q, %v", key, it.Value, err)
					return
				case !hit && !errors.Is(err, backend.ErrNotFound):
					t.Errorf("concurrent get %q: %v, want not found", key, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Listing.
	n := 0
	for key, err := range b.Keys(ctx, k("m")) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		_ = key
	}
	if n != 100 {
		t.Errorf("keys: %d, want 100", n)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	st, err := b.ServerStats(ctx)
	if err != nil || len(st) == 0 || st[0].Err != nil || len(st[0].Stats) == 0 {
		t.Errorf("stats: %+v, %v", st, err)
	}
}
