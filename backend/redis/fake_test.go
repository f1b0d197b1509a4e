package redis

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// fakeServer is a small RESP server for the tests of hostile replies: it
// answers the connection handshake (HELLO, CLIENT SETNAME, SELECT, PING)
// as Redis does, and every other command with what the test's answer
// function writes. It keeps nothing: the tests say what each command gets.
type fakeServer struct {
	t      testing.TB
	ln     net.Listener
	answer func(c *fakeConn, args []string)

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup

	accepted atomic.Int64 // connections accepted
	commands atomic.Int64 // commands read, handshake included
}

// fakeConn is one connection of a fakeServer, as its answer function sees
// it.
type fakeConn struct {
	s  *fakeServer
	nc net.Conn
	ID int64 // numbered from 1, in the order accepted
}

// write sends raw bytes to the client; errors (a client that went away)
// are ignored.
func (c *fakeConn) write(b ...string) {
	for _, s := range b {
		if _, err := io.WriteString(c.nc, s); err != nil {
			return
		}
	}
}

// writeBytes is write without the copy of a string (for long replies,
// whose copies would count as the client's allocations).
func (c *fakeConn) writeBytes(b []byte) { _, _ = c.nc.Write(b) }

// startFake starts a fakeServer on a free loopback port; it stops when the
// test ends.
func startFake(t testing.TB, answer func(c *fakeConn, args []string)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, answer: answer, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for nc := range s.conns {
		_ = nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[nc] = true
		s.mu.Unlock()
		c := &fakeConn{s: s, nc: nc, ID: s.accepted.Add(1)}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.serve(c)
		}()
	}
}

// serve reads commands and answers them.
func (s *fakeServer) serve(c *fakeConn) {
	br := bufio.NewReader(c.nc)
	for {
		args, err := readCommand(br)
		if err != nil {
			return
		}
		s.commands.Add(1)
		switch strings.ToLower(args[0]) {
		case "hello":
			c.write("%3\r\n$6\r\nserver\r\n$4\r\nfake\r\n$5\r\nproto\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n")
		case "select", "client":
			c.write("+OK\r\n")
		case "ping":
			c.write("+PONG\r\n")
		default:
			s.answer(c, args)
		}
	}
}

// readCommand reads one command (an array of bulk strings).
func readCommand(br *bufio.Reader) ([]string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 4 || line[0] != '*' {
		return nil, fmt.Errorf("fake: not a command: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("fake: bad count %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("fake: bad length %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// bulk returns s as a RESP bulk string.
func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// storedBulk returns the RESP bulk string of value as this package stores
// it (header and value).
func storedBulk(value string) string { return bulk(string(encode([]byte(value), 7))) }

// newFakeBackend returns a Backend on s with the options of url
// parameters raw (such as "timeout=1s"), closed when the test ends.
func newFakeBackend(t *testing.T, s *fakeServer, raw string) *Backend {
	t.Helper()
	b := mustOpen(t, "redis://"+s.addr()+"?"+raw)
	return b
}

// valueOf is the value the fakes give key: it names key, so that a
// reply for another key shows.
func valueOf(key string) string { return "v:" + key }

// keyGets answers GET and MGET with the values valueOf gives, so that a
// value read for the wrong key shows.
func keyGets(c *fakeConn, args []string) bool {
	switch strings.ToLower(args[0]) {
	case "get":
		c.write(storedBulk(valueOf(args[1])))
	case "mget":
		c.write("*" + strconv.Itoa(len(args)-1) + "\r\n")
		for _, k := range args[1:] {
			c.write(storedBulk(valueOf(k)))
		}
	case "set":
		c.write("+OK\r\n")
	default:
		return false
	}
	return true
}

// gotKey fails t if a read of key returned a value for another key.
func gotKey(t *testing.T, key string, value []byte) {
	t.Helper()
	if string(value) != valueOf(key) {
		t.Errorf("get %q returned %q: another key's value", key, value)
	}
}

// rawClient returns a plain go-redis client on addr, closed when the test
// ends.
func rawClient(t *testing.T, addr string) *goredis.Client {
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { rc.Close() })
	return rc
}
