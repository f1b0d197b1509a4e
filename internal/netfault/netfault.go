//go:build linux

// Package netfault gives tests real network faults between a client and
// a real server — a partition, packet loss — without any kernel module
// beyond what iptables needs, and without touching the machine's own
// network: everything happens in a network namespace the test makes.
//
//	func TestPartition(t *testing.T) {
//		n := netfault.New(t)       // a namespace of the test's own
//		mc := n.Memcached(t)       // memcached, inside it, on 127.0.0.1
//		c, _ := memcached.New([]string{mc.Addr}, memcached.WithDialer(n.DialContext))
//		...
//		n.Drop(mc.Port)            // every packet to and from it is lost
//		...
//		n.Heal()
//	}
//
// New creates the namespace (ip netns add), brings its loopback up and
// adds an iptables chain of its own there, and removes the namespace when
// the test ends. Servers run inside it (ip netns exec), listening on its
// loopback, which only sockets made inside the namespace reach:
// DialContext makes them on an OS thread that enters the namespace for
// that moment (a socket keeps the namespace it was made in). Drop and Loss add iptables DROP rules, in the namespace,
// for the server's port in both directions (on the INPUT chain, so that
// packets are lost silently and TCP retransmits them, as across a real
// partition); Heal removes them.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip (iproute2)
// and iptables commands, which .ci/setup installs. Without them New skips
// the test, or fails it when MEMDICT_REQUIRE_SERVERS=1 (testserver.SkipOrFail).
// tc netem is not needed (nor available on CI); for added latency, put a
// delaying proxy in front of the server instead.
package netfault

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memdict/memdict/internal/testserver"
)

// chain is the iptables chain, in the namespace, that holds the faults.
const chain = "MEMDICT-FAULTS"

// namePrefix starts the name of every namespace New makes; the process id
// and a sequence number follow.
const namePrefix = "memdict-"

// netnsDir is where ip netns keeps its namespaces.
const netnsDir = "/run/netns"

var seq atomic.Int64

// Net is a network namespace made by New for one test. Its methods are
// safe for concurrent use.
type Net struct {
	// Name is the namespace's name, as ip netns lists it.
	Name string

	ip, iptables string
	fd           int // the namespace, open, for setns
}

// New creates a network namespace for t with its loopback up, removed
// (with the servers started in it, which t's cleanups stop first) when t
// ends. It skips t, or fails it when MEMDICT_REQUIRE_SERVERS=1, if it is
// not run as root or ip or iptables is missing.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		testserver.SkipOrFail(t, "netfault: network namespaces and iptables need root")
	}
	n := &Net{ip: testserver.LookPath(t, "ip"), iptables: testserver.LookPath(t, "iptables")}
	removeStale(n.ip)
	n.Name = fmt.Sprintf("%s%d-%d", namePrefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command(n.ip, "netns", "add", n.Name).CombinedOutput(); err != nil {
		testserver.SkipOrFail(t, "netfault: ip netns add %s: %v: %s", n.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(n.ip, "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("netfault: ip netns del %s: %v: %s", n.Name, err, out)
		}
	})
	fd, err := unix.Open(filepath.Join(netnsDir, n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("netfault: open namespace %s: %v", n.Name, err)
	}
	n.fd = fd
	t.Cleanup(func() { _ = unix.Close(fd) })
	for _, args := range [][]string{
		{n.ip, "link", "set", "lo", "up"},
		{n.iptables, "-w", "-N", chain},
		{n.iptables, "-w", "-I", "INPUT", "-j", chain},
	} {
		if err := n.Exec(args...); err != nil {
			testserver.SkipOrFail(t, "netfault: %v", err)
		}
	}
	return n
}

// removeStale removes the namespaces that New made in test processes that
// no longer run (killed before their cleanups).
func removeStale(ip string) {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		_ = exec.Command(ip, "netns", "del", e.Name()).Run()
	}
}

// Exec runs the command args inside the namespace (ip netns exec) and
// returns an error holding its output if it fails.
func (n *Net) Exec(args ...string) error {
	cmd := exec.Command(n.ip, append([]string{"netns", "exec", n.Name}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netfault: in %s: %s: %v: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DialContext connects to addr, an IP address and port, from inside the
// namespace, as net.Dialer's DialContext does from the test's own. It has
// the signature of memcached.WithDialer and of go-redis's Options.Dialer.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread enters the namespace, makes the socket and goes back
		// to the test's namespace before other goroutines may run on it.
		// It is not left to end with the goroutine: a server started
		// from it (testserver sets Pdeathsig) would be killed.
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, fmt.Errorf("netfault: open this thread's namespace: %w", err)}
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(home)
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("netfault: enter %s: %w", n.Name, err)}
			runtime.UnlockOSThread()
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, and ends with this goroutine.
			if c != nil {
				_ = c.Close()
			}
			ch <- result{nil, fmt.Errorf("netfault: leave %s: %w", n.Name, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// options returns the testserver options of a server in the namespace.
func (n *Net) options() testserver.Options {
	return testserver.Options{Exec: []string{n.ip, "netns", "exec", n.Name}, Dial: n.DialContext}
}

// Memcached starts memcached in the namespace, as testserver.Memcached
// does on the test's loopback; its Addr is reached through DialContext.
func (n *Net) Memcached(t testing.TB, extra ...string) *testserver.Process {
	t.Helper()
	return testserver.MemcachedWith(t, n.options(), extra...)
}

// Redis starts redis-server in the namespace, as testserver.Redis does on
// the test's loopback; its Addr is reached through DialContext.
func (n *Net) Redis(t testing.TB, extra ...string) *testserver.Process {
	t.Helper()
	return testserver.RedisWith(t, n.options(), extra...)
}

// Drop loses every TCP packet to and from port, both ways, until Heal: a
// partition. Connections stay open on both sides, and TCP retransmits
// what they send.
func (n *Net) Drop(port int) error { return n.drop(port, nil) }

// Loss loses each TCP packet to or from port with probability
// percent/100 (iptables' statistic match, at random), until Heal.
func (n *Net) Loss(port int, percent float64) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("netfault: loss of %v%%: want 0 to 100", percent)
	}
	return n.drop(port, []string{"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(percent/100, 'f', 4, 64)})
}

// drop adds a DROP rule with match for port, each way.
func (n *Net) drop(port int, match []string) error {
	for _, dir := range []string{"--dport", "--sport"} {
		args := append([]string{n.iptables, "-w", "-A", chain, "-p", "tcp", dir, strconv.Itoa(port)}, match...)
		if err := n.Exec(append(args, "-j", "DROP")...); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every fault Drop and Loss added.
func (n *Net) Heal() error { return n.Exec(n.iptables, "-w", "-F", chain) }
