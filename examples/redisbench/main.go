// Command redisbench compares memdict's Redis Dict with
// github.com/go-redis/cache/v9 against one local redis-server, and runs
// redis-benchmark against the same server for its ceiling.
//
//	go run ./examples/redisbench                 # starts its own redis-server
//	go run ./examples/redisbench -addr 127.0.0.1:6379 -d 10s
//
// Both libraries store the same msgpack-encoded struct with a one-hour TTL,
// through go-redis clients with the same options, and read it back into a
// typed value; go-redis/cache runs without its local (in-process) cache, so
// that both measure Redis round trips. Each phase runs for -d:
//
//	set-seq   one goroutine storing values
//	get-seq   one goroutine reading them
//	get-64    64 goroutines reading them (memdict coalesces concurrent reads
//	          into MGETs; go-redis/cache sends one GET per read)
//	set-64    64 goroutines storing values
//
// Each phase alternates the two libraries in -rounds short rounds; it prints
// the median ops/s of each, the median of the per-round ratios memdict /
// go-redis/cache, the client CPU time per call, and
// whether the targets hold (sequential Get and Set at least 1.0x, 64
// goroutines doing Get at least 3x). Timings depend on the machine; this is
// a program, not a test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-redis/cache/v9"
	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	memredis "github.com/memdict/memdict/backend/redis"
)

// User is the benchmark's value: a typical small cached record (about 100
// bytes of msgpack).
type User struct {
	ID      int64    `msgpack:"id"`
	Name    string   `msgpack:"name"`
	Email   string   `msgpack:"email"`
	Active  bool     `msgpack:"active"`
	Tags    []string `msgpack:"tags"`
	Balance float64  `msgpack:"balance"`
}

func main() {
	addr := flag.String("addr", "", "redis-server address; empty: start a redis-server on a free port")
	dur := flag.Duration("d", 6*time.Second, "duration of each phase")
	keys := flag.Int("keys", 10000, "number of distinct keys")
	conc := flag.Int("c", 64, "goroutines in the concurrent phases")
	rb := flag.Bool("redis-benchmark", true, "also run redis-benchmark for the server's ceiling")
	inflight := flag.Int("batch-inflight", 0, "memdict: multi-gets in flight per server (0: the default)")
	only := flag.String("phases", "", "comma-separated phases to run (default: all)")
	rounds := flag.Int("rounds", 15, "rounds per phase; each runs go-redis/cache, memdict, memdict, go-redis/cache for d/(4*rounds) each")
	protocol := flag.Int("protocol", 0, "memdict: RESP protocol version (0: the backend's default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the phases to this file")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *conc < 1 || *dur <= 0 {
		log.Fatalf("redisbench: -rounds, -keys and -c must be at least 1 and -d positive (got %d, %d, %d, %v)", *rounds, *keys, *conc, *dur)
	}

	if *addr == "" {
		a, stop, err := startServer()
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		*addr = a
	}
	fmt.Printf("redisbench: server %s, GOMAXPROCS %d, %d keys, %v per phase, %d goroutines in concurrent phases\n",
		*addr, runtime.GOMAXPROCS(0), *keys, *dur, *conc)

	ctx := context.Background()
	be, err := memredis.New(&goredis.Options{Addr: *addr, Protocol: *protocol}, memredis.WithBatching(true, *inflight, 0))
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()
	d, err := memdict.New[User](be, "bench", memdict.WithDefaultTTL(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: *addr, DisableIdentity: true})
	defer rdb.Close()
	gc := cache.New(&cache.Options{Redis: rdb})
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Fatalf("redis-server at %s: %v", *addr, err)
	}

	key := func(i int) string { return "user:" + strconv.Itoa(i) }
	user := func(i int) User {
		return User{ID: int64(i), Name: "User Number " + strconv.Itoa(i), Email: "user" + strconv.Itoa(i) + "@example.com",
			Active: i%2 == 0, Tags: []string{"alpha", "beta", "gamma"}, Balance: float64(i) * 1.25}
	}
	memSet := func(i int) error { return d.Store(ctx, key(i), user(i)) }
	memGet := func(i int) error {
		v, ok, err := d.Lookup(ctx, key(i))
		if err != nil {
			return err
		}
		if !ok || v.ID != int64(i) {
			return fmt.Errorf("memdict: get %s: ok=%v id=%d", key(i), ok, v.ID)
		}
		return nil
	}
	gcSet := func(i int) error {
		return gc.Set(&cache.Item{Ctx: ctx, Key: "gc:" + key(i), Value: user(i), TTL: time.Hour})
	}
	gcGet := func(i int) error {
		var v User
		if err := gc.Get(ctx, "gc:"+key(i), &v); err != nil {
			return err
		}
		if v.ID != int64(i) {
			return fmt.Errorf("go-redis/cache: get %s: id=%d", key(i), v.ID)
		}
		return nil
	}

	type phase struct {
		name      string
		g         int
		mem, gcfn func(int) error
		target    float64
	}
	phases := []phase{
		{"set-seq", 1, memSet, gcSet, 1.0},
		{"get-seq", 1, memGet, gcGet, 1.0},
		{fmt.Sprintf("get-%d", *conc), *conc, memGet, gcGet, 3.0},
		{fmt.Sprintf("set-%d", *conc), *conc, memSet, gcSet, 0},
	}
	// Fill both key sets so that every Get hits.
	for i := range *keys {
		if err := memSet(i); err != nil {
			log.Fatal(err)
		}
		if err := gcSet(i); err != nil {
			log.Fatal(err)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("\n%-9s %16s %16s %8s %-12s %s\n", "phase", "memdict ops/s", "go-redis/cache", "ratio", "target",
		"client CPU µs/op (memdict / go-redis/cache)")
	ok := true
	for _, p := range phases {
		if *only != "" && !strings.Contains(","+*only+",", ","+p.name+",") {
			continue
		}
		// Alternate the libraries in short rounds (g m m g), so that both
		// see the same background load, and take the median of the
		// per-round ratios: one noisy round does not decide.
		slice := *dur / time.Duration(4**rounds)
		var ms, gs, ratios []float64
		var mcpu, gcpu float64
		for range *rounds {
			var m, g float64
			for _, mem := range []bool{false, true, true, false} {
				if mem {
					r, c := run(p.mem, p.g, *keys, slice)
					m, mcpu = m+r/2, mcpu+c
				} else {
					r, c := run(p.gcfn, p.g, *keys, slice)
					g, gcpu = g+r/2, gcpu+c
				}
			}
			ms, gs, ratios = append(ms, m), append(gs, g), append(ratios, m/g)
		}
		n := float64(2 * *rounds)
		mcpu, gcpu = mcpu/n, gcpu/n
		m, g, ratio := median(ms), median(gs), median(ratios)
		verdict := ""
		if p.target > 0 {
			verdict = fmt.Sprintf(">=%.1fx", p.target)
			if ratio >= p.target {
				verdict += " ok"
			} else {
				verdict += " MISSED"
				ok = false
			}
		}
		fmt.Printf("%-9s %16.0f %16.0f %7.2fx %-12s %5.1f / %5.1f\n", p.name, m, g, ratio, verdict, mcpu, gcpu)
	}
	if *rb {
		redisBenchmark(*addr, *conc)
	}
	if !ok {
		fmt.Println("\nsome targets were missed")
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// run calls fn from g goroutines for d and returns calls per second and
// the process's CPU time (user and system) per call, in microseconds. It
// exits the program on the first error.
func run(fn func(int) error, g, keys int, d time.Duration) (opsPerSec, cpuPerOp float64) {
	cpu0 := cpuTime()
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for w := range g {
		wg.Go(func() {
			i := w * 7919
			var local int64
			for !stop.Load() {
				if err := fn(i % keys); err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
				}
				i++
				local++
			}
			n.Add(local)
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		log.Fatal(firstErr)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	return float64(n.Load()) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(max(n.Load(), 1))
}

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// cpuTime returns the CPU time (user plus system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startServer starts redis-server on a free loopback port and returns its
// address and a function that stops it.
func startServer() (string, func(), error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
			if _, err2 := os.Stat(p); err2 == nil {
				path, err = p, nil
				break
			}
		}
		if err != nil {
			return "", nil, errors.New("redis-server not found (apt-get install redis-server), or give -addr")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
}

// redisBenchmark runs redis-benchmark's GET and SET tests against addr:
// with one client (the sequential ceiling), with c clients, and with c
// clients pipelining 16 commands (the server's ceiling).
func redisBenchmark(addr string, c int) {
	path, err := exec.LookPath("redis-benchmark")
	if err != nil {
		fmt.Println("\nredis-benchmark not found: skipped (apt-get install redis-tools)")
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	fmt.Printf("\nredis-benchmark (server ceiling, 100-byte values):\n")
	for _, args := range [][]string{
		{"-c", "1", "-n", "50000"},
		{"-c", strconv.Itoa(c), "-n", "300000"},
		{"-c", strconv.Itoa(c), "-n", "1000000", "-P", "16"},
	} {
		full := append([]string{"-h", host, "-p", port, "-t", "set,get", "-d", "100", "-q"}, args...)
		out, err := exec.Command(path, full...).CombinedOutput()
		if err != nil {
			fmt.Printf("  redis-benchmark %s: %v\n", strings.Join(full, " "), err)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			// -q prints progress lines ending in \r and one result line per test.
			if i := strings.LastIndex(line, "\r"); i >= 0 {
				line = line[i+1:]
			}
			line = strings.TrimSpace(line)
			if line != "" {
				fmt.Printf("  %-24s %s\n", strings.Join(args, " ")+":", line)
			}
		}
	}
}
