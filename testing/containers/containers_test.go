package containers_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/testing/containers"
)

// ask sends req to addr over a raw TCP connection and returns the first
// line of the answer.
func ask(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write to %s: %v", addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimRight(line, "\r\n")
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	c := containers.Memcached(t, containers.WithArgs("-m", "32", "-I", "2m"))
	if c.Kind() != "memcached" {
		t.Errorf("Kind = %q", c.Kind())
	}
	if !strings.HasPrefix(c.URL(), "memcached://") || !strings.HasSuffix(c.URL(), c.Addr()) {
		t.Errorf("URL = %q, Addr = %q", c.URL(), c.Addr())
	}
	if got := ask(t, c.Addr(), "version\r\n"); !strings.HasPrefix(got, "VERSION 1.") {
		t.Fatalf("version: %q", got)
	}
	// WithArgs reached the server: -I 2m.
	if got := ask(t, c.Addr(), "stats settings\r\n"); !strings.HasPrefix(got, "STAT ") {
		t.Fatalf("stats settings: %q", got)
	}
	if got := ask(t, c.Addr(), "set k 0 0 1\r\nv\r\n"); got != "STORED" {
		t.Fatalf("set: %q", got)
	}

	// Stop and Start: the server comes back, empty, possibly on another
	// host port.
	ctx := context.Background()
	timeout := time.Duration(0)
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped memcached at %s", c.Addr())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted memcached at %s", c.Addr())
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; {
		if conn, err := net.DialTimeout("tcp", c.Addr(), time.Second); err == nil {
			conn.Close()
			got = ask(t, c.Addr(), "get k\r\n")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached at %s not back after restart", c.Addr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "END" {
		t.Fatalf("get after restart: %q", got)
	}
}

func TestMemcachedItemSize(t *testing.T) {
	t.Parallel()
	c := containers.Memcached(t, containers.WithArgs("-I", "2m"))
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	_, _ = conn.Write([]byte("stats settings\r\n"))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "END" {
			t.Fatal("no item_size_max in stats settings")
		}
		if strings.HasPrefix(line, "STAT item_size_max ") {
			if line != "STAT item_size_max 2097152" {
				t.Fatalf("WithArgs(-I 2m) not applied: %q", line)
			}
			return
		}
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	c := containers.Redis(t)
	if !strings.HasPrefix(c.URL(), "redis://") {
		t.Errorf("URL = %q", c.URL())
	}
	if got := ask(t, c.Addr(), "PING\r\n"); got != "+PONG" {
		t.Fatalf("PING: %q", got)
	}
}

func TestRedisWithArgs(t *testing.T) {
	t.Parallel()
	c := containers.Redis(t, containers.WithArgs("--requirepass", "s3cret"))
	if got := ask(t, c.Addr(), "PING\r\n"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without AUTH: %q", got)
	}
	if got := ask(t, c.Addr(), "AUTH s3cret\r\n"); got != "+OK" {
		t.Fatalf("AUTH: %q", got)
	}
}

// TestStartFailure checks that a failed start returns a wrapped error that
// names what was being started, and that Terminate accepts what it
// returned.
func TestStartFailure(t *testing.T) {
	t.Parallel()
	if err := containers.EngineAvailable(context.Background()); err != nil {
		if os.Getenv(containers.EnvRequire) == "1" {
			t.Fatalf("%v (%s=1: a container engine is required)", err, containers.EnvRequire)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := containers.StartMemcached(ctx, containers.WithImage("localhost/memdict-no-such-image:none"))
	t.Cleanup(func() {
		if err := c.Terminate(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err == nil {
		t.Fatal("StartMemcached with a missing image succeeded")
	}
	if !strings.Contains(err.Error(), "start memcached") || !strings.Contains(err.Error(), "memdict-no-such-image") {
		t.Fatalf("error does not say what failed: %v", err)
	}
	t.Logf("expected error: %v", err)
}
