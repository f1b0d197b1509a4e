package memcached_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// testTimeout is the driver timeout of tests against real servers where
// the timeout itself is not what is tested: long enough that a loaded
// 2-core machine never hits it.
const testTimeout = 5 * time.Second

// rawCommand sends cmd to a memcached and reads until a line equal to
// end (with its CRLF).
func rawCommand(t *testing.T, addr, cmd, end string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			t.Fatalf("%q: %v after %q", cmd, err, b.String())
		}
		if strings.TrimRight(line, "\r\n") == strings.TrimRight(end, "\r\n") {
			return b.String()
		}
	}
}
