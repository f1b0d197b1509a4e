package memcached_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// currConnections asks memcached how many connections it has open (the
// asking one included).
func currConnections(t *testing.T, addr string) int {
	t.Helper()
	return int(serverStat(t, addr, "curr_connections"))
}

// TestNoConnectionLeak: after concurrent use (with cancelled contexts, and
// all kinds of calls) and Close, the server has no connection of the
// Client left open. Goroutines are checked by leakcheck in TestMain.
func TestNoConnectionLeak(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t)
	base := currConnections(t, p.Addr)
	c, err := memcached.New([]string{p.Addr}, memcached.WithMaxIdleConns(4), memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("k%d", (g*13+i)%50)
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if i%5 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*100*time.Microsecond)
				}
				switch i % 4 {
				case 0:
					_ = c.Set(ctx, backend.Item{Key: k, Value: []byte("v")})
				case 1:
					_, _ = c.Get(ctx, k)
				case 2:
					_, _ = c.GetMulti(ctx, []string{k, "a", "b"})
				case 3:
					_, _ = c.Increment(ctx, k, 1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	for range c.Keys(context.Background(), "") {
	}
	if _, err := c.ServerStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mid := currConnections(t, p.Addr); mid <= base {
		t.Logf("no idle connections while open? %d, base %d", mid, base)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := currConnections(t, p.Addr)
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after Close, %d before the Client", n, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
