package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// hugeSentinel starts a fake sentinel that answers every SENTINEL command
// with the header of an array of 10 million elements, and nothing more:
// go-redis allocates the array (152 MiB) before reading an element.
func hugeSentinel(t *testing.T) *fakeServer {
	return startFake(t, func(c *fakeConn, args []string) {
		if strings.EqualFold(args[0], "sentinel") {
			c.write("*10000000\r\n")
			return
		}
		c.write("-ERR not a sentinel command\r\n")
	})
}

// TestSentinelHugeReplyRefused: a sentinel answering SENTINEL
// get-master-addr-by-name with *10000000 made each call allocate 152 MiB
// and wait for its timeout (the sentinels' connections had the budget of
// command connections, the max value length and more). Now a sentinel's
// connection has sentinelBudget: the call fails at once with a protocol
// error naming the sentinel, allocating next to nothing.
func TestSentinelHugeReplyRefused(t *testing.T) {
	s := hugeSentinel(t)
	b := mustOpen(t, "redis://"+s.addr()+"/0?sentinel_master=m&timeout=2s")
	refusedAtOnce(t, b, s.addr(), "sentinel", "10M elements")
}

// refusedAtOnce makes three Gets through b (its calls time out after 2s),
// whose server at addr, a what, answers the header of an aggregate of
// announced elements and nothing more, and fails t unless they fail at
// once with a protocol error naming addr, having allocated under 16 MiB
// in all.
func refusedAtOnce(t *testing.T, b *Backend, addr, what, announced string) {
	t.Helper()
	var err error
	var took time.Duration
	n := allocated(func() {
		for range 3 {
			start := time.Now()
			_, err = b.Get(context.Background(), "k")
			took = max(took, time.Since(start))
		}
	})
	t.Logf("3 calls: %v, longest %v, %d KiB allocated", err, took.Round(time.Millisecond), n>>10)
	if n > 16<<20 {
		t.Errorf("3 calls to a %s announcing %s allocated %d MiB, want under 16", what, announced, n>>20)
	}
	if err == nil || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %v: want a protocol error naming the %s %s", err, what, addr)
	}
	if took > time.Second {
		t.Errorf("a call took %v: the reply is refused when its header arrives, want well under the 2s timeout", took)
	}
}

// TestSentinelCommandBudget: a connection that sent a SENTINEL command
// gets sentinelBudget even when its address is not one of the configured
// sentinels' (go-redis asks the sentinels it discovers, too).
func TestSentinelCommandBudget(t *testing.T) {
	s := hugeSentinel(t)
	g := newGuard(DefaultMaxValueLen)
	c := goredis.NewSentinelClient(&goredis.Options{
		Addr:        s.addr(),
		Dialer:      g.dialer(netDialer(time.Second, nil)),
		MaxRetries:  -1,
		ReadTimeout: 2 * time.Second,
	})
	defer c.Close()
	var err error
	n := allocated(func() {
		_, err = c.GetMasterAddrByName(context.Background(), "m").Result()
	})
	if n > 16<<20 || !errors.Is(err, ErrProtocol) {
		t.Errorf("SENTINEL get-master-addr-by-name answered *10000000: %v, %d MiB allocated; want a protocol error, under 16 MiB", err, n>>20)
	}
}

// hungListener returns the address of a listener that accepts
// connections and never answers (a hung host's sentinel).
func hungListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSentinelHungFirst: with a sentinel that never answers first in the
// list, the Backend's own questions to the sentinels (the near cache's
// tracking, the probe of a master marked down) went to it alone until
// their timeout, and failed though the others answered: the near cache
// never served (not within 10 s). They now ask every sentinel at once.
func TestSentinelHungFirst(t *testing.T) {
	s := testserver.RedisSentinel(t, "hungfirst", 0, 2, nil, nil)
	b := mustOpen(t, "redis://"+hungListener(t)+","+strings.Join(s.SentinelAddrs, ",")+
		"/0?sentinel_master="+s.Name+"&timeout=500ms")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	start := time.Now()
	addr, err := b.sentinel.masterAddr(ctx)
	cancel()
	if err != nil || addr != s.Master.Addr {
		t.Errorf("masterAddr with a hung sentinel first = %q, %v after %v; want %s", addr, err, time.Since(start), s.Master.Addr)
	}
	d, err := memdict.New[int](b, "hf", memdict.WithNearCache(memdict.NearCache{}))
	if err != nil {
		t.Fatal(err)
	}
	// go-redis's first dial of the master may fail: before it, its
	// failover client asks every sentinel at once but waits for all of
	// them, the hung one until the call's timeout.
	for i := 0; ; i++ {
		if err = d.Store(context.Background(), "k", 1); err == nil || i == 3 {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		hits := d.Stats().NearCache.Hits
		v, ok, err := d.Lookup(context.Background(), "k")
		if err == nil && ok && v == 1 && d.Stats().NearCache.Hits > hits {
			t.Logf("near cache serving %v after the store", time.Since(deadline.Add(-5*time.Second)).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("near cache not serving 5s after the store (%d, %v, %v): tracking found no master", v, ok, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSentinelBadMasterAddress: a sentinel naming the master at an
// address that is not one (a port 0 or 99999, a host with a space, a
// port that is a name) fails the call at once with an error that names
// the master and the address the sentinels gave; before, it read "dial
// tcp: address 99999: invalid port" or "dial tcp: lookup tcp/x: unknown
// port", naming neither.
func TestSentinelBadMasterAddress(t *testing.T) {
	for _, hp := range [][2]string{{"127.0.0.1", "99999"}, {"127.0.0.1", "0"}, {"not a host", "x"}} {
		s := startFake(t, func(c *fakeConn, args []string) {
			if strings.EqualFold(args[0], "sentinel") && len(args) > 1 && strings.EqualFold(args[1], "get-master-addr-by-name") {
				c.write("*2\r\n" + bulk(hp[0]) + bulk(hp[1]))
				return
			}
			c.write("-ERR unknown command\r\n")
		})
		b := mustOpen(t, "redis://"+s.addr()+"/0?sentinel_master=bad&timeout=500ms")
		start := time.Now()
		_, err := b.Get(context.Background(), "k")
		took := time.Since(start)
		addr := net.JoinHostPort(hp[0], hp[1])
		t.Logf("%s: %v after %v", addr, err, took.Round(time.Millisecond))
		if err == nil || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), `master "bad"`) || !strings.Contains(err.Error(), strconv.Quote(addr)) {
			t.Errorf("sentinel names the master at %q: %v; want ErrUnavailable naming master \"bad\" and the address", addr, err)
		}
		if took > 400*time.Millisecond {
			t.Errorf("sentinel names the master at %q: the call took %v, want it to fail at once", addr, took)
		}
	}
}

// TestSentinelHungCancelled: with every sentinel hung, a question to them
// whose context was cancelled (not timed out) went on until go-redis's
// read timeout (5 s), as go-redis stops a read only at its deadline, so
// that Closing a Backend whose near cache was asking waited for the
// tracker's question to time out (2.4 s). masterAddr now returns when its
// context ends, with the context's error; Close, at once.
func TestSentinelHungCancelled(t *testing.T) {
	b := mustOpen(t, "redis://"+hungListener(t)+","+hungListener(t)+"/0?sentinel_master=m&timeout=300ms")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := b.sentinel.masterAddr(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) || took > 2*time.Second {
		t.Errorf("masterAddr of hung sentinels cancelled after 100ms: %v after %v; want context.Canceled at once", err, took)
	}

	d, err := memdict.New[int](b, "hc", memdict.WithNearCache(memdict.NearCache{}))
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = d.Lookup(context.Background(), "k") // the tracker asks the sentinels
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	b.Close()
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("Close while the near cache's tracker asked hung sentinels took %v; want it at once, not at the question's timeout (%v)", took, trackTimeout)
	}
}
