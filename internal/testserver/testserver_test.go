package testserver

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreePortDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if p <= 0 || p > 65535 {
			t.Fatalf("FreePort = %d", p)
		}
		if seen[p] {
			t.Fatalf("FreePort returned %d twice", p)
		}
		seen[p] = true
	}
}

func TestSubstitutePort(t *testing.T) {
	got := substitutePort([]string{"-p", "{port}", "--x={port}/{port}", ""}, 1234)
	want := []string{"-p", "1234", "--x=1234/1234", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPortInUse(t *testing.T) {
	for _, s := range []string{
		"failed to listen on TCP port 1234: Address already in use",
		"# Warning: Could not create server TCP listening socket 127.0.0.1:1: bind: Address already in use",
	} {
		if !portInUse(s) {
			t.Errorf("portInUse(%q) = false", s)
		}
	}
	if portInUse("ready") {
		t.Error("portInUse(ready) = true")
	}
}

// TestLookPathMissing runs LookPath on a binary that does not exist in a
// subtest; it must skip (or fail when Required()), not return "".
func TestLookPathMissing(t *testing.T) {
	var ran bool
	ok := t.Run("sub", func(t *testing.T) {
		t.Setenv(EnvRequire, "")
		defer func() { ran = true }()
		LookPath(t, "memdict-no-such-binary")
		t.Error("LookPath returned for a missing binary")
	})
	if !ok || !ran {
		t.Fatalf("subtest ok=%v ran=%v", ok, ran)
	}
}

func mustAsk(t *testing.T, addr, req string) string {
	t.Helper()
	line, err := ask(&Options{}, addr, req)
	if err != nil {
		t.Fatalf("ask %s %q: %v", addr, req, err)
	}
	return line
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	p := Memcached(t)
	t.Logf("memcached pid %d on %s", p.Pid(), p.Addr)
	if !strings.HasPrefix(p.Addr, "127.0.0.1:") || p.Port == 0 {
		t.Fatalf("Addr=%q Port=%d", p.Addr, p.Port)
	}
	if got := mustAsk(t, p.Addr, "set k 0 0 1\r\nv\r\n"); got != "STORED" {
		t.Fatalf("set: %q", got)
	}

	// A SIGSTOPped server accepts connections (the kernel does) but does
	// not answer.
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = c.Write([]byte("version\r\n"))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatal("stopped server answered")
	}
	_ = c.Close()
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if got := mustAsk(t, p.Addr, "version\r\n"); !strings.HasPrefix(got, "VERSION") {
		t.Fatalf("version after SIGCONT: %q", got)
	}

	p.Stop(t)
	if p.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Fatal("stopped server still accepts connections")
	}
	p.Restart(t)
	if !p.Running() {
		t.Fatal("not Running after Restart")
	}
	// A restarted memcached is empty.
	if got := mustAsk(t, p.Addr, "get k\r\n"); got != "END" {
		t.Fatalf("get after restart: %q", got)
	}
	// Restart of a running server kills it first.
	old := p.Pid()
	p.Restart(t)
	if p.Pid() == old {
		t.Fatal("Restart did not start a new process")
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	p := Redis(t)
	t.Logf("redis pid %d on %s", p.Pid(), p.Addr)
	if got := mustAsk(t, p.Addr, "PING\r\n"); got != "+PONG" {
		t.Fatalf("PING: %q", got)
	}
	// --save "" must have reached redis as an empty argument.
	if got := mustAsk(t, p.Addr, "CONFIG GET save\r\n"); got != "*2" {
		t.Fatalf("CONFIG GET save: %q", got)
	}
	if !strings.Contains(p.Output(), "Ready to accept connections") {
		t.Errorf("output lacks the ready line:\n%s", p.Output())
	}
}

func TestRedisWithPassword(t *testing.T) {
	t.Parallel()
	p := Redis(t, "--requirepass", "s3cret")
	if got := mustAsk(t, p.Addr, "PING\r\n"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without auth: %q", got)
	}
}

// TestPortTaken checks the retry path of Start: a server whose port was
// taken by another listener must not be reported ready (even though the
// port accepts connections), and its output must be recognised as "port in
// use" so that Start retries on another port.
func TestPortTaken(t *testing.T) {
	t.Parallel()
	LookPath(t, "memcached")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p := &Process{Name: "memcached", Path: LookPath(t, "memcached"), Port: port, Addr: addr(port),
		Args: []string{"-l", "127.0.0.1", "-p", itoa(port), "-U", "0", "-u", "root"},
		opts: Options{Timeout: 5 * time.Second, Ready: memcachedReady(&Options{})}, out: &outBuf{}}
	if err := p.launch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	if err := p.waitReady(); err == nil {
		t.Fatal("waitReady succeeded on a port held by another listener")
	}
	if !portInUse(p.Output()) {
		t.Fatalf("output does not say the port is in use:\n%s", p.Output())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestStartFailureReportsOutput(t *testing.T) {
	LookPath(t, "sh")
	// A subtest that is expected to fail would fail this test too, so run
	// the pieces by hand.
	p := &Process{Name: "sh", Path: LookPath(t, "sh"), Port: FreePort(t),
		Args: []string{"-c", "echo boom >&2; exit 3"},
		opts: Options{Timeout: 5 * time.Second}, out: &outBuf{}}
	p.Addr = addr(p.Port)
	if err := p.launch(); err != nil {
		t.Fatal(err)
	}
	err := p.waitReady()
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("waitReady = %v", err)
	}
	if !strings.Contains(p.Output(), "boom") {
		t.Fatalf("output %q", p.Output())
	}
}

func TestStartGeneric(t *testing.T) {
	LookPath(t, "memcached")
	// Start with the placeholder inside a longer argument.
	p := Start(t, "memcached", "--listen=127.0.0.1", "--port={port}", "-U", "0", "-u", "root")
	if got := mustAsk(t, p.Addr, "version\r\n"); !strings.HasPrefix(got, "VERSION") {
		t.Fatalf("version: %q", got)
	}
}
