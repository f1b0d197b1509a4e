// Command redisbench compares memdict's Redis Dict with plain go-redis and
// rueidis clients against one local redis-server, plus a minimal
// hand-written pipelined RESP client on a few connections, as the server's
// ceiling.
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
// commands written by hand. The phases are:
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
// memdict/go-redis and raw/rueidis, the client CPU time per call, and
// whether memdict meets its targets: every phase at least 1.0x rueidis,
// get-64 at least 2.5x. Timings depend on the machine; this is a program,
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
}

func main() {
	addr := flag.String("addr", "", "redis-server address; empty: start a redis-server on a free port")
	dur := flag.Duration("d", 8*time.Second, "duration of each phase, all clients and rounds included")
	keys := flag.Int("keys", 10000, "number of distinct small keys")
	bigKeys := flag.Int("big-keys", 1000, "number of distinct 16 KiB keys")
	conc := flag.Int("c", 64, "goroutines in the concurrent phases")
	rounds := flag.Int("rounds", 8, "rounds per phase")
	rawConns := flag.Int("raw-conns", 4, "connections of the raw pipelined client")
	only := flag.String("phases", "", "comma-separated phases to run (default: all)")
	inflight := flag.Int("batch-inflight", 0, "memdict: pipelines in flight per server (0: the default)")
	protocol := flag.Int("protocol", 0, "memdict: RESP protocol version (0: the backend's default)")
	memOnly := flag.Bool("memdict-only", false, "run memdict alone (to profile it); no ratios")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the phases to this file")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *bigKeys < 1 || *conc < 1 || *rawConns < 1 || *dur <= 0 {
		log.Fatalf("redisbench: -rounds, -keys, -big-keys, -c and -raw-conns must be at least 1 and -d positive")
	}
	if *addr == "" {
		a, stop, err := startServer()
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		*addr = a
	}
	fmt.Printf("redisbench: server %s, GOMAXPROCS %d, %d small and %d 16 KiB keys, %v per phase, %d rounds, %d goroutines in concurrent phases\n",
		*addr, runtime.GOMAXPROCS(0), *keys, *bigKeys, *dur, *rounds, *conc)

	clients, closeAll, err := newClients(*addr, *rawConns, *inflight, *protocol)
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
		op     func(c client, i int) error
		nkeys  int
		target float64 // memdict / rueidis
	}
	cs := strconv.Itoa(*conc)
	phases := []phase{
		{"get-seq", 1, func(c client, i int) error { return c.get(false, i) }, *keys, 1.0},
		{"get-" + cs, *conc, func(c client, i int) error { return c.get(false, i) }, *keys, 2.5},
		{"set-" + cs, *conc, func(c client, i int) error { return c.set(false, i) }, *keys, 1.0},
		{"mix-" + cs, *conc, func(c client, i int) error {
			if i%10 == 0 {
				return c.set(false, i)
			}
			return c.get(false, i)
		}, *keys, 1.0},
		{"getbig-" + cs, *conc, func(c client, i int) error { return c.get(true, i) }, *bigKeys, 1.0},
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
		for r := range *rounds {
			got := make([]float64, len(clients))
			for j := range clients {
				k := (j + r) % len(clients)
				c := clients[k]
				if *memOnly && k != 0 {
					got[k] = math.NaN()
					continue
				}
				ops, cpu := run(func(i int) error { return p.op(c, i) }, p.g, p.nkeys, slice)
				got[k] = ops
				cpus[k] += cpu / float64(*rounds)
			}
			for k := range clients {
				perClient[k] = append(perClient[k], got[k])
			}
			mr = append(mr, got[0]/got[2])
			mg = append(mg, got[0]/got[1])
			rr = append(rr, got[3]/got[2])
		}
		ratio := median(mr)
		verdict := fmt.Sprintf(">=%.1fx", p.target)
		if ratio >= p.target {
			verdict += " ok"
		} else {
			verdict += " MISSED"
			ok = false
		}
		fmt.Printf("%-10s %10.0f %10.0f %10.0f %10.0f   %7.2fx %7.2fx %7.2fx   %-10s %.1f / %.1f / %.1f / %.1f\n", p.name,
			median(perClient[0]), median(perClient[1]), median(perClient[2]), median(perClient[3]),
			ratio, median(mg), median(rr), verdict, cpus[0], cpus[1], cpus[2], cpus[3])
	}
	fmt.Println("\nops/s: median over rounds; ratios: median of the per-round ratios.")
	if !ok {
		fmt.Println("some targets were missed")
		pprof.StopCPUProfile()
		closeAll()
		os.Exit(1)
	}
}

// newClients returns memdict, go-redis, rueidis and raw, in that order,
// on the server at addr, and a function that closes them all.
func newClients(addr string, rawConns, inflight, protocol int) ([]client, func(), error) {
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

	// go-redis
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	closers = append(closers, func() { rdb.Close() })
	gr := client{name: "go-redis",
		get: func(big bool, i int) error {
			b, err := rdb.Get(ctx, key("gr:", big, i)).Bytes()
			if err != nil {
				return fmt.Errorf("go-redis: get: %w", err)
			}
			var u User
			if err := mc.Unmarshal(b, &u); err != nil {
				return err
			}
			return check("go-redis", big, i, &u)
		},
		set: func(big bool, i int) error {
			b, err := mc.Marshal(user(big, i))
			if err != nil {
				return err
			}
			return rdb.Set(ctx, key("gr:", big, i), b, ttl).Err()
		},
	}

	// rueidis
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	closers = append(closers, rc.Close)
	ru := client{name: "rueidis",
		get: func(big bool, i int) error {
			b, err := rc.Do(ctx, rc.B().Get().Key(key("ru:", big, i)).Build()).AsBytes()
			if err != nil {
				return fmt.Errorf("rueidis: get: %w", err)
			}
			var u User
			if err := mc.Unmarshal(b, &u); err != nil {
				return err
			}
			return check("rueidis", big, i, &u)
		},
		set: func(big bool, i int) error {
			b, err := mc.Marshal(user(big, i))
			if err != nil {
				return err
			}
			return rc.Do(ctx, rc.B().Set().Key(key("ru:", big, i)).Value(rueidis.BinaryString(b)).Px(ttl).Build()).Error()
		},
	}

	// raw
	raw, err := dialRaw(addr, rawConns)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("raw: %w", err)
	}
	closers = append(closers, raw.close)
	ttlMs := strconv.FormatInt(ttl.Milliseconds(), 10)
	rw := client{name: "raw",
		get: func(big bool, i int) error {
			b, err := raw.do("GET", key("raw:", big, i))
			if err != nil {
				return err
			}
			if b == nil {
				return fmt.Errorf("raw: get %d: missing", i)
			}
			var u User
			if err := mc.Unmarshal(b, &u); err != nil {
				return err
			}
			return check("raw", big, i, &u)
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

// rawClient is a minimal pipelined RESP2 client: calls are spread over a
// few connections; on each, callers append their command to a shared
// buffer and queue themselves, the first of them that finds nobody writing
// writes the buffer, and goes on writing what the others append meanwhile
// (so that everything queued goes out in one write), and a reader
// goroutine answers the queued callers in order. It knows GET and SET
// only: replies are simple strings, bulk strings and errors.
type rawClient struct {
	conns []*rawConn
	next  atomic.Uint32
}

type rawConn struct {
	nc      net.Conn
	mu      sync.Mutex
	buf     []byte          // commands not yet written; guarded by mu
	spare   []byte          // the buffer last written, for reuse; guarded by mu
	waiting []*rawCall      // callers whose commands are in buf, in order; guarded by mu
	writing bool            // a caller is writing; guarded by mu
	sent    chan []*rawCall // callers whose commands were written, in order
	wg      sync.WaitGroup  // the reader
}

type rawCall struct {
	val []byte
	err error
	ch  chan struct{}
}

var rawCalls = sync.Pool{New: func() any { return &rawCall{ch: make(chan struct{}, 1)} }}

func dialRaw(addr string, n int) (*rawClient, error) {
	c := &rawClient{}
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			c.close()
			return nil, err
		}
		rc := &rawConn{nc: nc, sent: make(chan []*rawCall, 1024)}
		rc.wg.Add(1)
		go rc.reader()
		c.conns = append(c.conns, rc)
	}
	return c, nil
}

// do sends one command and returns its reply: the bytes of a bulk string,
// nil for a null, the text of a simple string, or an error.
func (c *rawClient) do(args ...string) ([]byte, error) {
	rc := c.conns[int(c.next.Add(1))%len(c.conns)]
	call := rawCalls.Get().(*rawCall)
	rc.mu.Lock()
	rc.buf = append(rc.buf, '*')
	rc.buf = strconv.AppendInt(rc.buf, int64(len(args)), 10)
	rc.buf = append(rc.buf, '\r', '\n')
	for _, a := range args {
		rc.buf = append(rc.buf, '$')
		rc.buf = strconv.AppendInt(rc.buf, int64(len(a)), 10)
		rc.buf = append(rc.buf, '\r', '\n')
		rc.buf = append(rc.buf, a...)
		rc.buf = append(rc.buf, '\r', '\n')
	}
	rc.waiting = append(rc.waiting, call)
	if !rc.writing {
		rc.writing = true
		for len(rc.buf) > 0 {
			out := rc.buf
			rc.buf = rc.spare[:0]
			calls := rc.waiting
			rc.waiting = nil
			rc.sent <- calls // before the write: the reader must know who is next
			rc.mu.Unlock()
			_, err := rc.nc.Write(out)
			rc.mu.Lock()
			rc.spare = out
			if err != nil {
				break // the reader fails the calls written
			}
		}
		rc.writing = false
	}
	rc.mu.Unlock()
	<-call.ch
	v, err := call.val, call.err
	*call = rawCall{ch: call.ch}
	rawCalls.Put(call)
	return v, err
}

func (rc *rawConn) reader() {
	defer rc.wg.Done()
	r := bufio.NewReaderSize(rc.nc, 64<<10)
	fail := func(calls []*rawCall, err error) {
		for _, c := range calls {
			c.err = err
			c.ch <- struct{}{}
		}
	}
	var err error
	for calls := range rc.sent {
		if err != nil {
			fail(calls, err)
			continue
		}
		for i, c := range calls {
			c.val, c.err = readReply(r)
			if c.err != nil && !errors.Is(c.err, errReply) {
				err = c.err
				fail(calls[i:], err)
				break
			}
			c.ch <- struct{}{}
		}
	}
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
		rc.mu.Lock()
		close(rc.sent)
		rc.mu.Unlock()
		rc.wg.Wait()
	}
}
