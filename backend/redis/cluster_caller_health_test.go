package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestClusterGetMultiCallerDeadlineNotMasterFailure: a cluster GetMulti
// whose caller's deadline (100ms) ends before a master answers, the
// master answering well within the timeout (1s: it is stopped for 250ms),
// does not count as a failure of that master: with failure_limit=1 it
// would be marked down, and the next GetMulti, with no deadline, would
// name its keys unavailable for retry_interval although it answers. The
// caller's deadline says nothing about the master, as for a Get, whose
// call is bounded by the timeout whatever the caller's deadline.
func TestClusterGetMultiCallerDeadlineNotMasterFailure(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3, "--cluster-require-full-coverage", "no")
	b := mustOpen(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=1s&retry_interval=10s&failure_limit=1",
		c.Addrs[0], c.Addrs[1]))
	ctx := context.Background()
	victim := c.Nodes[2]
	on, off := storeSplit(t, b, victim.Addr, 3, 3)
	keys := append(on, off...)
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Signal(syscall.SIGCONT) })
	resume := time.AfterFunc(250*time.Millisecond, func() { victim.Signal(syscall.SIGCONT) })
	defer resume.Stop()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := b.GetMulti(cctx, keys)
	cancel()
	var me *backend.MultiError
	if !errors.As(err, &me) || !errors.Is(me.Errors[0].Err, context.DeadlineExceeded) {
		t.Fatalf("getmulti with a 100ms deadline, a master stopped: %v; want its keys named with the deadline", err)
	}
	time.Sleep(300 * time.Millisecond) // the master is back
	m, err := b.GetMulti(ctx, keys)
	if err != nil || len(m) != len(keys) {
		t.Errorf("getmulti once the master answers again: %d of %d items, %.300v", len(m), len(keys), err)
	}
	b.lanesMu.RLock()
	defer b.lanesMu.RUnlock()
	if l := b.lanes[victim.Addr]; l != nil && (l.fails.Load() > 0 || l.down.Load()) {
		t.Errorf("master %s: %d failures counted, down %v, for the caller's deadline", victim.Addr, l.fails.Load(), l.down.Load())
	}
}

// TestCallerDeadlinesHungServerMarkedDown: a server that hangs is marked
// down by GetMulti calls whose callers' deadlines (100ms) are all shorter
// than the timeout (300ms), as plain Gets mark it down: each such call
// says nothing of the server by itself (see
// TestClusterGetMultiCallerDeadlineNotMasterFailure), but the server is
// then asked itself, within the timeout. Once it is marked down, its keys
// are named at once, wrapping backend.ErrUnavailable and naming it, on a
// cluster (a Ring) with the other masters' (shards') items. No call
// counted: it was never marked down, every call waiting its caller's
// whole deadline (and a Ring's shards had no health of their own).
func TestCallerDeadlinesHungServerMarkedDown(t *testing.T) {
	t.Parallel()
	const callerWait = 100 * time.Millisecond
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		b, frozen, live, addr := hungCluster(t, "&failure_limit=2")
		b.lanesMu.RLock()
		l := b.lanes[addr]
		b.lanesMu.RUnlock()
		all := append(append([]string{}, live...), frozen...)
		calls := markedDownBy(t, b, l, all, callerWait)
		start := time.Now()
		m, err := b.GetMulti(context.Background(), all)
		d := time.Since(start)
		var me *backend.MultiError
		if !errors.As(err, &me) || len(me.Errors) != len(frozen) || len(m) != len(live) {
			t.Fatalf("getmulti once the hung master is marked down: %d items, %.300v; want %d items and its %d keys named", len(m), err, len(live), len(frozen))
		}
		for _, ke := range me.Errors {
			if !errors.Is(ke.Err, backend.ErrUnavailable) || !strings.Contains(ke.Err.Error(), addr) {
				t.Errorf("getmulti: key %s: %v, want ErrUnavailable naming %s", ke.Key, ke.Err, addr)
			}
		}
		if d > fast {
			t.Errorf("getmulti once the hung master is marked down took %v", d)
		}
		t.Logf("marked down after %d getmulti calls with a %v deadline; then %v: %d items, %d named", calls, callerWait, d.Round(time.Millisecond), len(m), len(me.Errors))
	})
	t.Run("ring", func(t *testing.T) {
		t.Parallel()
		b, frozen, live, addr := hungRing(t, WithFailureLimit(2), WithRetryInterval(hungRetry))
		b.lanesMu.RLock()
		l := b.lanes[addr]
		b.lanesMu.RUnlock()
		if l == nil {
			t.Fatalf("no lane of its own for shard %s", addr)
		}
		all := append(append([]string{}, live...), frozen...)
		calls := markedDownBy(t, b, l, all, callerWait)
		start := time.Now()
		m, err := b.GetMulti(context.Background(), all)
		d := time.Since(start)
		var me *backend.MultiError
		if !errors.As(err, &me) || len(me.Errors) != len(frozen) || len(m) != len(live) || d > fast {
			t.Fatalf("getmulti once the hung shard is marked down: %d items, %.300v after %v; want %d items and its %d keys named at once", len(m), err, d, len(live), len(frozen))
		}
		t.Logf("marked down after %d getmulti calls with a %v deadline", calls, callerWait)
	})
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		srv := testserver.Redis(t)
		b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=%v&failure_limit=2&retry_interval=%v", srv.Addr, hungTimeout, hungRetry))
		keys := []string{"a", "b", "c"}
		for _, k := range keys {
			if err := b.Set(context.Background(), backend.Item{Key: k, Value: []byte(k)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Signal(syscall.SIGCONT) })
		calls := markedDownBy(t, b, b.lane0, keys, callerWait)
		start := time.Now()
		_, err := b.GetMulti(context.Background(), keys)
		if d := time.Since(start); !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), srv.Addr) || d > fast {
			t.Errorf("getmulti once the hung server is marked down: %v after %v; want ErrUnavailable naming %s at once", err, d, srv.Addr)
		}
		t.Logf("marked down after %d getmulti calls with a %v deadline", calls, callerWait)
	})
}

// markedDownBy calls GetMulti of keys, each call with a deadline of wait,
// until l is marked down, for at most 5s (the limit is 2 failures of a
// 300ms timeout), and returns the calls made.
func markedDownBy(t *testing.T, b *Backend, l *lane, keys []string, wait time.Duration) int {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	n := 0
	for !l.down.Load() {
		if time.Now().After(end) {
			t.Fatalf("%s not marked down after %d getmulti calls with a %v deadline (%d failures counted)", l.addr, n, wait, l.fails.Load())
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, err := b.GetMulti(ctx, keys)
		cancel()
		n++
		if err == nil {
			t.Fatalf("getmulti %d with %s hung: no error", n, l.addr)
		}
	}
	return n
}
