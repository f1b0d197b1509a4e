package pyinterop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Conn is a raw memcached connection that reads and writes items with
// their client flags through meta commands, bypassing memdict's drivers.
// It is not safe for concurrent use.
type Conn struct {
	c net.Conn
	r *bufio.Reader
}

// Dial connects to the memcached at addr; the test's cleanup closes the
// connection.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("pyinterop: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Conn{c: c, r: bufio.NewReader(c)}
}

func (c *Conn) line(t testing.TB) string {
	t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("pyinterop: read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *Conn) send(t testing.TB, b []byte) {
	t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		t.Fatalf("pyinterop: write: %v", err)
	}
}

// Get reads key with "mg <key> v f" and returns its value and client
// flags; ok is false on a miss.
func (c *Conn) Get(t testing.TB, key string) (value []byte, flags uint32, ok bool) {
	t.Helper()
	c.send(t, []byte("mg "+key+" v f\r\n"))
	l := c.line(t)
	if l == "EN" {
		return nil, 0, false
	}
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "VA" {
		t.Fatalf("pyinterop: mg %s: unexpected reply %q", key, l)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 {
		t.Fatalf("pyinterop: mg %s: bad length in %q", key, l)
	}
	for _, tok := range f[2:] {
		if v, found := strings.CutPrefix(tok, "f"); found {
			u, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				t.Fatalf("pyinterop: mg %s: bad flags in %q", key, l)
			}
			flags = uint32(u)
		}
	}
	value = make([]byte, n+2)
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c.r, value); err != nil || string(value[n:]) != "\r\n" {
		t.Fatalf("pyinterop: mg %s: reading %d bytes: %v", key, n, err)
	}
	return value[:n], flags, true
}

// Set stores value under key with client flags, with
// "ms <key> <len> F<flags>".
func (c *Conn) Set(t testing.TB, key string, value []byte, flags uint32) {
	t.Helper()
	req := fmt.Appendf(nil, "ms %s %d F%d\r\n", key, len(value), flags)
	req = append(append(req, value...), "\r\n"...)
	c.send(t, req)
	if l := c.line(t); l != "HD" {
		t.Fatalf("pyinterop: ms %s: %q", key, l)
	}
}
