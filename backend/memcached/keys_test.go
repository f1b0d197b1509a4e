package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// listKeys is how many keys TestListingNeverStallsServer lists: a million,
// or MEMDICT_LIST_KEYS.
func listKeys(t *testing.T) int {
	if s := os.Getenv("MEMDICT_LIST_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MEMDICT_LIST_KEYS=%q: want a positive number", s)
		}
		return n
	}
	return 1_000_000
}

// prober measures, while it runs, how long another client of a memcached
// waits for an answer: an "mg" every 2 ms of one of the keys listed last,
// on a connection of its own, and a new connection with an "mn" every
// 50 ms.
type prober struct {
	addr  string
	keys  atomic.Pointer[[]string] // the keys listed last
	stop  chan struct{}
	done  sync.WaitGroup
	max   atomic.Int64 // the longest wait, in nanoseconds
	count atomic.Int64
	err   atomic.Value
}

func startProber(t *testing.T, addr string) *prober {
	p := &prober{addr: addr, stop: make(chan struct{})}
	note := func(d time.Duration) {
		p.count.Add(1)
		for {
			m := p.max.Load()
			if int64(d) <= m || p.max.CompareAndSwap(m, int64(d)) {
				return
			}
		}
	}
	ask := func(nc net.Conn, br *bufio.Reader, req string) error {
		start := time.Now()
		_ = nc.SetDeadline(start.Add(10 * time.Second))
		if _, err := nc.Write([]byte(req)); err != nil {
			return err
		}
		if _, err := br.ReadString('\n'); err != nil {
			return err
		}
		note(time.Since(start))
		return nil
	}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			p.err.Store(err)
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			key := "probe"
			if keys := p.keys.Load(); keys != nil && len(*keys) > 0 {
				key = (*keys)[i%len(*keys)]
			}
			if err := ask(nc, br, "mg "+key+"\r\n"); err != nil {
				p.err.Store(err)
				return
			}
		}
	}()
	go func() {
		defer p.done.Done()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				p.err.Store(err)
				return
			}
			err = ask(nc, bufio.NewReader(nc), "mn\r\n")
			nc.Close()
			if err != nil {
				p.err.Store(err)
				return
			}
			note(time.Since(start))
		}
	}()
	t.Cleanup(p.end)
	return p
}

func (p *prober) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

// TestListingNeverStallsServer: Keys over a million keys (listKeys;
// MEMDICT_LIST_KEYS sets another number) with the values read 100 at a
// time between the keys, as Dict.Keys, Dict.All, "memdict keys" and
// "memdict dump" do, completes, and another client of that memcached
// never waits more than 100ms meanwhile.
// memcached's LRU crawler writes the dump while holding the server's locks
// and waits for the client when the sockets between them are full (some
// 40 MB of dump): a listing that reads the dump only as fast as it reads
// values (old) makes its own reads, and other clients', wait on the
// crawler, which waits on the listing. The driver reads the dump whole, at
// full speed, before yielding a key.
func TestListingNeverStallsServer(t *testing.T) {
	t.Parallel()
	n := listKeys(t)
	mc := testserver.Memcached(t, "-m", strconv.Itoa(max(64, n/500)))
	c, err := memcached.New([]string{mc.Addr}, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	fill := time.Now()
	var items []backend.Item
	for i := range n {
		k := listKey(i)
		items = append(items, backend.Item{Key: k, Value: []byte("v" + k)})
		if len(items) == 1000 || i == n-1 {
			if err := c.SetMulti(ctx, items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	t.Logf("%d keys written in %v", n, time.Since(fill).Round(time.Millisecond))

	p := startProber(t, mc.Addr)
	start := time.Now()
	seen := 0
	var batch []string
	read := func() {
		got, err := c.GetMulti(ctx, batch)
		if kes, ok := backend.KeyErrors(err); ok {
			t.Fatalf("GetMulti after %d keys listed: %d keys failed, the first: %v", seen, len(kes), kes[0])
		}
		if err != nil {
			t.Fatalf("GetMulti after %d keys listed: %v", seen, err)
		}
		for _, k := range batch {
			if string(got[k].Value) != "v"+k {
				t.Fatalf("GetMulti: %q = %q", k, got[k].Value)
			}
		}
		keys := append([]string(nil), batch...)
		p.keys.Store(&keys)
		batch = batch[:0]
	}
	for k, err := range c.Keys(ctx, "list:") {
		if err != nil {
			t.Fatalf("Keys after %d keys: %v", seen, err)
		}
		seen++
		batch = append(batch, k)
		if len(batch) == 100 {
			read()
		}
	}
	if len(batch) > 0 {
		read()
	}
	took := time.Since(start)
	p.end()
	if err, _ := p.err.Load().(error); err != nil {
		t.Fatalf("the other client: %v", err)
	}
	worst := time.Duration(p.max.Load())
	t.Logf("listed %d keys, reading their values, in %v; the other client's longest wait in %d requests: %v",
		seen, took.Round(time.Millisecond), p.count.Load(), worst.Round(time.Microsecond))
	if seen != n {
		t.Errorf("listed %d keys, want %d", seen, n)
	}
	// The property tested: a waiting crawler makes others wait seconds.
	// The bound is 100ms, with a tolerance for scheduling noise: on a
	// loaded 2-core machine an idle memcached's client waits up to some
	// 150ms at times.
	if worst > 100*time.Millisecond+250*time.Millisecond {
		t.Errorf("another client of the server waited %v while the listing ran, want < 100ms (+250ms of scheduling noise)", worst)
	}
}

// listKey is the i-th key of TestListingNeverStallsServer.
func listKey(i int) string { return fmt.Sprintf("list:%07d", i) }

// TestKeysSpill: past its memory bound, a listing keeps the keys in a
// temporary file, lists them all, and removes the file, also when the loop
// stops early.
func TestKeysSpill(t *testing.T) {
	restore := memcached.SetKeyListMem(4 << 10)
	defer restore()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	c, _ := newClient(t)
	ctx := context.Background()
	const n = 5000
	var items []backend.Item
	for i := range n {
		items = append(items, backend.Item{Key: fmt.Sprintf("spill:%%:%05d", i), Value: []byte("v")})
	}
	items = append(items, backend.Item{Key: "other:1", Value: []byte("v")})
	if err := c.SetMulti(ctx, items); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k, err := range c.Keys(ctx, "spill:") {
		if err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatalf("key %q listed twice", k)
		}
		seen[k] = true
		if len(seen) == 1 {
			// The listing holds its keys in a file meanwhile.
			if files, _ := os.ReadDir(tmp); len(files) != 1 {
				t.Errorf("during a listing of %d keys with 4 KiB in memory: %d files in TMPDIR, want 1", n, len(files))
			}
		}
	}
	if len(seen) != n {
		t.Errorf("listed %d keys, want %d", len(seen), n)
	}
	for i := range n {
		if k := fmt.Sprintf("spill:%%:%05d", i); !seen[k] {
			t.Fatalf("key %q not listed", k)
		}
	}
	for range c.Keys(ctx, "spill:") {
		break
	}
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("after the listings: %d files left in TMPDIR", len(files))
	}
}

// TestCloseDuringKeys: Close does not wait for the body of a Keys loop.
// The listing counted as a call in progress (see Close) from its start
// to its end, the loop's body included, so a Close made while the loop
// ran (another goroutine's, or the body's own) waited for the loop to
// end: forever if the body waits for Close, as one that shuts the
// program down does. Close now returns while the loop is paused, and the
// listing ends with an error wrapping ErrClosed for the servers not
// listed yet.
func TestCloseDuringKeys(t *testing.T) {
	p1, p2 := testserver.Memcached(t), testserver.Memcached(t)
	c, err := memcached.New([]string{p1.Addr, p2.Addr}, memcached.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	var on1, on2 int
	for i := 0; on1 < 2 || on2 < 1; i++ {
		k := fmt.Sprintf("closing:%d", i)
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		if c.ServerFor(k) == p1.Addr {
			on1++
		} else {
			on2++
		}
	}
	closed := make(chan error, 1)
	var last error
	n := 0
	for k, err := range c.Keys(ctx, "closing:") {
		if err != nil {
			last = err
			continue
		}
		n++
		if n > 1 {
			continue
		}
		go func() { closed <- c.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Close made while the body of a Keys loop ran (at key %q) did not return within 5s", k)
			return // ends the loop, which lets Close return
		}
	}
	if !errors.Is(last, backend.ErrClosed) {
		t.Errorf("a listing closed after its first server: final error %v, want one wrapping ErrClosed", last)
	}
}
