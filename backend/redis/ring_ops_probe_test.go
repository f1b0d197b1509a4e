//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// TestRingScriptedOpsShardHung: on a Ring one shard of which hangs, the
// scripted and multi-key writes (CompareAndSwap, Increment, TryLock and
// Unlock, SetMulti and DeleteMulti, which a Tx's Commit sends) of the other
// shards' keys succeed, and those of the hung shard's keys fail within the
// timeout, wrapping backend.ErrUnavailable and naming the shard.
func TestRingScriptedOpsShardHung(t *testing.T) {
	t.Parallel()
	b, frozen, live, addr := hungRing(t)
	ctx := context.Background()
	slow := hungTimeout + 2*time.Second // generous: a loaded machine
	check := func(op string, err error, d time.Duration) {
		t.Helper()
		if err == nil || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s of a key of the hung shard: %v, want ErrUnavailable naming %s", op, err, addr)
		}
		if d > slow {
			t.Errorf("%s of a key of the hung shard took %v, timeout %v", op, d, hungTimeout)
		}
	}
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}

	// The live shards' keys.
	k := live[0]
	it, err := b.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("v2"), CAS: it.CAS}); err != nil {
		t.Errorf("cas of %s on a live shard: %v", k, err)
	}
	nk := keyOff(t, b, "n:", addr)
	if err := b.Set(ctx, backend.Item{Key: nk, Value: []byte("5")}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Increment(ctx, nk, 2); err != nil || n != 7 {
		t.Errorf("increment on a live shard: %d, %v", n, err)
	}
	lk := keyOff(t, b, "lock:", addr)
	if ok, err := b.TryLock(ctx, lk, "tok", time.Minute); err != nil || !ok {
		t.Errorf("trylock on a live shard: %v, %v", ok, err)
	}
	if ok, err := b.Unlock(ctx, lk, "tok"); err != nil || !ok {
		t.Errorf("unlock on a live shard: %v, %v", ok, err)
	}

	// The hung shard's keys.
	d, err := timed(func() error {
		return b.CompareAndSwap(ctx, backend.Item{Key: frozen[0], Value: []byte("v2"), CAS: 1})
	})
	check("cas", err, d)
	d, err = timed(func() error { _, err := b.Increment(ctx, frozen[1], 1); return err })
	check("increment", err, d)
	d, err = timed(func() error { _, err := b.TryLock(ctx, frozen[2], "tok", time.Minute); return err })
	check("trylock", err, d)

	// A Tx's Commit: SetMulti and DeleteMulti over keys of all shards.
	items := []backend.Item{{Key: live[3], Value: []byte("a")}, {Key: frozen[3], Value: []byte("b")}, {Key: live[4], Value: []byte("c")}}
	d, err = timed(func() error { return b.SetMulti(ctx, items) })
	check("setmulti", err, d)
	// A shard that did not answer: the outcome of its items is unknown,
	// so the error is not a *backend.MultiError (see SetMulti); the
	// answering shards' items are stored.
	for _, k := range []string{live[3], live[4]} {
		if it, err := b.Get(ctx, k); err != nil || len(it.Value) != 1 {
			t.Errorf("get %s after setmulti: %q, %v", k, it.Value, err)
		}
	}
	d, err = timed(func() error { return b.DeleteMulti(ctx, []string{live[3], frozen[4], live[4]}) })
	check("deletemulti", err, d)
	for _, k := range []string{live[3], live[4]} {
		if _, err := b.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("get %s after deletemulti: %v, want ErrNotFound", k, err)
		}
	}
}

// keyOff returns a key starting with prefix that is not on the Ring shard
// at addr.
func keyOff(t *testing.T, b *Backend, prefix, addr string) string {
	t.Helper()
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		c, err := b.ring.GetShardClientForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if c.Options().Addr != addr {
			return k
		}
	}
}
