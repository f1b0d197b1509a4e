// Command memcachedbench compares memdict's memcached Dict with raw
// github.com/bradfitz/gomemcache against one local memcached, in one run,
// and runs the C reference memcaslap (Debian libmemcached-tools) against the
// same server for its ceiling.
//
//	go run ./examples/memcachedbench                   # starts its own memcached
//	go run ./examples/memcachedbench -addr 127.0.0.1:11211 -d 1s -rounds 9
//
// Values are 100 bytes. The raw side stores and reads them with a
// memcache.Client as gomemcache's documentation shows it (memcache.New,
// default options); the memdict side reads a memdict.Dict[[]byte] (raw
// codec) over backend/memcached with its default options. Phases:
//
//	get-seq     one goroutine, sequential Get
//	get-64      64 goroutines doing Get (memdict coalesces concurrent reads
//	            to one server into multi-gets; gomemcache sends one request
//	            per Get and, with its default of 2 idle connections, opens
//	            and closes connections under that load)
//	getmulti    one goroutine, GetMulti of 100 keys
//
// Each phase alternates raw and memdict -rounds times for -d each. It
// prints the median ops/s of each side, the median of the per-round ratios
// memdict / raw (a round compares two neighbouring periods, so a noisy
// neighbour hurts both sides alike; the median drops the rounds it did
// not), the range of those ratios, and whether the targets hold (get-seq
// >= 0.95x, get-64 >= 5x, getmulti >= 1.0x). For reference it also
// prints get-64 against a raw client tuned with MaxIdleConns=64. Timings
// depend on the machine; this is a program, not a test.
package main

import (
	"bufio"
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
	addr := flag.String("addr", "", "memcached address; empty: start a memcached on a free port")
	dur := flag.Duration("d", 300*time.Millisecond, "duration of each side of each round of each phase")
	rounds := flag.Int("rounds", 15, "rounds per phase, alternating raw and memdict")
	keys := flag.Int("keys", 1000, "number of keys read")
	workers := flag.Int("c", 64, "goroutines in the get-64 phase")
	caslap := flag.Bool("memcaslap", true, "also run memcaslap (or memaslap) against the server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of memdict's side of the get-64 phase to this file")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1 || *workers < 1 {
		log.Fatalf("memcachedbench: -rounds, -keys and -c must be at least 1 (got %d, %d, %d)", *rounds, *keys, *workers)
	}

	if *addr == "" {
		a, stop, err := startMemcached()
		if err != nil {
			log.Fatalf("memcachedbench: %v (install memcached, or give -addr)", err)
		}
		defer stop()
		*addr = a
	}
	fmt.Printf("memcachedbench: memcached at %s, %s, GOMAXPROCS=%d, %d keys of 100 bytes, %d rounds of %v per side\n",
		*addr, runtime.Version(), runtime.GOMAXPROCS(0), *keys, *rounds, *dur)
	if v, err := serverVersion(*addr); err == nil {
		fmt.Printf("memcachedbench: server %s\n", v)
	}

	raw := memcache.New(*addr)
	defer raw.Close()
	tuned := memcache.New(*addr)
	tuned.MaxIdleConns = *workers
	defer tuned.Close()

	be, err := memcached.New([]string{*addr})
	if err != nil {
		log.Fatal(err)
	}
	defer be.Close()
	d, err := memdict.New[[]byte](be, "bench", memdict.WithCodec(codec.Raw))
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	names := make([]string, *keys)
	for i := range names {
		names[i] = "user:" + strconv.Itoa(i)
		if err := raw.Set(&memcache.Item{Key: names[i], Value: value}); err != nil {
			log.Fatalf("raw set: %v", err)
		}
		if err := d.Store(ctx, names[i], value); err != nil {
			log.Fatalf("memdict store: %v", err)
		}
	}
	// Check both sides read what they should before timing anything.
	if it, err := raw.Get(names[0]); err != nil || len(it.Value) != 100 {
		log.Fatalf("raw get: %v", err)
	}
	if v, ok := d.Get(names[0]); !ok || len(v) != 100 {
		log.Fatalf("memdict get: missing")
	}

	type phase struct {
		name   string
		target float64
		unit   string
		raw    func(i int) error
		md     func(i int) error
		par    int
		perOp  int
	}
	var rawErrs, mdErrs atomic.Int64
	var lastRawErr, lastMDErr atomic.Value
	checkRaw := func(err error) error {
		if err != nil {
			rawErrs.Add(1)
			lastRawErr.Store(err.Error())
		}
		return err
	}
	checkMD := func(err error) error {
		if err != nil {
			mdErrs.Add(1)
			lastMDErr.Store(err.Error())
		}
		return err
	}
	multi := make([][]string, 10)
	for j := range multi {
		for i := range 100 {
			multi[j] = append(multi[j], names[(j*100+i)%len(names)])
		}
	}
	phases := []phase{
		{name: "get-seq", target: 0.95, unit: "gets/s", par: 1, perOp: 1,
			raw: func(i int) error { _, err := raw.Get(names[i%len(names)]); return checkRaw(err) },
			md: func(i int) error {
				if _, ok := d.Get(names[i%len(names)]); !ok {
					return checkMD(errors.New("miss"))
				}
				return nil
			}},
		{name: "get-" + strconv.Itoa(*workers), target: 5, unit: "gets/s", par: *workers, perOp: 1,
			raw: func(i int) error { _, err := raw.Get(names[i%len(names)]); return checkRaw(err) },
			md: func(i int) error {
				if _, ok := d.Get(names[i%len(names)]); !ok {
					return checkMD(errors.New("miss"))
				}
				return nil
			}},
		{name: "getmulti", target: 1.0, unit: "keys/s", par: 1, perOp: 100,
			raw: func(i int) error {
				m, err := raw.GetMulti(multi[i%len(multi)])
				if err == nil && len(m) != 100 {
					err = fmt.Errorf("raw GetMulti: %d of 100", len(m))
				}
				return checkRaw(err)
			},
			md: func(i int) error {
				m, err := d.GetMulti(ctx, multi[i%len(multi)])
				if err == nil && len(m) != 100 {
					err = fmt.Errorf("memdict GetMulti: %d of 100", len(m))
				}
				return checkMD(err)
			}},
	}

	fmt.Printf("\n%-10s %16s %16s %8s %8s\n", "phase", "gomemcache", "memdict", "ratio", "target")
	allOK := true
	for _, ph := range phases {
		var rawRates, mdRates, ratios []float64
		for range *rounds {
			n, t := run(ph.par, *dur, ph.raw)
			r := float64(n*int64(ph.perOp)) / t.Seconds()
			n, t = run(ph.par, *dur, ph.md)
			m := float64(n*int64(ph.perOp)) / t.Seconds()
			if *cpuprofile != "" && ph.par > 1 && len(ratios) == 0 {
				m = profiled(*cpuprofile, func() (int64, time.Duration) { return run(ph.par, *dur, ph.md) }, ph.perOp)
			}
			rawRates, mdRates = append(rawRates, r), append(mdRates, m)
			if r > 0 {
				ratios = append(ratios, m/r)
			}
		}
		r, m, ratio := median(rawRates), median(mdRates), median(ratios)
		ok := ratio >= ph.target
		allOK = allOK && ok
		mark := "ok"
		if !ok {
			mark = "MISSED"
		}
		fmt.Printf("%-10s %9.0f %-6s %9.0f %-6s %7.2fx %6.2fx %s   (ratios per round: %s)\n",
			ph.name, r, ph.unit, m, ph.unit, ratio, ph.target, mark, spread(ratios))
	}
	// For reference: gomemcache tuned to keep one idle connection per
	// goroutine, which avoids its connection churn.
	var tuneRates []float64
	for range min(*rounds, 5) {
		n, t := run(*workers, *dur, func(i int) error { _, err := tuned.Get(names[i%len(names)]); return checkRaw(err) })
		tuneRates = append(tuneRates, float64(n)/t.Seconds())
	}
	fmt.Printf("%-10s %9.0f %-6s (gomemcache with MaxIdleConns=%d, for reference)\n",
		"get-"+strconv.Itoa(*workers), median(tuneRates), "gets/s", *workers)
	if n := rawErrs.Load(); n > 0 {
		fmt.Printf("memcachedbench: %d gomemcache operations failed, last: %v\n", n, lastRawErr.Load())
	}
	if n := mdErrs.Load(); n > 0 {
		fmt.Printf("memcachedbench: %d memdict operations failed or missed, last: %v\n", n, lastMDErr.Load())
	}
	if *caslap {
		runCaslap(*addr, *dur)
	}
	if !allOK {
		fmt.Println("memcachedbench: some targets missed on this machine")
	}
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
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-c", "4096"}
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
