//go:build unix

package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/testserver"
)

// TestGetMultiClusterMasterHung: a Dict's GetMulti over a Redis Cluster
// one master of which hangs (SIGSTOP: it accepts, never answers) returns,
// within the backend's timeout, the values of the other masters and a
// *memdict.MultiError naming each key of the hung master as unavailable,
// as GetMulti documents: the partial result of the backend is passed
// through, not lost.
func TestGetMultiClusterMasterHung(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	c := testserver.RedisCluster(t, 3, "--cluster-require-full-coverage", "no")
	be := openURL(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=%v&failure_limit=0",
		c.Addrs[0], c.Addrs[1], timeout))
	// No generation refresh during the call: a refresh's read would give
	// the GetMulti the call's deadline, which ends it as a whole (see the
	// Timeouts comment in timeout.go).
	d := newDict[string](t, be, "hung", memdict.WithGenerationRefresh(-1))
	rc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs})
	defer rc.Close()
	// masterOf returns the address of the master that holds backend key bk.
	masterOf := func(bk string) string {
		t.Helper()
		m, err := rc.MasterForKey(context.Background(), bk)
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	keys := numberedKeys(40)
	for _, k := range keys {
		if err := d.Put(k, "v"+k); err != nil {
			t.Fatal(err)
		}
	}
	// Hang a master that does not hold the generation key.
	victim := c.Nodes[2]
	if masterOf(keyspace.MetaKey("", "hung", "gen", 250)) == victim.Addr {
		victim = c.Nodes[1]
	}
	onVictim := map[string]bool{}
	for _, k := range keys {
		onVictim[k] = masterOf(d.BackendKey(k)) == victim.Addr
	}
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Signal(syscall.SIGCONT) })

	start := time.Now()
	got, err := d.GetMulti(context.Background(), keys)
	elapsed := time.Since(start)
	var me *memdict.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("GetMulti with a master hung: %v after %v, want a *memdict.MultiError", err, elapsed)
	}
	for _, k := range keys {
		kerr := me.Err(k)
		switch {
		case onVictim[k] && !errors.Is(kerr, memdict.ErrUnavailable):
			t.Errorf("key %s of the hung master: %q, %v; want it named as unavailable", k, got[k], kerr)
		case !onVictim[k] && (kerr != nil || got[k] != "v"+k):
			t.Errorf("key %s of a live master: %q, %v; want its value", k, got[k], kerr)
		}
	}
	if len(got) == 0 || len(me.Failed) == 0 || len(got)+len(me.Failed) != len(keys) {
		t.Errorf("%d values, %d keys named, of %d", len(got), len(me.Failed), len(keys))
	}
	if elapsed > timeout+500*time.Millisecond {
		t.Errorf("GetMulti took %v, timeout %v", elapsed, timeout)
	}
	t.Logf("%v: %d values, %d keys named", elapsed.Round(time.Millisecond), len(got), len(me.Failed))
}
