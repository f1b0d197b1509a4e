package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// A get that misses without --prefix reads at most hintScanKeys backend
// keys to find the site's prefixes. On memcached the listing (lru_crawler
// metadump) is a dump of every key the server holds, read whole before its
// first key is yielded: a server that holds more items than that is not
// asked for it.
func TestHintListingBoundedOnMemcached(t *testing.T) {
	mc := testserver.Memcached(t, "-m", "256")
	nc, err := net.Dial("tcp", mc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	const n = 60000
	for i := range n {
		fmt.Fprintf(&buf, "ms pre%05d:0:key 1 q\r\nx\r\n", i)
	}
	buf.WriteString("mn\r\n")
	nc.Write(buf.Bytes())
	b := make([]byte, 64)
	nc.Read(b)
	nc.Close()
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	var dumped atomic.Int64
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if bytes.HasPrefix(reply, []byte("key=")) {
			dumped.Add(1)
		}
		return c.Write(reply)
	}))
	env := map[string]string{"MEMDICT_URL": "memcached://" + p.Addr()}
	r := runIn(t, env, "", "get", "absent")
	if got := dumped.Load(); got > 2*hintScanKeys {
		t.Errorf("a miss's hint made memcached dump %d keys, want at most about %d\n%v", got, hintScanKeys, r)
	}
}

// keys without --prefix lists the backend once, however many prefixes the
// site has: on memcached each listing is a dump of every key the server
// holds, so a listing per prefix (as before) dumped the server 1+P times
// (5 prefixes of 200 keys: 6,000 key lines read for 1,000 keys).
func TestKeysAllPrefixesDumpsOnce(t *testing.T) {
	mc := testserver.Memcached(t)
	c, err := memcached.New([]string{mc.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const prefixes, perPrefix = 5, 200
	for p := range prefixes {
		d, err := memdict.New[string](c, fmt.Sprintf("p%d", p))
		if err != nil {
			t.Fatal(err)
		}
		for i := range perPrefix {
			if err := d.Put(fmt.Sprintf("k%03d", i), "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	var dumped atomic.Int64
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		dumped.Add(int64(bytes.Count(reply, []byte("key="))))
		return c.Write(reply)
	}))
	env := map[string]string{"MEMDICT_URL": "memcached://" + p.Addr()}
	const total = prefixes * perPrefix
	// memcached's crawl may miss keys written a moment ago: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		dumped.Store(0)
		r := runIn(t, env, "", "keys")
		lines := strings.Count(r.stdout, "\n")
		if r.code == exitOK && lines == total {
			if got := dumped.Load(); got > total+total/10 {
				t.Errorf("keys without --prefix read %d dumped keys for %d keys (%d prefixes), want one dump", got, total, prefixes)
			}
			if !strings.Contains(r.stdout, "p3\tk199\n") {
				t.Errorf("keys without --prefix: p3's k199 missing:\n%.300s", r.stdout)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys without --prefix listed %d of %d keys\n%v", lines, total, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
