// Command memcachedbench compares memdict's memcached Dict with raw
// github.com/bradfitz/gomemcache and with a minimal hand-written pipelined
// meta-protocol client (the server's ceiling on this machine), against
// one local memcached, in one run with alternating rounds.
//
//	go run ./examples/memcachedbench                  # starts its own memcached (-t 2)
//	go run ./examples/memcachedbench -addr 127.0.0.1:11211 -d 300ms -rounds 9
//	go run ./examples/memcachedbench -phases get-64,getbig-64 -conns 4 -pipeconns 4
//
// Values are 100 bytes unless said otherwise. The raw side stores and
// reads them with a memcache.Client as gomemcache's documentation shows it
// (memcache.New, default options); the memdict side uses a
// memdict.Dict[[]byte] (raw codec) over backend/memcached with its default
// options; the ceiling is "pipe", a bare pipelined "mg"/"ms" client on
// -pipeconns connections (a writer and a reader goroutine each, no
// timeouts, no error mapping). Phases:
//
//	get-seq       one goroutine, sequential Get
//	get-64        64 goroutines doing Get
//	set-64        64 goroutines doing Set (Dict.Put)
//	mix-64        64 goroutines, 90% Get and 10% Set
//	getbig-64     64 goroutines doing Get of 16 KiB values
//	putmulti-100  one goroutine writing 100 keys at a time: a Tx.Commit of
//	              100 Puts (one SetMulti) against a loop of 100 gomemcache Sets
//
// Each phase alternates gomemcache, memdict and pipe for -d each, -rounds
// times. It prints the median ops/s of each side, the median of the
// per-round ratios memdict/gomemcache and memdict/pipe (a round compares
// neighbouring periods, so a noisy neighbour hurts all sides alike; the
// median drops the rounds it did not), the range of the ratios, and
// whether the targets hold. Timings depend on the machine; this is a
// program, not a test. Allocations per call are measured by
// "go test -bench 'Get$|Set$' -benchmem ./backend/memcached/".
package main

import (
	"bufio"
	"bytes"
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
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/codec"
)

func main() {
	addr := flag.String("addr", "", "memcached address; empty: start a memcached (-t 2) on a free port")
	dur := flag.Duration("d", 300*time.Millisecond, "duration of each side of each round of each phase")
	rounds := flag.Int("rounds", 9, "rounds per phase, alternating the sides")
	keys := flag.Int("keys", 1000, "number of keys")
	workers := flag.Int("c", 64, "goroutines in the parallel phases")
	pipeConns := flag.Int("pipeconns", 2, "connections of the pipelined ceiling client")
	conns := flag.Int("conns", memcached.DefaultConns, "memdict's pipelined connections per server (memcached.WithConns)")
	only := flag.String("phases", "", "comma-separated phases to run (default: all)")
	caslap := flag.Bool("memcaslap", false, "also run memcaslap (or memaslap) against the server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of memdict's side of the get-64 phase to this file")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *workers < 1 || *pipeConns < 1 {
		log.Fatalf("memcachedbench: -rounds, -keys, -c and -pipeconns must be at least 1")
	}

	if *addr == "" {
		a, stop, err := startMemcached()
		if err != nil {
			log.Fatalf("memcachedbench: %v (install memcached, or give -addr)", err)
		}
		defer stop()
		*addr = a
	}
	fmt.Printf("memcachedbench: memcached at %s, %s, GOMAXPROCS=%d, %d keys, %d rounds of %v per side\n",
		*addr, runtime.Version(), runtime.GOMAXPROCS(0), *keys, *rounds, *dur)
	if v, err := serverVersion(*addr); err == nil {
		fmt.Printf("memcachedbench: server %s\n", v)
	}

	raw := memcache.New(*addr)
	defer raw.Close()
	pipe, err := newPipe(*addr, *pipeConns)
	if err != nil {
		log.Fatalf("memcachedbench: pipelined client: %v", err)
	}
	defer pipe.close()
	be, err := memcached.New([]string{*addr}, memcached.WithConns(*conns))
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()
	d, err := memdict.New[[]byte](be, "bench", memdict.WithCodec(codec.Raw))
	if err != nil {
		log.Fatal(err)
	}
	// Keys as memdict stores them, for the raw clients to read the same
	// items. They are learnt by writing through memdict and listing.
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	big := []byte(strings.Repeat("b", 16<<10))
	names := make([]string, *keys)
	bigNames := make([]string, *keys)
	for i := range names {
		names[i] = "user:" + strconv.Itoa(i)
		bigNames[i] = "big:" + strconv.Itoa(i)
		for _, kv := range []struct {
			k string
			v []byte
		}{{names[i], value}, {bigNames[i], big}} {
			if err := raw.Set(&memcache.Item{Key: kv.k, Value: kv.v}); err != nil {
				log.Fatalf("raw set: %v", err)
			}
			if err := d.Put(kv.k, kv.v); err != nil {
				log.Fatalf("memdict put: %v", err)
			}
		}
	}
	if it, err := raw.Get(names[0]); err != nil || len(it.Value) != 100 {
		log.Fatalf("raw get: %v", err)
	}
	if v, ok := d.Get(names[0]); !ok || len(v) != 100 {
		log.Fatalf("memdict get: missing")
	}
	if v, err := pipe.get(names[0]); err != nil || len(v) != 100 {
		log.Fatalf("pipe get: %d bytes, %v", len(v), err)
	}

	var errCount [3]atomic.Int64
	var lastErr [3]atomic.Value
	check := func(side int, err error) error {
		if err != nil {
			errCount[side].Add(1)
			lastErr[side].Store(err.Error())
		}
		return err
	}
	missing := errors.New("miss")
	rawGet := func(ks []string) func(int) error {
		return func(i int) error { _, err := raw.Get(ks[i%len(ks)]); return check(0, err) }
	}
	mdGet := func(ks []string) func(int) error {
		return func(i int) error {
			if _, ok := d.Get(ks[i%len(ks)]); !ok {
				return check(1, missing)
			}
			return nil
		}
	}
	pipeGet := func(ks []string) func(int) error {
		return func(i int) error { _, err := pipe.get(ks[i%len(ks)]); return check(2, err) }
	}
	rawSet := func(i int) error { return check(0, raw.Set(&memcache.Item{Key: names[i%len(names)], Value: value})) }
	mdSet := func(i int) error { return check(1, d.Put(names[i%len(names)], value)) }
	pipeSet := func(i int) error { return check(2, pipe.set(names[i%len(names)], value)) }
	mix := func(get, set func(int) error) func(int) error {
		return func(i int) error {
			if i%10 == 0 {
				return set(i)
			}
			return get(i)
		}
	}
	batches := make([][]string, 10)
	for j := range batches {
		for i := range 100 {
			batches[j] = append(batches[j], names[(j*100+i)%len(names)])
		}
	}
	rawMulti := func(i int) error {
		for _, k := range batches[i%len(batches)] {
			if err := raw.Set(&memcache.Item{Key: k, Value: value}); err != nil {
				return check(0, err)
			}
		}
		return nil
	}
	mdMulti := func(i int) error {
		tx := d.Begin()
		for _, k := range batches[i%len(batches)] {
			if err := tx.Put(k, value); err != nil {
				return check(1, err)
			}
		}
		return check(1, tx.Commit(ctx))
	}

	type phase struct {
		name      string
		target    float64 // memdict / gomemcache
		pipeShare float64 // memdict / pipe, 0: none
		par       int
		perOp     int
		raw, md   func(i int) error
		pipe      func(i int) error
	}
	w := strconv.Itoa(*workers)
	phases := []phase{
		{name: "get-seq", target: 0.95, par: 1, perOp: 1, raw: rawGet(names), md: mdGet(names), pipe: pipeGet(names)},
		{name: "get-" + w, target: 8, pipeShare: 0.60, par: *workers, perOp: 1, raw: rawGet(names), md: mdGet(names), pipe: pipeGet(names)},
		{name: "set-" + w, target: 5, par: *workers, perOp: 1, raw: rawSet, md: mdSet, pipe: pipeSet},
		{name: "mix-" + w, target: 6, par: *workers, perOp: 1, raw: mix(rawGet(names), rawSet), md: mix(mdGet(names), mdSet), pipe: mix(pipeGet(names), pipeSet)},
		{name: "getbig-" + w, target: 1.2, par: *workers, perOp: 1, raw: rawGet(bigNames), md: mdGet(bigNames), pipe: pipeGet(bigNames)},
		{name: "putmulti-100", target: 5, par: 1, perOp: 100, raw: rawMulti, md: mdMulti},
	}
	selected := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p != "" {
			selected[p] = true
		}
	}

	fmt.Printf("\n%-13s %12s %12s %12s %9s %8s %9s   %s\n", "phase", "gomemcache", "memdict", "pipe", "md/gomc", "target", "md/pipe", "ratios per round (md/gomc)")
	allOK := true
	for _, ph := range phases {
		if len(selected) > 0 && !selected[ph.name] {
			continue
		}
		var rawRates, mdRates, pipeRates, ratios, shares []float64
		rate := func(f func(int) error) float64 {
			n, t := run(ph.par, *dur, f)
			return float64(n*int64(ph.perOp)) / t.Seconds()
		}
		for range *rounds {
			r := rate(ph.raw)
			var m float64
			if *cpuprofile != "" && ph.par > 1 && len(ratios) == 0 && strings.HasPrefix(ph.name, "get-") {
				m = profiled(*cpuprofile, func() (int64, time.Duration) { return run(ph.par, *dur, ph.md) }, ph.perOp)
			} else {
				m = rate(ph.md)
			}
			rawRates, mdRates = append(rawRates, r), append(mdRates, m)
			if r > 0 {
				ratios = append(ratios, m/r)
			}
			if ph.pipe != nil {
				p := rate(ph.pipe)
				pipeRates = append(pipeRates, p)
				if p > 0 {
					shares = append(shares, m/p)
				}
			}
		}
		ratio := median(ratios)
		ok := ratio >= ph.target
		pipeCol, shareCol := "-", "-"
		if ph.pipe != nil {
			pipeCol = fmt.Sprintf("%.0f", median(pipeRates))
			shareCol = fmt.Sprintf("%.0f%%", 100*median(shares))
			if ph.pipeShare > 0 {
				ok = ok && median(shares) >= ph.pipeShare
				shareCol += fmt.Sprintf(" (>=%.0f%%)", 100*ph.pipeShare)
			}
		}
		allOK = allOK && ok
		mark := "ok"
		if !ok {
			mark = "MISSED"
		}
		fmt.Printf("%-13s %12.0f %12.0f %12s %8.2fx %7.2fx %9s   %s %s\n",
			ph.name, median(rawRates), median(mdRates), pipeCol, ratio, ph.target, shareCol, spread(ratios), mark)
	}
	fmt.Println("(ops/s; putmulti-100 in keys/s; pipe = bare pipelined meta client, the server's ceiling)")
	for side, name := range []string{"gomemcache", "memdict", "pipe"} {
		if n := errCount[side].Load(); n > 0 {
			fmt.Printf("memcachedbench: %d %s operations failed or missed, last: %v\n", n, name, lastErr[side].Load())
		}
	}
	if *caslap {
		runCaslap(*addr, *dur)
	}
	if !allOK {
		fmt.Println("memcachedbench: some targets missed on this machine")
	}
}

// pipe is the ceiling: a bare pipelined meta-protocol client. Each call
// queues a command on one of a few connections and waits for its reply;
// a writer goroutine per connection sends everything queued in one write,
// a reader goroutine matches the replies in order. No timeouts, no
// pooling of anything but the connections, no error mapping.
type pipe struct {
	conns []*pipeConn
	rr    atomic.Uint32
}

type pipeCall struct {
	cmd   []byte
	value []byte
	done  chan struct{}
	err   error
}

type pipeConn struct {
	nc       net.Conn
	mu       sync.Mutex
	queue    []*pipeCall
	inflight chan *pipeCall
	wake     chan struct{}
}

var callPool = sync.Pool{New: func() any { return &pipeCall{done: make(chan struct{}, 1)} }}

func newPipe(addr string, n int) (*pipe, error) {
	p := &pipe{}
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			p.close()
			return nil, err
		}
		c := &pipeConn{nc: nc, inflight: make(chan *pipeCall, 1<<16), wake: make(chan struct{}, 1)}
		go c.write()
		go c.read()
		p.conns = append(p.conns, c)
	}
	return p, nil
}

func (p *pipe) close() {
	for _, c := range p.conns {
		c.nc.Close()
	}
}

func (p *pipe) do(cmd []byte) ([]byte, error) {
	c := p.conns[p.rr.Add(1)%uint32(len(p.conns))]
	call := callPool.Get().(*pipeCall)
	call.cmd, call.value, call.err = cmd, nil, nil
	c.mu.Lock()
	c.queue = append(c.queue, call)
	first := len(c.queue) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	<-call.done
	v, err := call.value, call.err
	callPool.Put(call)
	return v, err
}

func (p *pipe) get(key string) ([]byte, error) {
	return p.do(append(append([]byte("mg "), key...), " v\r\n"...))
}

func (p *pipe) set(key string, v []byte) error {
	cmd := append([]byte("ms "), key...)
	cmd = append(cmd, ' ')
	cmd = strconv.AppendInt(cmd, int64(len(v)), 10)
	cmd = append(cmd, "\r\n"...)
	cmd = append(cmd, v...)
	cmd = append(cmd, "\r\n"...)
	_, err := p.do(cmd)
	return err
}

func (c *pipeConn) write() {
	bw := bufio.NewWriterSize(c.nc, 32<<10)
	var batch []*pipeCall
	for range c.wake {
		runtime.Gosched() // let the callers about to queue join this write
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.mu.Unlock()
		for _, call := range batch {
			c.inflight <- call
			bw.Write(call.cmd)
		}
		if bw.Flush() != nil {
			return
		}
	}
}

func (c *pipeConn) read() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		call := <-c.inflight
		switch {
		case bytes.HasPrefix(line, []byte("VA ")):
			f := bytes.Fields(line[3:])
			n, _ := strconv.Atoi(string(f[0]))
			v := make([]byte, n+2)
			if _, err := readFull(br, v); err != nil {
				return
			}
			call.value = v[:n]
		case bytes.HasPrefix(line, []byte("HD")):
		default:
			call.err = fmt.Errorf("pipe: %q", line)
		}
		call.done <- struct{}{}
	}
}

// readFull fills b from br.
func readFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// median returns the median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread formats the smallest and largest of xs.
func spread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f-%.2f", slices.Min(xs), slices.Max(xs))
}

// profiled runs f under the CPU profiler, writing to file, and returns its
// rate.
func profiled(file string, f func() (int64, time.Duration), perOp int) float64 {
	out, err := os.Create(file)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		log.Fatal(err)
	}
	n, t := f()
	pprof.StopCPUProfile()
	return float64(n*int64(perOp)) / t.Seconds()
}

// run calls op from par goroutines for about dur and returns the number of
// calls that succeeded and the time taken.
func run(par int, dur time.Duration, op func(i int) error) (int64, time.Duration) {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for g := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := int64(0)
			for i := g * 7919; !stop.Load(); i++ {
				if op(i) == nil {
					local++
				}
			}
			n.Add(local)
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	return n.Load(), time.Since(start)
}

// startMemcached starts memcached on a free loopback port.
func startMemcached() (string, func(), error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-c", "4096", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := serverVersion(addr); err == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("memcached on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serverVersion(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// runCaslap runs memcaslap (or memaslap) for a get-heavy load with 100-byte
// values and prints its summary.
func runCaslap(addr string, dur time.Duration) {
	bin := ""
	for _, name := range []string{"memcaslap", "memaslap"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		fmt.Println("\nmemcaslap: not installed (Debian: apt-get install libmemcached-tools)")
		return
	}
	cfg, err := os.CreateTemp("", "memcaslap-*.cnf")
	if err != nil {
		fmt.Println("memcaslap:", err)
		return
	}
	defer os.Remove(cfg.Name())
	// Keys of 16 bytes, values of 100 bytes, 90% gets.
	fmt.Fprint(cfg, "key\n16 16 1\nvalue\n100 100 1\ncmd\n0 0.1\n1 0.9\n")
	cfg.Close()
	secs := max(int(dur.Seconds()), 1)
	args := []string{"-s", addr, "-F", cfg.Name(), "-t", strconv.Itoa(secs) + "s", "-T", strconv.Itoa(runtime.NumCPU()), "-c", "64"}
	fmt.Printf("\n%s %s\n", bin, strings.Join(args, " "))
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		fmt.Printf("memcaslap: %v\n", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Run time") || strings.Contains(line, "TPS") || strings.HasPrefix(line, "Get Statistics") {
			fmt.Println("  " + strings.TrimSpace(line))
		}
	}
}
