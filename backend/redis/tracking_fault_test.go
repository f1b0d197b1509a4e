package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// TestNearCacheAfterMalformedPush replaces the server's invalidation of a
// key, on the tracking connection, with a push the client cannot read or
// interpret. Before, such a push was dropped (or, for an attribute stream,
// recursed on; for a 512 MiB bulk, allocated) and the near cache went on
// serving the old value: 30 of 30 reads were stale. Now the tracking
// connection is reset, which empties the near cache: within moments, and
// then for 30 of 30 reads, the value read is the new one.
func TestNearCacheAfterMalformedPush(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	p := hostile.Start(t, srv.Addr, hostile.RESPFramer)
	var bad atomic.Pointer[string]
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if m := bad.Load(); m != nil && bytes.HasPrefix(reply, []byte(">2\r\n$10\r\ninvalidate\r\n")) {
			return c.Write([]byte(*m))
		}
		return c.Write(reply)
	}))
	near := open(t, "redis://"+p.Addr()+"?timeout=10s")
	direct := open(t, "redis://"+srv.Addr+"?timeout=10s")
	d, err := memdict.New[string](near, "n", memdict.WithNearCache(memdict.NearCache{}))
	if err != nil {
		t.Fatal(err)
	}
	w, err := memdict.New[string](direct, "n")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func() string {
		v, _, err := d.Lookup(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// fresh waits until d reads want, for at most limit, then reads it 30
	// times out of 30.
	fresh := func(what, want string, limit time.Duration) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for read() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the near cache still serves %q, not %q, %v after the write", what, read(), want, limit)
			}
			time.Sleep(time.Millisecond)
		}
		for i := range 30 {
			if got := read(); got != want {
				t.Fatalf("%s: read %d of 30: %q, want %q", what, i, got, want)
			}
		}
	}
	kinds := map[string]string{
		"key list a bulk string":  ">2\r\n$10\r\ninvalidate\r\n$3\r\nkey\r\n",
		"key list of integers":    ">2\r\n$10\r\ninvalidate\r\n*2\r\n:1\r\n:2\r\n",
		"key list nested":         ">2\r\n$10\r\ninvalidate\r\n*1\r\n*1\r\n$3\r\nkey\r\n",
		"key list a map":          ">2\r\n$10\r\ninvalidate\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n",
		"key list a set":          ">2\r\n$10\r\ninvalidate\r\n~1\r\n$1\r\na\r\n",
		"key list an integer":     ">2\r\n$10\r\ninvalidate\r\n:7\r\n",
		"no key list":             ">1\r\n$10\r\ninvalidate\r\n",
		"two key lists":           ">3\r\n$10\r\ninvalidate\r\n*0\r\n*0\r\n",
		"a push of another kind":  ">2\r\n$7\r\nmessage\r\n$3\r\nkey\r\n",
		"an empty push":           ">0\r\n",
		"an attribute stream":     strings.Repeat("|0\r\n", 100000) + "+OK\r\n",
		"a 512 MiB key":           ">2\r\n$10\r\ninvalidate\r\n*1\r\n$536870912\r\n",
		"a 2^63 key":              ">2\r\n$10\r\ninvalidate\r\n*1\r\n$9223372036854775807\r\n",
		"a 2^31-element key list": ">2\r\n$10\r\ninvalidate\r\n*2147483648\r\n",
		"binary noise":            "\x00\xff\x13\x37noise",
	}
	// cached waits until reads of k are near-cache hits: tracking is live.
	cached := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			before := d.Stats().NearCache.Hits
			read()
			if d.Stats().NearCache.Hits > before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: reads are not near-cache hits", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	i := 0
	for kind, push := range kinds {
		i++
		// A valid invalidation: the near cache follows the write.
		bad.Store(nil)
		if err := w.Put("k", fmt.Sprint("a", i)); err != nil {
			t.Fatal(err)
		}
		fresh(kind+", before", fmt.Sprint("a", i), 10*time.Second)
		cached(kind + ", before")
		resets := d.Stats().NearCache.Resets
		// The next invalidation is replaced with the malformed push.
		bad.Store(&push)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := w.Put("k", fmt.Sprint("b", i)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fresh(kind, fmt.Sprint("b", i), 2*time.Second)
		t.Logf("%s: fresh after %v; resets %d -> %d, hits %d", kind, time.Since(start), resets, d.Stats().NearCache.Resets, d.Stats().NearCache.Hits)
		if d.Stats().NearCache.Resets == resets {
			t.Errorf("%s: fresh, but the near cache was not reset", kind)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Errorf("%s: %d MiB allocated", kind, n>>20)
		}
	}
}

// open opens rawURL, closed when the test ends.
func open(t *testing.T, rawURL string) *redis.Backend {
	t.Helper()
	be, err := backend.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be.(*redis.Backend)
}
