package memcached_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// fakeServer is a TCP server that reads a request line and answers with
// respond(line, conn). It counts the connections it accepted and closes
// them all on Close.
type fakeServer struct {
	ln      net.Listener
	respond func(line string, c net.Conn, r *bufio.Reader) bool // false: close
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	open    atomic.Int64
}

func newFakeServer(t *testing.T, respond func(line string, c net.Conn, r *bufio.Reader) bool) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, respond: respond}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.open.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.open.Add(-1)
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if !s.respond(strings.TrimRight(line, "\r\n"), c, r) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// fakeClient returns a Client on s with opts, closed when the test ends.
func fakeClient(t *testing.T, s *fakeServer, opts ...memcached.Option) *memcached.Client {
	t.Helper()
	c, err := memcached.New([]string{s.Addr()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *fakeServer) Addr() string { return s.ln.Addr().String() }

func (s *fakeServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// newProtoFake is a fakeServer that passes the driver's handshake: it
// answers the first "mn" of each connection with MN (meta true: the
// driver then speaks the meta protocol, and asks "stats settings" and
// "stats", each answered with END) or ERROR (meta false: the driver falls
// back to the text protocol). Every other line goes to respond.
func newProtoFake(t *testing.T, meta bool, respond func(line string, c net.Conn, r *bufio.Reader) bool) *fakeServer {
	var mu sync.Mutex
	seen := map[net.Conn]int{} // lines read on each connection
	return newFakeServer(t, func(line string, c net.Conn, r *bufio.Reader) bool {
		mu.Lock()
		i := seen[c]
		seen[c] = i + 1
		mu.Unlock()
		switch {
		case i == 0 && line == "mn" && meta:
			fmt.Fprintf(c, "MN\r\n")
			return true
		case i == 0 && line == "mn":
			fmt.Fprintf(c, "ERROR\r\n")
			return true
		case meta && i == 1 && line == "stats settings", meta && i == 2 && line == "stats":
			fmt.Fprintf(c, "END\r\n")
			return true
		}
		return respond(line, c, r)
	})
}

// metaFlags returns the flags that memcached echoes in its reply to the
// meta request line: " k<key>" if it asks for the key (k), and its opaque
// (" O<n>").
func metaFlags(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	var b strings.Builder
	for _, fl := range f[2:] {
		switch {
		case fl == "k":
			b.WriteString(" k" + f[1])
		case strings.HasPrefix(fl, "O"):
			b.WriteString(" " + fl)
		}
	}
	return b.String()
}

// TestBadServers: garbage, a reply cut in the middle, a silent server, on
// the meta protocol and on the text protocol. Each gives a clear error,
// never a panic or a hang.
func TestBadServers(t *testing.T) {
	// reply sends s, with the request's flags (metaFlags) in place of
	// {flags}.
	reply := func(s string, keep bool) func(string, net.Conn, *bufio.Reader) bool {
		return func(line string, c net.Conn, _ *bufio.Reader) bool {
			fmt.Fprint(c, strings.ReplaceAll(s, "{flags}", metaFlags(line)))
			return keep
		}
	}
	for _, tc := range []struct {
		name       string
		meta, text func(line string, c net.Conn, r *bufio.Reader) bool
		want       error
		wantMsg    string
	}{
		{"garbage", reply("HELLO THERE\r\n", true), reply("HELLO THERE\r\n", true), memcached.ErrProtocol, "HELLO THERE"},
		{"bad value header", reply("VA notanumber c1\r\nx\r\n", true), reply("VALUE k 0 notanumber 1\r\nx\r\nEND\r\n", true),
			memcached.ErrProtocol, "notanumber"},
		{"closes mid-reply", reply("VA 100 c1{flags}\r\nonly a part", false), reply("VALUE k 0 100 1\r\nonly a part", false),
			backend.ErrUnavailable, "EOF"},
		{"server error", reply("SERVER_ERROR out of memory\r\n", true), reply("SERVER_ERROR out of memory\r\n", true),
			backend.ErrUnavailable, "out of memory"},
		{"closes at once", reply("", false), reply("", false), backend.ErrUnavailable, "EOF"},
		{"silent", func(string, net.Conn, *bufio.Reader) bool {
			time.Sleep(2 * time.Second)
			return false
		}, func(string, net.Conn, *bufio.Reader) bool {
			time.Sleep(2 * time.Second)
			return false
		}, backend.ErrUnavailable, "timeout"},
	} {
		for _, meta := range []bool{true, false} {
			proto := map[bool]string{true: "meta", false: "text"}[meta]
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				respond := tc.text
				if meta {
					// GetMulti's gets is answered in the text protocol's
					// form, on a meta connection too.
					respond = func(line string, c net.Conn, r *bufio.Reader) bool {
						if strings.HasPrefix(line, "gets ") {
							return tc.text(line, c, r)
						}
						return tc.meta(line, c, r)
					}
				}
				s := newProtoFake(t, meta, respond)
				const timeout = 300 * time.Millisecond
				c := fakeClient(t, s, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
				ctx := context.Background()
				ops := map[string]func() error{
					"get":       func() error { _, err := c.Get(ctx, "k"); return err },
					"get_multi": func() error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err },
					"set":       func() error { return c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}) },
					"incr":      func() error { _, err := c.Increment(ctx, "k", 1); return err },
					"stats":     func() error { s, _ := c.ServerStats(ctx); return s[0].Err },
				}
				for _, name := range []string{"get", "get_multi", "set", "incr", "stats"} {
					start := time.Now()
					err := ops[name]()
					d := time.Since(start)
					if err == nil {
						t.Errorf("%s: no error", name)
						continue
					}
					// The deadline is what this asserts: generous for a
					// loaded machine, far below twice the timeout.
					if d > timeout+300*time.Millisecond {
						t.Errorf("%s took %v, timeout %v", name, d, timeout)
					}
					if name == "get" || name == "get_multi" {
						if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
							t.Errorf("%s: %v, want %v mentioning %q", name, err, tc.want, tc.wantMsg)
						}
						if !strings.Contains(err.Error(), s.Addr()) {
							t.Errorf("%s: error %q does not name the server", name, err)
						}
					}
					t.Logf("%s: %v (%v)", name, err, d.Round(time.Millisecond))
				}
				c.Close()
				// No connection of the Client stays open.
				deadline := time.Now().Add(3 * time.Second)
				for s.open.Load() != 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if n := s.open.Load(); n != 0 && tc.name != "silent" {
					t.Errorf("%d connections still open after Close", n)
				}
			})
		}
	}
}

func TestBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"memcached://127.0.0.1:99999", "port"},
		{"memcached://127.0.0.1:abc", "port"},
		{"memcached://127.0.0.1:11211,127.0.0.1:0", "port"},
		{"memcached://", "no server"},
		{"memcached://h:1?timeout=fast", "timeout"},
		{"memcached://h:1?timeout=-1s", "timeout"},
		{"memcached://h:1?bogus=1", "unknown parameter"},
		{"memcached://h:1?max_idle_conns=x", "max_idle_conns"},
		{"memcached://h:1?tls_ca=/x", "without TLS"},
		{"memcacheds://h:1?tls=false", "tls=false"},
		{"memcacheds://h:1?tls_ca=/does/not/exist", "tls_ca"},
		{"memcached://user:secret@h:1", "user information"},
		{"memcached://h:1/db", "path"},
		{"memcached://h:1,h:1", "twice"},
		{"memcached://h:1?batch_inflight=0", "in-flight"},
	} {
		be, err := backend.Open(ctx, tc.url)
		if err == nil {
			be.Close()
			t.Errorf("Open(%q): no error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want it to mention %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): error shows the password: %v", tc.url, err)
		}
	}
	// memcached.Open parses the URL itself: a URL that does not parse must
	// not show its password either.
	if _, err := memcached.Open(ctx, "memcached://user:secret@h:port%zz"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("memcached.Open of an unparsable URL with a password: %v", err)
	}
	for _, u := range []string{
		"memcached://127.0.0.1:11211",
		"memcached://localhost",
		"memcached://h1:11211,h2:11211?timeout=200ms&max_idle_conns=32",
		"memcached://[::1]:11211?failure_limit=0&batch=false&max_value_size=2097152",
		"memcached://h:1?retry_interval=5s&batch_inflight=4&batch_max_keys=64",
		"memcacheds://h:1?tls_server_name=cache&tls_insecure_skip_verify=true",
	} {
		be, err := backend.Open(ctx, u)
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		be.Close()
	}
}

// threeNodes starts three memcached and a Client over them with the given
// timeout and retry interval.
func threeNodes(t *testing.T, timeout, retry time.Duration) ([]*testserver.Process, *memcached.Client) {
	t.Helper()
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(timeout),
		memcached.WithRetryInterval(retry), memcached.WithFailureLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return procs, c
}

// keysOn returns n keys that c places on addr.
func keysOn(c *memcached.Client, addr string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("key-%d", i)
		if c.ServerFor(k) == addr {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestKillUnderLoad kills one of three servers while 16 goroutines read
// and write: the others keep serving, no call waits past the timeout, the
// dead one fails fast once marked down, and serves again after a restart.
// The timeout is long, so that a loaded machine does not reach it on live
// servers; "fast" is a tenth of it.
func TestKillUnderLoad(t *testing.T) {
	const timeout = 2 * time.Second
	const retry = 500 * time.Millisecond
	const fast = timeout / 10
	procs, c := threeNodes(t, timeout, retry)
	victim := procs[1].Addr
	ctx := context.Background()

	dead := keysOn(c, victim, 100)
	live := append(keysOn(c, procs[0].Addr, 100), keysOn(c, procs[2].Addr, 100)...)
	for _, k := range append(dead, live...) {
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}

	if len(live) == 0 || len(dead) == 0 {
		t.Fatalf("keys: %d on the victim %s, %d elsewhere (servers %v)", len(dead), victim, len(live), c.Servers())
	}
	var killed atomic.Bool
	var liveErrs, deadCalls, deadFast, slow, markedDown atomic.Int64
	var maxDur atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := live[(g*31+i)%len(live)]
				onDead := i%3 == 0
				if onDead {
					k = dead[(g*17+i)%len(dead)]
				}
				start := time.Now()
				var err error
				if i%4 == 0 {
					err = c.Set(ctx, backend.Item{Key: k, Value: []byte(k)})
				} else {
					_, err = c.Get(ctx, k)
				}
				d := time.Since(start)
				for {
					m := maxDur.Load()
					if int64(d) <= m || maxDur.CompareAndSwap(m, int64(d)) {
						break
					}
				}
				if d > timeout+300*time.Millisecond {
					slow.Add(1)
				}
				if !onDead && err != nil {
					liveErrs.Add(1)
					t.Errorf("key %q on a live server: %v", k, err)
				}
				if onDead && killed.Load() {
					deadCalls.Add(1)
					if err != nil && !errors.Is(err, backend.ErrUnavailable) {
						t.Errorf("key %q on the dead server: %v, want unavailable", k, err)
					}
					if err != nil && d < fast {
						deadFast.Add(1)
					}
					if err != nil && strings.Contains(err.Error(), "marked down") {
						markedDown.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	procs[1].Stop(t)
	killed.Store(true)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("after the kill: %d calls to the dead server, %d failed fast; longest call %v",
		deadCalls.Load(), deadFast.Load(), time.Duration(maxDur.Load()))
	if slow.Load() > 0 {
		t.Errorf("%d calls took longer than the timeout %v (+300ms); longest %v", slow.Load(), timeout, time.Duration(maxDur.Load()))
	}
	if deadFast.Load() < deadCalls.Load()/2 {
		t.Errorf("only %d of %d calls to the dead server failed fast", deadFast.Load(), deadCalls.Load())
	}
	if markedDown.Load() < deadCalls.Load()/2 {
		t.Errorf("only %d of %d calls to the dead server were refused as marked down", markedDown.Load(), deadCalls.Load())
	}

	// Restart: after the retry interval the server is used again.
	procs[1].Restart(t)
	deadline := time.Now().Add(10 * time.Second) // a restart on a loaded machine
	k := dead[0]
	for {
		err := c.Set(ctx, backend.Item{Key: k, Value: []byte("back")})
		if err == nil {
			break
		}
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Set after restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted server still unused after 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if it, err := c.Get(ctx, k); err != nil || string(it.Value) != "back" {
		t.Fatalf("Get after restart: %q, %v", it.Value, err)
	}
}

// TestStoppedServer freezes one server with SIGSTOP: calls to it end at
// the timeout (never later), then fail fast once it is marked down; the
// others are unaffected; after SIGCONT it serves again.
func TestStoppedServer(t *testing.T) {
	const timeout = time.Second
	const retry = 400 * time.Millisecond
	procs, c := threeNodes(t, timeout, retry)
	ctx := context.Background()
	frozen := procs[2].Addr
	fk := keysOn(c, frozen, 5)
	lk := keysOn(c, procs[0].Addr, 5)
	for _, k := range append(fk, lk...) {
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := procs[2].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer procs[2].Signal(syscall.SIGCONT)
	waitStopped(t, procs[2].Pid())

	for i := range 5 {
		start := time.Now()
		_, err := c.Get(ctx, fk[i])
		d := time.Since(start)
		t.Logf("call %d to the stopped server: %v after %v", i, err, d.Round(time.Millisecond))
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Errorf("call %d: %v, want unavailable", i, err)
		}
		if d > timeout+300*time.Millisecond {
			t.Errorf("call %d took %v, timeout %v", i, d, timeout)
		}
		if i >= 3 && d > timeout/4 {
			t.Errorf("call %d after the failure limit took %v, want fast failure", i, d)
		}
	}
	// A context shorter than the timeout wins; so does a cancellation.
	time.Sleep(retry) // the next call is a probe again
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	start := time.Now()
	_, err := c.Get(cctx, fk[0])
	cancel()
	if d := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || d > 50*time.Millisecond+250*time.Millisecond {
		t.Errorf("Get with a 50ms ctx on a stopped server: %v after %v", err, d)
	}
	for _, k := range lk {
		if _, err := c.Get(ctx, k); err != nil {
			t.Errorf("key on a healthy server: %v", err)
		}
	}
	if err := procs[2].Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Get(ctx, fk[0])
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed server still failing: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStopped waits until the process pid is stopped (state T in
// /proc/pid/stat): a SIGSTOP takes effect when the process next enters the
// kernel, which on a loaded machine may be after a few more requests.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return // not Linux: nothing to wait for
		}
		// pid (comm) state ...
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 10s after SIGSTOP: %s", pid, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestContextCancel: a call whose context ends returns promptly, whatever
// gomemcache is doing, and Close waits for the abandoned call.
func TestContextCancel(t *testing.T) {
	hang := make(chan struct{})
	s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		<-hang
		return false
	})
	defer close(hang)
	c := fakeClient(t, s, memcached.WithTimeout(2*time.Second))
	ops := map[string]func(ctx context.Context) error{
		"get":       func(ctx context.Context) error { _, err := c.Get(ctx, "k"); return err },
		"get_multi": func(ctx context.Context) error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err },
		"set":       func(ctx context.Context) error { return c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}) },
		"delete":    func(ctx context.Context) error { return c.Delete(ctx, "k") },
		"touch":     func(ctx context.Context) error { return c.Touch(ctx, "k", time.Second) },
		"incr":      func(ctx context.Context) error { _, err := c.Increment(ctx, "k", 1); return err },
		"ping":      func(ctx context.Context) error { return c.Ping(ctx) },
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		err := op(ctx)
		d := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || d > 300*time.Millisecond {
			t.Errorf("%s with a 50ms context: %v after %v", name, err, d)
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if err := op(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
}

// TestKeysOlderServer: a server that does not know "metadump hash" is
// listed with "metadump all"; URL-encoded keys are decoded; a busy crawler
// is waited for; garbage is a protocol error.
func TestKeysOlderServer(t *testing.T) {
	busy := 2
	s := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		switch line {
		case "lru_crawler metadump hash":
			fmt.Fprintf(c, "CLIENT_ERROR bad command line format\r\n")
		case "lru_crawler metadump all":
			if busy > 0 {
				busy--
				fmt.Fprintf(c, "BUSY currently processing crawler request\r\n")
				return true
			}
			fmt.Fprintf(c, "key=user%%3A1 exp=-1 la=1 cas=1 fetch=no cls=1 size=60\nkey=other exp=-1 la=1 cas=2 fetch=no cls=1 size=60\nkey=user%%252 exp=-1 la=1 cas=3 fetch=no cls=1 size=60\nEND\r\n")
		default:
			fmt.Fprintf(c, "ERROR\r\n")
		}
		return true
	})
	c := fakeClient(t, s)
	var got []string
	for k, err := range c.Keys(context.Background(), "user") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if strings.Join(got, ",") != "user:1,user%2" {
		t.Errorf("Keys = %q", got)
	}

	g := newFakeServer(t, func(line string, c net.Conn, _ *bufio.Reader) bool {
		fmt.Fprintf(c, "key=a exp=-1\nwhat is this\n")
		return true
	})
	c2, err := memcached.New([]string{g.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var last error
	for _, err := range c2.Keys(context.Background(), "") {
		last = err
	}
	if !errors.Is(last, memcached.ErrProtocol) {
		t.Errorf("Keys from a garbage server: final error %v, want a protocol error", last)
	}
}
