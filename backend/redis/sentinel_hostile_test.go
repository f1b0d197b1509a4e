package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
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
		t.Errorf("3 calls to a sentinel announcing 10M elements allocated %d MiB, want under 16", n>>20)
	}
	if err == nil || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), s.addr()) {
		t.Errorf("error %v: want a protocol error naming the sentinel %s", err, s.addr())
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
