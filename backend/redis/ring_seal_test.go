//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
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

// TestRingGetMultiCancelledShardHung: a GetMulti on a Ring (one GET per
// key in one pipeline, getMultiPipelined), one shard of which hangs, whose
// caller's context is cancelled before the timeout fails as a whole, as it
// did before cluster GetMulti learnt to keep partial results: the keys of
// the hung shard were never read, so they must not come back as misses of
// a call that succeeded. Here the pipeline ends (at the timeout, the hung
// shard's GETs failed) after bounded gave up and before GetMulti took the
// result.
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
