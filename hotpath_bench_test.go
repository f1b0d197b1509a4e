package memdict_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	memredis "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/testserver"
)

// The hot paths of the benchmark programs (examples/memcachedbench and
// examples/redisbench), one goroutine, for their allocations per call:
//
//	go test -run '^$' -bench 'HotPath' -benchmem .
//
// memcached: a Dict[[]byte] with the raw codec and a Dict of a struct
// with MessagePack, Get and Put; Redis: a Dict of a struct, Lookup and
// Store with context.Background, on a standalone server with batching as
// redisbench opens it.

// hotUser is redisbench's small value.
type hotUser struct {
	ID      int64    `msgpack:"id"`
	Name    string   `msgpack:"name"`
	Email   string   `msgpack:"email"`
	Active  bool     `msgpack:"active"`
	Tags    []string `msgpack:"tags"`
	Balance float64  `msgpack:"balance"`
}

func hotMemcached(b *testing.B) backend.Backend {
	be, err := memcached.New([]string{testserver.Memcached(b).Addr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

func hotRedis(b *testing.B) backend.Backend {
	be, err := memredis.New(&goredis.Options{Addr: testserver.Redis(b).Addr}, memredis.WithBatching(true, 0, 0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

func hotKeys() []string {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	return keys
}

func benchHot[V any](b *testing.B, d *memdict.Dict[V], v V) {
	ctx := context.Background()
	keys := hotKeys()
	for _, k := range keys {
		if err := d.Store(ctx, k, v); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok, err := d.Lookup(ctx, keys[i%len(keys)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := d.Store(ctx, keys[i%len(keys)], v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHotPathMemcachedBytes(b *testing.B) {
	d, err := memdict.New[[]byte](hotMemcached(b), "bench", memdict.WithCodec(codec.Raw))
	if err != nil {
		b.Fatal(err)
	}
	benchHot(b, d, []byte(strings.Repeat("v", 100)))
}

func BenchmarkHotPathMemcachedStruct(b *testing.B) {
	d, err := memdict.New[hotUser](hotMemcached(b), "bench")
	if err != nil {
		b.Fatal(err)
	}
	benchHot(b, d, hotUser{ID: 17, Name: "user 17", Email: "u17@example.com", Active: true, Tags: []string{"a", "b"}, Balance: 1.5})
}

func BenchmarkHotPathRedisStruct(b *testing.B) {
	d, err := memdict.New[hotUser](hotRedis(b), "bench")
	if err != nil {
		b.Fatal(err)
	}
	benchHot(b, d, hotUser{ID: 17, Name: "user 17", Email: "u17@example.com", Active: true, Tags: []string{"a", "b"}, Balance: 1.5})
}
