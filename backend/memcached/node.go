package memcached

import (
	"fmt"
	"sync/atomic"
	"time"
)

// node is one server: its health, what the handshake learnt about it, and
// the engine its calls go through (the pipelined meta-protocol pool, or
// gomemcache's text protocol once the server turned out to have no meta
// commands).
//
// downUntil is 0 while the server is up. When limit consecutive calls fail
// it is set to now+interval (Unix nanoseconds): until then admit refuses
// calls. The first call admitted after that moment is a probe: admit moves
// downUntil one interval further first, so that the others keep failing
// fast while the probe runs; the probe's success resets the node, its
// failure leaves it down.
//
// With auto-eject (eject.go) a server marked down is also taken out of the
// ring: ejected is set while it is out, watching while a goroutine
// watches it, and returned is when it was last put back. onDown, set by
// the Client when auto-eject is on, is called after each failure that
// leaves the server marked down. With discovery (resolve.go) dialTo holds
// the addresses its name resolved to.
type node struct {
	addr      string        // "host:port" as configured: its name in errors and stats
	name      string        // its name on the ketama ring (ketamaName)
	limit     int           // failures that mark it down; 0: never
	interval  time.Duration // how long it stays down
	fails     atomic.Int64
	downUntil atomic.Int64

	onDown   func(*node)
	ejected  atomic.Bool
	watching atomic.Bool
	returned atomic.Int64 // Unix nanoseconds; 0: never ejected
	dialTo   atomic.Pointer[[]string]

	pool *pool                      // meta protocol
	text atomic.Pointer[textEngine] // set once the server is known to be text-only

	itemSizeMax atomic.Int64 // the server's item_size_max; 0: not known yet
	noCAS       atomic.Bool  // the server runs with -C (no CAS field in items)
	meta        atomic.Bool  // a handshake found meta commands: new connections skip its round trip
}

// setInfo records what a handshake (or a connection's hello) learnt from
// a server that speaks the meta protocol.
func (n *node) setInfo(info serverInfo) {
	n.meta.Store(true)
	if info.itemSizeMax > 0 {
		n.itemSizeMax.Store(info.itemSizeMax)
	}
	n.noCAS.Store(!info.casEnabled)
}

// admit returns nil if a call may go to the server, or an error saying
// until when it is marked down.
func (n *node) admit() error {
	d := n.downUntil.Load()
	if d == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if now < d {
		return fmt.Errorf("server marked down after %d failures in a row, next try in %v",
			n.limit, time.Duration(d-now).Round(time.Millisecond))
	}
	// The interval is over: let this call probe, keep the others out.
	if n.downUntil.CompareAndSwap(d, now+int64(n.interval)) {
		return nil
	}
	return fmt.Errorf("server marked down after %d failures in a row, being probed", n.limit)
}

// success records a call the server answered.
func (n *node) success() {
	if n.fails.Load() != 0 {
		n.fails.Store(0)
	}
	if n.downUntil.Load() != 0 {
		n.downUntil.Store(0)
	}
}

// failure records a failed call and reports whether it newly marked the
// server down.
func (n *node) failure() bool {
	f := n.fails.Add(1)
	if n.limit <= 0 || f < int64(n.limit) {
		return false
	}
	prev := n.downUntil.Swap(time.Now().UnixNano() + int64(n.interval))
	if n.onDown != nil {
		n.onDown(n)
	}
	return prev == 0
}

// down reports whether the server is currently marked down.
func (n *node) down() bool {
	d := n.downUntil.Load()
	return d != 0 && time.Now().UnixNano() < d
}
