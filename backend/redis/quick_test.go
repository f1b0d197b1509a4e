package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

func newMini(t *testing.T) (*Backend, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	b, err := New(&goredis.Options{Addr: mr.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, mr
}

func TestQuick(t *testing.T) {
	ctx := context.Background()
	b, mr := newMini(t)
	if _, err := b.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("get miss: %v", err)
	}
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v1"), TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	it, err := b.Get(ctx, "k")
	if err != nil || string(it.Value) != "v1" || it.CAS == 0 {
		t.Fatalf("get: %+v %v", it, err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v2"), CAS: it.CAS}); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v3"), CAS: it.CAS}); !errors.Is(err, backend.ErrCASConflict) {
		t.Fatal(err)
	}
	it2, _ := b.Get(ctx, "k")
	if err := b.Touch(ctx, "k", time.Second); err != nil {
		t.Fatal(err)
	}
	it3, _ := b.Get(ctx, "k")
	if it3.CAS == it2.CAS || string(it3.Value) != "v2" {
		t.Fatal("touch did not change cas")
	}
	mr.FastForward(2 * time.Second)
	if err := b.Touch(ctx, "k", time.Second); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	for _, c := range []struct {
		start string
		delta int64
		want  uint64
	}{
		{"10", 5, 15}, {"10", -20, 0}, {"18446744073709551615", 2, 1}, {"007", 1, 8}, {"5", -9223372036854775808, 0},
		{"18446744073709551615", 9223372036854775807, 9223372036854775806},
	} {
		b.Set(ctx, backend.Item{Key: "n", Value: []byte(c.start), TTL: time.Hour})
		got, err := b.Increment(ctx, "n", c.delta)
		if err != nil || got != c.want {
			t.Errorf("incr %s %+d = %d %v, want %d", c.start, c.delta, got, err, c.want)
		}
		if ttl := mr.TTL("n"); ttl != time.Hour {
			t.Errorf("ttl after incr %v", ttl)
		}
	}
	b.Set(ctx, backend.Item{Key: "n", Value: []byte("x1")})
	if _, err := b.Increment(ctx, "n", 1); !errors.Is(err, backend.ErrNotNumeric) {
		t.Fatal(err)
	}
	mr.Set("foreign", "hello world")
	_, err = b.Get(ctx, "foreign")
	t.Log(err)
	if !errors.Is(err, ErrForeignValue) {
		t.Fatal(err)
	}
	_, err = b.Increment(ctx, "foreign", 1)
	t.Log(err)
	mr.HSet("hash", "a", "b")
	_, err = b.Get(ctx, "hash")
	t.Log(err)
	err = b.Touch(ctx, "hash", 0)
	t.Log(err)
	if err := b.Add(ctx, backend.Item{Key: "k", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, backend.Item{Key: "k", Value: []byte("a")}); !errors.Is(err, backend.ErrNotStored) {
		t.Fatal(err)
	}
	m, err := b.GetMulti(ctx, []string{"k", "n", "zz", "foreign", "hash"})
	t.Log(m, err)
	for k, err := range b.Keys(ctx, "") {
		t.Log(k, err)
	}
	st, err := b.ServerStats(ctx)
	t.Log(len(st), err)
	t.Log(b.Flush(ctx), b.Ping(ctx))
}
