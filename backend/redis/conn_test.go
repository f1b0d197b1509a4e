package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// The tests of this file check the guard every connection goes through
// (conn.go, scan.go), each against the defect of issue 22 it fixes, with
// a fake server (fake_test.go) that completes the handshake and then
// answers what the test says.

// allocated returns the bytes fn made the process allocate.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// hostileCalls are calls a reply can hurt, each with context.Background().
var hostileCalls = map[string]func(b *Backend) error{
	"get": func(b *Backend) error {
		_, err := b.Get(context.Background(), "k")
		return err
	},
	"increment (a script: go-redis reads a slice)": func(b *Backend) error {
		_, err := b.Increment(context.Background(), "k", 1)
		return err
	},
	"getmulti": func(b *Backend) error {
		_, err := b.GetMulti(context.Background(), []string{"k", "j"})
		return err
	},
	"set": func(b *Backend) error {
		return b.Set(context.Background(), backend.Item{Key: "k", Value: []byte("v")})
	},
	// Concurrent Gets, merged into MGETs: it returns an error if one of
	// them got a value, else the first error wrapping ErrProtocol (Gets
	// sent alone, as GETs, may miss).
	"batched gets (one MGET)": func(b *Backend) error {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = b.Get(context.Background(), fmt.Sprint("k", i))
			})
		}
		wg.Wait()
		var perr error
		for i, err := range errs {
			switch {
			case err == nil:
				return fmt.Errorf("get k%d returned a value", i)
			case perr == nil && errors.Is(err, ErrProtocol):
				perr = err
			case !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, ErrProtocol):
				return err
			}
		}
		return perr
	},
}

// TestHugeReplies answers every command with a length or a count the
// client must not allocate: before the guard, $9223372036854775807 made
// go-redis panic in makeslice, in a driver goroutine, killing the
// process, and $2147483648 made it allocate 2 GiB. Each call must fail
// with ErrProtocol, at once, having allocated little.
func TestHugeReplies(t *testing.T) {
	for _, reply := range []string{
		"$9223372036854775807\r\n",
		"$2147483648\r\n",
		"*2\r\n:1\r\n$2147483648\r\n",
		"*2\r\n:1\r\n$9223372036854775807\r\n",
		"*2147483648\r\n",
		"*9223372036854775807\r\n",
		"%2147483648\r\n",
		"~9223372036854775807\r\n",
		"*1\r\n*4611686018427387904\r\n",
		"=2147483648\r\n",
		"!9223372036854775807\r\n",
	} {
		s := startFake(t, func(c *fakeConn, _ []string) { c.write(reply) })
		b := newFakeBackend(t, s, "timeout=5s&failure_limit=0")
		for name, call := range hostileCalls {
			err := failsFastAndSmall(t, fmt.Sprintf("%q to %s", reply, name), func() error { return call(b) })
			if !errors.Is(err, backend.ErrUnavailable) {
				t.Errorf("%q to %s: %v, want an error wrapping ErrUnavailable too", reply, name, err)
			}
		}
	}
}

// TestLongLine answers with 10 MB without a line end: before the guard,
// go-redis read it all (2-3 s, 100-400 MB of heap). The call must fail
// fast, with a protocol error, having allocated little.
func TestLongLine(t *testing.T) {
	for _, kind := range []string{"+", "-", ":", "$", "*", "("} {
		line := []byte(kind + strings.Repeat("1", 10<<20))
		s := startFake(t, func(c *fakeConn, _ []string) { c.writeBytes(line) })
		b := newFakeBackend(t, s, "timeout=5s&failure_limit=0")
		for name, call := range hostileCalls {
			failsFastAndSmall(t, fmt.Sprintf("%q line to %s", kind, name), func() error { return call(b) })
		}
	}
}

// failsFastAndSmall runs call, which must fail with ErrProtocol within a
// second, having allocated at most 16 MiB: the reply's header or line
// alone is the protocol error. It returns call's error.
func failsFastAndSmall(t *testing.T, what string, call func() error) error {
	t.Helper()
	var err error
	start := time.Now()
	n := allocated(func() { err = call() })
	d := time.Since(start)
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("%s: %v, want an error wrapping ErrProtocol", what, err)
	}
	if n > 16<<20 {
		t.Errorf("%s: allocated %d MiB", what, n>>20)
	}
	if d > time.Second {
		t.Errorf("%s: took %v: the header alone is a protocol error", what, d)
	}
	return err
}

// TestMalformedReplies answers with what is not RESP, or not within its
// bounds: every call fails with ErrProtocol (and nothing crashes).
func TestMalformedReplies(t *testing.T) {
	for _, reply := range []string{
		strings.Repeat("|0\r\n", 100000) + "+OK\r\n",
		strings.Repeat("*1\r\n", 100000) + "+OK\r\n",
		"\x00\x13\x37 binary noise \xff\xfe",
		"$3\r\nabcdef\r\n",
		"*2\r\n$1\r\nab\r\n",
		"$?\r\n;3\r\nabc\r\n;0\r\n",
		":12a\r\n",
		"#maybe\r\n",
	} {
		s := startFake(t, func(c *fakeConn, _ []string) { c.write(reply) })
		b := newFakeBackend(t, s, "timeout=2s&failure_limit=0")
		for name, call := range hostileCalls {
			if err := call(b); !errors.Is(err, ErrProtocol) {
				t.Errorf("%.30q to %s: %v, want ErrProtocol", reply, name, err)
			}
		}
	}
}

// TestExtraReply has the server answer a GET twice: the second reply is
// a reply without a request. Before the guard, the next GET on the
// connection read it: Get("j") returned k's value. Now no read returns
// another key's value.
func TestExtraReply(t *testing.T) {
	s := startFake(t, func(c *fakeConn, args []string) {
		if strings.EqualFold(args[0], "get") && args[1] == "k" {
			c.write(storedBulk(valueOf("k")) + storedBulk(valueOf("k")))
			return
		}
		keyGets(c, args)
	})
	b := newFakeBackend(t, s, "timeout=2s&failure_limit=0")
	ctx := context.Background()
	for range 20 {
		if it, err := b.Get(ctx, "k"); err == nil {
			gotKey(t, "k", it.Value)
		} else if !errors.Is(err, ErrProtocol) {
			t.Errorf("get k: %v, want a value or ErrProtocol", err)
		}
		it, err := b.Get(ctx, "j")
		if err != nil {
			t.Fatalf("get j: %v", err)
		}
		gotKey(t, "j", it.Value)
	}
}

// TestWrongReplies answers commands with replies of another type or
// count: no call reports success or a value.
func TestWrongReplies(t *testing.T) {
	for _, c := range []struct {
		cmd, reply string
		call       func(b *Backend) error
	}{
		{"set", ":1\r\n", hostileCalls["set"]},
		{"set", "+QUEUED\r\n", hostileCalls["set"]},
		{"set", "*1\r\n+OK\r\n", hostileCalls["set"]},
		{"get", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", hostileCalls["get"]},
		{"get", "%1\r\n$1\r\na\r\n$1\r\nb\r\n", hostileCalls["get"]},
		{"mget", "*1\r\n" + storedBulk("x"), hostileCalls["getmulti"]},
		{"mget", "*3\r\n" + storedBulk("x") + storedBulk("y") + storedBulk("z"), hostileCalls["getmulti"]},
		{"mget", "*2\r\n:1\r\n:2\r\n", hostileCalls["getmulti"]},
		{"mget", "one more", hostileCalls["batched gets (one MGET)"]},
		{"mget", "one less", hostileCalls["batched gets (one MGET)"]},
		{"evalsha", "+OK\r\n", hostileCalls["increment (a script: go-redis reads a slice)"]},
		{"evalsha", "*1\r\n$1\r\n1\r\n", hostileCalls["increment (a script: go-redis reads a slice)"]},
		// Another call's reply (its echo is not this call's).
		{"evalsha", "*3\r\n$8\r\n12345678\r\n:1\r\n$1\r\n5\r\n", hostileCalls["increment (a script: go-redis reads a slice)"]},
		{"evalsha", "*2\r\n$8\r\n12345678\r\n:1\r\n", func(b *Backend) error {
			return b.CompareAndSwap(context.Background(), backend.Item{Key: "k", Value: []byte("v"), CAS: 1})
		}},
		{"del", ":7\r\n", func(b *Backend) error { return b.Delete(context.Background(), "k") }},
		{"set", ":1\r\n", func(b *Backend) error {
			return b.SetMulti(context.Background(), []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}})
		}},
		{"del", ":3\r\n", func(b *Backend) error { return b.DeleteMulti(context.Background(), []string{"a", "b"}) }},
	} {
		s := startFake(t, func(fc *fakeConn, args []string) {
			if strings.EqualFold(args[0], c.cmd) {
				switch c.reply {
				case "one more", "one less":
					n := len(args) - 1
					if c.reply == "one more" {
						n++
					} else {
						n--
					}
					fc.write(fmt.Sprintf("*%d\r\n", n))
					for i := range n {
						fc.write(storedBulk(valueOf(fmt.Sprint(i))))
					}
				default:
					fc.write(c.reply)
				}
				return
			}
			if c.cmd == "mget" && strings.EqualFold(args[0], "get") {
				fc.write("$-1\r\n") // a lone Get (not merged into an MGET) misses
				return
			}
			if !keyGets(fc, args) {
				fc.write("-ERR unexpected\r\n")
			}
		})
		b := newFakeBackend(t, s, "timeout=2s&failure_limit=0")
		if err := c.call(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s answered %.30q: %v, want ErrProtocol", c.cmd, c.reply, err)
		}
	}
}

// TestScriptRepliesOfWrongShape answers each script with its call's echo
// and an integer code (what the lane checked before), followed by fewer
// elements than the code promises, more, elements of another type, or
// with a code the script never answers. Before, GetTTL read its reply's
// elements before checking their count: {echo, 1} crashed the host
// (index out of range, in the caller's goroutine, not recovered); CAS,
// Touch and Unlock took {echo, 1, "x"} for success; the others were
// errors that wrapped nothing. Now every such reply is an error wrapping
// ErrProtocol, and nothing panics.
func TestScriptRepliesOfWrongShape(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(b *Backend) error{
		"get_ttl": func(b *Backend) error {
			_, err := b.GetTTL(ctx, "k")
			return err
		},
		"increment": func(b *Backend) error {
			_, err := b.Increment(ctx, "k", 1)
			return err
		},
		"cas": func(b *Backend) error {
			return b.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v"), CAS: 1})
		},
		"touch": func(b *Backend) error { return b.Touch(ctx, "k", time.Minute) },
		"unlock": func(b *Backend) error {
			_, err := b.Unlock(ctx, "k", "token")
			return err
		},
	}
	x := bulk("x")
	for _, c := range []struct {
		call  string
		reply []string // after the echo
	}{
		{"get_ttl", []string{":1\r\n"}}, // the probe's: the value and the PTTL missing
		{"get_ttl", []string{":1\r\n", x}},
		{"get_ttl", []string{":1\r\n", ":5\r\n", ":6\r\n"}},
		{"get_ttl", []string{":1\r\n", x, ":5\r\n", ":6\r\n"}},
		{"get_ttl", []string{":0\r\n", x}},
		{"get_ttl", []string{":-1\r\n", x}},
		{"get_ttl", []string{":9\r\n"}},
		{"increment", []string{":1\r\n"}},
		{"increment", []string{":1\r\n", ":5\r\n"}},
		{"increment", []string{":1\r\n", bulk("12x")}},
		{"increment", []string{":-1\r\n"}},
		{"increment", []string{":-1\r\n", ":3\r\n", x}},
		{"cas", []string{":1\r\n", x}},
		{"cas", []string{":-2\r\n", ":1\r\n"}},
		{"cas", []string{":-1\r\n"}},
		{"cas", []string{":9\r\n"}},
		{"touch", []string{":1\r\n", x}},
		{"touch", []string{":0\r\n", ":0\r\n"}},
		{"touch", []string{":-1\r\n", x}},
		{"touch", []string{":-2\r\n"}},
		{"unlock", []string{":1\r\n", x}},
		{"unlock", []string{":-1\r\n", x, ":1\r\n"}},
		{"unlock", []string{":2\r\n"}},
	} {
		what := fmt.Sprintf("%s answered {echo, %q}", c.call, strings.Join(c.reply, " "))
		s := startFake(t, func(fc *fakeConn, args []string) {
			switch strings.ToLower(args[0]) {
			case "evalsha", "eval":
				fc.write(fmt.Sprintf("*%d\r\n", 1+len(c.reply)), bulk(args[len(args)-1]))
				fc.write(c.reply...)
			default:
				fc.write("-ERR unexpected\r\n")
			}
		})
		b := newFakeBackend(t, s, "timeout=2s&failure_limit=0")
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic: %v", what, r)
				}
			}()
			if err := calls[c.call](b); !errors.Is(err, ErrProtocol) {
				t.Errorf("%s: %v, want ErrProtocol", what, err)
			}
		}()
	}
}

// TestNoResurrectedWrite partitions the client from the server (the
// hostile proxy holds what the client sends, as a partition does while the
// client's kernel retransmits it) while writes time out, then heals the
// partition. Before the guard, the client closed the timed-out connection
// with a FIN and the held writes reached the server after the heal, over
// the value written before: a write given up on was applied later. The
// guard resets the connection (SO_LINGER 0), so they are dropped.
func TestNoResurrectedWrite(t *testing.T) {
	srv := testserver.Redis(t)
	p := hostile.Start(t, srv.Addr, hostile.RESPFramer)
	b := mustOpen(t, "redis://"+p.Addr()+"?timeout=300ms&failure_limit=0")
	rc := rawClient(t, srv.Addr)
	ctx := context.Background()
	keys := []string{"lone", "batched/0", "batched/1", "batched/2", "batched/3", "incr"}
	for _, k := range keys {
		val := []byte("acknowledged")
		if k == "incr" {
			val = []byte("1")
		}
		if err := b.Set(ctx, backend.Item{Key: k, Value: val}); err != nil {
			t.Fatal(err)
		}
	}

	p.Hold()
	// A lone write, concurrent (pipelined) writes and a script, each given
	// up on at its timeout.
	if err := b.Set(ctx, backend.Item{Key: "lone", Value: []byte("given up")}); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("set during the partition: %v", err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_ = b.Set(ctx, backend.Item{Key: fmt.Sprint("batched/", i), Value: []byte("given up")})
		})
	}
	wg.Go(func() { _, _ = b.Increment(ctx, "incr", 100) })
	wg.Wait()
	// The proxy ends the server side of a connection the client reset:
	// wait (a while at most) until the server has only the test's own
	// client left, so that the heal does not race the proxy's reading of
	// the resets. Connections closed with a FIN stay, holding their writes.
	waited := time.Now()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && connectedClients(t, rc) > 1; {
		time.Sleep(10 * time.Millisecond)
	}
	if n := connectedClients(t, rc); n > 1 {
		list, _ := rc.ClientList(ctx).Result()
		t.Logf("after %v: %d clients:\n%s", time.Since(waited), n, list)
	}
	p.Heal()

	// Whatever the proxy still held for the client's connections is
	// delivered now, unless they were reset: watch the keys for a while.
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, k := range keys {
			s, err := rc.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := decode(k, s)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "1", false: "acknowledged"}[k == "incr"]; string(v) != want {
				t.Fatalf("%s = %q after the heal: a write given up on was applied", k, v)
			}
		}
	}
}

// TestNewFromClientGuarded checks that a Backend on a caller's client
// guards the connections the client dials from then on (its own commands
// too), until Close.
func TestNewFromClientGuarded(t *testing.T) {
	s := startFake(t, func(c *fakeConn, _ []string) { c.write("$9223372036854775807\r\n") })
	rc := goredis.NewClient(&goredis.Options{Addr: s.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rc.Close()
	b, err := NewFromClient(rc, WithTimeout(2*time.Second), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrProtocol) {
		t.Errorf("get: %v, want ErrProtocol", err)
	}
	if err := rc.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "protocol error") {
		t.Errorf("the client's own get: %v, want a protocol error", err)
	}
}

// connectedClients returns the connected_clients of rc's server.
func connectedClients(t *testing.T, rc *goredis.Client) int {
	t.Helper()
	info, err := rc.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(parseInfo(info)["connected_clients"])
	if err != nil {
		t.Fatalf("connected_clients in %q: %v", info, err)
	}
	return n
}

// longReplies answers GET and MGET with send(c, key) for each key.
func longReplies(send func(c *fakeConn, key string)) func(c *fakeConn, args []string) {
	return func(c *fakeConn, args []string) {
		switch strings.ToLower(args[0]) {
		case "get":
			send(c, args[1])
		case "mget":
			c.write("*" + strconv.Itoa(len(args)-1) + "\r\n")
			for _, k := range args[1:] {
				send(c, k)
			}
		}
	}
}

// longReaders are the reads go-redis reads itself: a standalone
// server's GetMulti (an MGET), and a Ring's Get and GetMulti; each
// returns what it read of keys.
func longReaders(t *testing.T, s *fakeServer, timeout time.Duration) map[string]func(keys ...string) (map[string]backend.Item, error) {
	ctx := context.Background()
	b := newFakeBackend(t, s, "failure_limit=0&timeout="+timeout.String())
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": s.addr()},
		HeartbeatFrequency: time.Hour, ContextTimeoutEnabled: true})
	t.Cleanup(func() { ring.Close() })
	rb, err := NewFromClient(ring, WithTimeout(timeout), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	return map[string]func(keys ...string) (map[string]backend.Item, error){
		"standalone getmulti": func(keys ...string) (map[string]backend.Item, error) { return b.GetMulti(ctx, keys) },
		"ring get": func(keys ...string) (map[string]backend.Item, error) {
			it, err := rb.Get(ctx, keys[0])
			return map[string]backend.Item{keys[0]: it}, err
		},
		"ring getmulti": func(keys ...string) (map[string]backend.Item, error) { return rb.GetMulti(ctx, keys) },
	}
}

// TestLongStringAnnouncedOnly: a reply announcing a long string (256 MiB,
// under the default max value length of 512 MiB) that sends 1 KiB of it
// and stalls fails the read at its timeout having allocated little, on
// the reads go-redis reads itself: go-redis allocated the announced length
// first, and held it until the timeout (256 MiB per call; 2 GiB with 8
// concurrent GetMultis), so that a broken or hostile server could exhaust
// the client's memory. The guard now holds the header's end until the
// string's bytes have arrived.
func TestLongStringAnnouncedOnly(t *testing.T) {
	const announced = 256 << 20
	stall := "$" + strconv.Itoa(announced) + "\r\n" + strings.Repeat("x", 1<<10)
	s := startFake(t, longReplies(func(c *fakeConn, _ string) { c.write(stall) }))
	for name, read := range longReaders(t, s, 300*time.Millisecond) {
		var err error
		if n := allocated(func() { _, err = read("a", "b") }); n > 16<<20 {
			t.Errorf("%s: a reply announcing %d MiB and sending 1 KiB allocated %d MiB", name, announced>>20, n>>20)
		}
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Errorf("%s: %v, want the timeout's error", name, err)
		}
	}
}

// Long strings that arrive in pieces, whole or split anywhere, one or
// several in a reply, are read whole through the guard's holding.
func TestLongStringInPieces(t *testing.T) {
	value := make([]byte, 3<<20+5)
	for i := range value {
		value[i] = byte(i*7 + i>>16)
	}
	s := startFake(t, longReplies(func(c *fakeConn, key string) {
		for rest := bulk(string(encode(value, casOf(key)))); rest != ""; {
			k := min(len(rest), 200<<10+7)
			c.write(rest[:k])
			rest = rest[k:]
			time.Sleep(time.Millisecond)
		}
	}))
	for name, read := range longReaders(t, s, 5*time.Second) {
		keys := []string{"a", "b", "c"}
		if name == "ring get" {
			keys = keys[:1]
		}
		got, err := read(keys...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, k := range keys {
			if v := got[k].Value; !bytes.Equal(v, value) {
				t.Errorf("%s: %s read %d bytes (equal %v)", name, k, len(v), bytes.Equal(v, value))
			}
		}
	}
}

// go-redis's pool asks a connection for its syscall.RawConn on every
// command, to peek at it (a close by the server, unexpected data) before
// handing it out: the guard made a new one each time, one allocation per
// call of every command. It is made once per connection, and still sees
// the server's close.
func TestSyscallConnAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- sc
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	gc, ok := newGuard(DefaultMaxValueLen).wrap(nc, ln.Addr().String(), false).(syscall.Conn)
	if !ok {
		t.Fatal("a guarded TCP connection is not a syscall.Conn: go-redis would not check it")
	}
	defer nc.Close()
	if a := testing.AllocsPerRun(100, func() { _, _ = gc.SyscallConn() }); a != 0 {
		t.Errorf("SyscallConn allocated %.0f times per call, want 0", a)
	}
	// What go-redis's check does (internal/pool/conn_check.go): a
	// non-blocking peek, which reads 0 bytes and no error once the
	// server has closed its side.
	peek := func() (n int, err error) {
		raw, err := gc.SyscallConn()
		if err != nil {
			return 0, err
		}
		var perr error
		err = raw.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true
		})
		if err == nil {
			err = perr
		}
		return n, err
	}
	if _, err := peek(); err != syscall.EAGAIN {
		t.Fatalf("peek at an open, idle connection: %v, want EAGAIN", err)
	}
	sc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := peek()
		if n == 0 && err == nil {
			break // EOF: the check sees the close
		}
		if time.Now().After(deadline) {
			t.Fatalf("peek after the server closed: %d bytes, %v; want EOF", n, err)
		}
		time.Sleep(time.Millisecond)
	}
}
