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

// hungCluster starts a three-master cluster, opens a Backend on it with
// the 300ms timeout and opts, stores keys until at least 5 are on the
// third master and 10 on the others, and freezes the third master
// (SIGSTOP) until the test ends. It returns the Backend, the keys of the
// frozen master, the others' keys and the frozen master's address.
func hungCluster(t *testing.T, opts string) (b *Backend, frozen, live []string, addr string) {
	t.Helper()
	// Without full coverage the other masters keep serving when one is
	// seen as failing.
	c := testserver.RedisCluster(t, 3, "--cluster-require-full-coverage", "no")
	b = mustOpen(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=%v&retry_interval=%v&read_timeout=10s&write_timeout=10s%s",
		c.Addrs[0], c.Addrs[1], hungTimeout, hungRetry, opts))
	ctx := context.Background()
	victim := c.Nodes[2]
	for i := 0; len(frozen) < 5 || len(live) < 10; i++ {
		k := fmt.Sprintf("user:%d", i)
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		m, err := b.cluster.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == victim.Addr {
			frozen = append(frozen, k)
		} else {
			live = append(live, k)
		}
	}
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Signal(syscall.SIGCONT) })
	return b, frozen, live, victim.Addr
}

// TestClusterHungMasterGetMulti: a GetMulti across the masters of a
// cluster while one master hangs (accepts, never answers) and is not yet
// marked down (failure_limit=0: never) returns, at the timeout, the items
// of the other masters and a *backend.MultiError naming each key of the
// hung master (wrapping backend.ErrUnavailable and naming it), as
// backend.Backend.GetMulti promises, with context.Background() and with a
// caller's deadline longer than the timeout.
func TestClusterHungMasterGetMulti(t *testing.T) {
	t.Parallel()
	b, frozen, live, addr := hungCluster(t, "&failure_limit=0")
	all := append(append([]string{}, live...), frozen...)
	for _, withDeadline := range []bool{false, true} {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if withDeadline {
			ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		}
		start := time.Now()
		m, err := b.GetMulti(ctx, all)
		d := time.Since(start)
		cancel()
		var me *backend.MultiError
		if !errors.As(err, &me) {
			t.Fatalf("getmulti (caller deadline %v) with a master hung: %v after %v, want a *backend.MultiError", withDeadline, err, d)
		}
		named := map[string]bool{}
		for _, ke := range me.Errors {
			named[ke.Key] = true
			if !errors.Is(ke.Err, backend.ErrUnavailable) || !strings.Contains(ke.Err.Error(), addr) {
				t.Errorf("getmulti: key %s: %v, want ErrUnavailable naming %s", ke.Key, ke.Err, addr)
			}
		}
		for _, k := range frozen {
			if !named[k] {
				t.Errorf("getmulti: key %s of the hung master not named in the error", k)
			}
		}
		for _, k := range live {
			if named[k] || string(m[k].Value) != k {
				t.Errorf("getmulti: live key %s: %q, named %v", k, m[k].Value, named[k])
			}
		}
		if len(m) != len(live) {
			t.Errorf("getmulti: %d items, want the %d of the live masters", len(m), len(live))
		}
		if d > hungTimeout+noise {
			t.Errorf("getmulti took %v, timeout %v", d, hungTimeout)
		}
		t.Logf("getmulti (caller deadline %v): %v: %d found, %d named", withDeadline, d.Round(time.Millisecond), len(m), len(me.Errors))
	}
	// Only the hung master is blamed: a failure counted against a live
	// master would mark it down too, with a failure_limit.
	b.lanesMu.RLock()
	defer b.lanesMu.RUnlock()
	for a, l := range b.lanes {
		if n := l.fails.Load(); (a == addr) != (n > 0) {
			t.Errorf("master %s (hung: %v): %d failures counted", a, a == addr, n)
		}
	}
}
