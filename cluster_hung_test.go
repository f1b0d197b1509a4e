//go:build unix

package memdict_test

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

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/testserver"
)

// hungTimeout is the backends' timeout in the tests of a hung server;
// hungCallerWait the deadline of a caller's context shorter than it.
const (
	hungTimeout    = 300 * time.Millisecond
	hungCallerWait = 150 * time.Millisecond
)

// TestGetMultiClusterMasterHung: a Dict's GetMulti over a Redis Cluster
// one master of which hangs (SIGSTOP: it accepts, never answers) returns
// the values of the other masters and a *memdict.MultiError naming each
// key of the hung master, as GetMulti documents: the partial result of the
// backend is passed through, not lost. So it does when the Dict reads its
// namespace generation in the same call (which gives the backend's
// GetMulti the call's deadline), and when the caller's context ends before
// the backend's timeout.
func TestGetMultiClusterMasterHung(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3, "--cluster-require-full-coverage", "no")
	be := openURL(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=%v&failure_limit=0",
		c.Addrs[0], c.Addrs[1], hungTimeout))
	setup := openURL(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=10s&failure_limit=0", c.Addrs[0], c.Addrs[1]))
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
	// Hang a master that does not hold the generation key.
	victim := c.Nodes[2]
	if masterOf(keyspace.MetaKey("", "hung", "gen", 250)) == victim.Addr {
		victim = c.Nodes[1]
	}
	testGetMultiHung(t, be, setup, victim, masterOf)
}

// TestGetMultiMemcachedServerHung is TestGetMultiClusterMasterHung over
// three memcached servers, one of which hangs, read through the
// backend's GetMultiOrdered (backend.OrderedGetter).
func TestGetMultiMemcachedServerHung(t *testing.T) {
	t.Parallel()
	var procs []*testserver.Process
	var addrs []string
	for range 3 {
		p := testserver.Memcached(t)
		procs = append(procs, p)
		addrs = append(addrs, p.Addr)
	}
	be := openURL(t, fmt.Sprintf("memcached://%s?timeout=%v&failure_limit=0", strings.Join(addrs, ","), hungTimeout))
	setup := openURL(t, fmt.Sprintf("memcached://%s?timeout=10s&failure_limit=0", strings.Join(addrs, ",")))
	masterOf := func(bk string) string { return backend.ServerFor(be, bk) }
	victim := procs[2]
	if masterOf(keyspace.MetaKey("", "hung", "gen", 250)) == victim.Addr {
		victim = procs[1]
	}
	testGetMultiHung(t, be, setup, victim, masterOf)
}

// testGetMultiHung stores 40 keys through a Dict on setup (a backend of
// the same servers as be with a long timeout), reads them through Dicts
// on be, hangs the server victim (which must not hold the Dicts'
// generation key; serverOf names the server of a backend key) and checks
// each Dict's GetMulti: without a generation refresh, with one in every
// call, with one and a caller's deadline shorter than the timeout.
//
// The setup's writes go through setup, not be, whose timeout is the
// hung-server tests' 300ms: on a loaded machine (load 12-16 on 2 cores,
// where a goroutine woken by a timer may run hundreds of milliseconds
// late) a Put could not read the namespace generation from a healthy
// server within it and failed the test before anything was frozen.
func testGetMultiHung(t *testing.T, be, setup backend.Backend, victim *testserver.Process, serverOf func(string) string) {
	t.Helper()
	type run struct {
		name   string
		d      *memdict.Dict[string]
		caller time.Duration // the caller's deadline; 0: context.Background()
	}
	runs := []run{
		{name: "no refresh", d: newDict[string](t, be, "hung", memdict.WithGenerationRefresh(-1))},
		// Every call reads the generation first, so that GetMulti
		// carries the call's deadline.
		{name: "refresh", d: newDict[string](t, be, "hung", memdict.WithGenerationRefresh(time.Nanosecond))},
		{name: "refresh, caller's deadline", d: newDict[string](t, be, "hung", memdict.WithGenerationRefresh(time.Nanosecond)),
			caller: hungCallerWait},
	}
	keys := numberedKeys(40)
	d := runs[0].d
	sd := newDict[string](t, setup, "hung")
	for _, k := range keys {
		if err := sd.Put(k, "v"+k); err != nil {
			t.Fatal(err)
		}
	}
	onVictim := map[string]bool{}
	for _, k := range keys {
		onVictim[k] = serverOf(d.BackendKey(k)) == victim.Addr
	}
	// The hung server's keys first: a backend that reads its servers in
	// the order of the keys then meets it first.
	slices.SortStableFunc(keys, func(a, b string) int {
		switch {
		case onVictim[a] == onVictim[b]:
			return 0
		case onVictim[a]:
			return -1
		}
		return 1
	})
	// Each Dict reads the generation and every server once before the
	// hang, as it did when it stored the keys itself; a read the timeout
	// ends under load is tried again (failure_limit=0: nothing is marked
	// down).
	warm := time.Now().Add(10 * time.Second)
	for _, r := range runs {
		for {
			_, err := r.d.GetMulti(context.Background(), keys)
			if err == nil {
				break
			}
			if time.Now().After(warm) {
				t.Fatalf("%s: GetMulti before the server hangs: %v", r.name, err)
			}
		}
	}
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Signal(syscall.SIGCONT) })
	time.Sleep(10 * time.Millisecond) // the refreshing Dicts' views go stale

	for i, r := range runs {
		if i > 0 {
			// The read the last run abandoned on the hung server (at the
			// Dict call's deadline, a hair before the backend's own) times
			// out, and its connection is closed, failing what is queued
			// behind it, before this run starts: else this run's read,
			// queued behind it, fails at once as unavailable.
			time.Sleep(hungTimeout)
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		// The keys of the hung server fail as unavailable, or with the
		// caller's deadline when it ends first.
		want, bound := memdict.ErrUnavailable, hungTimeout
		if r.caller > 0 {
			ctx, cancel = context.WithTimeout(ctx, r.caller)
			want, bound = context.DeadlineExceeded, r.caller
		}
		start := time.Now()
		got, err := r.d.GetMulti(ctx, keys)
		elapsed := time.Since(start)
		cancel()
		var me *memdict.MultiError
		if !errors.As(err, &me) {
			t.Fatalf("%s: GetMulti with a server hung: %v after %v, want a *memdict.MultiError", r.name, err, elapsed)
		}
		for _, k := range keys {
			kerr := me.Err(k)
			switch {
			case onVictim[k] && !errors.Is(kerr, want):
				t.Errorf("%s: key %s of the hung server: %q, %v; want it named (%v)", r.name, k, got[k], kerr, want)
			case !onVictim[k] && (kerr != nil || got[k] != "v"+k):
				t.Errorf("%s: key %s of a live server: %q, %v; want its value", r.name, k, got[k], kerr)
			}
		}
		if len(got) == 0 || len(me.Failed) == 0 || len(got)+len(me.Failed) != len(keys) {
			t.Errorf("%s: %d values, %d keys named, of %d", r.name, len(got), len(me.Failed), len(keys))
		}
		if elapsed > bound+500*time.Millisecond {
			t.Errorf("%s: GetMulti took %v, bound %v", r.name, elapsed, bound)
		}
		t.Logf("%s: %v: %d values, %d keys named", r.name, elapsed.Round(time.Millisecond), len(got), len(me.Failed))
	}
}
