//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// hugeBulk is the length the hostile shard of the tests below announces
// for a value: 64 MiB, far above their max value length.
const hugeBulk = 64 << 20

// ringShardUp reports whether the Ring's heartbeat has the shard at addr
// up and in its hash: some key "k:N" goes to it.
func ringShardUp(ring *goredis.Ring, addr string) bool {
	for i := range 200 {
		c, err := ring.GetShardClientForKey(fmt.Sprintf("k:%d", i))
		if err == nil && c.Options().Addr == addr {
			return true
		}
	}
	return false
}

// waitRingShard waits (5s at most) until the Ring has the shard at addr up
// (or down).
func waitRingShard(t *testing.T, ring *goredis.Ring, addr string, up bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); ringShardUp(ring, addr) != up; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the Ring's heartbeat did not mark shard %s up=%v within 5s", addr, up)
		}
	}
}

// downShard starts a Redis server for a Ring's shard "a" and one behind a
// hostile proxy for shard "b", whose connections are reset: shard b is
// down until comeBackHostile.
func downShard(t *testing.T) (a *testserver.Process, p *hostile.Proxy) {
	a, bsrv := testserver.Redis(t), testserver.Redis(t)
	p = hostile.Start(t, bsrv.Addr, hostile.RESPFramer)
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, _ []byte) error {
		c.Reset() // down: no connection gets a reply
		return nil
	}))
	return a, p
}

// comeBackHostile makes the shard behind p come back: PING and the
// handshake are answered, a GET (a Ring's Gets are MGETs) announces a
// hugeBulk value.
func comeBackHostile(p *hostile.Proxy) {
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		switch {
		case len(reply) > 0 && (reply[0] == '$' || reply[0] == '_'):
			return c.Write(fmt.Appendf(nil, "$%d\r\n", hugeBulk))
		case len(reply) > 0 && reply[0] == '*':
			return c.Write(fmt.Appendf(nil, "*1\r\n$%d\r\n", hugeBulk))
		}
		return c.Write(reply)
	}))
}

// measuredGet gets key and returns how long it took, how many bytes it
// allocated and the error.
func measuredGet(b *Backend, key string) (took time.Duration, alloc uint64, err error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = b.Get(context.Background(), key)
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return took, after.TotalAlloc - before.TotalAlloc, err
}

// TestNewRingShardDownComesBackHostile: a shard of a Ring made by NewRing
// that is down when the Backend is made (its connections reset), marked
// down by the Ring's heartbeat, and comes back hostile (a GET's reply
// announces a 64 MiB value, over the 1 MiB max value length) fails a Get
// with a protocol error at once, allocating little. On a Ring given to
// NewFromClient with that shard down, the shard came back unguarded: the
// Get allocated the 64 MiB (67 MiB in all) and waited out its 2s timeout
// (go-redis offers no way to reach a down shard's client, and its
// heartbeat dials it unguarded).
func TestNewRingShardDownComesBackHostile(t *testing.T) {
	a, p := downShard(t)
	b, err := NewRing(&goredis.RingOptions{
		Addrs:              map[string]string{"a": a.Addr, "b": p.Addr()},
		HeartbeatFrequency: 20 * time.Millisecond,
	}, WithTimeout(2*time.Second), WithFailureLimit(0), WithMaxValueLen(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ring := b.Client().(*goredis.Ring)
	waitRingShard(t, ring, p.Addr(), false)
	comeBackHostile(p)
	waitRingShard(t, ring, p.Addr(), true)
	key := keyOff(t, b, "k:", a.Addr)

	took, alloc, err := measuredGet(b, key)
	t.Logf("get of %s on the shard back hostile: %v after %v, %d KiB allocated", key, err, took.Round(time.Millisecond), alloc>>10)
	if !errors.Is(err, ErrProtocol) || took > time.Second {
		t.Errorf("get on a shard back from down announcing a %d MiB value: %v after %v, want a protocol error at once",
			hugeBulk>>20, err, took)
	}
	if alloc > 16<<20 {
		t.Errorf("get on a shard back from down announcing a %d MiB value allocated %d MiB", hugeBulk>>20, alloc>>20)
	}
}

// TestFromClientRingShardDownGuardedWhenSeen: on a Ring given to
// NewFromClient while a shard was down, the shard is guarded once the
// Backend sees it up: when it comes back hostile (a GET announcing 64
// MiB), at most one Get of 4 (the one that takes the connection the
// Ring's heartbeat dialed before, unguarded) allocates the value and waits
// out the timeout; the others fail with a protocol error, allocating
// little. The Backend hooked the guard only on the shards up when it was
// made: every Get on that shard allocated 64 MiB and waited out the
// timeout (4 of 4).
func TestFromClientRingShardDownGuardedWhenSeen(t *testing.T) {
	a, p := downShard(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": a.Addr, "b": p.Addr()},
		HeartbeatFrequency:    20 * time.Millisecond,
		ContextTimeoutEnabled: true,
		DialTimeout:           300 * time.Millisecond,
		PoolTimeout:           300 * time.Millisecond,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { ring.Close() })
	waitRingShard(t, ring, p.Addr(), false)
	b, err := NewFromClient(ring, WithTimeout(300*time.Millisecond), WithFailureLimit(0), WithMaxValueLen(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	comeBackHostile(p)
	waitRingShard(t, ring, p.Addr(), true)
	key := keyOff(t, b, "k:", a.Addr)

	unguarded := 0
	for i := range 4 {
		took, alloc, err := measuredGet(b, key)
		t.Logf("get %d of %s on the shard back hostile: %v after %v, %d KiB allocated", i, key, err, took.Round(time.Millisecond), alloc>>10)
		if !errors.Is(err, ErrProtocol) || alloc > 16<<20 {
			unguarded++
		}
	}
	if unguarded > 1 {
		t.Errorf("%d of 4 gets on a shard down at NewFromClient, back announcing a %d MiB value, were not refused (want 1 at most)",
			unguarded, hugeBulk>>20)
	}
}
