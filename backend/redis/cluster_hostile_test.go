package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestClusterHugeSlotsReplyRefused: a cluster node answering CLUSTER
// SLOTS with *10000000 (and nothing more) made each call allocate 381 MiB
// before its timeout: go-redis reads the ranges into 40-byte structs
// where the guard charged 16 bytes an element, under the budget of
// command connections (the max value length and more), so that
// *33000000 would have made it 1.3 GiB. A topology command's reply now
// has clusterBudget: the call fails at once with a protocol error naming
// the node.
func TestClusterHugeSlotsReplyRefused(t *testing.T) {
	s := startFake(t, func(c *fakeConn, args []string) {
		if strings.EqualFold(args[0], "cluster") {
			c.write("*10000000\r\n")
			return
		}
		c.write("-ERR unknown command\r\n")
	})
	b := mustOpen(t, "redis://"+s.addr()+"/0?cluster=true&timeout=2s")
	refusedAtOnce(t, b, s.addr(), "node", "10M slot ranges")
}

// TestClusterBudgetOnlyForTopology: clusterBudget applies to the reply of
// a CLUSTER SLOTS sent alone, not to the replies of the commands sent on
// the same connection after it, nor with it in one write.
func TestClusterBudgetOnlyForTopology(t *testing.T) {
	const elems = clusterBudget/slotSize + 100_000 // over clusterBudget, under the command connections' budget
	big := "*" + itoa(elems) + "\r\n" + strings.Repeat(":1\r\n", elems)
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "cluster":
			c.write("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n" + bulk("127.0.0.1") + ":1\r\n")
		case "big":
			c.write(big)
		default:
			c.write("-ERR unknown command\r\n")
		}
	})
	g := newGuard(DefaultMaxValueLen)
	rc := goredis.NewClient(&goredis.Options{
		Addr:        s.addr(),
		Dialer:      g.dialer(netDialer(time.Second, nil)),
		PoolSize:    1,
		MaxRetries:  -1,
		ReadTimeout: 5 * time.Second,
	})
	defer rc.Close()
	ctx := context.Background()
	if _, err := rc.Do(ctx, "cluster", "slots").Result(); err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	if r, err := rc.Do(ctx, "big").Slice(); err != nil || len(r) != elems {
		t.Errorf("a command after CLUSTER SLOTS on the same connection: %d elements, %v; want %d", len(r), err, elems)
	}
	p := rc.Pipeline()
	slots := p.Do(ctx, "cluster", "slots")
	bigCmd := p.Do(ctx, "big")
	_, _ = p.Exec(ctx)
	if r, err := bigCmd.Slice(); err != nil || len(r) != elems || slots.Err() != nil {
		t.Errorf("a command sent with CLUSTER SLOTS: %d elements, %v (CLUSTER SLOTS: %v); want %d", len(r), err, slots.Err(), elems)
	}
}
