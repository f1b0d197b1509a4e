// Package testserver starts real server processes (memcached, redis-server,
// ...) on free loopback ports for tests, and stops them when the test ends.
//
// A test that needs a server calls one of the helpers and gets back a
// *Process whose Addr is "127.0.0.1:port":
//
//	func TestSomething(t *testing.T) {
//		mc := testserver.Memcached(t)
//		be, err := backend.Open(ctx, "memcached://"+mc.Addr)
//		...
//	}
//
// When the server binary is not installed the test is skipped, unless the
// environment variable MEMDICT_REQUIRE_SERVERS is 1 (as .ci/run sets it),
// in which case it fails: CI must not silently skip server tests.
//
// Every process is killed and reaped by a t.Cleanup registered by Start, so
// no server outlives its test.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// EnvRequire is the environment variable (MEMDICT_REQUIRE_SERVERS) that
// .ci/run sets to 1: then a missing binary or container engine fails the
// test instead of skipping it.
const EnvRequire = "MEMDICT_REQUIRE_SERVERS"

// PortPlaceholder is the literal that Start replaces, in every argument, by
// the port the server must listen on.
const PortPlaceholder = "{port}"

// Required reports whether servers are required (MEMDICT_REQUIRE_SERVERS=1):
// then tests must fail, not skip, when a server cannot be started.
func Required() bool {
	return os.Getenv(EnvRequire) == "1"
}

// SkipOrFail skips the test with the formatted reason, or fails it when
// Required() is true.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1: servers are required)", msg, EnvRequire)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, EnvRequire)
}

// extraDirs are searched after PATH: sbin directories are often missing
// from an unprivileged user's PATH, and Debian installs some servers there.
var extraDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// findBinary looks name up on PATH, then in extraDirs.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if filepath.Base(name) != name {
		return "", fmt.Errorf("%s: not found or not executable", name)
	}
	for _, dir := range extraDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH nor in %v", name, extraDirs)
}

// LookPath returns the path of the binary name, looked up on PATH and then
// in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin and /bin.
// If it is missing, LookPath skips the test (t.Skip), or fails it
// (t.Fatal) when Required().
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := findBinary(name)
	if err != nil {
		SkipOrFail(t, "testserver: %s is not installed (on Debian: apt-get install %s, or run bash .ci/setup as root): %v",
			name, debianPackage(name), err)
	}
	return p
}

// debianPackage names the Debian package that provides binary name, for
// error messages.
func debianPackage(name string) string {
	switch name {
	case "memcached":
		return "memcached"
	case "redis-server", "redis-sentinel":
		return "redis-server"
	case "redis-cli":
		return "redis-tools"
	case "nutcracker":
		return "nutcracker"
	case "memcstat", "memccat", "memcflush":
		return "libmemcached-tools"
	}
	return name
}

var (
	portsMu sync.Mutex
	// portsGiven holds the ports FreePort returned in this test binary, so
	// that two servers started close together (parallel tests) never get
	// the same port even if the first one has not bound it yet.
	portsGiven = map[int]bool{}
)

// FreePort returns a TCP port that is currently free on 127.0.0.1 and that
// FreePort has not returned before in this process. Another process may
// still take it before the caller binds it; Start retries on another port
// when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testserver: no free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var lastErr error
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if portsGiven[port] {
			continue
		}
		portsGiven[port] = true
		return port, nil
	}
	if lastErr == nil {
		lastErr = errors.New("every port the kernel offered was handed out already")
	}
	return 0, lastErr
}

// Addr returns "127.0.0.1:port".
func addr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
