package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// TestKeysEndlessDumpBounded: a server whose metadump never ends, sending
// key lines as fast as they are read and never END, is refused once it has
// listed more keys than its memory (limit_maxbytes) can hold, with an
// error wrapping ErrProtocol that names it; the keys kept meanwhile (here
// spilt to a temporary file) are removed. Before, the listing went on
// until ctx ended, writing the keys to the temporary file all along: with
// no deadline (memdict keys) it filled the disk.
func TestKeysEndlessDumpBounded(t *testing.T) {
	restore := memcached.SetKeyListMem(64 << 10)
	defer restore()
	// A server that says it has 1 MiB, or does not say (taken to have
	// 1 MiB here), without the slack of slab pages.
	defer memcached.SetDumpBounds(1<<20, 0)()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, tc := range []struct{ name, prefix, stats string }{
		{"matching keys", "big:", "STAT pid 1\r\nSTAT limit_maxbytes 1048576\r\nEND\r\n"},
		{"other keys", "none:", "STAT pid 1\r\nSTAT limit_maxbytes 1048576\r\nEND\r\n"},
		{"no stats", "none:", "ERROR\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
				switch line {
				case "stats":
					fmt.Fprint(c, tc.stats)
					return true
				case "lru_crawler metadump hash":
					bw := bufio.NewWriterSize(c, 64<<10)
					for i := 0; ; i++ {
						if _, err := fmt.Fprintf(bw, "key=big:%010d exp=-1 la=1 cas=%d fetch=no cls=1 size=60\n", i, i); err != nil {
							return false
						}
						sent.Add(1)
					}
				}
				fmt.Fprint(c, "ERROR\r\n")
				return true
			})
			c := fakeClient(t, s, memcached.WithTimeout(time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var last error
			n := 0
			for k, err := range c.Keys(ctx, tc.prefix) {
				if err != nil {
					last = err
					continue
				}
				if !strings.HasPrefix(k, tc.prefix) {
					t.Fatalf("key %q listed under prefix %q", k, tc.prefix)
				}
				n++
			}
			if ctx.Err() != nil || !errors.Is(last, memcached.ErrProtocol) || !strings.Contains(last.Error(), s.Addr()) {
				t.Fatalf("listing an endless dump: final error %v (ctx: %v) after %d lines sent, want a protocol error naming %s",
					last, ctx.Err(), sent.Load(), s.Addr())
			}
			if n != 0 {
				t.Errorf("%d keys of the endless dump listed, want none", n)
			}
			t.Logf("%d lines sent: %v", sent.Load(), last)
			if files, _ := filepath.Glob(filepath.Join(tmp, "*")); len(files) != 0 {
				t.Errorf("after the listing: %v left in TMPDIR", files)
			}
		})
	}
}

// TestKeysFullServerNotRefused: a real memcached full to its memory (-m 2,
// evicting) is listed whole within the bound on a dump, even without the
// slack for slab pages: the bound never refuses a server that lists what it
// holds.
func TestKeysFullServerNotRefused(t *testing.T) {
	defer memcached.SetDumpBounds(64<<20, 0)()
	p := testserver.Memcached(t, "-m", "2", "-I", "1m")
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	const n = 60000 // of the smallest items, about three times what 2 MiB holds
	for i := 0; i < n; i += 1000 {
		items := make([]backend.Item, 0, 1000)
		for j := i; j < i+1000; j++ {
			items = append(items, backend.Item{Key: fmt.Sprintf("f%d", j), Value: []byte("v")})
		}
		if err := c.SetMulti(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	held := serverStat(t, p.Addr, "curr_items")
	if serverStat(t, p.Addr, "evictions") == 0 {
		t.Fatalf("the server holds all %d items (%d): not full", n, held)
	}
	listed := 0
	for _, err := range c.Keys(ctx, "") {
		if err != nil {
			t.Fatalf("listing a full server of %d items: %v", held, err)
		}
		listed++
	}
	if int64(listed) < held*9/10 {
		t.Errorf("listed %d keys of the %d the server holds", listed, held)
	}
}
