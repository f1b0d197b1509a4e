package hostile_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// dial connects to p and returns the connection and a reader on it.
func dial(t *testing.T, p *hostile.Proxy) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc.(*net.TCPConn), bufio.NewReader(nc)
}

// send writes req and returns the next reply the framer cuts.
func send(t *testing.T, nc net.Conn, br *bufio.Reader, framer hostile.Framer, req string) string {
	t.Helper()
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	reply, err := framer(br)
	if err != nil {
		t.Fatalf("%q: %v (got %q)", req, err, reply)
	}
	return string(reply)
}

func TestMemcachedPassAndNth(t *testing.T) {
	mc := testserver.Memcached(t)
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	nc, br := dial(t, p)
	f := hostile.MemcachedFramer
	if got := send(t, nc, br, f, "ms k 5 O1\r\nhello\r\n"); got != "HD O1\r\n" {
		t.Fatalf("set: %q", got)
	}
	if got := send(t, nc, br, f, "mg k v O2\r\n"); got != "VA 5 O2\r\nhello\r\n" {
		t.Fatalf("get: %q", got)
	}
	if got := send(t, nc, br, f, "stats settings\r\n"); !strings.HasPrefix(got, "STAT ") || !strings.HasSuffix(got, "END\r\n") {
		t.Fatalf("stats settings: not one reply: %.80q", got)
	}

	// The reply to the second request is dropped: the client reads the
	// third one's in its place.
	p.SetMutator(&hostile.Nth{N: 1, Kind: hostile.Missing})
	_, _ = io.WriteString(nc, "mg k v O3\r\nmg k v O4\r\nmg k v O5\r\n")
	var got []string
	for range 2 {
		r, err := f(br)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(r))
	}
	want := []string{"VA 5 O3\r\nhello\r\n", "VA 5 O5\r\nhello\r\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("with the 2nd reply missing: got %q, want %q", got, want)
	}

	p.SetMutator(&hostile.Nth{N: 0, Kind: hostile.Relabel})
	if got := send(t, nc, br, f, "mg k v O6\r\n"); got == "VA 5 O6\r\nhello\r\n" || !strings.HasSuffix(got, "\r\nhello\r\n") {
		t.Fatalf("relabelled: %q", got)
	}
	if len(p.Log()) != 2 {
		t.Fatalf("log: %q", p.Log())
	}
}

// TestHoldHeal checks the partition model: bytes held during a Hold reach
// the server at Heal if the client merely closed, never if it reset.
func TestHoldHeal(t *testing.T) {
	mc := testserver.Memcached(t)
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	for _, reset := range []bool{false, true} {
		key := map[bool]string{false: "closed", true: "reset"}[reset]
		p.Hold()
		nc, _ := dial(t, p)
		if _, err := io.WriteString(nc, "ms "+key+" 1\r\nx\r\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the proxy reads it
		if reset {
			_ = nc.SetLinger(0)
		}
		nc.Close()
		time.Sleep(50 * time.Millisecond) // the proxy sees the FIN or RST
		p.Heal()
		want := "HD"
		if reset {
			want = "EN"
		}
		// Poll: the held bytes are delivered asynchronously after Heal.
		var got string
		for range 100 {
			got = rawGet(t, mc.Addr, key)
			if got == want {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got != want {
			t.Errorf("client %s during a hold: mg %s after the heal = %s, want %s", key, key, got, want)
		}
	}
}

func rawGet(t *testing.T, addr, key string) string {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = io.WriteString(nc, "mg "+key+"\r\n")
	line, _ := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestDelay checks that a round trip through the proxy takes at least
// twice the delay (a lower bound only: the machine may be slower).
func TestDelay(t *testing.T) {
	mc := testserver.Memcached(t)
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	p.SetDelay(40 * time.Millisecond)
	nc, br := dial(t, p)
	t0 := time.Now()
	send(t, nc, br, hostile.MemcachedFramer, "mn\r\n")
	if d := time.Since(t0); d < 80*time.Millisecond {
		t.Fatalf("round trip %v with a 40ms delay each way", d)
	}
	// The replies of a batch are delayed, not spaced: five replies take
	// one round trip, not five delays on the way back.
	t0 = time.Now()
	if _, err := io.WriteString(nc, strings.Repeat("mn\r\n", 5)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := hostile.MemcachedFramer(br); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(t0); d > 190*time.Millisecond {
		// The upper bound is what is tested: generous for a loaded
		// machine, below the 240ms of spaced replies.
		t.Fatalf("five pipelined replies took %v with a 40ms delay each way", d)
	}
}

func TestRESPFramer(t *testing.T) {
	stream := "+OK\r\n$5\r\nhello\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n%1\r\n+k\r\n$-1\r\n|1\r\n+ttl\r\n:3\r\n_\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
	want := []string{"+OK\r\n", "$5\r\nhello\r\n", "*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "%1\r\n+k\r\n$-1\r\n",
		"|1\r\n+ttl\r\n:3\r\n", "_\r\n", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"}
	br := bufio.NewReader(strings.NewReader(stream))
	for _, w := range want {
		got, err := hostile.RESPFramer(br)
		if err != nil || string(got) != w {
			t.Fatalf("got %q, %v; want %q", got, err, w)
		}
	}
	if _, err := hostile.RESPFramer(br); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
}

// TestKinds checks that each kind sends something other than the reply,
// over a real redis-server.
func TestKinds(t *testing.T) {
	rs := testserver.Redis(t)
	p := hostile.Start(t, rs.Addr, hostile.RESPFramer)
	for _, k := range hostile.RESPKinds {
		if k == hostile.Dribble || k == hostile.LongLine {
			continue // slow or large; covered by the drivers' suites
		}
		t.Run(k.String(), func(t *testing.T) {
			p.SetMutator(hostile.Pass)
			nc, br := dial(t, p)
			send(t, nc, br, hostile.RESPFramer, "SET k 12345\r\n")
			p.SetMutator(&hostile.Nth{N: 0, Kind: k})
			_, _ = io.WriteString(nc, "GET k\r\n")
			_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			got, _ := io.ReadAll(io.LimitReader(br, 1<<20))
			if bytes.Equal(got, []byte("$5\r\n12345\r\n")) {
				t.Fatalf("%s sent the reply unchanged", k)
			}
		})
	}
}

// TestConnectDelay checks that the first round trip of a new connection
// takes the connect delay on top of the delay, and later ones do not.
func TestConnectDelay(t *testing.T) {
	mc := testserver.Memcached(t)
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	p.SetDelay(20 * time.Millisecond)
	p.SetConnectDelay(200 * time.Millisecond)
	// The connect delay runs from the proxy's accept, which may come
	// before dial returns: the round trip is timed from the dial.
	t0 := time.Now()
	nc, br := dial(t, p)
	send(t, nc, br, hostile.MemcachedFramer, "mn\r\n")
	if d := time.Since(t0); d < 240*time.Millisecond {
		t.Fatalf("first round trip %v with a 200ms connect delay and 20ms each way", d)
	}
	t0 = time.Now()
	send(t, nc, br, hostile.MemcachedFramer, "mn\r\n")
	if d := time.Since(t0); d < 40*time.Millisecond || d > 190*time.Millisecond {
		// The upper bound is what is tested: the connect delay is paid
		// once (generous for a loaded machine, below 200ms).
		t.Fatalf("second round trip %v, want the 40ms of the delay alone", d)
	}
}
