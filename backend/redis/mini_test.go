package redis

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
)

func newMini(t *testing.T, opts ...Option) (*Backend, *miniredis.Miniredis) {
	t.Helper()
	mr := newMiniServer(t)
	b, err := New(&goredis.Options{Addr: mr.Addr()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, mr
}

func TestSmokeMiniredis(t *testing.T) {
	b, mr := newMini(t)
	smoke(t, b, "p/", mr.FastForward)
}

func newMiniServer(t *testing.T) *miniredis.Miniredis {
	t.Helper()
	return miniredis.RunT(t)
}

func TestForeignValuesMiniredis(t *testing.T) {
	b, _ := newMini(t)
	foreignValues(t, b)
}
