package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// TestCluster starts a three-master Redis Cluster and runs the conformance
// suite and the cluster-specific checks on it.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	seeds := "redis://" + c.Addrs[0] + "," + c.Addrs[2] + "?cluster=true&timeout=" + loadedTimeout

	t.Run("Conformance", func(t *testing.T) {
		backendtest.Run(t, opener(seeds+"&max_value_size=1048576"), conformanceOptions(nil))
	})
	t.Run("Smoke", func(t *testing.T) {
		smoke(t, mustOpen(t, seeds), "smoke/", time.Sleep)
	})
	t.Run("Pipelined", func(t *testing.T) {
		// Calls to each master share pipelines; each caller gets its own
		// result.
		pipelinedWrites(t, mustOpen(t, seeds))
	})
	t.Run("ForeignValues", func(t *testing.T) {
		foreignValues(t, mustOpen(t, seeds))
	})
	t.Run("Locks", func(t *testing.T) {
		// backend.Locker: the lock keys of the rounds span the masters.
		locks(t, mustOpen(t, seeds), "locks/", nil)
	})
	t.Run("Spread", func(t *testing.T) {
		// The keys of one prefix land on every master, and one multi-get
		// reads them all back across slots and masters.
		b := mustOpen(t, seeds)
		ctx := context.Background()
		var keys []string
		for i := range 300 {
			k := fmt.Sprintf("users/%d", i)
			keys = append(keys, k)
			if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
				t.Fatal(err)
			}
		}
		perMaster := map[string]int{}
		for _, a := range c.Addrs {
			rc := goredis.NewClient(&goredis.Options{Addr: a})
			var cursor uint64
			for {
				ks, next, err := rc.Scan(ctx, cursor, "users/*", 1000).Result()
				if err != nil {
					t.Fatal(err)
				}
				perMaster[a] += len(ks)
				if next == 0 {
					break
				}
				cursor = next
			}
			rc.Close()
		}
		t.Logf("keys per master: %v", perMaster)
		total := 0
		for _, a := range c.Addrs {
			if perMaster[a] == 0 {
				t.Errorf("master %s holds none of the prefix's keys: %v", a, perMaster)
			}
			total += perMaster[a]
		}
		if total != len(keys) {
			t.Errorf("%d keys on the masters, want %d", total, len(keys))
		}
		slots := map[uint16]bool{}
		for _, k := range keys {
			slots[slot(k)] = true
		}
		m, err := b.GetMulti(ctx, append(keys, "users/absent"))
		if err != nil || len(m) != len(keys) {
			t.Fatalf("getmulti over %d slots: %d items, %v", len(slots), len(m), err)
		}
		for _, k := range keys {
			if string(m[k].Value) != k {
				t.Fatalf("getmulti %q: %q", k, m[k].Value)
			}
		}
		n := 0
		for _, err := range b.Keys(ctx, "users/") {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != len(keys) {
			t.Errorf("Keys listed %d keys, want %d", n, len(keys))
		}
		st, err := b.ServerStats(ctx)
		if err != nil || len(st) != 3 {
			t.Fatalf("stats: %d nodes, %v", len(st), err)
		}
		for _, s := range st {
			if s.Err != nil || s.Stats["cluster_enabled"] != "1" {
				t.Errorf("stats of %s: cluster_enabled=%q, %v", s.Addr, s.Stats["cluster_enabled"], s.Err)
			}
		}
	})
	t.Run("Slots", func(t *testing.T) {
		// slot agrees with the server's CLUSTER KEYSLOT.
		rc := goredis.NewClient(&goredis.Options{Addr: c.Addrs[0]})
		defer rc.Close()
		for _, k := range []string{"", "a", "users/1", "{user1000}.following", "foo{}{bar}", "{}x", "x{a}{b}", "\xff\x00k"} {
			want, err := rc.ClusterKeySlot(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := slot(k); int64(got) != want {
				t.Errorf("slot(%q) = %d, server says %d", k, got, want)
			}
		}
	})
}

// A lane keeps probing its server with the client go-redis gives for its
// address now. go-redis closes the client of a node that left the
// cluster (a minute after) and makes a new one if the address comes back
// (a master failed over, then back): a lane marked down meanwhile probed
// the closed client forever, failing every call for the address's slots
// with "marked down" although the server answered.
func TestClusterLaneProbesTheCurrentClient(t *testing.T) {
	t.Parallel()
	b, l := laneOfK(t)
	ctx := context.Background()
	// The lane's client is one go-redis has since closed; the server then
	// failed a flush.
	gone := goredis.NewClient(&goredis.Options{Addr: l.addr})
	gone.Close()
	l.node.Store(gone)
	l.record(errors.New("connection reset by peer"))
	if _, err := b.Get(ctx, "k"); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Get while marked down: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Get(ctx, "k")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get 5 s after the server was marked down, its probe on the current client: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The lane of a cluster node whose client go-redis closed (a minute after
// the node left the cluster), marked down, is dropped and its probe ends:
// each address that ever left while down kept a goroutine probing a
// closed client until Close. A call for the address makes a lane anew.
func TestClusterLaneOfANodeThatLeft(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	b := mustOpen(t, "redis://"+c.Addrs[0]+"?cluster=true&timeout="+loadedTimeout+"&failure_limit=1&retry_interval=20ms")
	ctx := context.Background()
	l, err := b.lane(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	gone := goredis.NewClient(&goredis.Options{Addr: l.addr})
	gone.Close()
	l.node.Store(gone)
	l.record(errors.New("connection reset by peer"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.lanesMu.RLock()
		kept := b.lanes[l.addr] == l
		b.lanesMu.RUnlock()
		if !kept {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lane of a node whose client was closed is still there 5 s after, probing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("Set on a lane made anew: %v", err)
	}
	if l2, _ := b.lane(ctx, "k"); l2 == l || l2.down.Load() {
		t.Fatalf("the address's lane: the old one again (%v) or down", l2 == l)
	}
}

// A lane whose probe finds its client closed while a call for the address
// gave it go-redis's new client meanwhile (the node left, then came back)
// keeps probing, with the new client: the probe ended without dropping
// the lane (it is the address's lane, with another client), which stayed
// marked down, no probe running, every call for its slots refused for
// good although the server answered.
func TestClusterLaneClientReplacedWhileProbing(t *testing.T) {
	t.Parallel()
	b, l := laneOfK(t)
	ctx := context.Background()
	// The probe's PING on the closed client returns ErrClosed; before
	// the probe looks at the lane again, a call for the address gives the
	// lane go-redis's current client.
	gone := goredis.NewClient(&goredis.Options{Addr: l.addr})
	replaced := make(chan struct{})
	var once sync.Once
	gone.AddHook(replaceAfter{func() {
		if _, err := b.lane(ctx, "k"); err != nil {
			t.Error(err)
		}
		once.Do(func() { close(replaced) })
	}})
	gone.Close()
	l.node.Store(gone)
	l.record(errors.New("connection reset by peer"))
	<-replaced
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Get(ctx, "k")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get 5 s after the lane's client was replaced while its probe ran: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replaceAfter is a go-redis hook that calls after once a command of its
// client has run.
type replaceAfter struct{ after func() }

func (h replaceAfter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h replaceAfter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.after()
		return err
	}
}
func (h replaceAfter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// laneOfK starts a three-master cluster, opens a Backend on it that
// marks a server down at its first failure and probes it every 20ms,
// stores "k", and returns the Backend and the lane of k's master.
func laneOfK(t *testing.T) (*Backend, *lane) {
	t.Helper()
	c := testserver.RedisCluster(t, 3)
	b := mustOpen(t, "redis://"+c.Addrs[0]+"?cluster=true&timeout="+loadedTimeout+"&failure_limit=1&retry_interval=20ms")
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	l, err := b.lane(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	return b, l
}
