// Command memcachedbench compares memdict's memcached Dict with raw
// github.com/bradfitz/gomemcache and with a deep-pipelining meta-protocol
// load generator (the server's ceiling on this machine), against one
// local memcached, in one run with alternating rounds.
//
//	go run ./examples/memcachedbench                  # starts its own memcached (-t 2)
//	go run ./examples/memcachedbench -addr 127.0.0.1:11211 -d 300ms -rounds 9
//	go run ./examples/memcachedbench -phases get-64,getbig-64 -conns 4 -pipeconns 4
//
// Values are 100 bytes unless said otherwise. The raw side stores and
// reads them with a memcache.Client as gomemcache's documentation shows it
// (memcache.New, default options); the memdict side uses a
// memdict.Dict[[]byte] (raw codec) over backend/memcached with its default
// options; the ceiling is "pipe", a load generator keeping -window "mg"
// or "ms" requests in flight on each of -pipeconns connections, each half
// window sent in one write (see pipeLoad; for get-seq one request at a
// time on one connection, a sequential caller's ceiling). Phases:
//
//	get-seq       one goroutine, sequential Get
//	get-64        64 goroutines doing Get
//	set-64        64 goroutines doing Set (Dict.Put)
//	mix-64        64 goroutines, 90% Get and 10% Set
//	getbig-64     64 goroutines doing Get of 16 KiB values
//	putmulti-100  one goroutine writing 100 keys at a time: a Tx.Commit of
//	              100 Puts (one SetMulti) against a loop of 100 gomemcache Sets
//	near-hot-64   64 goroutines reading 8 hot keys, a Dict with WithNearCache
//	              (MaxStale 1s) against the same Dict without it
//	near-zipf-64  the same over 100k keys drawn from zipf(1.1)
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
	"math/rand"
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
	pipeConns := flag.Int("pipeconns", 4, "connections of the pipelined ceiling (pipe)")
	window := flag.Int("window", 128, "requests in flight per connection of the ceiling (pipe)")
	conns := flag.Int("conns", memcached.DefaultConns, "memdict's pipelined connections per server (memcached.WithConns)")
	only := flag.String("phases", "", "comma-separated phases to run (default: all)")
	caslap := flag.Bool("memcaslap", false, "also run memcaslap (or memaslap) against the server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of memdict's side of the get-64 phase to this file")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *workers < 1 || *pipeConns < 1 || *window < 1 {
		log.Fatalf("memcachedbench: -rounds, -keys, -c, -pipeconns and -window must be at least 1")
	}

	if *addr == "" {
		a, stop, err := startMemcached()
		if err != nil {
			log.Fatalf("memcachedbench: %v (install memcached, or give -addr)", err)
		}
		stopServer = stop
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
	be, err := memcached.New([]string{*addr}, memcached.WithConns(*conns))
	if err != nil {
		fatalf("%v", err)
	}
	defer be.Close()
	d, err := memdict.New[[]byte](be, "bench", memdict.WithCodec(codec.Raw))
	if err != nil {
		fatalf("%v", err)
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
				fatalf("raw set: %v", err)
			}
			if err := d.Put(kv.k, kv.v); err != nil {
				fatalf("memdict put: %v", err)
			}
		}
	}
	if it, err := raw.Get(names[0]); err != nil || len(it.Value) != 100 {
		fatalf("raw get: %v", err)
	}
	if v, ok := d.Get(names[0]); !ok || len(v) != 100 {
		fatalf("memdict get: missing")
	}
	if n, _, err := pipeLoad(*addr, 1, 1, 0, pipeGet(names[:1])); err != nil || n != 1 {
		fatalf("pipe get: %d replies, %v", n, err)
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
	rawSet := func(i int) error { return check(0, raw.Set(&memcache.Item{Key: names[i%len(names)], Value: value})) }
	mdSet := func(i int) error { return check(1, d.Put(names[i%len(names)], value)) }
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
		pipe      pipeOp // nil: no ceiling
		pipeSeq   bool   // the ceiling of one sequential caller: one connection, one request at a time
	}
	w := strconv.Itoa(*workers)
	phases := []phase{
		{name: "get-seq", target: 0.95, par: 1, perOp: 1, raw: rawGet(names), md: mdGet(names), pipe: pipeGet(names), pipeSeq: true},
		{name: "get-" + w, target: 8, pipeShare: 0.60, par: *workers, perOp: 1, raw: rawGet(names), md: mdGet(names), pipe: pipeGet(names)},
		{name: "set-" + w, target: 5, par: *workers, perOp: 1, raw: rawSet, md: mdSet, pipe: pipeSet(names, value)},
		{name: "mix-" + w, target: 6, par: *workers, perOp: 1, raw: mix(rawGet(names), rawSet), md: mix(mdGet(names), mdSet), pipe: pipeMix(pipeGet(names), pipeSet(names, value))},
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
				pc, pw := *pipeConns, *window
				if ph.pipeSeq {
					pc, pw = 1, 1
				}
				n, t, err := pipeLoad(*addr, pc, pw, *dur, ph.pipe)
				if err != nil {
					errCount[2].Add(1)
					lastErr[2].Store(err.Error())
				}
				p := float64(n*int64(ph.perOp)) / t.Seconds()
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
	nearOK := runNear(be, selected, *workers, *rounds, *dur, value)
	allOK = allOK && nearOK
	if *caslap {
		runCaslap(*addr, *dur)
	}
	if !allOK {
		fmt.Println("memcachedbench: some targets missed on this machine")
	}
}

// The ceiling, "pipe", is a load generator rather than a client: it is
// what the server can serve on this machine when nothing limits the
// client. Each of -pipeconns connections keeps up to -window requests in
// flight: a writer goroutine sends them in batches of window/2, each batch
// built in one buffer and sent in one write syscall, and sends a batch
// whenever the reader has consumed the replies to one (so a half window is
// always queued at the server while the other half is answered); the
// reader parses the replies from a 256 KiB buffer and discards the values
// (Discard: no allocation, no copy out of the read buffer). No callers, no
// goroutine handoff per request, no timeouts, no error mapping: memdict
// serves 64 blocking callers, the ceiling serves a window the size of its
// choosing, so the md/pipe ratio is how close memdict comes to the
// server's capacity, not a like-for-like client comparison.

// pipeOp appends the i-th command of a phase to buf.
type pipeOp func(buf []byte, i int) []byte

// pipeGet returns the op reading keys in turn.
func pipeGet(keys []string) pipeOp {
	return func(buf []byte, i int) []byte {
		buf = append(buf, "mg "...)
		buf = append(buf, keys[i%len(keys)]...)
		return append(buf, " v\r\n"...)
	}
}

// pipeSet returns the op writing v under keys in turn.
func pipeSet(keys []string, v []byte) pipeOp {
	return func(buf []byte, i int) []byte {
		buf = append(buf, "ms "...)
		buf = append(buf, keys[i%len(keys)]...)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(len(v)), 10)
		buf = append(buf, "\r\n"...)
		buf = append(buf, v...)
		return append(buf, "\r\n"...)
	}
}

// pipeMix is 10% set, 90% get, like mix().
func pipeMix(get, set pipeOp) pipeOp {
	return func(buf []byte, i int) []byte {
		if i%10 == 0 {
			return set(buf, i)
		}
		return get(buf, i)
	}
}

// pipeLoad runs op on conns connections with window requests in flight on
// each for about dur, and returns the number of replies that were HD or
// VA, and the time taken. A connection that fails ends its share early;
// the error is returned with the count.
func pipeLoad(addr string, conns, window int, dur time.Duration, op pipeOp) (int64, time.Duration, error) {
	var ok atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	ncs := make([]net.Conn, 0, conns)
	for range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			for _, c := range ncs {
				c.Close()
			}
			return 0, 0, err
		}
		ncs = append(ncs, nc)
	}
	batch := max(window/2, 1)
	start := time.Now()
	for ci, nc := range ncs {
		credits := make(chan struct{}, 2)
		credits <- struct{}{}
		if window > 1 {
			credits <- struct{}{}
		}
		sent := make(chan int, 3) // batch sizes written, for the reader; 0: no more
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			var buf []byte
			i := ci * 7919
			for first := true; ; first = false {
				if _, more := <-credits; !more || stop.Load() && !first {
					break // every connection sends one batch at least
				}
				buf = buf[:0]
				for range batch {
					buf = op(buf, i)
					i++
				}
				if _, err := nc.Write(buf); err != nil {
					errs <- err
					break
				}
				sent <- batch
			}
			sent <- 0
		}()
		go func() { // reader
			defer wg.Done()
			defer nc.Close()
			defer close(credits) // ends the writer if this ends on an error
			br := bufio.NewReaderSize(nc, 256<<10)
			local := int64(0)
			defer func() { ok.Add(local) }()
			for n := range sent {
				if n == 0 {
					return
				}
				for range n {
					line, err := br.ReadSlice('\n')
					if err != nil {
						errs <- err
						return
					}
					switch {
					case bytes.HasPrefix(line, []byte("VA ")):
						sp := bytes.IndexByte(line[3:], ' ')
						if sp < 0 {
							sp = len(line) - 5
						}
						size, err := strconv.Atoi(string(line[3 : 3+sp]))
						if err != nil {
							errs <- fmt.Errorf("pipe: %q", line)
							return
						}
						if _, err := br.Discard(size + 2); err != nil {
							errs <- err
							return
						}
						local++
					case bytes.HasPrefix(line, []byte("HD")):
						local++
					default:
						errs <- fmt.Errorf("pipe: %q", line)
						return
					}
				}
				credits <- struct{}{}
			}
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	var err error
	select {
	case err = <-errs:
	default:
	}
	return ok.Load(), elapsed, err
}

// nearKeys is the number of keys of the near-zipf phase.
const nearKeys = 100_000

// runNear runs the near-cache phases, each comparing a Dict with
// WithNearCache (MaxStale 1s, the default 10,000 entries) against the same
// Dict without it, and reports whether their targets hold. The Dicts hold
// strings, which the near cache shares with callers (no decode, no copy per
// hit): the common case the near cache is built for.
//
//	near-hot-64   64 goroutines reading 8 hot keys
//	near-zipf-64  64 goroutines reading 100k keys drawn from zipf(1.1)
func runNear(be *memcached.Client, selected map[string]bool, workers, rounds int, dur time.Duration, value []byte) bool {
	w := strconv.Itoa(workers)
	hot, zipf := "near-hot-"+w, "near-zipf-"+w
	if len(selected) > 0 && !selected[hot] && !selected[zipf] {
		return true
	}
	plain, err := memdict.New[string](be, "near")
	if err != nil {
		fatalf("%v", err)
	}
	near, err := memdict.New[string](be, "near",
		memdict.WithNearCache(memdict.NearCache{MaxStale: time.Second}))
	if err != nil {
		fatalf("%v", err)
	}
	keys := make([]string, nearKeys)
	batch := map[string]string{}
	for i := range keys {
		keys[i] = "z:" + strconv.Itoa(i)
		batch[keys[i]] = string(value)
		if len(batch) == 1000 || i == len(keys)-1 {
			if err := plain.PutMulti(context.Background(), batch); err != nil {
				fatalf("near: PutMulti: %v", err)
			}
			clear(batch)
		}
	}
	// The zipf draws, made once: each goroutine walks them from its own
	// offset, with no shared generator.
	rng := rand.New(rand.NewSource(1))
	z := rand.NewZipf(rng, 1.1, 1, nearKeys-1)
	draws := make([]string, 1<<20)
	for i := range draws {
		draws[i] = keys[z.Uint64()]
	}
	get := func(d *memdict.Dict[string], ks []string) func(int) error {
		return func(i int) error {
			if _, ok := d.Get(ks[i%len(ks)]); !ok {
				return errors.New("miss")
			}
			return nil
		}
	}
	fmt.Printf("\n%-13s %14s %14s %9s %8s   %s\n", "phase", "without near", "with near", "ratio", "target", "ratios per round")
	ok := true
	for _, ph := range []struct {
		name   string
		keys   []string
		target float64
	}{{hot, keys[:8], 50}, {zipf, draws, 3}} {
		if len(selected) > 0 && !selected[ph.name] {
			continue
		}
		var without, with, ratios []float64
		for range rounds {
			n, t := run(workers, dur, get(plain, ph.keys))
			a := float64(n) / t.Seconds()
			n, t = run(workers, dur, get(near, ph.keys))
			b := float64(n) / t.Seconds()
			without, with = append(without, a), append(with, b)
			if a > 0 {
				ratios = append(ratios, b/a)
			}
		}
		r := median(ratios)
		mark := "ok"
		if r < ph.target {
			mark, ok = "MISSED", false
		}
		fmt.Printf("%-13s %14.0f %14.0f %8.1fx %7.0fx   %s %s\n", ph.name, median(without), median(with), r, ph.target, spread(ratios), mark)
	}
	st := near.Stats()
	fmt.Printf("(ops/s of Dict.Get; near cache: %d hits, %d misses)\n", st.NearCache.Hits, st.NearCache.Misses)
	return ok
}

// stopServer stops the memcached this program started, if any.
var stopServer func()

// fatalf is log.Fatalf that stops the memcached this program started
// first (it would outlive the program, holding whatever it inherited).
func fatalf(format string, args ...any) {
	if stopServer != nil {
		stopServer()
	}
	log.Fatalf(format, args...)
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
		fatalf("%v", err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fatalf("%v", err)
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
