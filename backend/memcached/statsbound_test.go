package memcached_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/hostile"
)

// A "stats" reply is read to its END into a map: a broken or hostile
// server (or proxy) that sends STAT lines without end, within the
// command's timeout, made the map, and the caller's memory, grow with
// them (the admin page asks for the statistics on behalf of anyone who
// loads it; memdict stats --all printed them all). A reply of more lines
// than any memcached sends is an error of its server.
func TestStatsReplyBounded(t *testing.T) {
	_, p, c := behindProxy(t)
	const junk = 100_000
	p.SetMutator(hostile.MutatorFunc(func(hc *hostile.Conn, reply []byte) error {
		if bytes.HasPrefix(reply, []byte("STAT ")) {
			var b bytes.Buffer
			b.Write(bytes.TrimSuffix(reply, []byte("END\r\n")))
			for i := range junk {
				fmt.Fprintf(&b, "STAT junk_%d 1\r\n", i)
			}
			b.WriteString("END\r\n")
			reply = b.Bytes()
		}
		return hc.Write(reply)
	}))
	nodes, err := c.ServerStats(context.Background())
	if err != nil || len(nodes) != 1 {
		t.Fatalf("ServerStats: %v, %d nodes", err, len(nodes))
	}
	if n := nodes[0]; n.Err == nil || !strings.Contains(n.Err.Error(), "stats reply of more than") || len(n.Stats) > 10 {
		t.Errorf("a stats reply of %d lines: %d statistics kept, error %v; want an error saying the reply is too long", junk, len(n.Stats), n.Err)
	}
}
