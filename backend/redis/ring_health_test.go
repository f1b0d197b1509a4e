//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestRingShardHungOwnHealth: on a Ring, a shard that hangs is marked down
// on its own, as a cluster's master is: its Gets are then refused at once,
// wrapping backend.ErrUnavailable and naming it, while the other shards'
// Gets are served, and its probe PINGs that shard, so that it stays down
// while it hangs. A GetMulti then names its keys at once with the other
// shards' items. The Ring had one health record for all its shards: the
// hung shard's timeouts marked the whole Ring down, every Get of every
// shard refused, and the probe PINGed a random shard, marking the Ring up
// again while the shard still hung.
func TestRingShardHungOwnHealth(t *testing.T) {
	t.Parallel()
	const retry = 100 * time.Millisecond
	b, frozen, live, addr := hungRing(t, WithFailureLimit(2), WithRetryInterval(retry))
	ctx := context.Background()
	refused := func(err error, d time.Duration) bool {
		return errors.Is(err, backend.ErrUnavailable) && strings.Contains(err.Error(), "marked down") && d < fast
	}
	end := time.Now().Add(5 * time.Second)
	calls := 0
	for {
		start := time.Now()
		_, err := b.Get(ctx, frozen[calls%len(frozen)])
		d := time.Since(start)
		calls++
		if err == nil {
			t.Fatalf("get %d of a key of the hung shard: no error", calls)
		}
		if refused(err, d) {
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("get of a key of the hung shard, refused: %v, want it named (%s)", err, addr)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the hung shard's Gets not refused at once after %d calls: %v after %v", calls, err, d)
		}
	}
	// For ten retry intervals, the other shards' keys are served and the
	// hung shard's refused at once.
	liveFailed, frozenWaited, rounds := 0, 0, 0
	var firstLive, firstFrozen error
	for end := time.Now().Add(10 * retry); time.Now().Before(end); rounds++ {
		i := rounds
		k := live[i%len(live)]
		if it, err := b.Get(ctx, k); err != nil || string(it.Value) != k {
			liveFailed++
			if firstLive == nil {
				firstLive = err
			}
		}
		start := time.Now()
		_, err := b.Get(ctx, frozen[i%len(frozen)])
		if d := time.Since(start); !refused(err, d) {
			frozenWaited++
			if firstFrozen == nil {
				firstFrozen = err
			}
		}
		time.Sleep(retry / 5)
	}
	if liveFailed > 0 || frozenWaited > 0 {
		t.Errorf("with shard %s hung and marked down: %d of %d Gets of the other shards failed (first: %v); %d of its %d Gets not refused at once (first: %v)",
			addr, liveFailed, rounds, firstLive, frozenWaited, rounds, firstFrozen)
	}
	all := append(append([]string{}, live...), frozen...)
	start := time.Now()
	m, err := b.GetMulti(ctx, all)
	d := time.Since(start)
	var me *backend.MultiError
	if !errors.As(err, &me) || len(m) != len(live) || len(me.Errors) != len(frozen) || d > fast {
		t.Fatalf("getmulti with shard %s marked down: %d items, %.300v after %v; want %d items and its %d keys named at once",
			addr, len(m), err, d, len(live), len(frozen))
	}
	for _, ke := range me.Errors {
		if !errors.Is(ke.Err, backend.ErrUnavailable) || !strings.Contains(ke.Err.Error(), addr) {
			t.Errorf("getmulti: key %s: %v, want ErrUnavailable naming %s", ke.Key, ke.Err, addr)
		}
	}
	t.Logf("marked down after %d Gets; then %d of %d Gets of the other shards failed, %d of its own waited", calls, liveFailed, rounds, frozenWaited)
}

// TestRingBatchedGetsShardHung: on a Ring, concurrent Gets of the keys of
// every shard, one of which hangs, are batched per shard: the other
// shards' Gets are answered without waiting for the hung shard, whose
// Gets fail at the timeout naming it. They were batched together, in
// go-redis's Ring pipeline, and queued behind the hung shard's Gets: the
// healthy shards' Gets waited the hung shard's whole timeout.
func TestRingBatchedGetsShardHung(t *testing.T) {
	t.Parallel()
	b, frozen, live, addr := hungRing(t, WithBatching(true, 1, 64))
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	liveFailed, liveSlow := 0, 0
	var firstLive error
	var slowest time.Duration
	frozenErrs := make([]error, len(frozen))
	gate := make(chan struct{})
	for _, k := range live {
		wg.Go(func() {
			<-gate
			start := time.Now()
			it, err := b.Get(ctx, k)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, d)
			if err != nil || string(it.Value) != k {
				liveFailed++
				if firstLive == nil {
					firstLive = err
				}
			} else if d >= hungTimeout/2 {
				liveSlow++
			}
		})
	}
	for i, k := range frozen {
		wg.Go(func() {
			<-gate
			_, frozenErrs[i] = b.Get(ctx, k)
		})
	}
	close(gate)
	wg.Wait()
	if liveFailed > 0 || liveSlow > 0 {
		t.Errorf("of %d concurrent Gets of the shards that answer, shard %s hung (timeout %v): %d failed (first: %v), %d took %v or more (slowest %v)",
			len(live), addr, hungTimeout, liveFailed, firstLive, liveSlow, hungTimeout/2, slowest.Round(time.Millisecond))
	}
	for i, err := range frozenErrs {
		if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
			t.Errorf("get %s of the hung shard: %v, want ErrUnavailable naming %s", frozen[i], err, addr)
		}
	}
}

// TestRingShardLaneRemoved: the lane of a Ring shard removed by SetAddrs
// (go-redis closes its client), marked down, is dropped and its probe
// ends, as a cluster node's that left; the shard's keys go to another
// shard's lane. When the address is added back, with a new client, its
// calls get a lane anew, up.
func TestRingShardLaneRemoved(t *testing.T) {
	t.Parallel()
	p1, p2 := testserver.Redis(t), testserver.Redis(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p1.Addr, "b": p2.Addr},
		HeartbeatFrequency:    time.Hour,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, WithTimeout(time.Second), WithFailureLimit(1), WithRetryInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	k := ""
	for i := 0; k == ""; i++ {
		c, err := ring.GetShardClientForKey(fmt.Sprintf("user:%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if c.Options().Addr == p2.Addr {
			k = fmt.Sprintf("user:%d", i)
		}
	}
	l, err := b.lane(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if l.addr != p2.Addr {
		t.Fatalf("lane of %s, on shard %s: %s's", k, p2.Addr, l.addr)
	}
	ring.SetAddrs(map[string]string{"a": p1.Addr})
	l.record(errors.New("connection reset by peer"))
	for end := time.Now().Add(5 * time.Second); ; {
		b.lanesMu.RLock()
		kept := b.lanes[p2.Addr] == l
		b.lanesMu.RUnlock()
		if !kept {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the lane of a shard removed from the Ring is still there 5 s after, probing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Set(ctx, backend.Item{Key: k, Value: []byte("v")}); err != nil {
		t.Fatalf("Set of %s once its shard is removed: %v", k, err)
	}
	if l1, err := b.lane(ctx, k); err != nil {
		t.Fatal(err)
	} else if l1.addr != p1.Addr {
		t.Fatalf("lane of %s once its shard is removed: %s's, want %s's", k, l1.addr, p1.Addr)
	}
	ring.SetAddrs(map[string]string{"a": p1.Addr, "b": p2.Addr})
	if err := b.Set(ctx, backend.Item{Key: k, Value: []byte("v2")}); err != nil {
		t.Fatalf("Set of %s once its shard is back: %v", k, err)
	}
	if it, err := b.Get(ctx, k); err != nil || string(it.Value) != "v2" {
		t.Fatalf("Get of %s once its shard is back: %q, %v", k, it.Value, err)
	}
	if l2, err := b.lane(ctx, k); err != nil {
		t.Fatal(err)
	} else if l2 == l || l2.addr != p2.Addr || l2.down.Load() {
		t.Fatalf("lane of %s once its shard is back: %s's, the old one %v, down %v; want %s's anew, up", k, l2.addr, l2 == l, l2.down.Load(), p2.Addr)
	}
}

// TestRingHungShardMultiWrite: on a Ring, SetMulti and DeleteMulti count
// for each shard's health, as on a cluster: a shard that hangs is marked
// down by them, and then its items are not sent but named at once in a
// *backend.MultiError (wrapping backend.ErrUnavailable, naming it), the
// other shards' stored (deleted). They went through the Ring's one
// pipeline, not counted nor refused: every call waited the timeout and
// failed as a whole, for good.
func TestRingHungShardMultiWrite(t *testing.T) {
	t.Parallel()
	b, frozen, live, addr := hungRing(t, WithFailureLimit(2), WithRetryInterval(time.Minute))
	ctx := context.Background()
	all := append(append([]string{}, live...), frozen...)
	items := make([]backend.Item, len(all))
	for i, k := range all {
		items[i] = backend.Item{Key: k, Value: []byte("new " + k)}
	}
	wantNamed := func(op string, err error, d time.Duration) bool {
		var me *backend.MultiError
		if !errors.As(err, &me) || d > fast {
			return false
		}
		if len(me.Errors) != len(frozen) {
			t.Fatalf("%s with shard %s marked down: %.300v; want its %d keys named", op, addr, err, len(frozen))
		}
		for _, ke := range me.Errors {
			if !errors.Is(ke.Err, backend.ErrUnavailable) || !strings.Contains(ke.Err.Error(), addr) {
				t.Errorf("%s: key %s: %v, want ErrUnavailable naming %s", op, ke.Key, ke.Err, addr)
			}
		}
		return true
	}
	calls := 0
	for {
		calls++
		start := time.Now()
		err := b.SetMulti(ctx, items)
		d := time.Since(start)
		if err == nil {
			t.Fatalf("setmulti %d with shard %s hung: no error", calls, addr)
		}
		if wantNamed("setmulti", err, d) {
			break
		}
		if calls == 8 {
			t.Fatalf("setmulti with shard %s hung, %d calls: %.300v after %v; want its keys named at once once it is marked down",
				addr, calls, err, d.Round(time.Millisecond))
		}
	}
	for _, k := range live {
		if it, err := b.Get(ctx, k); err != nil || string(it.Value) != "new "+k {
			t.Errorf("get %s after setmulti: %q, %v", k, it.Value, err)
		}
	}
	start := time.Now()
	err := b.DeleteMulti(ctx, all)
	if !wantNamed("deletemulti", err, time.Since(start)) {
		t.Fatalf("deletemulti with shard %s marked down: %.300v after %v; want its keys named at once", addr, err, time.Since(start))
	}
	for _, k := range live {
		if _, err := b.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("get %s after deletemulti: %v, want ErrNotFound", k, err)
		}
	}
	t.Logf("marked down after %d setmulti calls", calls)
}
