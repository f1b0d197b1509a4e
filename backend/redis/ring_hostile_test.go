package redis

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// TestRingHugeReplyRefused: a Backend on a Ring (NewFromClient) whose
// shard answers GET (or MGET) with a bulk announcing 1 GiB fails the call with a
// protocol error at once, allocating little, as New's Backend does. The
// Ring's shards were not guarded: go-redis allocated what the reply
// announced (2 GiB in all for one Get, which waited out its 2 s timeout),
// and a reply announcing more ends the process.
func TestRingHugeReplyRefused(t *testing.T) {
	srv := testserver.Redis(t)
	p := hostile.Start(t, srv.Addr, hostile.RESPFramer)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p.Addr()},
		HeartbeatFrequency:    time.Hour, // no heartbeat in the test
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, WithTimeout(2*time.Second), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		switch {
		case len(reply) > 0 && reply[0] == '$': // a GET's
			return c.Write([]byte("$1073741824\r\n"))
		case len(reply) > 0 && reply[0] == '*': // an MGET's (a Ring's GetMulti)
			return c.Write([]byte("*2\r\n$1073741824\r\n"))
		}
		return c.Write(reply)
	}))
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := b.Get(ctx, "a"); return err }},
		{"GetMulti", func() error { _, err := b.GetMulti(ctx, []string{"a", "b"}); return err }},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
		if !errors.Is(err, ErrProtocol) || took > time.Second {
			t.Errorf("%s on a Ring shard announcing a 1 GiB value: %v after %v, want a protocol error at once", c.name, err, took)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Errorf("%s on a Ring shard announcing a 1 GiB value allocated %d MiB", c.name, n>>20)
		}
	}
}

// TestRingNoResurrectedWrite: on a Backend on a Ring (NewFromClient), a
// Set given up on at its timeout while the network held it (the hostile
// proxy's Hold, a partition) is not applied when the partition heals, as
// on New's Backend (TestNoResurrectedWrite). The Ring's connections were
// closed with a FIN: the held write reached the server after the heal,
// over the value acknowledged before.
func TestRingNoResurrectedWrite(t *testing.T) {
	srv := testserver.Redis(t)
	p := hostile.Start(t, srv.Addr, hostile.RESPFramer)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": p.Addr()},
		HeartbeatFrequency:    time.Hour, // no heartbeat in the test
		ContextTimeoutEnabled: true,
		DialTimeout:           300 * time.Millisecond,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { ring.Close() })
	b, err := NewFromClient(ring, WithTimeout(300*time.Millisecond), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	rc := rawClient(t, srv.Addr)
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("acknowledged")}); err != nil {
		t.Fatal(err)
	}
	p.Hold()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("given up")}); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("set during the partition: %v", err)
	}
	// The proxy ends the server side of a connection the client reset:
	// wait (a while at most) until only the test's own client is left, so
	// that the heal does not race the proxy's reading of the reset.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && connectedClients(t, rc) > 1; {
		time.Sleep(10 * time.Millisecond)
	}
	p.Heal()
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		s, err := rc.Get(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := decode("k", s)
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != "acknowledged" {
			t.Fatalf("k = %q after the heal: a write given up on was applied", v)
		}
	}
}
