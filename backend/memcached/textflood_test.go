package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend/memcached"
)

// TestTextValueFloodRefused: a text-protocol server that answers a get
// with VALUE blocks of 256 KiB for keys it was not asked, without end,
// fails the call with ErrProtocol at the first block past the keys asked,
// allocating little. The guard bounded each value, not their number:
// gomemcache kept reading them until the timeout, and a GetMulti of 2
// keys allocated 1.6 GiB within its 1 s timeout (1 GiB of it still held
// when it returned), a Get 0.76 GiB; a longer timeout, or a faster
// network, ends the process.
func TestTextValueFloodRefused(t *testing.T) {
	t.Parallel()
	val := strings.Repeat("x", 256<<10)
	s := newProtoFake(t, false, func(line string, c net.Conn, r *bufio.Reader) bool {
		if !strings.HasPrefix(line, "gets ") {
			return false
		}
		w := bufio.NewWriterSize(c, 1<<20)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "VALUE flood%d 0 %d 1\r\n%s\r\n", i, len(val), val); err != nil {
				return true // the client gave up
			}
		}
	})
	c := fakeClient(t, s, memcached.WithTimeout(time.Second), memcached.WithFailureLimit(0))
	ctx := context.Background()
	for _, call := range []struct {
		name string
		run  func() error
	}{
		{"GetMulti(a, b)", func() error { _, err := c.GetMulti(ctx, []string{"a", "b"}); return err }},
		{"Get(a)", func() error { _, err := c.Get(ctx, "a"); return err }},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		err := call.run()
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %v after %v, %d MiB allocated", call.name, err, took.Round(time.Millisecond), alloc>>20)
		if !errors.Is(err, memcached.ErrProtocol) {
			t.Errorf("%s answered by endless VALUE blocks: %v after %v, want an error wrapping ErrProtocol", call.name, err, took)
		}
		if alloc > 64<<20 {
			t.Errorf("%s answered by endless VALUE blocks allocated %d MiB", call.name, alloc>>20)
		}
	}
}

// TestTextGetMultiLongRequest: the guard's count of the keys a get asks
// (TestTextValueFloodRefused) spans the writes of a request line longer
// than gomemcache's buffer: a GetMulti of 300 keys of 60 bytes (an 18 KB
// line) through the text protocol returns every value.
func TestTextGetMultiLongRequest(t *testing.T) {
	t.Parallel()
	_, p, c := behindProxy(t)
	p.SetMutator(textOnly)
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%04d", strings.Repeat("k", 56), i)
	}
	storeKeys(t, c, keys...)
	got, err := checkMulti(t, c, keys...)
	if err != nil || len(got) != len(keys) {
		t.Errorf("GetMulti of %d keys through the text protocol: %d items, %v", len(keys), len(got), err)
	}
}
