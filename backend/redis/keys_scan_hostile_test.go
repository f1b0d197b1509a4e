package redis

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// TestKeysScanHugePageRefused: a SCAN reply whose 13-byte header
// announces 33M keys (within what the guard lets a reply announce) is a
// protocol error naming the server, refused before anything is allocated
// for it, and its connection is not reused. Before, go-redis allocated the
// 33M-key slice its header announced: 503 MiB, and a key announced at
// 512 MiB its length. Such a key's header, like any string's over 64 KiB,
// is held by the guard until its bytes arrive (conn.go), and so is the
// 33M keys' (until 3 bytes a key arrived), so the page reader never sees
// them: the listing fails at its pace, as unavailable (which a protocol
// error is too), having allocated nothing for it.
func TestKeysScanHugePageRefused(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		held        bool // the guard holds it: unavailable, not a protocol error
	}{
		{"33M keys", "*2\r\n$1\r\n0\r\n*33000000\r\n", true},
		{"a key past the page's bytes", "*2\r\n$1\r\n0\r\n*1\r\n$536870911\r\n", true},
		{"3 elements", "*3\r\n$1\r\n0\r\n*0\r\n:1\r\n", false},
		{"a 21-digit cursor", "*2\r\n$21\r\n123456789012345678901\r\n*0\r\n", false},
		{"a null key", "*2\r\n$1\r\n0\r\n*1\r\n_\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, func(c *fakeConn, args []string) {
				if strings.ToLower(args[0]) != "scan" {
					c.write("-ERR unknown command\r\n")
					return
				}
				c.write(tc.reply)
			})
			b := newFakeBackend(t, s, "timeout=1s")
			list := func() error {
				var last error
				for _, err := range b.Keys(context.Background(), "k:") {
					if err != nil {
						last = err
					}
				}
				return last
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := list()
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
				t.Errorf("SCAN answering %q: %d MiB allocated", tc.reply, d>>20)
			}
			want := ErrProtocol
			if tc.held {
				want = backend.ErrUnavailable
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), s.addr()) {
				t.Fatalf("SCAN answering %q: error %v, want %v naming %s", tc.reply, err, want, s.addr())
			}
			conns := s.accepted.Load()
			if err := list(); !errors.Is(err, want) {
				t.Fatalf("second listing: %v", err)
			}
			if s.accepted.Load() == conns {
				t.Errorf("the connection that carried a malformed SCAN page was reused")
			}
			t.Logf("%v", err)
		})
	}
}

// TestKeysScanPageBytesCharged: the keys of a SCAN page are charged as
// their bytes arrive, against scanPageBytes: a page whose keys add up to
// more is a protocol error, and what it makes the client allocate follows
// what arrived.
func TestKeysScanPageBytesCharged(t *testing.T) {
	defer func(old int64) { scanPageBytes = old }(scanPageBytes)
	scanPageBytes = 1 << 20
	long := strings.Repeat("x", 600<<10)
	s := startFake(t, func(c *fakeConn, args []string) {
		if strings.ToLower(args[0]) != "scan" {
			c.write("-ERR unknown command\r\n")
			return
		}
		c.write(scanReply(0, "k:"+long, "k:"+long))
	})
	b := newFakeBackend(t, s, "timeout=1s")
	var last error
	for k, err := range b.Keys(context.Background(), "k:") {
		if err != nil {
			last = err
			continue
		}
		t.Errorf("listed a key of %d bytes from a page over its bound", len(k))
	}
	if !errors.Is(last, ErrProtocol) || !strings.Contains(last.Error(), s.addr()) {
		t.Fatalf("a page of 1.2 MiB of keys: %v, want a protocol error naming %s", last, s.addr())
	}
}

// keysWithin lists b's keys under prefix with a context that ends after
// limit, and returns how many were listed, the final error and how long
// the listing took.
func keysWithin(b *Backend, prefix string, limit time.Duration) (listed int, took time.Duration, last error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	for _, err := range b.Keys(ctx, prefix) {
		if err != nil {
			last = err
			continue
		}
		listed++
	}
	return listed, time.Since(start), last
}

// TestKeysScanUnsizedCapped: a server whose size is unknown (it refuses
// DBSIZE, or claims more keys than a Redis server holds) and whose SCAN
// returns new keys on every page, never ending its iteration nor
// repeating a cursor, is given up on once it has returned
// maxUnsizedScanKeys keys, with an error naming it and the count, whatever
// ctx: the map of keys seen stays bounded. Before, it was bounded by ctx
// alone: 1.47M keys and 136 MiB in 3 s (refused), 1.25M keys and 86 MiB
// (2^40 claimed), without end under a context without deadline.
func TestKeysScanUnsizedCapped(t *testing.T) {
	defer func(old int64) { maxUnsizedScanKeys = old }(maxUnsizedScanKeys)
	maxUnsizedScanKeys = 50_000
	for _, tc := range []struct {
		name, dbsize string
		kind         error
	}{
		{"DBSIZE refused", "-NOPERM User default has no permissions to run the 'dbsize' command\r\n", backend.ErrUnavailable},
		{"DBSIZE of 2^40", ":1099511627776\r\n", ErrProtocol},
		{"DBSIZE of 2^63-1", ":9223372036854775807\r\n", ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scans atomic.Int64
			s := startFake(t, func(c *fakeConn, args []string) {
				switch strings.ToLower(args[0]) {
				case "scan":
					n := scans.Add(1)
					keys := make([]string, scanCount)
					for i := range keys {
						keys[i] = fmt.Sprintf("k:%d:%d", n, i)
					}
					c.write(scanReply(uint64(n), keys...))
				case "dbsize":
					c.write(tc.dbsize)
				default:
					c.write("-ERR unknown command\r\n")
				}
			})
			b := newFakeBackend(t, s, "timeout=1s")
			listed, took, last := keysWithin(b, "k:", 4*time.Second)
			if !errors.Is(last, tc.kind) || errors.Is(last, context.DeadlineExceeded) ||
				!strings.Contains(last.Error(), s.addr()) || !strings.Contains(last.Error(), "50000") {
				t.Fatalf("an endless SCAN of new keys: after %v, %d keys listed, final error %v; want one wrapping %v naming %s and the cap",
					took, listed, last, tc.kind, s.addr())
			}
			if listed > int(maxUnsizedScanKeys)+scanCount {
				t.Errorf("%d keys listed, past the cap of %d", listed, maxUnsizedScanKeys)
			}
			t.Logf("%d keys listed in %v: %v", listed, took, last)
		})
	}
}

// TestKeysScanSlowPagesGivenUp: a server that sends its SCAN pages each
// well within the timeout, but slower than the pace a listing must keep,
// is given up on about a timeout after it fell behind, with an error
// naming it and the pace, whatever ctx (its DBSIZE is honest, so the
// bound on its pages would let it go on). Before, the listing went on as
// long as ctx let it: under memdict keys, up to 4 x DBSIZE / COUNT +
// 65,536 pages at up to the timeout each (~18 h at the default 1 s).
func TestKeysScanSlowPagesGivenUp(t *testing.T) {
	defer func(rate int64, page time.Duration) { minScanKeyRate, scanPageTime = rate, page }(minScanKeyRate, scanPageTime)
	// Pages earn 20 ms each, keys next to nothing; the server takes 150
	// ms a page: it falls 130 ms behind a page, a 500 ms timeout's slack
	// after 4 pages.
	minScanKeyRate, scanPageTime = 1_000_000, 20*time.Millisecond
	var scans atomic.Int64
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "scan":
			n := scans.Add(1)
			time.Sleep(150 * time.Millisecond)
			c.write(scanReply(uint64(n), fmt.Sprintf("k:%d", n)))
		case "dbsize":
			c.write(":1000000\r\n")
		default:
			c.write("-ERR unknown command\r\n")
		}
	})
	b := newFakeBackend(t, s, "timeout=500ms")
	listed, took, last := keysWithin(b, "k:", 6*time.Second)
	if !errors.Is(last, backend.ErrUnavailable) || !strings.Contains(last.Error(), s.addr()) || !strings.Contains(last.Error(), "too slow") {
		t.Fatalf("SCAN pages at 150 ms each: after %v and %d keys, final error %v; want one wrapping ErrUnavailable naming %s and the pace",
			took, listed, last, s.addr())
	}
	// The pace gives up after ~0.7 s; a generous bound for a loaded machine.
	if took > 4*time.Second {
		t.Errorf("given up on after %v", took)
	}
	t.Logf("%d keys listed in %v: %v", listed, took, last)
}

// TestKeysScanSlowCallerNotPaced: the pace a SCAN iteration must keep
// counts the time spent waiting for the server, not the time the caller
// takes with the keys: a caller that reads each key's value over a slow
// link lists a fast server whole.
func TestKeysScanSlowCallerNotPaced(t *testing.T) {
	defer func(rate int64, page time.Duration) { minScanKeyRate, scanPageTime = rate, page }(minScanKeyRate, scanPageTime)
	minScanKeyRate, scanPageTime = 1_000_000, 20*time.Millisecond
	const pages = 8
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "scan":
			cur, _ := strconv.ParseUint(args[1], 10, 64)
			c.write(scanReply((cur+1)%pages, fmt.Sprintf("k:%d", cur)))
		case "dbsize":
			c.write(":1000000\r\n")
		default:
			c.write("-ERR unknown command\r\n")
		}
	})
	b := newFakeBackend(t, s, "timeout=300ms")
	listed := 0
	for _, err := range b.Keys(context.Background(), "k:") {
		if err != nil {
			t.Fatalf("after %d keys, each taken 100 ms by the caller: %v", listed, err)
		}
		listed++
		time.Sleep(100 * time.Millisecond)
	}
	if listed != pages {
		t.Errorf("listed %d keys, want %d", listed, pages)
	}
}
