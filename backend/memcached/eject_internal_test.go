package memcached

import (
	"fmt"
	"testing"
)

// TestEjectMovesOnlyItsKeys: the ring without one of four servers keeps
// every other server's keys where they were and spreads the ejected
// server's keys over the three others; putting it back restores the
// placement exactly.
func TestEjectMovesOnlyItsKeys(t *testing.T) {
	nodes := make([]*node, 4)
	for i := range nodes {
		nodes[i] = &node{addr: fmt.Sprintf("mc%d.example:11211", i), name: fmt.Sprintf("mc%d.example", i)}
	}
	full := newRing(nodes, 0, hashMD5)
	without := newRing([]*node{nodes[0], nodes[2], nodes[3]}, 1, hashMD5)
	back := newRing(nodes, 0, hashMD5)
	moved := map[*node]int{}
	const n = 20000
	for i := range n {
		k := fmt.Sprintf("memdict/key/%d", i)
		home := full.node(k)
		now := without.node(k)
		if home != nodes[1] && now != home {
			t.Fatalf("key %q of %s moved to %s when %s was ejected", k, home.addr, now.addr, nodes[1].addr)
		}
		if home == nodes[1] {
			moved[now]++
		}
		if back.node(k) != home {
			t.Fatalf("key %q not back on %s", k, home.addr)
		}
	}
	t.Logf("keys of the ejected server now on: %v", moved)
	if len(moved) != 3 {
		t.Errorf("the ejected server's keys went to %d servers, want 3", len(moved))
	}
	for nd, c := range moved {
		if c < n/4/3/3 {
			t.Errorf("%s took only %d of the ejected server's keys", nd.addr, c)
		}
	}
}
