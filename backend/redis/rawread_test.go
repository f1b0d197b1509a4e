package redis

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// flushGets runs one flush of Gets of keys on b's lane, as the pipelining
// engine does (one key: a GET; more: an MGET), and returns the calls,
// answered.
func flushGets(b *Backend, keys ...string) []*call {
	calls := make([]*call, len(keys))
	for i, k := range keys {
		calls[i] = b.newCall(k)
		calls[i].get = true
	}
	batch := append([]*call(nil), calls...)
	if len(calls) == 1 {
		batch = calls[0].batchOfOne()
	}
	b.lane0.flush(batch)
	for _, c := range calls {
		<-c.done
	}
	return calls
}

// storedAs returns the RESP bulk string of "v:"+key as this package
// stores it, with a token of key's own (a token read under two keys is
// the mark of a reply for another call, see owners).
func storedAs(key string) string { return bulk(string(encode([]byte("v:"+key), casOf(key)))) }

// casOf is the token storedAs gives key.
func casOf(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() | 1
}

// The lanes' GETs and MGETs read their replies themselves (rawread.go),
// not through go-redis's reading of strings: every reply a server may
// send is read as go-redis's reading was, and one that does not fit the
// command is a protocol error, with nothing read from it kept.
func TestRawGetReplies(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 40)
	type want struct {
		value string // the Value read, if err is ""
		err   string // what the error says: "protocol", "notfound", "reply" (the server's), or a foreign value's message
	}
	for _, tc := range []struct {
		name  string
		keys  []string
		reply string
		want  []want
	}{
		{"get value", []string{"k"}, storedAs("k"), []want{{value: "v:k"}}},
		{"get null resp2", []string{"k"}, "$-1\r\n", []want{{err: "notfound"}}},
		{"get null resp3", []string{"k"}, "_\r\n", []want{{err: "notfound"}}},
		{"get empty", []string{"k"}, "$0\r\n\r\n", []want{{err: foreignError("k", "").Error()}}},
		{"get short foreign", []string{"k"}, bulk("hello"), []want{{err: foreignError("k", "hello").Error()}}},
		{"get long foreign", []string{"k"}, bulk(long), []want{{err: foreignError("k", long).Error()}}},
		{"get wrong type", []string{"k"}, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", []want{{err: "wrongtype"}}},
		{"get error reply", []string{"k"}, "-ERR busy\r\n", []want{{err: "reply"}}},
		{"get blob error", []string{"k"}, "!8\r\nERR busy\r\n", []want{{err: "reply"}}},
		{"get status", []string{"k"}, "+OK\r\n", []want{{err: "protocol"}}},
		{"get integer", []string{"k"}, ":5\r\n", []want{{err: "protocol"}}},
		{"get array", []string{"k"}, "*1\r\n$3\r\nabc\r\n", []want{{err: "protocol"}}},
		{"mget values", []string{"a", "b", "c"}, "*3\r\n" + storedAs("a") + storedAs("b") + storedAs("c"),
			[]want{{value: "v:a"}, {value: "v:b"}, {value: "v:c"}}},
		{"mget misses", []string{"a", "b", "c"}, "*3\r\n" + storedAs("a") + "$-1\r\n" + "$0\r\n\r\n",
			[]want{{value: "v:a"}, {err: "notfound"}, {err: "notfound"}}},
		{"mget foreign", []string{"a", "b", "c"}, "*3\r\n" + bulk(long) + storedAs("b") + "_\r\n",
			[]want{{err: foreignError("a", long).Error()}, {value: "v:b"}, {err: "notfound"}}},
		{"mget short count", []string{"a", "b", "c"}, "*2\r\n" + storedAs("a") + storedAs("b"),
			[]want{{err: "protocol"}, {err: "protocol"}, {err: "protocol"}}},
		{"mget element of another type", []string{"a", "b", "c"}, "*3\r\n" + storedAs("a") + "+OK\r\n" + storedAs("c"),
			[]want{{err: "protocol"}, {err: "protocol"}, {err: "protocol"}}},
		{"mget null", []string{"a", "b", "c"}, "_\r\n", []want{{err: "protocol"}, {err: "protocol"}, {err: "protocol"}}},
		{"mget error reply", []string{"a", "b", "c"}, "-ERR busy\r\n", []want{{err: "reply"}, {err: "reply"}, {err: "reply"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, func(c *fakeConn, args []string) {
				switch strings.ToLower(args[0]) {
				case "get", "mget":
					c.write(tc.reply)
				}
			})
			b := newFakeBackend(t, s, "timeout=2s")
			calls := flushGets(b, tc.keys...)
			for i, c := range calls {
				w := tc.want[i]
				var re goredis.Error
				switch {
				case w.err == "" && (c.err != nil || string(c.item.Value) != w.value || c.item.CAS != casOf(c.key) || c.item.Key != c.key):
					t.Errorf("%s: read %q (CAS %d, key %q), %v; want %q", c.key, c.item.Value, c.item.CAS, c.item.Key, c.err, w.value)
				case w.err == "":
				case c.item.Value != nil:
					t.Errorf("%s: read %q with error %v", c.key, c.item.Value, c.err)
				case w.err == "notfound":
					if !errors.Is(c.err, backend.ErrNotFound) || !c.final {
						t.Errorf("%s: %v (final %v), want a miss", c.key, c.err, c.final)
					}
				case w.err == "protocol":
					if !errors.Is(c.err, ErrProtocol) || c.final {
						t.Errorf("%s: %v (final %v), want a protocol error", c.key, c.err, c.final)
					}
				case w.err == "reply":
					if !errors.As(c.err, &re) || re.Error() != "ERR busy" || c.final {
						t.Errorf("%s: %v (final %v), want the server's error reply", c.key, c.err, c.final)
					}
				case w.err == "wrongtype":
					if !errors.Is(c.err, ErrForeignValue) || !errors.As(c.err, &re) || !c.final {
						t.Errorf("%s: %v (final %v), want a foreign value of another type", c.key, c.err, c.final)
					}
				default:
					if !errors.Is(c.err, ErrForeignValue) || c.err.Error() != "redis: get: "+w.err || !c.final {
						t.Errorf("%s: %v (final %v), want %q", c.key, c.err, c.final, "redis: get: "+w.err)
					}
				}
				c.release()
			}
		})
	}
}

// A value longer than the largest this package writes (max value length
// and header) is refused before anything is allocated for it, whatever
// reads it first.
func TestRawGetTooLong(t *testing.T) {
	t.Parallel()
	s := startFake(t, func(c *fakeConn, args []string) {
		c.write("$100000\r\n" + strings.Repeat("x", 100000) + "\r\n")
	})
	b := newFakeBackend(t, s, "timeout=2s&max_value_length=1000")
	c := flushGets(b, "k")[0]
	if !errors.Is(c.err, ErrProtocol) || c.item.Value != nil {
		t.Errorf("a 100000-byte value with max_value_length=1000: %q, %v; want a protocol error", c.item.Value, c.err)
	}
	r := &replyReader{l: b.lane0, gets: []*call{c}, bulk: -1}
	if _, err := r.Write([]byte("$1012")); !errors.Is(err, ErrProtocol) {
		t.Errorf("the reader took a 1012-byte value with max_value_length=1000: %v", err)
	}
	if _, err := r.Write([]byte("$1011")); err != nil {
		t.Errorf("the reader refused a 1011-byte value (1000 and the header): %v", err)
	}
}

// Reading a value costs two allocations: its buffer, and the
// io.LimitedReader of the io.CopyN through which go-redis hands its bytes
// to the reader (go-redis's reading of strings cost one, the string).
// The reader's scratch space is its own, not allocated per value: it
// was, and reading a value cost four. The reader is fed here as go-redis
// feeds it (ReadRawReplyWriteTo).
func TestRawGetAllocs(t *testing.T) {
	b := newFakeBackend(t, startFake(t, func(*fakeConn, []string) {}), "timeout=2s")
	c := b.newCall("k")
	c.get = true
	reply := storedAs("k")
	line, body, _ := strings.Cut(reply, "\r\n")
	n, _ := strconv.Atoi(line[1:])
	lineB, crlf := []byte(line), []byte("\r\n")
	var src strings.Reader
	r := &replyReader{}
	read := func() {
		*r = replyReader{l: b.lane0, gets: r.gets[:0], bulk: -1}
		r.gets = append(r.gets, c)
		c.item, c.err = backend.Item{}, nil
		src.Reset(body)
		if _, err := r.Write(lineB); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Write(crlf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(r, &src, int64(n)+2); err != nil {
			t.Fatal(err)
		}
		if c.err != nil || string(c.item.Value) != valueOf("k") {
			t.Fatalf("read %q, %v", c.item.Value, c.err)
		}
	}
	read()
	if a := testing.AllocsPerRun(100, read); a > 2 {
		t.Errorf("reading a value allocated %.0f times, more than 2", a)
	}
}

// A reply announcing a long value (here 256 MiB, under the default max
// value length of 512 MiB) that then sends 1 KiB and stalls costs about
// what arrived, not what was announced: the reader allocated the whole
// announced length before reading (256 MiB per GET, and per MGET, held
// until the timeout), so that a few concurrent calls to a broken or
// hostile server could exhaust the client's memory.
func TestRawGetAnnouncedLengthNotAllocated(t *testing.T) {
	const announced = 256 << 20
	stall := "$" + strconv.Itoa(announced) + "\r\n" + string(encode([]byte(strings.Repeat("x", 1<<10)), 7))
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "get":
			c.write(stall)
		case "mget":
			c.write("*"+strconv.Itoa(len(args)-1)+"\r\n", stall)
		}
	})
	b := newFakeBackend(t, s, "timeout=300ms&failure_limit=0")
	for _, keys := range [][]string{{"k"}, {"a", "b"}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		calls := flushGets(b, keys...)
		runtime.ReadMemStats(&after)
		for _, c := range calls {
			if c.err == nil || c.item.Value != nil {
				t.Errorf("%d keys: %s read %d bytes, %v; want the timeout's error", len(keys), c.key, len(c.item.Value), c.err)
			}
			c.release()
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
			t.Errorf("%d keys: a reply announcing %d MiB and sending 1 KiB allocated %d MiB", len(keys), announced>>20, n>>20)
		}
	}
}

// A long value that arrives in pieces is read whole, by a GET and within
// an MGET, into the buffer of its own length.
func TestRawGetLongValueInPieces(t *testing.T) {
	value := make([]byte, 3<<20+5)
	for i := range value {
		value[i] = byte(i*7 + i>>16)
	}
	send := func(c *fakeConn, key string) {
		for rest := bulk(string(encode(value, casOf(key)))); rest != ""; {
			k := min(len(rest), 200<<10)
			c.write(rest[:k])
			rest = rest[k:]
			time.Sleep(time.Millisecond)
		}
	}
	s := startFake(t, func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "get":
			send(c, args[1])
		case "mget":
			c.write("*" + strconv.Itoa(len(args)-1) + "\r\n")
			for _, k := range args[1:] {
				send(c, k)
			}
		}
	})
	b := newFakeBackend(t, s, "timeout=5s")
	for _, keys := range [][]string{{"k"}, {"a", "b"}} {
		for _, c := range flushGets(b, keys...) {
			if c.err != nil || !bytes.Equal(c.item.Value, value) {
				t.Errorf("%d keys: %s read %d bytes (equal %v), %v", len(keys), c.key, len(c.item.Value), bytes.Equal(c.item.Value, value), c.err)
			}
			c.release()
		}
	}
}

// On a connection the guard does not hold long strings on (one a client
// given to NewFromClient dialed before), the reader itself reads a long
// value as its bytes arrive: a bulk string announcing 256 MiB of which 1
// KiB came allocates little (it allocated 256 MiB). The reader is fed
// here as go-redis feeds it.
func TestRawGetAnnouncedLengthUnguarded(t *testing.T) {
	const announced = 256 << 20
	s := startFake(t, func(*fakeConn, []string) {})
	b, err := NewFromClient(rawClient(t, s.addr()), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := b.newCall("k")
	c.get = true
	r := &replyReader{l: b.lane0, gets: []*call{c}, bulk: -1}
	if _, err := r.Write([]byte("$" + strconv.Itoa(announced))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("\r\n")); err != nil {
		t.Fatal(err)
	}
	stalled := errors.New("stalled")
	sent := io.MultiReader(strings.NewReader(string(encode([]byte(strings.Repeat("x", 1<<10)), 7))), iotest.ErrReader(stalled))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = io.CopyN(r, sent, announced+2)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, stalled) || c.item.Value != nil {
		t.Errorf("a value announcing %d bytes, of which 1 KiB came: read %d bytes, %v; want the reader's error", announced, len(c.item.Value), err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("a value announcing %d MiB, of which 1 KiB came, allocated %d MiB", announced>>20, n>>20)
	}
}

// A value read under two keys (another call's reply) is a protocol error
// worded once: the lane returned the Get's own protocol error as the
// message of a new one, "protocol error from X: protocol error from X:".
func TestAnotherKeysValueWordedOnce(t *testing.T) {
	t.Parallel()
	s := startFake(t, func(c *fakeConn, args []string) {
		if strings.EqualFold(args[0], "get") {
			c.write(storedAs("a")) // a's value, whatever the key asked
		}
	})
	b := newFakeBackend(t, s, "timeout=2s")
	if c := flushGets(b, "a")[0]; c.err != nil {
		t.Fatalf("get a: %v", c.err)
	}
	_, err := b.Get(t.Context(), "b")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("get b answered with a's value: %v, want a protocol error", err)
	}
	if msg := err.Error(); strings.Count(msg, "protocol error from") != 1 || !strings.Contains(msg, `key "b" is another key's`) {
		t.Errorf("get b: %q, want one \"protocol error from\" naming key \"b\"", msg)
	}
}

// A SET's arguments are held in its call (pooled), as a lone GET's are,
// not in a slice made for each: setCall allocated it, one allocation per
// Set beside go-redis's command. Its arguments are still the SET's.
func TestSetCallAllocs(t *testing.T) {
	b := newFakeBackend(t, startFake(t, func(*fakeConn, []string) {}), "timeout=2s")
	ctx := context.Background()
	v := []byte("value")
	c := b.setCall(ctx, "k", v, 1500, true)
	want := []any{"set", "k", "value", "nx", "px", int64(1500)}
	args := c.cmd.Args()
	if len(args) != len(want) {
		t.Fatalf("SET arguments %v, want %v", args, want)
	}
	for i, a := range args {
		switch a := a.(type) {
		case *string:
			args[i] = *a
		case *int64:
			args[i] = *a
		case *valueArg:
			args[i] = string(a.val)
		}
		if args[i] != want[i] {
			t.Fatalf("SET argument %d is %v, want %v", i, args[i], want[i])
		}
	}
	c.release()
	// One allocation is left: go-redis's command.
	if a := testing.AllocsPerRun(100, func() { b.setCall(ctx, "k", v, 1500, true).release() }); !raceOn && a > 1 {
		t.Errorf("setCall allocated %.0f times, want at most 1 (go-redis's command)", a)
	}
}
