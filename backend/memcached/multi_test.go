package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

func startMemcacheds(t *testing.T, n int) ([]*testserver.Process, []string) {
	t.Helper()
	var procs []*testserver.Process
	var addrs []string
	for range n {
		p := testserver.Memcached(t)
		procs = append(procs, p)
		addrs = append(addrs, p.Addr)
	}
	return procs, addrs
}

// TestKetamaAgreesWithNutcracker writes keys through nutcracker
// (distribution: ketama) in front of three memcached, then reads every key
// directly from the server the Client picks for it.
func TestKetamaAgreesWithNutcracker(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 3)
	for _, hash := range []string{"fnv1a_64", "md5"} {
		t.Run(hash, func(t *testing.T) {
			for _, a := range addrs {
				rawCommand(t, a, "flush_all\r\n", "OK\r\n")
			}
			nc := testserver.Nutcracker(t, addrs, "    hash: "+hash)
			c, err := memcached.New(addrs, memcached.WithHash(hash), memcached.WithTimeout(testTimeout))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			agreeWithNutcracker(t, nc, c, addrs)
		})
	}
}

func agreeWithNutcracker(t *testing.T, nc *testserver.NutcrackerProcess, c *memcached.Client, addrs []string) {
	proxy := memcache.New(nc.Listen)
	proxy.Timeout = 2 * time.Second
	defer proxy.Close()
	var err error
	direct := map[string]*memcache.Client{}
	for _, a := range addrs {
		direct[a] = memcache.New(a)
		defer direct[a].Close()
	}

	const n = 600
	keys := make([]string, 0, n)
	for i := range n {
		// A mix of shapes, including bytes >= 0x80 (hashed as signed chars).
		k := fmt.Sprintf("memdict/site/%d/key-%d", i%7, i)
		if i%5 == 0 {
			k = fmt.Sprintf("clé-%d-ü", i)
		}
		keys = append(keys, k)
		if err := proxy.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatalf("set %q through nutcracker: %v\n%s", k, err, nc.Output())
		}
	}
	perServer := map[string]int{}
	ctx := context.Background()
	for _, k := range keys {
		addr := c.ServerFor(k)
		perServer[addr]++
		it, err := direct[addr].Get(k)
		if err != nil {
			t.Fatalf("key %q written through nutcracker is not on %s, the server memdict picks: %v", k, addr, err)
		}
		if string(it.Value) != k {
			t.Fatalf("key %q on %s holds %q", k, addr, it.Value)
		}
		// And through the Client itself.
		got, err := c.Get(ctx, k)
		if err != nil || string(got.Value) != k {
			t.Fatalf("Client.Get(%q) = %q, %v", k, got.Value, err)
		}
	}
	t.Logf("keys per server: %v", perServer)
	_ = err
	if len(perServer) != 3 {
		t.Errorf("keys spread over %d servers, want 3", len(perServer))
	}
	// The other way: written by memdict, read through nutcracker.
	for i := range 100 {
		k := fmt.Sprintf("from-memdict-%d", i)
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		if _, err := proxy.Get(k); err != nil {
			t.Fatalf("key %q written by memdict, read through nutcracker: %v", k, err)
		}
	}
}

// TestMultiServer: GetMulti across servers, per-server admin commands.
func TestMultiServer(t *testing.T) {
	t.Parallel()
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("k%%:/%d", i) // '%', ':' and '/' come URL-encoded in metadump
		keys = append(keys, k)
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := c.GetMulti(ctx, append(keys, "absent1", "absent2"))
	if err != nil || len(m) != len(keys) {
		t.Fatalf("GetMulti: %d items, %v", len(m), err)
	}
	for _, k := range keys {
		if string(m[k].Value) != k {
			t.Fatalf("GetMulti[%q] = %q", k, m[k].Value)
		}
	}

	// Keys lists every key once, decoded.
	seen := map[string]int{}
	for k, err := range c.Keys(ctx, "k") {
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		seen[k]++
	}
	missing := 0
	for _, k := range keys {
		if seen[k] != 1 {
			missing++
			t.Errorf("Keys yielded %q (on %s) %d times", k, c.ServerFor(k), seen[k])
		}
	}
	if len(seen) != len(keys) {
		t.Errorf("Keys yielded %d keys, want %d", len(seen), len(keys))
	}
	if missing > 0 {
		for _, a := range addrs {
			t.Logf("metadump of %s now:\n%s", a, rawCommand(t, a, "lru_crawler metadump all\r\n", "END\r\n"))
		}
	}
	for k, err := range c.Keys(ctx, "zzz") {
		t.Errorf("Keys with a prefix nothing has: %q, %v", k, err)
	}
	// Stopping early is fine, and the next listing (which may find the
	// server's crawler still busy with the abandoned one) is complete.
	for range c.Keys(ctx, "") {
		break
	}
	n := 0
	for _, err := range c.Keys(ctx, "k") {
		if err != nil {
			t.Fatalf("Keys after an abandoned listing: %v", err)
		}
		n++
	}
	if n != len(keys) {
		t.Errorf("Keys after an abandoned listing: %d keys, want %d", n, len(keys))
	}

	stats, err := c.ServerStats(ctx)
	if err != nil || len(stats) != 3 {
		t.Fatalf("ServerStats: %v, %v", stats, err)
	}
	for i, s := range stats {
		if s.Addr != addrs[i] || s.Err != nil || s.Stats["pid"] == "" || s.Stats["memdict_marked_down"] != "false" {
			t.Errorf("stats[%d] = %s %v %v", i, s.Addr, s.Err, s.Stats["pid"])
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// FlushNode empties one server only.
	victim := c.ServerFor(keys[0])
	if err := c.FlushNode(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := c.FlushNode(ctx, "127.0.0.1:1"); err == nil {
		t.Error("FlushNode of an unknown server: no error")
	}
	for _, k := range keys {
		_, err := c.Get(ctx, k)
		if c.ServerFor(k) == victim {
			if !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("%q on the flushed server: %v", k, err)
			}
		} else if err != nil {
			t.Errorf("%q on another server: %v", k, err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := c.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%q after Flush: %v", k, err)
		}
	}

	// A dead server: Ping and ServerStats name it, the others answer.
	procs[1].Stop(t)
	err = c.Ping(ctx)
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Ping with a dead server: %v", err)
	} else {
		t.Logf("Ping with a dead server: %v", err)
	}
	stats, _ = c.ServerStats(ctx)
	if stats[1].Err == nil || stats[0].Err != nil || stats[2].Err != nil {
		t.Errorf("stats errors with server 1 dead: %v %v %v", stats[0].Err, stats[1].Err, stats[2].Err)
	}
	var listErr error
	n = 0
	for _, err := range c.Keys(ctx, "") {
		if err != nil {
			listErr = err
		} else {
			n++
		}
	}
	if !errors.Is(listErr, backend.ErrUnavailable) {
		t.Errorf("Keys with a dead server: final error %v", listErr)
	}
}

// TestAddFourthServer: keys written over three servers, then read over the
// same three plus a fourth: only the keys that moved to the new server
// (about a quarter) are missed.
func TestAddFourthServer(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 4)
	c3, err := memcached.New(addrs[:3], memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c4, err := memcached.New(addrs, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	ctx := context.Background()
	const n = 2000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("memdict/site/ns/%d/user-%d", i%13, i)
		if err := c3.Set(ctx, backend.Item{Key: keys[i], Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	found := 0
	for i := 0; i < n; i += 100 {
		m, err := c4.GetMulti(ctx, keys[i:i+100])
		if err != nil {
			t.Fatal(err)
		}
		found += len(m)
		for _, k := range keys[i : i+100] {
			_, hit := m[k]
			if moved := c4.ServerFor(k) != c3.ServerFor(k); moved == hit {
				t.Fatalf("key %q: moved %v but found %v", k, moved, hit)
			}
			if c4.ServerFor(k) != c3.ServerFor(k) && c4.ServerFor(k) != addrs[3] {
				t.Fatalf("key %q moved between old servers", k)
			}
		}
	}
	moved := float64(n-found) / n
	t.Logf("after adding a 4th server, %.1f%% of the keys moved", 100*moved)
	if moved < 0.15 || moved > 0.35 {
		t.Errorf("%.1f%% of the keys moved, want about 25%%", 100*moved)
	}
}

// TestGetMultiOrdered: GetMultiOrdered finds what GetMulti finds, each
// item at the index of its key, over three servers; an empty value is an
// item and a lease placeholder is not; a stopped server's keys are named
// in a *backend.MultiError and left zero while the others are found; and a
// server without meta commands (gomemcache) answers in order too.
func TestGetMultiOrdered(t *testing.T) {
	t.Parallel()
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(testTimeout), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("ord:%d", i)
		keys = append(keys, k)
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("v" + k), Flags: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, backend.Item{Key: "ord:empty", Value: []byte{}, Flags: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetLease(ctx, "ord:placeholder", leaseOpts); err != nil {
		t.Fatal(err)
	}
	// Absent keys, the empty value and the placeholder among the others,
	// and a key twice.
	asked := append([]string{"ord:absent", "ord:empty"}, keys[:20]...)
	asked = append(asked, "ord:placeholder", keys[3])
	asked = append(asked, keys[20:]...)

	check := func(what string, found []backend.Item, m map[string]backend.Item, skip func(string) bool) {
		t.Helper()
		for i, k := range asked {
			want, ok := m[k]
			if skip(k) {
				ok = false
			}
			got := found[i]
			switch {
			case !ok && got.Key != "":
				t.Errorf("%s: found[%d] = %q for %q, which GetMulti did not find", what, i, got.Key, k)
			case ok && (got.Key != k || string(got.Value) != string(want.Value) || got.Flags != want.Flags || got.CAS != want.CAS):
				t.Errorf("%s: found[%d] = %q %q flags %d cas %d, want %q %q flags %d cas %d",
					what, i, got.Key, got.Value, got.Flags, got.CAS, k, want.Value, want.Flags, want.CAS)
			}
		}
	}
	m, err := c.GetMulti(ctx, asked)
	if err != nil || len(m) != len(keys)+1 {
		t.Fatalf("GetMulti: %d items, %v; want %d", len(m), err, len(keys)+1)
	}
	if it, ok := m["ord:empty"]; !ok || len(it.Value) != 0 || it.Flags != 7 {
		t.Fatalf("GetMulti: the empty value = %v, %v; want it with its client flags (7)", it, ok)
	}
	found := make([]backend.Item, len(asked))
	if err := c.GetMultiOrdered(ctx, asked, found); err != nil {
		t.Fatalf("GetMultiOrdered: %v", err)
	}
	check("all servers up", found, m, func(string) bool { return false })

	if err := c.GetMultiOrdered(ctx, asked, found[:3]); err == nil {
		t.Errorf("GetMultiOrdered with room for 3 of %d items: no error", len(asked))
	}

	// One server down: its keys fail, the others are found.
	down := addrs[1]
	procs[1].Stop(t)
	clear(found)
	err = c.GetMultiOrdered(ctx, asked, found)
	kes, ok := backend.KeyErrors(err)
	if !ok || len(kes) == 0 {
		t.Fatalf("GetMultiOrdered with %s stopped: %v, want a *backend.MultiError", down, err)
	}
	failed := map[string]bool{}
	for _, ke := range kes {
		failed[ke.Key] = true
		if c.ServerFor(ke.Key) != down {
			t.Errorf("key %q of %s named as failed", ke.Key, c.ServerFor(ke.Key))
		}
	}
	for _, k := range asked {
		if c.ServerFor(k) == down && !failed[k] {
			t.Errorf("key %q of the stopped server not named as failed", k)
		}
	}
	check("one server stopped", found, m, func(k string) bool { return failed[k] })

	// A server without meta commands: gomemcache's GetMulti, in order.
	s := newProtoFake(t, false, func(line string, conn net.Conn, r *bufio.Reader) bool {
		if !strings.HasPrefix(line, "gets ") {
			return false
		}
		for _, k := range strings.Fields(line)[1:] {
			if k != "b" {
				fmt.Fprintf(conn, "VALUE %s 0 %d 1\r\n%s\r\n", k, len(valueOf(k)), valueOf(k))
			}
		}
		fmt.Fprintf(conn, "END\r\n")
		return true
	})
	tc := fakeClient(t, s, memcached.WithTimeout(2*time.Second))
	found = make([]backend.Item, 4)
	if err := tc.GetMultiOrdered(ctx, []string{"c", "b", "a", "c"}, found); err != nil {
		t.Fatalf("text protocol: GetMultiOrdered: %v", err)
	}
	if string(found[0].Value) != valueOf("c") || found[1].Key != "" || string(found[2].Value) != valueOf("a") || string(found[3].Value) != valueOf("c") {
		t.Errorf("text protocol: GetMultiOrdered(c, b, a, c) = %v", found)
	}
	// The values are the caller's (PrivateReads): a key asked twice has
	// two.
	found[0].Value[0] = 'X'
	if string(found[3].Value) != valueOf("c") {
		t.Errorf("text protocol: the two values of c share memory: %q", found[3].Value)
	}
}
