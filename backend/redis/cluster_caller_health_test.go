package redis

import (
	"context"
	"errors"
	"fmt"
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
