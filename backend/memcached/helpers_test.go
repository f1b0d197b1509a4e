package memcached_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// testTimeout is the driver timeout of tests against real servers where
// the timeout itself is not what is tested: long enough that a loaded
// 2-core machine never hits it.
const testTimeout = 5 * time.Second

// rawCommand sends cmd to a memcached and reads until a line equal to
// end (with its CRLF).
func rawCommand(t *testing.T, addr, cmd, end string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			t.Fatalf("%q: %v after %q", cmd, err, b.String())
		}
		if strings.TrimRight(line, "\r\n") == strings.TrimRight(end, "\r\n") {
			return b.String()
		}
	}
}

// setValue stores value under key with ttl through c, failing t if it
// cannot.
func setValue(t *testing.T, c *memcached.Client, key, value string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(context.Background(), backend.Item{Key: key, Value: []byte(value), TTL: ttl}); err != nil {
		t.Fatalf("Set %q: %v", key, err)
	}
}

// wantValue fails t unless c's Get of key returns want; what names the
// read in the failure.
func wantValue(t *testing.T, c *memcached.Client, key, want, what string) {
	t.Helper()
	if it, err := c.Get(context.Background(), key); err != nil || string(it.Value) != want {
		t.Fatalf("%s = %q, %v; want %q", what, it.Value, err, want)
	}
}

// serverClock returns memcached's clock, the "time" of its stats: whole
// seconds, ticking once a second. An item given a TTL of one second (a
// sub-second TTL rounds up to it) ends at the clock's next tick, which may
// come at once; a test that checks such an item right away reads the
// clock around the check, and checks again with a new item if it ticked.
func serverClock(t *testing.T, addr string) int64 {
	t.Helper()
	return serverStat(t, addr, "time")
}

// serverStat returns the number that memcached's stats give for name.
func serverStat(t *testing.T, addr, name string) int64 {
	t.Helper()
	out := rawCommand(t, addr, "stats\r\n", "END\r\n")
	for _, line := range strings.Split(out, "\n") {
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "STAT "+name+" %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no %s in stats:\n%s", name, out)
	return 0
}
