// Package stripe provides a counter for hot paths. A plain atomic counter
// that goroutines on every CPU add to costs a cache-line transfer per
// addition once the CPUs contend for it; a stripe.Counter spreads the
// additions over several cache lines, so that two CPUs rarely write the
// same one, at the price of a Load that sums them.
package stripe

import (
	"math/rand/v2"
	"sync/atomic"
)

// shards is the number of cache lines a Counter spreads over.
const shards = 8

// Counter is a striped int64 counter; its zero value is 0. An addition is
// made with Add, which returns a Ticket, and undone with Done on the same
// Ticket: each addition and its undoing touch one shard, so that Load,
// which sums the shards one by one, never sees an undoing without its
// addition.
type Counter struct {
	s [shards]struct {
		n atomic.Int64
		_ [56]byte // one cache line each
	}
}

// Ticket names the shard an addition went to.
type Ticket uint8

// Add adds d to c, on a shard picked at random, and returns the Ticket to
// undo it with.
func (c *Counter) Add(d int64) Ticket {
	t := Ticket(rand.Uint32() % shards)
	c.s[t].n.Add(d)
	return t
}

// Done subtracts d from the shard t names: it undoes Add(d).
func (c *Counter) Done(t Ticket, d int64) { c.s[t%shards].n.Add(-d) }

// Load returns the sum of c's shards. Additions made before Load is called
// and not undone are counted; one made while it runs may or may not be.
func (c *Counter) Load() int64 {
	var n int64
	for i := range c.s {
		n += c.s[i].n.Load()
	}
	return n
}
