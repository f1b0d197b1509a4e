//go:build linux

package netfault_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/netfault"
)

// ask sends a memcached command on c and returns the first line of the
// reply, waiting at most wait.
func ask(c net.Conn, r *bufio.Reader, cmd string, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func dial(t *testing.T, n *netfault.Net, addr string, wait time.Duration) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	return n.DialContext(ctx, "tcp", addr)
}

// A server in the namespace answers connections made inside it; Drop
// partitions it (new connections get no answer, and a request on an open
// connection no reply) and Heal ends the partition: the request, which
// TCP kept retransmitting, then gets its reply.
func TestDropAndHeal(t *testing.T) {
	n := netfault.New(t)
	mc := n.Memcached(t)
	c, err := dial(t, n, mc.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if line, err := ask(c, r, "version\r\n", 5*time.Second); err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("version: %q, %v", line, err)
	}

	if err := n.Drop(mc.Port); err != nil {
		t.Fatal(err)
	}
	if c2, err := dial(t, n, mc.Addr, 300*time.Millisecond); err == nil {
		c2.Close()
		t.Fatal("a connection was made across the partition")
	}
	if line, err := ask(c, r, "set k 0 0 1\r\nv\r\n", 300*time.Millisecond); err == nil {
		t.Fatalf("a request got a reply across the partition: %q", line)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	// The set sent during the partition arrives now: TCP retransmits it.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "STORED" {
		t.Fatalf("after the heal, the reply to the set sent during the partition: %q, %v", line, err)
	}
	if line, err := ask(c, r, "get k\r\n", 5*time.Second); err != nil || line != "VALUE k 0 1" {
		t.Fatalf("get after the heal: %q, %v", line, err)
	}
}

// Loss of 100% is a partition too, in both directions; Heal removes it.
// The namespace is gone when its test ends.
func TestLossAndCleanup(t *testing.T) {
	var name string
	t.Run("loss", func(t *testing.T) {
		n := netfault.New(t)
		name = n.Name
		rd := n.Redis(t)
		if err := n.Loss(rd.Port, 100); err != nil {
			t.Fatal(err)
		}
		if c, err := dial(t, n, rd.Addr, 300*time.Millisecond); err == nil {
			c.Close()
			t.Fatal("a connection was made through 100% loss")
		}
		if err := n.Heal(); err != nil {
			t.Fatal(err)
		}
		c, err := dial(t, n, rd.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if line, err := ask(c, bufio.NewReader(c), "PING\r\n", 5*time.Second); err != nil || line != "+PONG" {
			t.Fatalf("PING after the heal: %q, %v", line, err)
		}
		if err := n.Loss(rd.Port, 101); err == nil {
			t.Error("Loss(101) accepted")
		}
	})
	if name == "" {
		return // skipped
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); !os.IsNotExist(err) {
		t.Errorf("namespace %s still there after its test: %v", name, err)
	}
}

// Only connections made inside the namespace reach its servers: its
// loopback is not the test's.
func TestNamespaceIsolated(t *testing.T) {
	n := netfault.New(t)
	mc := n.Memcached(t)
	// The port is free on the test's own loopback (testserver picked it
	// so): nothing answers there.
	c, err := net.DialTimeout("tcp", mc.Addr, time.Second)
	if err == nil {
		defer c.Close()
		if line, err := ask(c, bufio.NewReader(c), "version\r\n", time.Second); err == nil && strings.HasPrefix(line, "VERSION") {
			t.Fatalf("the namespace's memcached answered on the test's loopback: %q", line)
		}
	}
}
