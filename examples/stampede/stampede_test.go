package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/testserver"
)

// The test binary is also the children: runParent re-runs it with childEnv
// set, and the takeover test with hangEnv set.
const (
	hangEnv    = "MEMDICT_STAMPEDE_TEST_HANG"     // the backend URL
	hangKeyEnv = "MEMDICT_STAMPEDE_TEST_HANG_KEY" // the key
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	if url := os.Getenv(hangEnv); url != "" {
		os.Exit(hangChild(url, os.Getenv(hangKeyEnv)))
	}
	os.Exit(m.Run())
}

// servers starts a memcached and a redis-server for the test and returns
// their URLs by name.
func servers() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"memcached": func(t *testing.T) string { return "memcached://" + testserver.Memcached(t).Addr },
		"redis":     func(t *testing.T) string { return "redis://" + testserver.Redis(t).Addr },
	}
}

// executable is the test binary, which runs the children.
func executable(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// config returns the flags' defaults for url, made small for a test.
func testConfig(t *testing.T, url string, extra ...string) config {
	t.Helper()
	args := append([]string{"-url", url, "-procs", "3", "-g", "10", "-timeout", "60s"}, extra...)
	var stderr bytes.Buffer
	c, err := parseFlags(args, &stderr)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v %s", args, err, stderr.String())
	}
	return c
}

// mustRunParent runs the parent with config c and logs its result; it
// fails the test, with the parent's stderr, if the run fails.
func mustRunParent(t *testing.T, c config) *result {
	t.Helper()
	var stderr bytes.Buffer
	res, err := runParent(context.Background(), c, executable(t), &stderr)
	if err != nil {
		t.Fatalf("runParent: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("\n%s", res)
	return res
}

// Three processes of ten goroutines ask for one cold key at once: one load
// fleet-wide, and every caller gets its value only once it is loaded.
func TestColdKeyOneLoad(t *testing.T) {
	for name, start := range servers() {
		t.Run(name, func(t *testing.T) {
			c := testConfig(t, start(t))
			res := mustRunParent(t, c)
			if res.loads != 1 || res.childLoad != 1 {
				t.Errorf("the backend counted %d loads and the children ran the loader %d times; want 1 and 1", res.loads, res.childLoad)
			}
			if got, want := len(res.latencies), c.procs*c.g; got != want || res.errors != 0 {
				t.Errorf("%d calls, %d failed; want %d calls, none failed", got, res.errors, want)
			}
			if len(res.loadStarts) > 0 && res.firstReturn.Before(res.loadStarts[0].Add(c.loadTime)) {
				t.Errorf("a caller returned %v after the load started, before it (%v) could have finished",
					res.firstReturn.Sub(res.loadStarts[0]), c.loadTime)
			}
			if out := res.String(); !strings.HasPrefix(out, "loads: 1\nlatency: calls=30 p50=") || strings.Count(out, "\n") != 2 {
				t.Errorf("output %q: want \"loads: 1\" and one latency line", out)
			}
		})
	}
}

// SWR mode: a stale seed, callers calling throughout the refresh: exactly
// one refresh fleet-wide, and callers served the stale value meanwhile
// rather than waiting for the load.
func TestSWROneRefresh(t *testing.T) {
	for name, start := range servers() {
		t.Run(name, func(t *testing.T) {
			// A load long enough that calls served without waiting for it
			// stand out on a slow machine.
			c := testConfig(t, start(t), "-swr", "-ttl", "1s", "-load-time", "500ms")
			res := mustRunParent(t, c)
			if res.loads != 1 || res.childLoad != 1 {
				t.Errorf("the backend counted %d refreshes and the children ran the loader %d times; want 1 and 1", res.loads, res.childLoad)
			}
			if res.errors != 0 || len(res.latencies) < c.procs*c.g {
				t.Errorf("%d calls, %d failed; want at least %d (one per goroutine), none failed", len(res.latencies), res.errors, c.procs*c.g)
			}
			if res.stale == 0 {
				t.Errorf("no call was served the stale value during the refresh")
			}
			if p50 := percentile(res.latencies, 0.5); p50 >= c.loadTime/2 {
				t.Errorf("median latency %v: callers waited for the %v refresh instead of getting the stale value", p50, c.loadTime)
			}
			if out := res.String(); !strings.HasPrefix(out, "loads: 1\nlatency: calls=") || !strings.Contains(out, " stale=") {
				t.Errorf("output %q: want \"loads: 1\" and a latency line with the stale count", out)
			}
		})
	}
}

// hangChild is the takeover test's child: it calls GetOrLoad on key with a
// 1 s lease, and its loader says "won <unix nanoseconds>" and never returns.
func hangChild(url, key string) int {
	ctx := context.Background()
	x, err := open(ctx, config{url: url, leaseTTL: time.Second, counter: "hang"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = x.d.GetOrLoad(ctx, key, func(context.Context, string) (string, error) {
		fmt.Printf("won %d\n", time.Now().UnixNano())
		time.Sleep(time.Minute) // until killed; the test's deadlines are shorter
		return "", errors.New("not killed")
	})
	fmt.Fprintln(os.Stderr, "hang child:", err)
	return 1
}

// A child process wins the lease on a cold key and is killed with SIGKILL
// while loading; a caller waiting in this process takes over once the
// lease (1 s) expires and returns its own load.
func TestLeaseTakeoverAfterKill(t *testing.T) {
	for name, start := range servers() {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			key := "takeover-" + newID()
			cmd := exec.Command(executable(t))
			cmd.Env = append(os.Environ(), hangEnv+"="+url, hangKeyEnv+"="+key)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			won := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(stdout).ReadString('\n')
				won <- line
				_ = cmd.Wait()
				close(exited)
			}()
			var wonAt time.Time
			select {
			case line := <-won:
				ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "won ")), 10, 64)
				if !strings.HasPrefix(line, "won ") || err != nil {
					t.Fatalf("the child said %q, want \"won <time>\"; stderr: %s", line, stderr.String())
				}
				wonAt = time.Unix(0, ns)
			case <-time.After(20 * time.Second):
				t.Fatalf("the child did not win the lease within 20s; stderr: %s", stderr.String())
			}

			x, err := open(context.Background(), config{url: url, leaseTTL: time.Second, counter: "takeover"})
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			var loads atomic.Int32
			var loadedAt atomic.Int64
			type answer struct {
				v   string
				err error
			}
			got := make(chan answer, 1)
			// 1 s of lease and a few of slack; the default lease (10 s)
			// would not fit.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			go func() {
				v, err := x.d.GetOrLoad(ctx, key, func(context.Context, string) (string, error) {
					loads.Add(1)
					loadedAt.Store(time.Now().UnixNano())
					return "parent's", nil
				})
				got <- answer{v, err}
			}()

			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d: %v", cmd.Process.Pid, err)
			}
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				t.Fatal("the killed child did not exit within 20s")
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child ended with %v, want killed by SIGKILL", cmd.ProcessState)
			}

			a := <-got
			if a.err != nil || a.v != "parent's" {
				t.Fatalf("GetOrLoad after the winner's death = %q, %v; want the waiter's own load", a.v, a.err)
			}
			if n := loads.Load(); n != 1 {
				t.Errorf("the waiter loaded %d times, want 1", n)
			}
			held := time.Unix(0, loadedAt.Load()).Sub(wonAt)
			t.Logf("the waiter loaded %v after the child won", held)
			// Redis's lease (PX 1000) lasts exactly 1 s from before the
			// child's loader started; memcached's whole-second clock can
			// end a 1 s lease at any point of that second, so no lower
			// bound there.
			if name == "redis" && held < 500*time.Millisecond {
				t.Errorf("the waiter loaded %v after the child won a 1s lease: it did not wait for the lease", held)
			}
			if v, ok, err := x.d.Lookup(context.Background(), key); err != nil || !ok || v != "parent's" {
				t.Errorf("Lookup after the takeover = %q, %v, %v; want the waiter's value stored", v, ok, err)
			}
		})
	}
}

// Bad flags and URLs: exit status 2 and a message naming the problem;
// a server that is not there: status 1.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-url is required"},
		{[]string{"-url", "mem://"}, "private to each process"},
		{[]string{"-url", "127.0.0.1:11211"}, "no scheme"},
		{[]string{"-url", "nosuch://127.0.0.1:1"}, "unknown URL scheme"},
		{[]string{"-url", "memcached://127.0.0.1:1?bogus=1"}, "bogus"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-procs", "0"}, "-procs 0"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-g", "-3"}, "-g -3"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-lease-ttl", "0s"}, "-lease-ttl"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-swr", "-ttl", "100ms"}, "whole seconds"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-swr", "-every", "0s"}, "-every"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-procs", "many"}, "invalid value"},
		{[]string{"-url", "memcached://127.0.0.1:1", "extra"}, "unexpected argument"},
		{[]string{"-url", "memcached://127.0.0.1:1", "-child"}, "-child needs -key"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d and a message with %q", tc.args, code, stdout.String(), stderr.String(), exitUsage, tc.want)
		}
	}

	url := fmt.Sprintf("memcached://127.0.0.1:%d", testserver.FreePort(t))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-url", url, "-procs", "1", "-g", "1"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "cannot reach") || stdout.Len() != 0 {
		t.Errorf("run against %s, where nothing listens = %d, stdout %q, stderr %q; want 1 and \"cannot reach\"", url, code, stdout.String(), stderr.String())
	}
}

func TestPercentileAndOutput(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, ms(i))
	}
	for q, want := range map[float64]time.Duration{0.5: ms(50), 0.9: ms(90), 0.99: ms(99), 1: ms(100), 0: ms(1)} {
		if got := percentile(lat, q); got != want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	r := &result{swr: true, loads: 1, latencies: lat, stale: 7}
	want := "loads: 1\nlatency: calls=100 stale=7 p50=50ms p90=90ms p99=99ms max=100ms\n"
	if got := r.String(); got != want {
		t.Errorf("output:\n%q\nwant\n%q", got, want)
	}
	if got := round(1234567 * time.Nanosecond); got != 1235*time.Microsecond {
		t.Errorf("round(1.234567ms) = %v", got)
	}
}
