//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// slowErrCtx is a context whose Err, once it has ended, returns only at
// wake: it stands for a caller's goroutine descheduled between bounded
// giving up and GetMulti taking the result, so that the read, still
// running, ends in between.
type slowErrCtx struct {
	context.Context
	wake time.Time
}

func (c slowErrCtx) Err() error {
	err := c.Context.Err()
	if err != nil {
		time.Sleep(time.Until(c.wake))
	}
	return err
}

// TestRingGetMultiCancelledShardHung: a GetMulti on a Ring, one shard of
// which hangs, whose caller's context is cancelled before the timeout
// either fails as a whole or names each key of the hung shard it did not
// return: those keys were never read, so they must not come back as
// misses of a call that succeeded. Here the read ends (at the timeout, the
// hung shard's MGET failed) after bounded gave up and before GetMulti took
// the result.
func TestRingGetMultiCancelledShardHung(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p1, p2 := testserver.Redis(t), testserver.Redis(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p1.Addr, "b": p2.Addr},
		HeartbeatFrequency:    time.Hour, // the hung shard stays in the ring
		ContextTimeoutEnabled: true,      // its GETs fail at the timeout
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, WithTimeout(timeout), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	on2 := goredis.NewClient(&goredis.Options{Addr: p2.Addr})
	t.Cleanup(func() { on2.Close() })
	ctx := context.Background()
	var keys, hung []string
	for i := 0; len(hung) < 3 || len(keys)-len(hung) < 3; i++ {
		k := fmt.Sprintf("user:%d", i)
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		if n, err := on2.Exists(ctx, k).Result(); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			hung = append(hung, k)
		}
	}
	if err := p2.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p2.Signal(syscall.SIGCONT) })

	start := time.Now()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	m, err := b.GetMulti(slowErrCtx{cctx, start.Add(timeout + 300*time.Millisecond)}, keys)
	t.Logf("getmulti: %v: %d items, %v", time.Since(start).Round(time.Millisecond), len(m), err)
	var me *backend.MultiError
	if err == nil || errors.As(err, &me) {
		named := map[string]bool{}
		if me != nil {
			for _, ke := range me.Errors {
				named[ke.Key] = true
			}
		}
		for _, k := range hung {
			if _, ok := m[k]; !ok && !named[k] {
				t.Errorf("key %s of the hung shard neither found nor named: %v", k, err)
			}
		}
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("getmulti cancelled: %v, want an error wrapping context.Canceled", err)
	}
}

// hungRing starts three Redis servers, opens a Backend on a Ring of them
// with the 300ms timeout (never marked down), stores keys until at least
// 5 are on the third shard and 10 on the others, and freezes the third
// (SIGSTOP) until the test ends. It returns the Backend, the keys of the
// frozen shard, the others' keys and the frozen shard's address. opts
// are applied after those.
//
// The keys are stored through a Backend of their own on a Ring of the same
// shards with a long timeout (10s), and the returned Backend's
// Ring then PINGs every shard with no deadline but the test's, and the
// Backend makes the lane of each key's shard, so that it has a connection
// to each shard and their lanes, as it had when it stored the keys itself: on
// a loaded machine (load 12-16 on 2 cores, where a goroutine woken by a
// timer may run hundreds of milliseconds late) a write of the setup to a
// healthy shard ran out of the 300ms timeout and failed the test before
// anything was frozen.
func hungRing(t *testing.T, opts ...Option) (b *Backend, frozen, live []string, addr string) {
	t.Helper()
	p1, p2, p3 := testserver.Redis(t), testserver.Redis(t), testserver.Redis(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p1.Addr, "b": p2.Addr, "c": p3.Addr},
		HeartbeatFrequency:    time.Hour, // the hung shard stays in the ring
		ContextTimeoutEnabled: true,
		DialTimeout:           hungTimeout,
		PoolTimeout:           hungTimeout,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, append([]Option{WithTimeout(hungTimeout), WithFailureLimit(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	setupRing := goredis.NewRing(&goredis.RingOptions{
		Addrs:              map[string]string{"a": p1.Addr, "b": p2.Addr, "c": p3.Addr},
		HeartbeatFrequency: time.Hour,
	})
	setup, err := NewFromClient(setupRing, WithTimeout(10*time.Second), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; len(frozen) < 5 || len(live) < 10; i++ {
		k := fmt.Sprintf("user:%d", i)
		if err := setup.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		c, err := ring.GetShardClientForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if c.Options().Addr == p3.Addr {
			frozen = append(frozen, k)
		} else {
			live = append(live, k)
		}
	}
	setup.Close()
	setupRing.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ring.ForEachShard(pctx, func(ctx context.Context, c *goredis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		t.Fatalf("ping of the shards before one is frozen: %v", err)
	}
	for _, k := range append(append([]string{}, frozen...), live...) {
		if _, err := b.lane(ctx, k); err != nil {
			t.Fatalf("lane of %s before its shard is frozen: %v", k, err)
		}
	}
	if err := p3.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p3.Signal(syscall.SIGCONT) })
	return b, frozen, live, p3.Addr
}

// TestRingGetMultiShardHung: a GetMulti on a Ring, one shard of which
// hangs, returns the items of the shards that answered and a
// *backend.MultiError naming each key of the hung shard, as a cluster's
// does: with a caller's context that ends (a 1s deadline, a cancellation
// at 1s) before the timeout (10s there), each key's error wraps ctx's and
// names the shard, at ctx's end; with context.Background() it wraps
// backend.ErrUnavailable and names the shard, at the timeout (300ms). It
// failed as a whole, 0 items, when ctx ended ("context deadline
// exceeded"), and with context.Background() too (the hung shard's "i/o
// timeout" set on every GET of the Ring's one pipeline). A GetMulti of
// the hung shard's keys alone, of which nothing can be read, still fails
// as a whole. Each case has a Ring of its own, so that the live shards'
// answers under load never race a caller's deadline of 150ms (one in 20
// runs failed so at load 10 when they shared one).
func TestRingGetMultiShardHung(t *testing.T) {
	t.Parallel()
	const callerWait = time.Second
	long := []Option{WithTimeout(10 * time.Second)}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
		wait time.Duration
		opts []Option
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), callerWait)
		}, context.DeadlineExceeded, callerWait, long},
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			stop := time.AfterFunc(callerWait, cancel)
			return ctx, func() { stop.Stop(); cancel() }
		}, context.Canceled, callerWait, long},
		{"background", func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}, backend.ErrUnavailable, hungTimeout, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, frozen, live, addr := hungRing(t, tc.opts...)
			all := append(append([]string{}, live...), frozen...)
			ctx, cancel := tc.ctx()
			start := time.Now()
			m, err := b.GetMulti(ctx, all)
			d := time.Since(start)
			cancel()
			t.Logf("getmulti (%s): %v: %d items, %.200v", tc.name, d.Round(time.Millisecond), len(m), err)
			var me *backend.MultiError
			if !errors.As(err, &me) {
				t.Fatalf("getmulti (%s) with a shard hung: %d items, %v; want a *backend.MultiError", tc.name, len(m), err)
			}
			named := map[string]bool{}
			for _, ke := range me.Errors {
				named[ke.Key] = true
				if !errors.Is(ke.Err, tc.want) || !strings.Contains(ke.Err.Error(), addr) {
					t.Errorf("getmulti (%s): key %s: %v, want %v naming %s", tc.name, ke.Key, ke.Err, tc.want, addr)
				}
			}
			for _, k := range frozen {
				if !named[k] {
					t.Errorf("getmulti (%s): key %s of the hung shard not named in the error", tc.name, k)
				}
			}
			for _, k := range live {
				if named[k] || string(m[k].Value) != k {
					t.Errorf("getmulti (%s): live key %s: %q, named %v", tc.name, k, m[k].Value, named[k])
				}
			}
			if len(m) != len(live) || len(me.Errors) != len(frozen) {
				t.Errorf("getmulti (%s): %d items, %d named; want %d and %d", tc.name, len(m), len(me.Errors), len(live), len(frozen))
			}
			if d > tc.wait+noise {
				t.Errorf("getmulti (%s) took %v, want %v", tc.name, d, tc.wait)
			}
			if tc.name != "deadline" {
				return
			}
			ctx, cancel = context.WithTimeout(context.Background(), callerWait)
			m, err = b.GetMulti(ctx, frozen)
			cancel()
			if errors.As(err, &me) || !errors.Is(err, context.DeadlineExceeded) || len(m) != 0 {
				t.Errorf("getmulti of the hung shard's keys alone: %d items, %v; want a whole failure wrapping context.DeadlineExceeded", len(m), err)
			}
		})
	}
}

// TestRingGetMultiOtherType: a GetMulti on a Ring reads a key holding
// another Redis type (a list) as a miss, as the doc promises and as on a
// standalone server or a cluster (MGET reports it missing), with the
// other keys' items. It failed as a whole: the Ring's pipelined GET of
// that key answered WRONGTYPE.
func TestRingGetMultiOtherType(t *testing.T) {
	t.Parallel()
	p1, p2 := testserver.Redis(t), testserver.Redis(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p1.Addr, "b": p2.Addr},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	keys := []string{"list"}
	for i := range 6 {
		k := fmt.Sprintf("user:%d", i)
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := ring.RPush(ctx, "list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	m, err := b.GetMulti(ctx, keys)
	if err != nil || len(m) != len(keys)-1 {
		t.Fatalf("getmulti of 6 keys and a list on a Ring: %d items, %v; want 6 items and the list a miss", len(m), err)
	}
	if _, ok := m["list"]; ok {
		t.Errorf("getmulti: the list read as an item")
	}
}
