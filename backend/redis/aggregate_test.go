package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// aggregateCalls are the calls whose reply go-redis reads itself as an
// aggregate: a standalone GetMulti (an MGET), a Ring's GetMulti (one MGET
// per shard) and Increment (a script's reply), each on a Backend whose
// calls time out after timeout.
func aggregateCalls(t *testing.T, s *fakeServer, timeout time.Duration) map[string]func() error {
	ctx := context.Background()
	readers := longReaders(t, s, timeout)
	b := newFakeBackend(t, s, "failure_limit=0&timeout="+timeout.String())
	return map[string]func() error{
		"standalone getmulti": func() error { _, err := readers["standalone getmulti"]("a", "b"); return err },
		"ring getmulti":       func() error { _, err := readers["ring getmulti"]("a", "b"); return err },
		"increment": func() error {
			_, err := b.Increment(ctx, "k", 1)
			return err
		},
	}
}

// TestAggregateAnnouncedOnly: a 13-byte reply announcing an aggregate of
// 30,000,000 elements (within the guard's budget: 16 bytes a slot, under
// the max value length of 512 MiB), then nothing, or a trickle of nils,
// made go-redis allocate its slice of 30M interface slots at once: 457
// MiB per call (a map of 15M pairs: 228 MiB to an MGET, 1281 MiB to a
// script), held until the timeout. The guard now holds the header until
// at least as many bytes as its elements take at their shortest (3
// bytes) have arrived, nested aggregates counted with those they are in:
// each call fails at its timeout having allocated little.
func TestAggregateAnnouncedOnly(t *testing.T) {
	trickle := func(c *fakeConn) {
		for range 40 {
			c.write(strings.Repeat("$-1\r\n", 200))
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		name  string
		reply string
		then  func(c *fakeConn)
	}{
		{"array, stalled", "*30000000\r\n", nil},
		{"array, trickled", "*30000000\r\n", trickle},
		{"map", "%15000000\r\n", nil},
		{"set", "~30000000\r\n", nil},
		{"nested", "*2\r\n*3000\r\n" + strings.Repeat("*10000000\r\n", 3), nil},
	} {
		s := startFake(t, func(c *fakeConn, _ []string) {
			c.write(tc.reply)
			if tc.then != nil {
				tc.then(c)
			}
		})
		calls := aggregateCalls(t, s, 300*time.Millisecond)
		errs := make(map[string]error, len(calls))
		var mu sync.Mutex
		// The calls run together: each took 457 MiB at once.
		n := allocated(func() {
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Go(func() {
					err := call()
					mu.Lock()
					errs[name] = err
					mu.Unlock()
				})
			}
			wg.Wait()
		})
		if n > 16<<20 {
			t.Errorf("%s to %d calls: allocated %d MiB", tc.name, len(calls), n>>20)
		}
		for name, err := range errs {
			if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), s.addr()) {
				t.Errorf("%s to %s: %v, want the timeout's error naming %s", tc.name, name, err, s.addr())
			}
		}
	}
}

// TestAggregateAnnouncedOnlyConcurrent: 8 concurrent GetMultis answered
// *30000000 each allocated 457 MiB at once (3.6 GiB in all); together
// they now allocate little.
func TestAggregateAnnouncedOnlyConcurrent(t *testing.T) {
	s := startFake(t, func(c *fakeConn, _ []string) { c.write("*30000000\r\n") })
	b := newFakeBackend(t, s, "failure_limit=0&timeout=300ms")
	errs := make([]error, 8)
	n := allocated(func() {
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.GetMulti(context.Background(), []string{"a", "b"}) })
		}
		wg.Wait()
	})
	if n > 32<<20 {
		t.Errorf("8 concurrent getmultis answered *30000000: allocated %d MiB", n>>20)
	}
	for i, err := range errs {
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Errorf("getmulti %d: %v, want the timeout's error", i, err)
		}
	}
}

// A real server's big aggregates pass the guard's holding whole: an MGET
// of 10,000 keys (held until 30,000 bytes followed its header), of
// 16,384, and a mix of hits and misses.
func TestAggregateHonestBig(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	ctx := context.Background()
	for _, n := range []int{10000, maxMGetKeys} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("agg%d:%d", n, i)
			if i%3 == 0 {
				if err := b.Set(ctx, backend.Item{Key: keys[i], Value: []byte("v" + strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := b.GetMulti(ctx, keys)
		if err != nil {
			t.Fatalf("getmulti of %d keys: %v", n, err)
		}
		if want := (n + 2) / 3; len(got) != want {
			t.Errorf("getmulti of %d keys: %d found, want %d", n, len(got), want)
		}
		for i := 0; i < n; i += 3 {
			if v := string(got[keys[i]].Value); v != "v"+strconv.Itoa(i) {
				t.Errorf("getmulti of %d keys: %s = %q", n, keys[i], v)
			}
		}
	}
}

// Honest aggregates held by the guard, nested ones and long strings in
// them, sent in small pieces, reach go-redis whole: a script's reply of
// 5000 entries, each an ID and an array of fields, two fields 100 KiB
// strings (one within the bytes held for the first header), as XRANGE's.
func TestAggregateHeldInPieces(t *testing.T) {
	long := strings.Repeat("y", 100<<10)
	var reply strings.Builder
	var want []any
	reply.WriteString("*5000\r\n")
	for i := range 5000 {
		id := strconv.Itoa(i)
		reply.WriteString("*2\r\n" + bulk(id) + "*4\r\n" + bulk("f") + ":" + id + "\r\n" + bulk("g"))
		fields := []any{"f", int64(i), "g"}
		if i == 10 || i == 2500 {
			reply.WriteString(bulk(long))
			fields = append(fields, long)
		} else {
			reply.WriteString("_\r\n")
			fields = append(fields, nil)
		}
		want = append(want, []any{id, fields})
	}
	raw := reply.String()
	s := startFake(t, func(c *fakeConn, _ []string) {
		for rest := raw; rest != ""; {
			k := min(len(rest), 7<<10+3)
			c.write(rest[:k])
			rest = rest[k:]
			time.Sleep(100 * time.Microsecond)
		}
	})
	b := newFakeBackend(t, s, "failure_limit=0&timeout=10s")
	got, err := b.client.Do(context.Background(), "xrange", "s", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a reply of %d bytes in pieces read as another (%d entries)", len(raw), len(got.([]any)))
	}
}

// A long value that arrives in pieces is held by the guard (in pooled
// chunks) until half of it came, then read by its reader into its own
// buffer, the chunks copied and the rest read straight in: at most about
// 1.5 times its length allocated, not twice (the guard held it whole:
// 32 MiB of chunks, then 32 MiB of go-redis's buffer).
func TestLongStringInPiecesAllocation(t *testing.T) {
	const size = 32 << 20
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i*7 + i>>16)
	}
	stored := []byte(bulk(string(encode(value, 7))))
	s := startFake(t, longReplies(func(c *fakeConn, _ string) {
		for rest := stored; len(rest) > 0; {
			k := min(len(rest), 1<<20)
			c.writeBytes(rest[:k])
			rest = rest[k:]
			time.Sleep(time.Millisecond)
		}
	}))
	b := newFakeBackend(t, s, "failure_limit=0&timeout=10s")
	readers := longReaders(t, s, 10*time.Second)
	readers["get"] = func(keys ...string) (map[string]backend.Item, error) {
		it, err := b.Get(context.Background(), keys[0])
		return map[string]backend.Item{keys[0]: it}, err
	}
	for name, read := range readers {
		runtime.GC() // empty the pools: their chunks would hide what is allocated
		var got map[string]backend.Item
		var err error
		n := allocated(func() { got, err = read("a") })
		if err != nil || !bytes.Equal(got["a"].Value, value) {
			t.Fatalf("%s: read %d bytes (equal %v), %v", name, len(got["a"].Value), bytes.Equal(got["a"].Value, value), err)
		}
		t.Logf("%s: a %d MiB value in 1 MiB pieces allocated %.1f MiB", name, size>>20, float64(n)/(1<<20))
		if n > size*7/4 {
			t.Errorf("%s: a %d MiB value in 1 MiB pieces allocated %.1f MiB, more than 1.75 times its length", name, size>>20, float64(n)/(1<<20))
		}
	}
}

// An honest reply whose last element is a long array of RESP3 nulls (3
// bytes each, the shortest a value can be) was held for 3 bytes more
// than it has for each aggregate it is nested in (the nested array was
// counted as pending in its parent besides its elements), so that it
// waited for bytes that never came and failed at its timeout: a real
// server's answer to a script returning {'a', MGET of 5000 missing keys},
// and the same shapes from a fake, two levels deep and behind an
// attribute. They now read at once.
func TestAggregateNestedNullsNotHeldLonger(t *testing.T) {
	t.Parallel()
	nulls := make([]any, 5000)
	empties := make([]any, 5000)
	for i := range empties {
		empties[i] = ""
	}
	for _, tc := range []struct {
		reply string
		want  []any
	}{
		{"*2\r\n+a\r\n*5000\r\n" + strings.Repeat("_\r\n", 5000), []any{"a", nulls}},
		{"*1\r\n*1\r\n*5000\r\n" + strings.Repeat("+\r\n", 5000), []any{[]any{empties}}},
		{"*2\r\n+a\r\n|1\r\n+k\r\n+v\r\n*5000\r\n" + strings.Repeat("_\r\n", 5000), []any{"a", nulls}},
	} {
		s := startFake(t, func(c *fakeConn, _ []string) { c.write(tc.reply) })
		b := newFakeBackend(t, s, "failure_limit=0&timeout=10s")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		got, err := b.client.Do(ctx, "eval", "return 1", "0").Slice()
		cancel()
		if err != nil {
			t.Fatalf("%q...: %v, want the reply", tc.reply[:12], err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q...: read as %.60v", tc.reply[:12], got)
		}
	}

	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	args := []any{"eval", "return {'a', redis.call('mget', unpack(KEYS))}", 5000}
	for i := range 5000 {
		args = append(args, "nested-nulls:"+strconv.Itoa(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got, err := b.client.Do(ctx, args...).Slice()
	if err != nil {
		t.Fatalf("a script returning {'a', MGET of 5000 missing keys}: %v", err)
	}
	if inner, _ := got[1].([]any); len(got) != 2 || len(inner) != 5000 || inner[0] != nil {
		t.Errorf("a script returning {'a', MGET of 5000 missing keys}: read as %.60v", got)
	}
}
