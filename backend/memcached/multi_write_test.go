package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// failedKeys returns the keys err names as failed, sorted, and fails the
// test if err is not a *backend.MultiError.
func failedKeys(t *testing.T, err error) map[string]error {
	t.Helper()
	kes, ok := backend.KeyErrors(err)
	if !ok {
		t.Fatalf("want a *backend.MultiError, got %v", err)
	}
	m := make(map[string]error, len(kes))
	for _, ke := range kes {
		m[ke.Key] = ke.Err
	}
	return m
}

// md5Client returns a Client on three new memcacheds, closed when the test
// ends, that hashes with md5: it spreads keys that differ only in their
// last bytes evenly.
func md5Client(t *testing.T) *memcached.Client {
	t.Helper()
	_, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithHash("md5"), memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSetDeleteMulti(t *testing.T) {
	t.Parallel()
	c := md5Client(t)
	ctx := context.Background()
	items := make([]backend.Item, 100)
	keys := make([]string, len(items))
	servers := map[string]bool{}
	for i := range items {
		keys[i] = fmt.Sprintf("multi:%03d", i)
		items[i] = backend.Item{Key: keys[i], Value: []byte("value " + keys[i]), TTL: time.Hour}
		servers[c.ServerFor(keys[i])] = true
	}
	if len(servers) != 3 {
		t.Fatalf("100 keys on %d of 3 servers", len(servers))
	}
	if err := c.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	got, err := c.GetMulti(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMulti after SetMulti: %d items, %v", len(got), err)
	}
	for _, it := range items {
		if string(got[it.Key].Value) != string(it.Value) {
			t.Fatalf("%s = %q, want %q", it.Key, got[it.Key].Value, it.Value)
		}
	}
	if err := c.DeleteMulti(ctx, keys); err != nil {
		t.Fatalf("DeleteMulti: %v", err)
	}
	if got, err := c.GetMulti(ctx, keys); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti after DeleteMulti: %d items, %v", len(got), err)
	}
	// Nothing to do.
	if err := c.SetMulti(ctx, nil); err != nil {
		t.Fatalf("SetMulti(nil): %v", err)
	}
	if err := c.DeleteMulti(ctx, nil); err != nil {
		t.Fatalf("DeleteMulti(nil): %v", err)
	}
}

func TestSetMultiKeyErrors(t *testing.T) {
	t.Parallel()
	c := md5Client(t)
	ctx := context.Background()
	var items []backend.Item
	var good []string
	for i := range 98 {
		k := fmt.Sprintf("ke:%03d", i)
		good = append(good, k)
		items = append(items, backend.Item{Key: k, Value: []byte(k)})
	}
	items = slices.Insert(items, 40, backend.Item{Key: "ke:big", Value: make([]byte, memcached.DefaultMaxValueSize+1)})
	items = slices.Insert(items, 70, backend.Item{Key: "bad key", Value: []byte("x")})
	failed := failedKeys(t, c.SetMulti(ctx, items))
	if len(failed) != 2 || !errors.Is(failed["ke:big"], backend.ErrValueTooLarge) ||
		!errors.Is(failed["bad key"], backend.ErrInvalidKey) {
		t.Fatalf("SetMulti failures = %v; want ke:big too large and \"bad key\" invalid", failed)
	}
	got, err := c.GetMulti(ctx, good)
	if err != nil || len(got) != len(good) {
		t.Fatalf("GetMulti: %d of %d items, %v", len(got), len(good), err)
	}

	failed = failedKeys(t, c.DeleteMulti(ctx, append(slices.Clone(good), "ke:absent")))
	if len(failed) != 1 || !errors.Is(failed["ke:absent"], backend.ErrNotFound) {
		t.Fatalf("DeleteMulti failures = %v; want ke:absent not found", failed)
	}
	if got, err := c.GetMulti(ctx, good); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti after DeleteMulti: %d items, %v", len(got), err)
	}
	// errors.Is sees every key's cause through the MultiError.
	err = c.DeleteMulti(ctx, []string{"ke:absent", ""})
	if !errors.Is(err, backend.ErrNotFound) || !errors.Is(err, backend.ErrInvalidKey) {
		t.Fatalf("DeleteMulti of an absent and an empty key: %v", err)
	}
}

// A value the server refuses (larger than its -I) fails alone; the
// connection stays in step for the commands after it.
func TestSetMultiServerRefusesLargeValue(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t, "-I", "1m")
	c, err := memcached.New([]string{p.Addr}, memcached.WithMaxValueSize(4<<20), memcached.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	items := []backend.Item{
		{Key: "a", Value: []byte("1")},
		{Key: "big", Value: make([]byte, 2<<20)},
		{Key: "b", Value: []byte("2")},
	}
	err = c.SetMulti(ctx, items)
	if kes, ok := backend.KeyErrors(err); ok {
		if len(kes) != 1 || kes[0].Key != "big" || !errors.Is(kes[0].Err, backend.ErrValueTooLarge) {
			t.Fatalf("SetMulti: %v; want big too large", err)
		}
		if got, err := c.GetMulti(ctx, []string{"a", "b"}); err != nil || len(got) != 2 {
			t.Fatalf("GetMulti: %v, %v", got, err)
		}
		t.Log("the server refused the large value alone")
	} else if !errors.Is(err, backend.ErrUnavailable) {
		// A server that closes the connection after refusing: the outcome
		// is unknown, which must say so.
		t.Fatalf("SetMulti: %v; want a MultiError or ErrUnavailable", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "small", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
}

// Thousands of commands with large values to one server: the pipeline must
// not deadlock on full socket buffers.
func TestSetMultiLarge(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, memcached.WithTimeout(20*time.Second))
	ctx := context.Background()
	items := make([]backend.Item, 5000)
	keys := make([]string, len(items))
	for i := range items {
		keys[i] = fmt.Sprintf("large:%05d", i)
		items[i] = backend.Item{Key: keys[i], Value: []byte(strings.Repeat("x", 1000+i%7))}
	}
	if err := c.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	got, err := c.GetMulti(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMulti: %d of %d, %v", len(got), len(keys), err)
	}
	if got[keys[4321]].Value == nil || len(got[keys[4321]].Value) != 1000+4321%7 {
		t.Fatalf("value of %s: %d bytes", keys[4321], len(got[keys[4321]].Value))
	}
	keys = append(keys, "large:absent")
	failed := failedKeys(t, c.DeleteMulti(ctx, keys))
	if len(failed) != 1 || !errors.Is(failed["large:absent"], backend.ErrNotFound) {
		t.Fatalf("DeleteMulti failures: %v", failed)
	}
}

func TestMultiWriteClosedAndContext(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	items := []backend.Item{{Key: "k", Value: []byte("v")}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.SetMulti(ctx, items)
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("SetMulti with a cancelled context: %v", err)
	}
	err = c.DeleteMulti(ctx, []string{"k"})
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteMulti with a cancelled context: %v", err)
	}
	c.Close()
	if err := c.SetMulti(context.Background(), items); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("SetMulti after Close: %v", err)
	}
	if err := c.DeleteMulti(context.Background(), []string{"k"}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("DeleteMulti after Close: %v", err)
	}
}

// A server that does not answer: a context deadline shorter than the
// timeout ends the call in time, with an error that names no key.
func TestSetMultiContextDeadline(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t, func(string, net.Conn, *bufio.Reader) bool { return true })
	c := fakeClient(t, s, memcached.WithTimeout(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.SetMulti(ctx, []backend.Item{{Key: "a", Value: []byte("1")}})
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SetMulti to a silent server: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("SetMulti took %v", d)
	}
}

// A garbage reply: the outcome of the keys is unknown, so no MultiError.
func TestSetMultiGarbageReply(t *testing.T) {
	t.Parallel()
	n := 0
	s := newProtoFake(t, true, func(line string, c net.Conn, r *bufio.Reader) bool {
		if strings.HasPrefix(line, "ms ") {
			if _, err := r.ReadString('\n'); err != nil {
				return false
			}
			n++
			if n == 2 {
				_, _ = c.Write([]byte("WHAT\r\n"))
			}
			return true // quiet: nothing to say for a stored item
		}
		if line == "mn" {
			_, err := c.Write([]byte("MN\r\n"))
			return err == nil
		}
		return false
	})
	c := fakeClient(t, s)
	err := c.SetMulti(context.Background(), []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "c", Value: []byte("3")}})
	if _, ok := backend.KeyErrors(err); ok || !errors.Is(err, memcached.ErrProtocol) || !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("SetMulti with a garbage reply: %v", err)
	}
}

// A server marked down: its keys fail with ErrUnavailable in the
// MultiError (nothing was sent), the others are written.
func TestSetMultiServerDown(t *testing.T) {
	t.Parallel()
	live := testserver.Memcached(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c, err := memcached.New([]string{live.Addr, dead}, memcached.WithHash("md5"), memcached.WithTimeout(testTimeout), memcached.WithFailureLimit(1), memcached.WithRetryInterval(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var items []backend.Item
	var onDead, onLive []string
	for i := range 50 {
		k := fmt.Sprintf("down:%02d", i)
		items = append(items, backend.Item{Key: k, Value: []byte(k)})
		if c.ServerFor(k) == dead {
			onDead = append(onDead, k)
		} else {
			onLive = append(onLive, k)
		}
	}
	if len(onDead) == 0 || len(onLive) == 0 {
		t.Fatalf("keys on the dead server %d, on the live one %d", len(onDead), len(onLive))
	}
	// The first call finds the server refusing connections (nothing is
	// sent to it), the second one marked down: the same keys fail.
	for _, what := range []string{"refusing connections", "marked down"} {
		failed := failedKeys(t, c.SetMulti(ctx, items))
		if len(failed) != len(onDead) {
			t.Fatalf("SetMulti with a server %s failed %d keys, want the %d of the dead server", what, len(failed), len(onDead))
		}
		for _, k := range onDead {
			if !errors.Is(failed[k], backend.ErrUnavailable) {
				t.Fatalf("%s: %v, want ErrUnavailable", k, failed[k])
			}
		}
	}
	if got, err := c.GetMulti(ctx, onLive); err != nil || len(got) != len(onLive) {
		t.Fatalf("GetMulti on the live server: %d of %d, %v", len(got), len(onLive), err)
	}
	failed := failedKeys(t, c.DeleteMulti(ctx, append(slices.Clone(onLive), onDead...)))
	if len(failed) != len(onDead) {
		t.Fatalf("DeleteMulti failed %d keys, want %d", len(failed), len(onDead))
	}
}

// TestSetMultiProbesServerBackUp: a server marked down before any
// connection to it succeeded (so its item_size_max is not known) comes
// back; the SetMulti that probes it once the retry interval is over
// stores its items. SetMulti called admit twice for such a server, once
// to connect and learn item_size_max, once to send: the first took the
// probe, the second found the server marked down again (the probe had
// pushed the end of the interval on), so that all 3 items were named
// unavailable though the connect had succeeded, and the server stayed
// marked down for another interval.
func TestSetMultiProbesServerBackUp(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	live := testserver.Memcached(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var refuse atomic.Bool
	refuse.Store(true)
	// The server refuses connections while refuse is set.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if refuse.Load() {
			addr = dead
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c, err := memcached.New([]string{live.Addr}, memcached.WithTimeout(testTimeout), memcached.WithDialer(dial),
		memcached.WithFailureLimit(1), memcached.WithRetryInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	items := itemsOf([]string{"probe:a", "probe:b", "probe:c"})
	failed := failedKeys(t, c.SetMulti(ctx, items))
	if len(failed) != len(items) || !errors.Is(failed["probe:a"], backend.ErrUnavailable) {
		t.Fatalf("SetMulti to a server refusing connections: %v; want its 3 keys unavailable", failed)
	}
	refuse.Store(false)
	time.Sleep(interval + interval/2) // the retry interval is over
	if err := c.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti probing the server back up: %v", err)
	}
	got, err := c.GetMulti(ctx, []string{"probe:a", "probe:b", "probe:c"})
	if err != nil || len(got) != len(items) {
		t.Fatalf("GetMulti after the probe: %d of %d items, %v", len(got), len(items), err)
	}
}

// A Tx.Commit of 100 keys takes one round trip (one pipeline) instead of
// 100.
func TestCommitRoundTrips(t *testing.T) {
	t.Parallel()
	srv := testserver.Memcached(t)
	n := backendtest.CommitRoundTrips(t, srv.Addr, 100, func(t *testing.T, addr string) backend.Backend {
		be, err := backend.Open(t.Context(), "memcached://"+addr+"?timeout=5s")
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
	t.Logf("a 100-key commit took %d round trips", n)
	if n > 3 {
		t.Errorf("a 100-key commit took %d round trips, want at most 3", n)
	}
}
