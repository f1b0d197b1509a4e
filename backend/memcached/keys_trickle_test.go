package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// listWithin runs c.Keys(context.Background(), prefix), as memdict keys
// does (its context has no deadline), and returns the keys it listed, how
// long it took and its final error; the test fails if it has not returned
// within limit (the listing is then left running: the server's Close ends
// it).
func listWithin(t *testing.T, c *memcached.Client, prefix string, limit time.Duration) (keys int, took time.Duration, last error) {
	t.Helper()
	type result struct {
		keys int
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var r result
		for _, err := range c.Keys(context.Background(), prefix) {
			if err != nil {
				r.err = err
				continue
			}
			r.keys++
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r.keys, time.Since(start), r.err
	case <-time.After(limit):
		t.Fatalf("Keys with a background context has not returned after %v", limit)
		return 0, 0, nil
	}
}

// TestKeysTrickledDumpBounded: a server whose metadump starts at once and
// then trickles, a byte every 20 ms (50 bytes/s) without end, each read well within the timeout,
// is given up on with a Background context (memdict keys): the listing
// fails within a few timeouts with an error naming the server, and its
// connection is closed. Before, only ctx and the bound on a dump's keys
// bounded such a dump: the listing had not returned after a minute, and
// would have taken a month to reach that bound (130 MiB at 50 bytes/s).
func TestKeysTrickledDumpBounded(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		switch line {
		case "stats":
			fmt.Fprint(c, "STAT pid 1\r\nSTAT limit_maxbytes 1048576\r\nEND\r\n")
			return true
		case "lru_crawler metadump hash":
			for i := 0; ; i++ {
				kl := fmt.Sprintf("key=t:%010d exp=-1 la=1 cas=%d fetch=no cls=1 size=60\n", i, i)
				if i == 0 { // the dump starts at once
					if _, err := io.WriteString(c, kl); err != nil {
						return false
					}
					continue
				}
				for j := range len(kl) {
					if _, err := c.Write([]byte{kl[j]}); err != nil {
						return false
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		fmt.Fprint(c, "ERROR\r\n")
		return true
	})
	defer s.Close()
	c := fakeClient(t, s, memcached.WithTimeout(timeout))
	n, took, last := listWithin(t, c, "t:", 15*time.Second)
	t.Logf("a trickled dump: %d keys, in %v: %v", n, took.Round(time.Millisecond), last)
	if last == nil || !errors.Is(last, backend.ErrUnavailable) || !strings.Contains(last.Error(), s.Addr()) {
		t.Fatalf("a trickled dump: final error %v, want one wrapping ErrUnavailable naming %s", last, s.Addr())
	}
	if n != 0 {
		t.Errorf("%d keys listed from a dump that never ended", n)
	}
	// Generous: the bound is about two timeouts.
	if took > 20*timeout {
		t.Errorf("a trickled dump was given up on after %v, want within a few timeouts (%v)", took, timeout)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections of the listing still open 5s after it returned", s.open.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeysHostileSizesBounded: what a dump or a "stats" reply makes Keys
// allocate is bounded by memcached's own sizes, not by what the server
// sends. A key longer than memcached's 250 bytes (here 200 KiB lines,
// within the longest line read) is a protocol error of its server, and a
// "stats" reply (read for the server's memory) of STAT lines of 200 KiB
// is refused past 64 KiB in all. Before, each long key was kept and
// yielded (20 of them, 4 MB: 27 MB allocated; a server claiming 1 GiB of
// memory could list 2 GiB of them) and each STAT line kept in the map
// (100 of them, 20 MB: 48 MB allocated with the long keys that followed);
// now under 1 MiB each.
func TestKeysHostileSizesBounded(t *testing.T) {
	// The replies are made before the allocations are counted.
	long := strings.Repeat("k", 200<<10)
	var keyLines, statLines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&keyLines, "key=%s%d exp=-1 la=1 cas=1 fetch=no cls=1 size=60\n", long, i)
	}
	keyLines.WriteString("END\r\n")
	for i := range 100 {
		fmt.Fprintf(&statLines, "STAT s%d %s\r\n", i, long)
	}
	statLines.WriteString("END\r\n")
	dump := []byte(keyLines.String())
	for _, tc := range []struct {
		name  string
		stats []byte
	}{
		{"long keys", []byte("STAT pid 1\r\nSTAT limit_maxbytes 1073741824\r\nEND\r\n")},
		{"long stats", []byte(statLines.String())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
				var err error
				switch line {
				case "stats":
					_, err = c.Write(tc.stats)
				case "lru_crawler metadump hash":
					_, err = c.Write(dump)
				default:
					_, err = io.WriteString(c, "ERROR\r\n")
				}
				return err == nil
			})
			defer s.Close()
			c := fakeClient(t, s, memcached.WithTimeout(5*time.Second))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n, _, last := listWithin(t, c, "", 15*time.Second)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d keys listed, %d KiB allocated: %v", tc.name, n, alloc>>10, last)
			if n != 0 || !errors.Is(last, memcached.ErrProtocol) || !strings.Contains(last.Error(), s.Addr()) {
				t.Errorf("%s: %d keys listed, final error %v; want none and a protocol error naming %s", tc.name, n, last, s.Addr())
			}
			// The listing's read buffer (256 KiB) and a few lines.
			if alloc > 4<<20 {
				t.Errorf("%s: the listing allocated %d KiB, want under 4 MiB", tc.name, alloc>>10)
			}
		})
	}
}

// TestKeysLongDumpLinesCharged: a dump's lines are charged against its
// bound by their length too, not only by their key's: a server that lists
// short keys on lines padded to 200 KiB, without end, is refused once
// those lines pass four times the bound (a key's line is at most about
// three times its key and a hundred bytes, charged its length and an item
// header of 48). Before, each line was charged its key alone (some 60
// bytes), so the 2 MiB bound of a 1 MiB server let it send 35,000 lines,
// 7 GB, before it was refused: over an hour at the pace a dump must keep,
// a month for a server of 64 MiB.
func TestKeysLongDumpLinesCharged(t *testing.T) {
	defer memcached.SetDumpBounds(1<<20, 0)()
	pad := strings.Repeat("x", 200<<10)
	var sent atomic.Int64
	s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		switch line {
		case "stats":
			fmt.Fprint(c, "STAT pid 1\r\nSTAT limit_maxbytes 1048576\r\nEND\r\n")
			return true
		case "lru_crawler metadump hash":
			bw := bufio.NewWriterSize(c, 256<<10)
			for i := 0; ; i++ {
				n, err := fmt.Fprintf(bw, "key=j:%010d exp=-1 la=1 cas=%d fetch=no cls=1 size=60 pad=%s\n", i, i, pad)
				if err != nil {
					return false
				}
				sent.Add(int64(n))
			}
		}
		fmt.Fprint(c, "ERROR\r\n")
		return true
	})
	defer s.Close()
	c := fakeClient(t, s, memcached.WithTimeout(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	n := 0
	for _, err := range c.Keys(ctx, "j:") {
		if err != nil {
			last = err
			continue
		}
		n++
	}
	t.Logf("%d keys listed, %d MiB sent: %v", n, sent.Load()>>20, last)
	if ctx.Err() != nil || !errors.Is(last, memcached.ErrProtocol) || !strings.Contains(last.Error(), s.Addr()) {
		t.Fatalf("a dump of padded lines: final error %v (ctx: %v) after %d MiB sent, want a protocol error naming %s",
			last, ctx.Err(), sent.Load()>>20, s.Addr())
	}
	if n != 0 {
		t.Errorf("%d keys of the endless dump listed, want none", n)
	}
	// Four times the bound, plus what the sockets and buffers hold.
	if got := sent.Load(); got > 32<<20 {
		t.Errorf("the server sent %d MiB before its dump was refused, want about 8 MiB", got>>20)
	}
}

// TestKeysBusyCrawlerSaysBusy: a server whose crawler stays busy with
// another dump (another listing's, or one given up on a moment ago) for
// the timeout fails the listing with an error that says so, wrapping
// ErrUnavailable (a passing state: memdict dump retries its listing), not
// ErrNotSupported (a crawler disabled, which callers take for good).
// Before, the retries ran into the command's deadline, so the error said
// "write tcp ...: i/o timeout", as if the server did not answer.
func TestKeysBusyCrawlerSaysBusy(t *testing.T) {
	const timeout = 500 * time.Millisecond
	var asked atomic.Int64
	s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		if strings.HasPrefix(line, "lru_crawler metadump") {
			asked.Add(1)
			fmt.Fprint(c, "BUSY currently processing crawler request\r\n")
			return true
		}
		fmt.Fprint(c, "ERROR\r\n")
		return true
	})
	defer s.Close()
	c := fakeClient(t, s, memcached.WithTimeout(timeout))
	n, took, last := listWithin(t, c, "", 15*time.Second)
	t.Logf("a busy crawler: %d keys, asked %d times in %v: %v", n, asked.Load(), took.Round(time.Millisecond), last)
	if n != 0 || !errors.Is(last, backend.ErrUnavailable) || errors.Is(last, backend.ErrNotSupported) ||
		!strings.Contains(last.Error(), s.Addr()) || !strings.Contains(last.Error(), "busy") {
		t.Errorf("a crawler busy past the timeout: final error %v, want one wrapping ErrUnavailable (not ErrNotSupported) saying it is busy, naming %s",
			last, s.Addr())
	}
}

// TestKeysConcurrentListingsTakeTurns: listings made at once on one real
// memcached (memdict keys beside memdict dump, or several Dict.Keys) do
// not stack dumps on its crawler, which runs one at a time: each waits
// for the crawler to be free and lists every key; a listing cancelled in
// the middle of its dump frees the crawler for the next within the
// timeout.
func TestKeysConcurrentListingsTakeTurns(t *testing.T) {
	p := testserver.Memcached(t)
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const n = 20000
	setKeys(t, c, "turn:", n)
	count := func(ctx context.Context) (int, error) {
		got := 0
		for _, err := range c.Keys(ctx, "turn:") {
			if err != nil {
				return got, err
			}
			got++
		}
		return got, nil
	}
	const listings = 4
	errs := make(chan error, listings)
	for range listings {
		go func() {
			got, err := count(ctx)
			if err == nil && got != n {
				err = fmt.Errorf("listed %d keys, want %d", got, n)
			}
			errs <- err
		}()
	}
	for range listings {
		if err := <-errs; err != nil {
			t.Errorf("one of %d listings at once: %v", listings, err)
		}
	}
	// A listing cancelled during its dump, then one made at once.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(time.Millisecond, cancel)
	if _, err := count(cctx); err == nil {
		t.Log("the cancelled listing ended before its cancel")
	}
	if got, err := count(ctx); err != nil || got != n {
		t.Errorf("a listing after one cancelled: %d keys, %v; want %d", got, err, n)
	}
}

// An honest server whose crawler is throttled (lru_crawler_sleep, 1,000
// times its default pause) dumps at about 200 KB/s: slower than the pace
// first chosen (256 KiB/s), which refused it after 3 s, "dump too slow".
// Its listing completes.
func TestKeysThrottledCrawlerListed(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t, "-o", "lru_crawler_sleep=100000")
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const n = 20000
	setKeys(t, c, "throttled:", n)
	start := time.Now()
	got := 0
	for _, err := range c.Keys(ctx, "throttled:") {
		if err != nil {
			t.Fatalf("after %d keys in %v: %v", got, time.Since(start), err)
		}
		got++
	}
	if got != n {
		t.Fatalf("listed %d keys, want %d", got, n)
	}
	t.Logf("%d keys listed in %v", got, time.Since(start))
}

// setKeys stores n keys prefix000000... on c, 1,000 at a time.
func setKeys(t *testing.T, c *memcached.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		items := make([]backend.Item, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			items = append(items, backend.Item{Key: fmt.Sprintf("%s%06d", prefix, j), Value: []byte("v")})
		}
		if err := c.SetMulti(context.Background(), items); err != nil {
			t.Fatal(err)
		}
	}
}
