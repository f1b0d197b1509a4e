//go:build unix

package redis

import (
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// TestConformanceRing runs the conformance suite on a Backend that NewRing
// makes on two shards.
func TestConformanceRing(t *testing.T) {
	t.Parallel()
	a, b := testserver.Redis(t), testserver.Redis(t)
	timeout, err := time.ParseDuration(loadedTimeout)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		be, err := NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": a.Addr, "b": b.Addr}},
			WithMaxValueLen(1<<20), WithTimeout(timeout))
		if err != nil {
			t.Fatal(err)
		}
		return be
	}, conformanceOptions(nil))
}

// TestNewRingErrors: NewRing refuses options it cannot make a Ring of,
// naming what is wrong.
func TestNewRingErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  *goredis.RingOptions
		want string
	}{
		{"nil", nil, "nil options"},
		{"no shards", &goredis.RingOptions{}, "no shards"},
		{"empty address", &goredis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": ""}}, `shard "b" has no address`},
		{"one address twice", &goredis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": "127.0.0.1:1"}},
			`shards "a" and "b" are both at 127.0.0.1:1`},
	} {
		b, err := NewRing(c.opt)
		if err == nil {
			b.Close()
			t.Errorf("NewRing(%s): no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRing(%s): %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestNewRingHeartbeatBounded: NewRing's heartbeat PINGs each shard within
// the timeout, so that the Ring marks a shard that hangs down within a
// few heartbeats (three failed PINGs). go-redis's own heartbeat PINGs
// without a deadline, bounded by ReadTimeout (3s by default): the Ring
// kept the hung shard's keys on it for 9s and more, and checked the other
// shards only every 3s.
func TestNewRingHeartbeatBounded(t *testing.T) {
	t.Parallel()
	a, bsrv := testserver.Redis(t), testserver.Redis(t)
	p := hostile.Start(t, bsrv.Addr, hostile.RESPFramer)
	b, err := NewRing(&goredis.RingOptions{
		Addrs:              map[string]string{"a": a.Addr, "b": p.Addr()},
		HeartbeatFrequency: 20 * time.Millisecond,
	}, WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ring := b.Client().(*goredis.Ring)
	waitRingShard(t, ring, p.Addr(), true)
	p.Hold() // the shard hangs: nothing reaches it
	t.Cleanup(p.Heal)
	start := time.Now()
	waitRingShard(t, ring, p.Addr(), false) // fails after 5s
	t.Logf("the hung shard marked down after %v", time.Since(start).Round(time.Millisecond))
}
