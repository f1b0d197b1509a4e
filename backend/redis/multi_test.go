package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// multiWrites checks SetMulti and DeleteMulti on b, whose value limit is
// 1024 bytes: a round trip of 100 items, and per-key failures.
func multiWrites(t *testing.T, b *Backend) {
	t.Helper()
	ctx := context.Background()
	prefix := backendtest.RandomPrefix()
	items := make([]backend.Item, 100)
	keys := make([]string, len(items))
	for i := range items {
		keys[i] = fmt.Sprintf("%sk%03d", prefix, i)
		items[i] = backend.Item{Key: keys[i], Value: []byte(keys[i])}
		if i%2 == 0 {
			items[i].TTL = time.Minute
		}
	}
	t.Cleanup(func() {
		for _, k := range keys {
			_ = b.Delete(context.Background(), k)
		}
	})

	// Round trip.
	if err := b.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	got, err := b.GetMulti(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMulti after SetMulti: %d of %d (%v)", len(got), len(keys), err)
	}
	for _, k := range keys {
		if it := got[k]; string(it.Value) != k || it.CAS == 0 {
			t.Fatalf("%s = %+v", k, it)
		}
	}
	if ttl := b.Client().PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of an item with TTL 1m = %v", ttl)
	}
	if ttl := b.Client().PTTL(ctx, keys[1]).Val(); ttl != -1 {
		t.Errorf("PTTL of an item without TTL = %v, want -1 (no expiry)", ttl)
	}
	if err := b.DeleteMulti(ctx, keys); err != nil {
		t.Fatalf("DeleteMulti: %v", err)
	}
	if got, err := b.GetMulti(ctx, keys); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti after DeleteMulti = %d items (%v)", len(got), err)
	}

	// Per-key failures: exactly the bad items, the others stored.
	bad := map[string]error{
		keys[10]: backend.ErrValueTooLarge,
		keys[20]: backend.ErrInvalidTTL,
		"":       backend.ErrInvalidKey,
	}
	items[10].Value = bytes.Repeat([]byte("x"), 1025)
	items[20].TTL = -time.Second
	withEmpty := append(items[:len(items):len(items)], backend.Item{Key: "", Value: []byte("v")})
	err = b.SetMulti(ctx, withEmpty)
	checkKeyErrors(t, "SetMulti", err, bad)
	for _, k := range keys {
		it, err := b.Get(ctx, k)
		if _, isBad := bad[k]; isBad {
			if !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("Get of the failed key %s = %+v, %v; want a miss", k, it, err)
			}
			continue
		}
		if err != nil || string(it.Value) != k {
			t.Fatalf("Get(%s) = %+v, %v", k, it, err)
		}
		// CAS works on what SetMulti wrote.
		if err := b.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("swapped"), CAS: it.CAS}); err != nil {
			t.Fatalf("CompareAndSwap(%s): %v", k, err)
		}
		if err := b.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("again"), CAS: it.CAS}); !errors.Is(err, backend.ErrCASConflict) {
			t.Fatalf("stale CompareAndSwap(%s): %v", k, err)
		}
	}

	// DeleteMulti: absent keys are the KeyErrors, the others removed.
	err = b.DeleteMulti(ctx, append(keys[:len(keys):len(keys)], ""))
	checkKeyErrors(t, "DeleteMulti", err, map[string]error{
		keys[10]: backend.ErrNotFound,
		keys[20]: backend.ErrNotFound,
		"":       backend.ErrInvalidKey,
	})
	if got, err := b.GetMulti(ctx, keys); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti after DeleteMulti = %d items (%v)", len(got), err)
	}

	// Empty calls.
	if err := b.SetMulti(ctx, nil); err != nil {
		t.Errorf("SetMulti(nil) = %v", err)
	}
	if err := b.DeleteMulti(ctx, nil); err != nil {
		t.Errorf("DeleteMulti(nil) = %v", err)
	}

	// A done context: an error that is not a MultiError, nothing sent.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = b.SetMulti(cctx, items[:5])
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("SetMulti with a cancelled context = %v", err)
	}
	err = b.DeleteMulti(cctx, keys[:5])
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteMulti with a cancelled context = %v", err)
	}
}

// checkKeyErrors checks that err is a *backend.MultiError naming exactly
// the keys of want, each wrapping its sentinel.
func checkKeyErrors(t *testing.T, op string, err error, want map[string]error) {
	t.Helper()
	kes, ok := backend.KeyErrors(err)
	if !ok {
		t.Fatalf("%s = %v; want a *backend.MultiError", op, err)
	}
	if len(kes) != len(want) {
		t.Fatalf("%s failed %d keys, want %d: %v", op, len(kes), len(want), err)
	}
	for _, ke := range kes {
		sentinel, ok := want[ke.Key]
		if !ok {
			t.Fatalf("%s failed key %q, which should have succeeded: %v", op, ke.Key, ke.Err)
		}
		if !errors.Is(ke.Err, sentinel) {
			t.Fatalf("%s: key %q failed with %v; want %v", op, ke.Key, ke.Err, sentinel)
		}
	}
}

func TestMultiWritesServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	multiWrites(t, mustOpen(t, "redis://"+p.Addr+"/0?max_value_size=1024&timeout="+loadedTimeout))
}

func TestMultiWritesCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	b := mustOpen(t, "redis://"+c.Addrs[0]+"?cluster=true&max_value_size=1024&timeout="+loadedTimeout)
	multiWrites(t, b)
}

func TestMultiWritesClosed(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	b.Close()
	ctx := context.Background()
	if err := b.SetMulti(ctx, []backend.Item{{Key: "k", Value: []byte("v")}}); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("SetMulti after Close = %v", err)
	}
	if err := b.DeleteMulti(ctx, []string{"k"}); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("DeleteMulti after Close = %v", err)
	}
}

// TestMultiWritesUnavailable: with the server gone, SetMulti and
// DeleteMulti report ErrUnavailable for the whole call, not per key.
func TestMultiWritesUnavailable(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	ctx := context.Background()
	if err := b.SetMulti(ctx, []backend.Item{{Key: "a", Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	items := []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	err := b.SetMulti(ctx, items)
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("SetMulti with the server down = %v; want ErrUnavailable, not a MultiError", err)
	}
	err = b.DeleteMulti(ctx, []string{"a", "b"})
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("DeleteMulti with the server down = %v; want ErrUnavailable, not a MultiError", err)
	}
}

// TestMultiWritesServerError: a command the server refuses (here, every
// write, the server being made the read-only replica of a server that
// does not exist) fails its own key only.
func TestMultiWritesServerError(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	ctx := context.Background()
	if err := b.Client().ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(testserver.FreePort(t))).Err(); err != nil {
		t.Fatal(err)
	}
	err := b.SetMulti(ctx, []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}})
	kes, ok := backend.KeyErrors(err)
	if !ok || len(kes) != 2 || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("SetMulti refused by the server = %v; want a MultiError of both keys", err)
	}
}

// TestCommitRoundTrips: a 100-key Tx.Commit takes a pipeline, not a round
// trip per key.
func TestCommitRoundTrips(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	open := func(t *testing.T, addr string) backend.Backend {
		be, err := backend.Open(t.Context(), "redis://"+addr+"/0")
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
	if n := backendtest.CommitRoundTrips(t, srv.Addr, 100, open); n > 3 {
		t.Errorf("100-key commit took %d round trips, want at most 3", n)
	} else {
		t.Logf("100-key commit: %d round trips with SetMulti", n)
	}
	// For comparison, without MultiWriter: one SET per key.
	plain := func(t *testing.T, addr string) backend.Backend { return hideMulti{open(t, addr)} }
	t.Logf("100-key commit: %d round trips without SetMulti", backendtest.CommitRoundTrips(t, srv.Addr, 100, plain))
}

// hideMulti hides a backend's MultiWriter.
type hideMulti struct{ backend.Backend }
