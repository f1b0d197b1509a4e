package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

// TestLoadValueSizeEdge: memdict load into a memcached with the default
// -I 1m, of values byte by byte across the size memcached accepts (its
// item header and the key count too). A value the server cannot hold is
// refused with an error, and the value stored before under that key is
// still there: a refused write never costs the stored value.
func TestLoadValueSizeEdge(t *testing.T) {
	mc := testserver.Memcached(t, "-I", "1m")
	env := map[string]string{"MEMDICT_URL": "memcached://" + mc.Addr + "?timeout=10s"}
	accepted, refused := 0, 0
	for size := 1<<20 - 160; size <= 1<<20+1; size++ {
		if r := runIn(t, env, "", "put", "--prefix", "edge", "big", "--string", "old"); r.code != exitOK {
			t.Fatalf("put: %v", r)
		}
		v := bytes.Repeat([]byte{'x'}, size)
		line := fmt.Sprintf(`{"key":"big","codec":"raw","base64":%q}`+"\n", base64.StdEncoding.EncodeToString(v))
		load := runIn(t, env, line, "load", "--prefix", "edge")
		get := runIn(t, env, "", "get", "--prefix", "edge", "big", "--raw")
		switch {
		case load.code == exitOK:
			if get.code != exitOK || len(get.stdout) != size {
				t.Fatalf("load of %d bytes succeeded, then get read %d bytes: %v", size, len(get.stdout), get)
			}
			accepted++
		default:
			if get.code != exitOK || get.stdout != "old" {
				t.Fatalf("load of %d bytes failed (%v), and the stored value is lost: get %v", size, load, get)
			}
			refused++
		}
	}
	if accepted == 0 || refused == 0 {
		t.Errorf("%d sizes loaded, %d refused: the edge is not in the range tested", accepted, refused)
	}
	t.Logf("%d sizes loaded, %d refused", accepted, refused)
}
