package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// scanReply is the RESP reply of SCAN: the next cursor and keys.
func scanReply(next uint64, keys ...string) string {
	var sb strings.Builder
	sb.WriteString("*2\r\n" + bulk(strconv.FormatUint(next, 10)) + "*" + strconv.Itoa(len(keys)) + "\r\n")
	for _, k := range keys {
		sb.WriteString(bulk(k))
	}
	return sb.String()
}

// TestKeysScanCursorCycle: a server whose SCAN cursor cycles (it never
// answers 0, the end of an iteration) is refused with a protocol error
// naming it as soon as a cursor comes back, whether it repeats its keys
// or sends new ones each time. Before, the listing never ended (the loop
// ran until ctx did: forever under memdict keys), and with new keys its
// map of the keys seen grew without bound.
func TestKeysScanCursorCycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cycle uint64 // the cursors go 1, 2, ..., cycle, 1, ...
		fresh bool   // new keys on every page
	}{
		{"same cursor", 1, false},
		{"cycle of 5, same keys", 5, false},
		{"cycle of 1000, new keys", 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scans atomic.Int64
			s := startFake(t, func(c *fakeConn, args []string) {
				if strings.ToLower(args[0]) != "scan" {
					c.write("-ERR unknown command\r\n")
					return
				}
				n := scans.Add(1)
				cur, _ := strconv.ParseUint(args[1], 10, 64)
				keys := []string{"k:a", "k:b"}
				if tc.fresh {
					keys = []string{"k:" + strconv.FormatInt(n, 10)}
				}
				c.write(scanReply(cur%tc.cycle+1, keys...))
			})
			b := newFakeBackend(t, s, "timeout=1s")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var last error
			for _, err := range b.Keys(ctx, "k:") {
				if err != nil {
					last = err
				}
			}
			if ctx.Err() != nil || !errors.Is(last, ErrProtocol) || !strings.Contains(last.Error(), s.addr()) {
				t.Fatalf("SCAN cycling through %d cursors: final error %v (ctx: %v) after %d SCANs, want a protocol error naming %s",
					tc.cycle, last, ctx.Err(), scans.Load(), s.addr())
			}
			if n := scans.Load(); n > int64(4*tc.cycle+4) {
				t.Errorf("the cycle of %d cursors found after %d SCANs", tc.cycle, n)
			}
			t.Logf("%d SCANs: %v", scans.Load(), last)
		})
	}
}

// TestKeysScanWhileGrowing: a real Redis whose keyspace grows eightfold
// while it is listed (its table rehashed and resized under the cursor) is
// listed to the end: its cursors never come back within an iteration, so
// the check for a cycling cursor never refuses it.
func TestKeysScanWhileGrowing(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	ctx := context.Background()
	const n = 5000
	put := func(from, to int, name string) {
		items := make([]backend.Item, 0, to-from)
		for i := from; i < to; i++ {
			items = append(items, backend.Item{Key: fmt.Sprintf("%s:%d", name, i), Value: []byte("v")})
		}
		if err := b.SetMulti(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	put(0, n, "grow")
	seen := map[string]bool{}
	added := 0
	for k, err := range b.Keys(ctx, "grow:") {
		if err != nil {
			t.Fatalf("listing a growing keyspace after %d keys: %v", len(seen), err)
		}
		seen[k] = true
		if len(seen)%100 == 0 && added < 8*n {
			put(added, added+1000, "grow:new")
			added += 1000
		}
	}
	for i := range n {
		if k := fmt.Sprintf("grow:%d", i); !seen[k] {
			t.Fatalf("key %q, there before the listing, not listed (%d listed)", k, len(seen))
		}
	}
}

// TestKeysScanEndlessBounded: a server whose SCAN never ends an iteration
// without ever repeating a cursor (each page a new cursor) is refused, with
// a protocol error naming it, once it has returned more than twice the keys
// its DBSIZE says it holds, or made more pages than those keys need, plus
// some slack: whether its pages bring new keys, the same keys, or none.
// Before, the listing went on until ctx ended, and with new keys its map
// of the keys seen grew without bound.
func TestKeysScanEndlessBounded(t *testing.T) {
	defer func(old int64) { scanSlackPages = old }(scanSlackPages)
	scanSlackPages = 2000
	for _, tc := range []struct {
		name string
		keys func(n int64) []string // the keys of the n-th page
	}{
		{"new keys", func(n int64) []string {
			out := make([]string, 100)
			for i := range out {
				out[i] = fmt.Sprintf("k:%d:%d", n, i)
			}
			return out
		}},
		{"same keys", func(int64) []string { return []string{"k:a", "k:b", "k:c"} }},
		{"no keys", func(int64) []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scans, dbsizes atomic.Int64
			s := startFake(t, func(c *fakeConn, args []string) {
				switch strings.ToLower(args[0]) {
				case "scan":
					n := scans.Add(1)
					cur, _ := strconv.ParseUint(args[1], 10, 64)
					c.write(scanReply(cur+1, tc.keys(n)...))
				case "dbsize":
					dbsizes.Add(1)
					c.write(":50\r\n")
				default:
					c.write("-ERR unknown command\r\n")
				}
			})
			b := newFakeBackend(t, s, "timeout=1s")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var last error
			listed := 0
			for _, err := range b.Keys(ctx, "k:") {
				if err != nil {
					last = err
					continue
				}
				listed++
			}
			if ctx.Err() != nil || !errors.Is(last, ErrProtocol) || !strings.Contains(last.Error(), s.addr()) {
				t.Fatalf("an endless SCAN: final error %v (ctx: %v) after %d SCANs and %d keys listed, want a protocol error naming %s",
					last, ctx.Err(), scans.Load(), listed, s.addr())
			}
			if listed > scanSlackKeys+2*50+100 {
				t.Errorf("%d keys listed of a server that holds 50", listed)
			}
			if dbsizes.Load() == 0 {
				t.Errorf("refused without asking DBSIZE")
			}
			t.Logf("%d SCANs, %d keys listed: %v", scans.Load(), listed, last)
		})
	}
}

// TestKeysScanDBSizeRefused: a server that refuses DBSIZE (an ACL without
// it) is listed whole past the slack of the bound, which it cannot be
// checked against.
func TestKeysScanDBSizeRefused(t *testing.T) {
	const pages = 15
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "scan":
			cur, _ := strconv.ParseUint(args[1], 10, 64)
			keys := make([]string, scanCount)
			for i := range keys {
				keys[i] = fmt.Sprintf("k:%d:%d", cur, i)
			}
			c.write(scanReply((cur+1)%pages, keys...))
		case "dbsize":
			c.write("-NOPERM User default has no permissions to run the 'dbsize' command\r\n")
		default:
			c.write("-ERR unknown command\r\n")
		}
	})
	b := newFakeBackend(t, s, "timeout=1s")
	listed := 0
	for _, err := range b.Keys(context.Background(), "k:") {
		if err != nil {
			t.Fatalf("after %d keys: %v", listed, err)
		}
		listed++
	}
	if listed != pages*scanCount {
		t.Errorf("listed %d keys, want %d", listed, pages*scanCount)
	}
}
