// Command redisbench compares memdict's Redis Dict with plain go-redis and
// rueidis clients against one local redis-server, plus a minimal
// hand-written RESP client that pipelines deeply on a few connections, as
// the server's ceiling for single-key commands, and measures the near
// cache (WithNearCache) over Redis.
//
//	cd examples/redisbench
//	go run .                              # starts its own redis-server
//	go run . -addr 127.0.0.1:6379 -d 20s -rounds 10
//	go run . -phases get-64 -memdict-only -cpuprofile cpu.out   # profile memdict alone
//
// The program is its own Go module (examples/redisbench/go.mod), so that
// rueidis, a benchmark-only comparison, is never a requirement of memdict.
//
// Every client stores the same typed value, encoded with memdict's msgpack
// codec, under its own keys with a one-hour TTL, and reads it back into a
// typed value: memdict through Dict.Store and Dict.Lookup; go-redis
// (github.com/redis/go-redis/v9) with SET PX and GET; rueidis
// (github.com/redis/rueidis, which pipelines concurrent calls on its own)
// with the same commands, client-side caching off; raw with the same
// commands written by hand, deeply pipelined: each of -raw-conns
// connections keeps a window of -raw-window commands in flight, written in
// one syscall, as redis-benchmark -P does, and its values are decoded and
// checked like the others' (see rawClient). It is what single-key
// commands can reach on this server and machine; memdict can pass it in
// the read phases only because it merges concurrent Gets into MGETs, which
// cost the server less per key. The phases are:
//
//	get-seq     one goroutine reading ~100-byte values
//	get-64      64 goroutines reading them
//	set-64      64 goroutines storing them
//	mix-64      64 goroutines, 90% reads and 10% writes
//	getbig-64   64 goroutines reading 16 KiB values
//
// Each phase runs -rounds rounds; in each round every client runs for
// d/(rounds*clients), in an order that rotates from round to round, so that
// all see the same background load. The program prints the median ops/s
// of each client, the median of the per-round ratios memdict/rueidis,
// memdict/go-redis and raw/rueidis, the client CPU time per call (this
// process's, getrusage) and the server's (the redis-server's threads,
// /proc/<pid>/task/*/schedstat; give -server-pid with -addr), and whether
// memdict meets its targets: every phase at least 1.0x rueidis, get-64 at
// least 2.5x, getbig-64 at least 1.1x. Then come the near-cache phases
// (see runNear):
//
//	near-hot-64   64 goroutines reading 8 hot keys, with and without a near cache
//	near-zipf-64  64 goroutines reading zipf(1.1) over 100k keys, likewise
//
// with targets of 50x and 3x. Timings depend on the machine; this is a program,
// not a test. It exits with status 1 if a target is missed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/memdict/memdict"
	memredis "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/codec"
)

// User is the small value: a typical cached record (about 100 bytes of
// msgpack).
type User struct {
	ID      int64    `msgpack:"id" json:"id"`
	Name    string   `msgpack:"name" json:"name"`
	Email   string   `msgpack:"email" json:"email"`
	Active  bool     `msgpack:"active" json:"active"`
	Tags    []string `msgpack:"tags" json:"tags"`
	Balance float64  `msgpack:"balance" json:"balance"`
	Blob    []byte   `msgpack:"blob,omitempty" json:"blob,omitempty"` // 16 KiB in the big values
}

// bigSize is the size of the big values' Blob.
const bigSize = 16 << 10

// client is one contender: get reads key i into a User and checks it, set
// stores key i.
type client struct {
	name     string
	get, set func(big bool, i int) error
	// phase, when set, runs a whole phase its own way (the raw client)
	// instead of calling get and set from g goroutines.
	phase func(kind func(i int) (set, big bool), g, keys int, d time.Duration) (opsPerSec, cpuPerOp float64)
}

func main() {
	addr := flag.String("addr", "", "redis-server address; empty: start a redis-server on a free port")
	dur := flag.Duration("d", 8*time.Second, "duration of each phase, all clients and rounds included")
	keys := flag.Int("keys", 10000, "number of distinct small keys")
	bigKeys := flag.Int("big-keys", 1000, "number of distinct 16 KiB keys")
	conc := flag.Int("c", 64, "goroutines in the concurrent phases")
	rounds := flag.Int("rounds", 8, "rounds per phase")
	rawConns := flag.Int("raw-conns", 4, "connections of the raw pipelined client")
	rawWindow := flag.Int("raw-window", 32, "raw: commands in flight per connection in the concurrent phases")
	only := flag.String("phases", "", "comma-separated phases to run (default: all)")
	hotKeys := flag.Int("hot-keys", 8, "near-hot: number of hot keys")
	zipfKeys := flag.Int("zipf-keys", 100000, "near-zipf: number of keys")
	nearEntries := flag.Int("near-entries", 10000, "near phases: the near cache's MaxEntries")
	nearShare := flag.Bool("near-share", true, "near phases: NearCache.ShareValues (false: every hit decodes again)")
	inflight := flag.Int("batch-inflight", 0, "memdict: pipelines in flight per server (0: the default)")
	protocol := flag.Int("protocol", 0, "memdict: RESP protocol version (0: the backend's default)")
	memOnly := flag.Bool("memdict-only", false, "run memdict alone (to profile it); no ratios")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the phases to this file")
	pid := flag.Int("server-pid", 0, "with -addr: the redis-server's process id, to measure its CPU time")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *bigKeys < 1 || *conc < 1 || *rawConns < 1 || *rawWindow < 1 || *dur <= 0 {
		log.Fatalf("redisbench: -rounds, -keys, -big-keys, -c, -raw-conns and -raw-window must be at least 1 and -d positive")
	}
	stopServer := func() {}
	if *addr == "" {
		a, p, stop, err := startServer()
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		stopServer = stop
		*addr, *pid = a, p
	}
	serverPID = *pid
	fmt.Printf("redisbench: server %s (pid %d), GOMAXPROCS %d, %d small and %d 16 KiB keys, %v per phase, %d rounds, %d goroutines in concurrent phases, load average %s\n",
		*addr, serverPID, runtime.GOMAXPROCS(0), *keys, *bigKeys, *dur, *rounds, *conc, loadAvg())

	clients, closeAll, err := newClients(*addr, *rawConns, *rawWindow, *inflight, *protocol)
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()
	for _, c := range clients {
		for i := range *keys {
			if err := c.set(false, i); err != nil {
				log.Fatalf("%s: fill: %v", c.name, err)
			}
		}
		for i := range *bigKeys {
			if err := c.set(true, i); err != nil {
				log.Fatalf("%s: fill: %v", c.name, err)
			}
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

	type phase struct {
		name   string
		g      int
		kind   func(i int) (set, big bool) // what call i does
		nkeys  int
		target float64 // memdict / rueidis
	}
	get := func(int) (bool, bool) { return false, false }
	cs := strconv.Itoa(*conc)
	phases := []phase{
		{"get-seq", 1, get, *keys, 1.0},
		{"get-" + cs, *conc, get, *keys, 2.5},
		{"set-" + cs, *conc, func(int) (bool, bool) { return true, false }, *keys, 1.0},
		{"mix-" + cs, *conc, func(i int) (bool, bool) { return i%10 == 0, false }, *keys, 1.0},
		{"getbig-" + cs, *conc, func(int) (bool, bool) { return false, true }, *bigKeys, 1.1},
	}

	fmt.Printf("\n%-10s %10s %10s %10s %10s   %8s %8s %8s   %-10s %s\n", "phase",
		"memdict", "go-redis", "rueidis", "raw", "m/rueid", "m/gored", "raw/rue", "target", "client CPU µs/op (memdict / go-redis / rueidis / raw)")
	ok := true
	for _, p := range phases {
		if *only != "" && !strings.Contains(","+*only+",", ","+p.name+",") {
			continue
		}
		slice := *dur / time.Duration(*rounds*len(clients))
		perClient := make([][]float64, len(clients))
		var mr, mg, rr []float64
		cpus := make([]float64, len(clients))
		srvs := make([]float64, len(clients))
		for r := range *rounds {
			got := make([]float64, len(clients))
			for j := range clients {
				k := (j + r) % len(clients)
				c := clients[k]
				if *memOnly && k != 0 {
					got[k] = math.NaN()
					continue
				}
				var ops, cpu float64
				if c.phase != nil {
					ops, cpu = c.phase(p.kind, p.g, p.nkeys, slice)
				} else {
					ops, cpu = run(func(i int) error {
						set, big := p.kind(i)
						k := i % p.nkeys
						if set {
							return c.set(big, k)
						}
						return c.get(big, k)
					}, p.g, p.nkeys, slice)
				}
				got[k] = ops
				cpus[k] += cpu / float64(*rounds)
				srvs[k] += lastServerPerOp / float64(*rounds)
			}
			for k := range clients {
				perClient[k] = append(perClient[k], got[k])
			}
			mr = append(mr, got[0]/got[2])
			mg = append(mg, got[0]/got[1])
			rr = append(rr, got[3]/got[2])
		}
		ratio := median(mr)
		verdict, met := judge(ratio, p.target, fmt.Sprintf(">=%.1fx", p.target))
		ok = ok && met
		fmt.Printf("%-10s %10.0f %10.0f %10.0f %10.0f   %7.2fx %7.2fx %7.2fx   %-10s %.1f / %.1f / %.1f / %.1f\n", p.name,
			median(perClient[0]), median(perClient[1]), median(perClient[2]), median(perClient[3]),
			ratio, median(mg), median(rr), verdict, cpus[0], cpus[1], cpus[2], cpus[3])
		if serverPID != 0 {
			fmt.Printf("%-10s %112s %.1f / %.1f / %.1f / %.1f\n", "", "server CPU µs/op", srvs[0], srvs[1], srvs[2], srvs[3])
		}
	}
	fmt.Println("\nops/s: median over rounds; ratios: median of the per-round ratios; CPU µs/op: the mean over the rounds of")
	fmt.Println("this process's CPU time (getrusage) and the server's (the threads' /proc/<pid>/task/*/schedstat) per call.")
	fmt.Printf("redisbench: load average %s at the end\n", loadAvg())
	nearOK, err := runNear(*addr, nearConfig{
		conc: *conc, rounds: *rounds, d: *dur, only: *only, hotKeys: *hotKeys, zipfKeys: *zipfKeys,
		entries: *nearEntries, share: *nearShare, inflight: *inflight, protocol: *protocol,
	})
	if err != nil {
		log.Fatal(err)
	}
	ok = ok && nearOK
	if !ok {
		fmt.Println("some targets were missed")
		pprof.StopCPUProfile()
		closeAll()
		stopServer()
		os.Exit(1)
	}
}

// newClients returns memdict, go-redis, rueidis and raw, in that order,
// on the server at addr, and a function that closes them all.
func newClients(addr string, rawConns, rawWindow, inflight, protocol int) ([]client, func(), error) {
	ctx := context.Background()
	var closers []func()
	closeAll := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
		closers = nil
	}
	user := func(big bool, i int) User {
		u := User{ID: int64(i), Name: "User Number " + strconv.Itoa(i), Email: "user" + strconv.Itoa(i) + "@example.com",
			Active: i%2 == 0, Tags: []string{"alpha", "beta", "gamma"}, Balance: float64(i) * 1.25}
		if big {
			u.Blob = make([]byte, bigSize)
			for j := range u.Blob {
				u.Blob[j] = byte(i + j)
			}
		}
		return u
	}
	key := func(prefix string, big bool, i int) string {
		if big {
			return prefix + "big:" + strconv.Itoa(i)
		}
		return prefix + "user:" + strconv.Itoa(i)
	}
	check := func(who string, big bool, i int, u *User) error {
		if u.ID != int64(i) || big != (len(u.Blob) == bigSize) {
			return fmt.Errorf("%s: get %d: wrong value (id %d, %d-byte blob)", who, i, u.ID, len(u.Blob))
		}
		return nil
	}
	mc := codec.MsgPack
	const ttl = time.Hour

	// memdict
	be, err := memredis.New(&goredis.Options{Addr: addr, Protocol: protocol}, memredis.WithBatching(true, inflight, 0))
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { be.Close() })
	d, err := memdict.New[User](be, "bench", memdict.WithDefaultTTL(ttl))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	mem := client{name: "memdict",
		get: func(big bool, i int) error {
			u, ok, err := d.Lookup(ctx, key("", big, i))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("memdict: get %d: missing", i)
			}
			return check("memdict", big, i, &u)
		},
		set: func(big bool, i int) error { return d.Store(ctx, key("", big, i), user(big, i)) },
	}

	// decode checks that b is the encoding of user(big, i).
	decode := func(name string, big bool, i int, b []byte) error {
		var u User
		if err := mc.Unmarshal(b, &u); err != nil {
			return err
		}
		return check(name, big, i, &u)
	}
	// bytesClient stores the users encoded, under keys with prefix, with
	// getBytes and setBytes.
	bytesClient := func(name, prefix string, getBytes func(key string) ([]byte, error), setBytes func(key string, b []byte) error) client {
		return client{name: name,
			get: func(big bool, i int) error {
				b, err := getBytes(key(prefix, big, i))
				if err != nil {
					return fmt.Errorf("%s: get: %w", name, err)
				}
				return decode(name, big, i, b)
			},
			set: func(big bool, i int) error {
				b, err := mc.Marshal(user(big, i))
				if err != nil {
					return err
				}
				return setBytes(key(prefix, big, i), b)
			},
		}
	}

	// go-redis
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	closers = append(closers, func() { rdb.Close() })
	gr := bytesClient("go-redis", "gr:",
		func(k string) ([]byte, error) { return rdb.Get(ctx, k).Bytes() },
		func(k string, b []byte) error { return rdb.Set(ctx, k, b, ttl).Err() })

	// rueidis
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	closers = append(closers, rc.Close)
	ru := bytesClient("rueidis", "ru:",
		func(k string) ([]byte, error) { return rc.Do(ctx, rc.B().Get().Key(k).Build()).AsBytes() },
		func(k string, b []byte) error {
			return rc.Do(ctx, rc.B().Set().Key(k).Value(rueidis.BinaryString(b)).Px(ttl).Build()).Error()
		})

	// raw
	raw, err := dialRaw(addr, rawConns)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("raw: %w", err)
	}
	closers = append(closers, raw.close)
	ttlMs := strconv.FormatInt(ttl.Milliseconds(), 10)
	rawKey := func(big bool, i int) string { return key("raw:", big, i) }
	rawValue := func(big bool, i int) ([]byte, error) { return mc.Marshal(user(big, i)) }
	rawCheck := func(big bool, i int, b []byte) error { return decode("raw", big, i, b) }
	rw := client{name: "raw",
		phase: func(kind func(int) (bool, bool), g, keys int, d time.Duration) (float64, float64) {
			return raw.run(kind, g, keys, rawWindow, d, rawKey, rawValue, rawCheck, ttlMs)
		},
		get: func(big bool, i int) error {
			b, err := raw.do("GET", key("raw:", big, i))
			if err != nil {
				return err
			}
			if b == nil {
				return fmt.Errorf("raw: get %d: missing", i)
			}
			return rawCheck(big, i, b)
		},
		set: func(big bool, i int) error {
			b, err := mc.Marshal(user(big, i))
			if err != nil {
				return err
			}
			_, err = raw.do("SET", key("raw:", big, i), string(b), "PX", ttlMs)
			return err
		},
	}
	return []client{mem, gr, ru, rw}, closeAll, nil
}

// run calls fn from g goroutines for d and returns calls per second and
// the process's CPU time (user and system) per call, in microseconds. It
// exits the program on the first error.
func run(fn func(int) error, g, keys int, d time.Duration) (opsPerSec, cpuPerOp float64) {
	return measure(g, d, func(w int, stopped func() bool, fail func(error)) int64 {
		i := w * 7919
		var local int64
		for !stopped() {
			if err := fn(i % keys); err != nil {
				fail(err)
			}
			i++
			local++
		}
		return local
	})
}

// measure runs worker(w, stopped, fail) from a goroutine for each w below
// g, for d, and returns calls per second (a worker returns how many calls
// it made) and the process's CPU time (user and system) per call, in
// microseconds. A worker returns once stopped() is true; fail records its
// error and stops them all, and the program exits on the first error.
func measure(g int, d time.Duration, worker func(w int, stopped func() bool, fail func(error)) int64) (opsPerSec, cpuPerOp float64) {
	cpu0, srv0 := cpuTime(), serverCPU(serverPID)
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { firstErr = err })
		stop.Store(true)
	}
	start := time.Now()
	for w := range g {
		wg.Go(func() { n.Add(worker(w, stop.Load, fail)) })
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		log.Fatal(firstErr)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	lastServerPerOp = float64((serverCPU(serverPID) - srv0).Nanoseconds()) / 1e3 / float64(max(n.Load(), 1))
	return float64(n.Load()) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(max(n.Load(), 1))
}

// serverPID is the redis-server whose CPU time is measured (0: none), and
// lastServerPerOp its CPU time per call, in microseconds, over the last
// measure.
var (
	serverPID       int
	lastServerPerOp float64
)

// serverCPU returns the time the threads of process pid have run, from
// the first field of each /proc/<pid>/task/<tid>/schedstat (nanoseconds),
// or 0 if pid is 0 or unreadable.
func serverCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// judge says whether ratio meets target: want (the target as printed)
// followed by " ok" or " MISSED", and whether it does.
func judge(ratio, target float64, want string) (string, bool) {
	if ratio >= target {
		return want + " ok", true
	}
	return want + " MISSED", false
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
// address, its process id and a function that stops it.
func startServer() (string, int, func(), error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
			if _, err2 := os.Stat(p); err2 == nil {
				path, err = p, nil
				break
			}
		}
		if err != nil {
			return "", 0, nil, errors.New("redis-server not found (apt-get install redis-server), or give -addr")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	// The server dies with this program, however it exits (log.Fatal and
	// os.Exit skip deferred calls): an orphan would keep any lock the
	// program inherited, such as that of flock(1).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", 0, nil, fmt.Errorf("redis-server did not start on %s", addr)
}

// rawClient is the ceiling: a minimal RESP2 client that pipelines deeply,
// as redis-benchmark -P does, rather than serving callers. In a concurrent
// phase each of its few connections has one goroutine of its own, which
// writes a window of commands (GET or SET PX, one per key, no MGET) in one
// write, reads their replies from a 64 KiB buffer, decodes and checks each
// value as the other clients do, and starts over; get-seq uses one
// connection and a window of one (a lone round trip). It thus measures
// what the server answers per second for single-key commands when the
// client costs next to nothing per call (no goroutine per call, no wakeups,
// one syscall per window each way), on the same machine as the others:
// what a Redis client that sends single-key commands cannot beat. It knows
// GET and SET only: replies are simple strings, bulk strings and errors.
type rawClient struct {
	conns []*rawConn
}

type rawConn struct {
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
	mu  sync.Mutex // for do: the fill and checks outside the phases
}

func dialRaw(addr string, n int) (*rawClient, error) {
	c := &rawClient{}
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			c.close()
			return nil, err
		}
		c.conns = append(c.conns, &rawConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)})
	}
	return c, nil
}

// appendCmd appends the RESP form of a command to buf.
func appendCmd(buf []byte, args ...string) []byte {
	buf = append(buf, '*')
	buf = strconv.AppendInt(buf, int64(len(args)), 10)
	buf = append(buf, '\r', '\n')
	for _, a := range args {
		buf = append(buf, '$')
		buf = strconv.AppendInt(buf, int64(len(a)), 10)
		buf = append(buf, '\r', '\n')
		buf = append(buf, a...)
		buf = append(buf, '\r', '\n')
	}
	return buf
}

// do sends one command on the first connection and returns its reply: the
// bytes of a bulk string, nil for a null, the text of a simple string, or
// an error. It is for the fill, not for the phases.
func (c *rawClient) do(args ...string) ([]byte, error) {
	rc := c.conns[0]
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.buf = appendCmd(rc.buf[:0], args...)
	if _, err := rc.nc.Write(rc.buf); err != nil {
		return nil, err
	}
	return readReply(rc.r)
}

// rawOp is one call of a window: what run asked for.
type rawOp struct {
	i        int
	set, big bool
}

// run runs the phase whose call i is kind(i), as run does for the other
// clients, on min(g, connections) connections with window commands in
// flight on each (one when g is 1). get and set encode and check values
// as the other clients do.
func (c *rawClient) run(kind func(i int) (set, big bool), g, keys, window int, d time.Duration,
	key func(big bool, i int) string, value func(big bool, i int) ([]byte, error), check func(big bool, i int, b []byte) error,
	ttlMs string) (opsPerSec, cpuPerOp float64) {
	conns := c.conns[:min(g, len(c.conns))]
	if g == 1 {
		window = 1
	}
	return measure(len(conns), d, func(w int, stopped func() bool, fail func(error)) int64 {
		rc := conns[w]
		i := w * 7919
		ops := make([]rawOp, window)
		var local int64
		for !stopped() {
			buf := rc.buf[:0]
			for j := range ops {
				set, big := kind(i)
				k := i % keys
				ops[j] = rawOp{k, set, big}
				if set {
					v, err := value(big, k)
					if err != nil {
						fail(err)
						return local
					}
					buf = appendCmd(buf, "SET", key(big, k), string(v), "PX", ttlMs)
				} else {
					buf = appendCmd(buf, "GET", key(big, k))
				}
				i++
			}
			rc.buf = buf
			if _, err := rc.nc.Write(buf); err != nil {
				fail(err)
				return local
			}
			for _, op := range ops {
				b, err := readReply(rc.r)
				switch {
				case err != nil:
				case op.set && string(b) != "OK":
					err = fmt.Errorf("raw: set %d: reply %q", op.i, b)
				case !op.set && b == nil:
					err = fmt.Errorf("raw: get %d: missing", op.i)
				case !op.set:
					err = check(op.big, op.i, b)
				}
				if err != nil {
					fail(err)
					return local
				}
			}
			local += int64(window)
		}
		return local
	})
}

var errReply = errors.New("raw: error reply")

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("raw: short reply %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return append([]byte(nil), body...), nil
	case '-':
		return nil, fmt.Errorf("%w: %s", errReply, body)
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return nil, fmt.Errorf("raw: bad bulk length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	}
	return nil, fmt.Errorf("raw: unexpected reply %q", line)
}

func (c *rawClient) close() {
	for _, rc := range c.conns {
		rc.nc.Close()
	}
}

// nearConfig holds the flags of the near-cache phases.
type nearConfig struct {
	conc, rounds       int
	d                  time.Duration
	only               string
	hotKeys, zipfKeys  int
	entries            int
	share              bool
	inflight, protocol int
}

// runNear runs the near-cache phases: one Dict with
// WithNearCache(memdict.NearCache{...}) over Redis, kept coherent by
// CLIENT TRACKING, against the same Dict without it (both on one Backend):
//
//	near-hot-64    64 goroutines reading a few hot keys (-hot-keys)
//	near-zipf-64   64 goroutines reading keys drawn from zipf(1.1) over
//	               -zipf-keys keys, with a near cache of -near-entries
//
// It prints the median ops/s of each and of the per-round ratios, with
// the near cache's hit ratio, and reports whether the targets were met:
// hot keys at least 50x without the near cache, zipf at least 3x.
func runNear(addr string, cfg nearConfig) (bool, error) {
	cs := strconv.Itoa(cfg.conc)
	want := func(name string) bool {
		return cfg.only == "" || strings.Contains(","+cfg.only+",", ","+name+",")
	}
	hot, zipf := "near-hot-"+cs, "near-zipf-"+cs
	if !want(hot) && !want(zipf) {
		return true, nil
	}
	ctx := context.Background()
	be, err := memredis.New(&goredis.Options{Addr: addr, Protocol: cfg.protocol}, memredis.WithBatching(true, cfg.inflight, 0))
	if err != nil {
		return false, err
	}
	defer be.Close()
	plain, err := memdict.New[User](be, "near", memdict.WithDefaultTTL(time.Hour))
	if err != nil {
		return false, err
	}
	near, err := memdict.New[User](be, "near", memdict.WithDefaultTTL(time.Hour),
		memdict.WithNearCache(memdict.NearCache{MaxEntries: cfg.entries, ShareValues: cfg.share}))
	if err != nil {
		return false, err
	}
	fill := func(prefix string, n int) error {
		m := make(map[string]User, 1000)
		for i := range n {
			m[prefix+strconv.Itoa(i)] = User{ID: int64(i), Name: "User Number " + strconv.Itoa(i),
				Email: "user" + strconv.Itoa(i) + "@example.com", Tags: []string{"alpha", "beta", "gamma"}}
			if len(m) == 1000 || i == n-1 {
				if err := plain.PutMulti(ctx, m); err != nil {
					return err
				}
				clear(m)
			}
		}
		return nil
	}

	fmt.Printf("\n%-13s %10s %10s   %9s   %-10s %s\n", "phase", "near", "without", "near/w/o", "target", "near-cache hits")
	ok := true
	type phase struct {
		name   string
		prefix string
		keys   []int // the key of call i is keys[i%len(keys)]
		target float64
	}
	var phases []phase
	if want(hot) {
		if err := fill("hot:", cfg.hotKeys); err != nil {
			return false, err
		}
		ks := make([]int, cfg.hotKeys)
		for i := range ks {
			ks[i] = i
		}
		phases = append(phases, phase{hot, "hot:", ks, 50})
	}
	if want(zipf) {
		if err := fill("z:", cfg.zipfKeys); err != nil {
			return false, err
		}
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(cfg.zipfKeys-1))
		ks := make([]int, 1<<20)
		for i := range ks {
			ks[i] = int(z.Uint64())
		}
		phases = append(phases, phase{zipf, "z:", ks, 3})
	}
	for _, p := range phases {
		keys := make([]string, len(p.keys)) // built once: the phase measures reads, not key formatting
		for i, k := range p.keys {
			keys[i] = p.prefix + strconv.Itoa(k)
		}
		read := func(d *memdict.Dict[User]) func(i int) error {
			return func(i int) error {
				u, found, err := d.Lookup(ctx, keys[i])
				switch {
				case err != nil:
					return err
				case !found || u.ID != int64(p.keys[i]):
					return fmt.Errorf("%s: get %s: wrong value (found %v, id %d)", p.name, keys[i], found, u.ID)
				}
				return nil
			}
		}
		slice := cfg.d / time.Duration(2*cfg.rounds)
		var withs, withouts, ratios []float64
		st0 := near.Stats().NearCache
		for r := range cfg.rounds {
			var w, wo float64
			if r%2 == 0 {
				w, _ = run(read(near), cfg.conc, len(keys), slice)
				wo, _ = run(read(plain), cfg.conc, len(keys), slice)
			} else {
				wo, _ = run(read(plain), cfg.conc, len(keys), slice)
				w, _ = run(read(near), cfg.conc, len(keys), slice)
			}
			withs, withouts, ratios = append(withs, w), append(withouts, wo), append(ratios, w/wo)
		}
		st := near.Stats().NearCache
		hits, misses := st.Hits-st0.Hits, st.Misses-st0.Misses
		ratio := median(ratios)
		verdict, met := judge(ratio, p.target, fmt.Sprintf(">=%.0fx", p.target))
		ok = ok && met
		fmt.Printf("%-13s %10.0f %10.0f   %8.1fx   %-10s %.1f%%\n", p.name, median(withs), median(withouts), ratio, verdict,
			100*float64(hits)/float64(max(hits+misses, 1)))
	}
	fmt.Println("\nnear: a Dict with WithNearCache over Redis (CLIENT TRACKING); without: the same Dict without it.")
	return ok, nil
}
