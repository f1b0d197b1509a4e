package main

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

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
