//go:build linux

package memdict_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/netfault"
	"github.com/memdict/memdict/internal/testserver"
)

// Real network faults between the client and a real server, in a network
// namespace of the test's own (internal/netfault).

// faultServer is a server in a namespace and how to open a backend on it.
type faultServer struct {
	name  string
	start func(t *testing.T, n *netfault.Net) *testserver.Process
	open  func(t *testing.T, n *netfault.Net, addr string) backend.Backend
}

// faultTimeout is the backends' timeout in the network-fault tests, and
// faultRetry how often they probe a server marked down: soon after a
// heal, a client works again, before TCP retransmits what it sent
// during the fault.
const (
	faultTimeout = 500 * time.Millisecond
	faultRetry   = 250 * time.Millisecond
)

var faultServers = []faultServer{
	{"memcached",
		func(t *testing.T, n *netfault.Net) *testserver.Process { return n.Memcached(t) },
		func(t *testing.T, n *netfault.Net, addr string) backend.Backend {
			c, err := memcached.New([]string{addr}, memcached.WithTimeout(faultTimeout), memcached.WithRetryInterval(faultRetry), memcached.WithDialer(n.DialContext))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}},
	{"redis",
		func(t *testing.T, n *netfault.Net) *testserver.Process { return n.Redis(t) },
		func(t *testing.T, n *netfault.Net, addr string) backend.Backend {
			b, err := redis.New(&goredis.Options{Addr: addr, Dialer: n.DialContext}, redis.WithTimeout(faultTimeout), redis.WithRetryInterval(faultRetry))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		}},
}

// The phases of TestNoResurrectedWrites: traffic, a partition, traffic,
// packet loss, traffic. The phases after a fault outlast TCP's
// retransmission of what was sent during it (after a 5 s partition, the
// next retransmission is due 1 to 8 s after the heal).
var resurrectionPhases = []struct {
	name  string
	fault func(n *netfault.Net, port int) error // nil: none
	d     time.Duration
}{
	{"traffic", nil, time.Second},
	{"partition", func(n *netfault.Net, port int) error { return n.Drop(port) }, 5 * time.Second},
	{"traffic after the partition", nil, 8 * time.Second},
	{"30% packet loss", func(n *netfault.Net, port int) error { return n.Loss(port, 30) }, 4 * time.Second},
	{"traffic after the loss", nil, 5 * time.Second},
}

// A write that timed out is never applied after a newer one was
// acknowledged: 32 goroutines write versioned values to 1000 keys (each
// key written by one goroutine, one write at a time, so that the versions
// of a key are acknowledged in order) and read them back, through a
// partition of 5 s and 4 s of 30% packet loss; no read, while the faults
// last, after them or at the end, may return a version older than one
// acknowledged before it started. A driver that merely closes a
// connection it gave up on lets the kernel retransmit its unsent requests
// once the network heals, and the server applies them over newer writes.
func TestNoResurrectedWrites(t *testing.T) {
	for _, srv := range faultServers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			n := netfault.New(t)
			p := srv.start(t, n)
			be := srv.open(t, n, p.Addr)
			d := newDict[string](t, be, "resurrect")
			checkNoResurrection(t, d, func(fault func(*netfault.Net, int) error) error {
				if fault == nil {
					return n.Heal()
				}
				return fault(n, p.Port)
			})
		})
	}
}

// resurrection is what TestNoResurrectedWrites saw.
type resurrection struct {
	key           string
	got, acked    uint64
	phase, during string
}

func checkNoResurrection(t *testing.T, d *memdict.Dict[string], setFault func(func(*netfault.Net, int) error) error) {
	const workers, keys = 32, 1000
	var (
		phase              atomic.Value // string
		stop               atomic.Bool
		acks, fails, reads atomic.Int64
		mu                 sync.Mutex
		bad                []resurrection
	)
	phase.Store(resurrectionPhases[0].name)
	acked := make([][]uint64, workers) // per worker, per owned key
	owned := make([][]string, workers)
	for k := range keys {
		owned[k%workers] = append(owned[k%workers], fmt.Sprint("key", k))
	}
	var wg sync.WaitGroup
	for w := range workers {
		acked[w] = make([]uint64, len(owned[w]))
		wg.Go(func() {
			ctx := context.Background()
			next := make([]uint64, len(owned[w]))
			for !stop.Load() {
				i := rand.N(len(owned[w]))
				key := owned[w][i]
				if rand.N(2) == 0 {
					next[i]++
					if err := d.Store(ctx, key, strconv.FormatUint(next[i], 10)); err != nil {
						fails.Add(1)
					} else {
						acks.Add(1)
						acked[w][i] = next[i]
					}
				} else {
					want := acked[w][i]
					v, _, err := d.Lookup(ctx, key)
					if err == nil {
						reads.Add(1)
						got, _ := strconv.ParseUint(v, 10, 64) // a miss reads as version 0
						if got < want {
							mu.Lock()
							bad = append(bad, resurrection{key, got, want, phase.Load().(string), "the run"})
							mu.Unlock()
						}
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for _, ph := range resurrectionPhases {
		phase.Store(ph.name)
		if err := setFault(ph.fault); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
		time.Sleep(ph.d)
	}
	stop.Store(true)
	wg.Wait()
	if err := setFault(nil); err != nil {
		t.Fatal(err)
	}
	// Last, every key once more, after the writers stopped.
	ctx := testCtx(t)
	for w := range workers {
		for i, key := range owned[w] {
			var v string
			var err error
			for try := 0; try < 50; try++ {
				if v, _, err = d.Lookup(ctx, key); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("the last read of %s: %v", key, err)
			}
			got, _ := strconv.ParseUint(v, 10, 64)
			if got < acked[w][i] {
				bad = append(bad, resurrection{key, got, acked[w][i], "the end", "the last read"})
			}
		}
	}
	t.Logf("%d writes acknowledged, %d failed, %d reads", acks.Load(), fails.Load(), reads.Load())
	if acks.Load() == 0 || reads.Load() == 0 {
		t.Fatal("no traffic got through")
	}
	if len(bad) > 0 {
		seen := map[string]bool{}
		for _, r := range bad {
			seen[r.key] = true
		}
		for _, r := range bad[:min(len(bad), 10)] {
			t.Errorf("%s (%s, in %s): read version %d, older than version %d acknowledged before", r.key, r.during, r.phase, r.got, r.acked)
		}
		t.Errorf("%d reads of %d keys returned a version older than one acknowledged before them", len(bad), len(seen))
	}
}
