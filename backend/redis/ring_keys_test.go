//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// ringForListing returns a Ring of three shards whose heartbeat marks a
// shard down within a few tenths of a second (its PING bounded by 100ms),
// and the shards' servers.
func ringForListing(t *testing.T) (*goredis.Ring, []*testserver.Process) {
	t.Helper()
	ps := []*testserver.Process{testserver.Redis(t), testserver.Redis(t), testserver.Redis(t)}
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": ps[0].Addr, "b": ps[1].Addr, "c": ps[2].Addr},
		HeartbeatFrequency:    30 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		HeartbeatFn: func(ctx context.Context, c *goredis.Client) bool {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			return c.Ping(ctx).Err() == nil
		},
	})
	t.Cleanup(func() { ring.Close() })
	return ring, ps
}

// waitRingDown waits until the Ring's heartbeat marked the shard at addr
// down (go-redis's ForEachShard no longer gives it) and took it out of its
// hash (which it does after voting on every shard: no key "list:N" goes
// to it).
func waitRingDown(t *testing.T, ring *goredis.Ring, addr string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; {
		up := false
		for _, c := range ring.GetShardClients() {
			up = up || c.Options().Addr == addr
		}
		for i := 0; i < 100 && !up; i++ {
			c, err := ring.GetShardClientForKey(fmt.Sprintf("list:%d", i))
			up = err == nil && c.Options().Addr == addr
		}
		if !up {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("the Ring did not mark shard %s down within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storeOnShards stores n keys "list:i" (value the key) and returns them
// by the address of the shard each is on.
func storeOnShards(t *testing.T, b *Backend, ring *goredis.Ring, n int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	by := make(map[string][]string)
	for i := range n {
		k := fmt.Sprintf("list:%d", i)
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		c, err := ring.GetShardClientForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		by[c.Options().Addr] = append(by[c.Options().Addr], k)
	}
	return by
}

// listAll runs Keys and returns the keys listed and the final error.
func listAll(b *Backend, prefix string) (map[string]bool, error) {
	got := make(map[string]bool)
	for k, err := range b.Keys(context.Background(), prefix) {
		if err != nil {
			return got, err
		}
		got[k] = true
	}
	return got, nil
}

// TestRingListingNamesDownShard: on a Ring whose heartbeat marked a hung
// shard down, Keys lists the other shards' keys and ends with an error
// naming the hung shard and wrapping backend.ErrUnavailable, ServerStats
// gives that shard its own entry with the error, and Ping names it. Keys
// and ServerStats used Ring.ForEachShard, which skips the shards marked
// down: the listing lacked the shard's keys and said nothing, and the
// stats had two entries out of three.
func TestRingListingNamesDownShard(t *testing.T) {
	t.Parallel()
	ring, ps := ringForListing(t)
	b, err := NewFromClient(ring, WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	by := storeOnShards(t, b, ring, 60)
	hung := ps[1]
	if len(by[hung.Addr]) == 0 || len(by[ps[0].Addr])+len(by[ps[2].Addr]) == 0 {
		t.Fatalf("keys by shard: %v: want some on each side", by)
	}
	if err := hung.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hung.Signal(syscall.SIGCONT) })
	waitRingDown(t, ring, hung.Addr)

	got, err := listAll(b, "list:")
	if err == nil || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), hung.Addr) {
		t.Errorf("keys with shard %s hung and marked down by the Ring: %d keys listed, error %v; want an error wrapping ErrUnavailable naming it",
			hung.Addr, len(got), err)
	}
	for _, p := range []*testserver.Process{ps[0], ps[2]} {
		for _, k := range by[p.Addr] {
			if !got[k] {
				t.Errorf("keys: %s of the answering shard %s not listed", k, p.Addr)
			}
		}
	}

	st, err := b.ServerStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 {
		t.Errorf("server stats: %d entries, want one per shard (3)", len(st))
	}
	for _, ns := range st {
		switch {
		case ns.Addr == hung.Addr && (ns.Err == nil || !errors.Is(ns.Err, backend.ErrUnavailable)):
			t.Errorf("stats of the hung shard %s: error %v, want ErrUnavailable", ns.Addr, ns.Err)
		case ns.Addr != hung.Addr && ns.Err != nil:
			t.Errorf("stats of %s: %v", ns.Addr, ns.Err)
		}
	}
	if err := b.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), hung.Addr) {
		t.Errorf("ping with shard %s hung: %v, want an error naming it", hung.Addr, err)
	}
}

// TestRingListingNamesShardDownBeforeBackend: a shard the Ring marked down
// before NewFromClient (the Backend never had its client) is named by
// Keys, ServerStats and Ping as not reached; a shard SetAddrs removed is
// neither listed nor an error.
func TestRingListingNamesShardDownBeforeBackend(t *testing.T) {
	t.Parallel()
	ring, ps, b := ringShardDownBeforeBackend(t)
	dead := ps[2]
	by := storeOnShards(t, b, ring, 30)

	got, err := listAll(b, "list:")
	if err == nil || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), dead.Addr) {
		t.Errorf("keys with shard %s down before the Backend: %d keys listed, error %v; want an error wrapping ErrUnavailable naming it",
			dead.Addr, len(got), err)
	}
	if len(got) != 30 {
		t.Errorf("keys: %d of the 30 keys of the answering shards listed", len(got))
	}
	st, err := b.ServerStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, ns := range st {
		named = named || ns.Addr == dead.Addr && errors.Is(ns.Err, backend.ErrUnavailable)
	}
	if len(st) != 3 || !named {
		t.Errorf("server stats: %d entries (%v), want 3, shard %s's with ErrUnavailable", len(st), statAddrs(st), dead.Addr)
	}
	if err := b.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), dead.Addr) {
		t.Errorf("ping with shard %s down: %v, want an error naming it", dead.Addr, err)
	}

	// SetAddrs removes shard b (go-redis closes its client): it is
	// neither listed nor named.
	ring.SetAddrs(map[string]string{"a": ps[0].Addr, "c": dead.Addr})
	got, err = listAll(b, "list:")
	if err == nil || strings.Contains(err.Error(), ps[1].Addr) || !strings.Contains(err.Error(), dead.Addr) {
		t.Errorf("keys after SetAddrs removed shard %s: %v, want an error naming %s alone", ps[1].Addr, err, dead.Addr)
	}
	if len(got) != len(by[ps[0].Addr]) {
		t.Errorf("keys after SetAddrs removed a shard: %d listed, want shard a's %d", len(got), len(by[ps[0].Addr]))
	}
	st, err = b.ServerStats(context.Background())
	if err != nil || len(st) != 2 {
		t.Errorf("server stats after SetAddrs removed a shard: %v, %v; want two entries", statAddrs(st), err)
	}
	for _, ns := range st {
		if ns.Addr == ps[1].Addr {
			t.Errorf("server stats after SetAddrs removed shard %s: it has an entry: %v", ns.Addr, ns.Err)
		}
	}
}

// statAddrs returns the addresses of st and their errors.
func statAddrs(st []backend.NodeStats) []string {
	var out []string
	for _, ns := range st {
		out = append(out, fmt.Sprintf("%s (%v)", ns.Addr, ns.Err))
	}
	return out
}

// TestRingDescribeShards: Describe on a Ring names each shard, in order of
// address, with its own connections, the one the Ring's heartbeat marked
// down included; it named one server with the empty address.
func TestRingDescribeShards(t *testing.T) {
	t.Parallel()
	ring, ps, b := ringShardDownBeforeBackend(t)
	dead := ps[2]
	storeOnShards(t, b, ring, 30)
	d := backend.Describe(backend.Wrap(b))
	want := []string{ps[0].Addr, ps[1].Addr, dead.Addr}
	slices.Sort(want)
	var got []string
	open := 0
	for _, s := range d.Servers {
		got = append(got, s.Addr)
		open += s.Open
		if s.Addr == dead.Addr && s.Open != 0 {
			t.Errorf("describe: shard %s, down, has %d connections", s.Addr, s.Open)
		}
	}
	if d.System != "redis" || !slices.Equal(got, want) {
		t.Errorf("describe a Ring: system %q, servers %q; want redis, %q", d.System, got, want)
	}
	if open < 2 {
		t.Errorf("describe a Ring after Sets on both shards up: %d connections open, want one a shard at least", open)
	}
}

// ringShardDownBeforeBackend returns the Ring of ringForListing, its
// shards' servers, and a Backend made with NewFromClient after the Ring
// marked the third shard down (its server stopped).
func ringShardDownBeforeBackend(t *testing.T) (*goredis.Ring, []*testserver.Process, *Backend) {
	t.Helper()
	ring, ps := ringForListing(t)
	ps[2].Stop(t)
	waitRingDown(t, ring, ps[2].Addr)
	b, err := NewFromClient(ring, WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return ring, ps, b
}
