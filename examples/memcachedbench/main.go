// Command memcachedbench compares memdict's memcached Dict with
// github.com/bradfitz/gomemcache, with github.com/QuangTung97/go-memcache
// (a pipelined meta-protocol client) and with raw pipelined load
// generators (the server's ceilings), against one local memcached, in one
// run with alternating rounds, and reports for each side its rate, its CPU
// time and the server's per call, and its syscalls per call.
//
//	cd examples/memcachedbench
//	go run .                                   # starts its own memcached (-t 2)
//	go run . -addr 127.0.0.1:11211 -server-pid 1234 -d 300ms -rounds 9
//	go run . -phases get-64,set-64 -cpuprofile cpu.out
//	go run . -phases scaling -scale 1,16,256,1024
//
// The program is its own Go module (examples/memcachedbench/go.mod), so
// that go-memcache, a benchmark-only comparison, is never a requirement of
// memdict.
//
// Values are 100 bytes unless said otherwise. gomemcache is used as its
// documentation shows (memcache.New, default options); go-memcache with
// -gmconns connections (memdict's default number, 2), a Pipeline per call;
// memdict through a memdict.Dict[[]byte] (raw codec) over
// backend/memcached with its default options. The ceilings ("raw CxW", see
// pipe.go) keep W requests in flight on each of C connections: raw 2x32 is
// the 64 requests of the -64 phases' 64 callers on memdict's 2
// connections; raw 4x128 is the most this server answers. "raw callers"
// (see callers.go) is the ceiling of a client whose callers block: the
// -64 phases' 64 goroutines each make one call at a time through a
// minimal pipelined client on memdict's connections, and wait for its
// reply, as memdict's callers do; the gap between it and raw 2x32 is what
// blocking callers cost on this machine, whatever the library. Phases:
//
//	get-seq          one goroutine, sequential Get
//	get-64           64 goroutines doing Get
//	set-64           64 goroutines doing Set (Dict.Put)
//	mix-64           64 goroutines, 90% Get and 10% Set
//	getbig-64        64 goroutines doing Get of 16 KiB values
//	putmulti-100     one goroutine writing 100 keys at a time: a Tx.Commit of
//	                 100 Puts (one SetMulti) against a loop of 100 gomemcache
//	                 Sets and a go-memcache Pipeline of 100 MSets
//	getmulti-N-G     G goroutines (1 and 16) reading N keys (10, 100, 1000)
//	                 at a time: Dict.GetMulti, gomemcache's GetMulti (one
//	                 "gets k1 ... kN"), a go-memcache Pipeline of N MGets;
//	                 rates in keys/s, costs per key
//	scaling          memdict and go-memcache Get from 1 to 1024 goroutines,
//	                 with p50 and p99 latency
//	near-hot-64      64 goroutines reading 8 hot keys, a Dict with
//	                 WithNearCache (MaxStale 1s) against the same Dict without
//	near-zipf-64     the same over 100k keys drawn from zipf(1.1)
//
// Each phase runs -rounds rounds; a round runs every side for -d, in an
// order that rotates from round to round. It prints for each side the
// median of its rate, of its client CPU per call (getrusage: the whole
// process, so the side's goroutines and the runtime working for them), of
// the server's CPU per call (the on-CPU time of memcached's threads, from
// /proc/<pid>/task/*/schedstat; for a server it did not start, give
// -server-pid) and of its write and read syscalls per call (/proc/self/io);
// then the medians of the per-round ratios memdict/other (a round compares
// neighbouring periods, so a noisy neighbour hurts all sides alike; the
// median drops the rounds it did not) with their range, and whether the
// targets hold. Timings depend on the machine and on what else runs on it:
// the load average is printed before and after. This is a program, not a
// test. Allocations per call are measured by
// "go test -bench 'Get$|Set$' -benchmem ./backend/memcached/".
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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	qmc "github.com/QuangTung97/go-memcache/memcache"
	gomc "github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/codec"
)

// The sides.
const (
	sideGomc   = "gomemcache"
	sideQmc    = "go-memcache"
	sideMd     = "memdict"
	sideRaw2   = "raw 2x32"
	sideRaw4   = "raw 4x128"
	sideRawC   = "raw callers"
	sideRawSeq = "raw 1x1"
)

// side is one contender of a phase: run runs it for d.
type side struct {
	name string
	run  func(d time.Duration) sample
}

// target is one figure a phase must reach.
type target struct {
	what  string // as printed, such as "memdict / gomemcache >= 6x"
	value func(res map[string][]sample) (float64, string)
	ok    func(v float64) bool
}

type phase struct {
	name    string
	par     int // goroutines
	perOp   int // keys per call
	sides   []side
	targets []target
}

// flags.
var (
	dur       = flag.Duration("d", 300*time.Millisecond, "duration of each side of each round of each phase")
	rounds    = flag.Int("rounds", 9, "rounds per phase, alternating the sides")
	verbose   = flag.Bool("v", false, "print every round's rates")
	onlySides = flag.String("sides", "", "comma-separated sides to run (default: all), such as memdict,\"raw 2x32\"")
	profDur   = flag.Duration("profile-d", 3*time.Second, "how long -cpuprofile profiles memdict's side, after the phase's rounds")
	profSide  = flag.String("profile-side", sideMd, "the side -cpuprofile profiles")
)

func main() {
	addr := flag.String("addr", "", "memcached address; empty: start a memcached (-t 2) on a free port")
	pid := flag.Int("server-pid", 0, "with -addr: the memcached's process id, to measure its CPU time")
	keys := flag.Int("keys", 1000, "number of keys (at least the largest getmulti batch)")
	workers := flag.Int("c", 64, "goroutines in the parallel phases")
	conns := flag.Int("conns", memcached.DefaultConns, "memdict's pipelined connections per server (memcached.WithConns)")
	gmConns := flag.Int("gmconns", memcached.DefaultConns, "go-memcache's connections")
	only := flag.String("phases", "", "comma-separated phases to run (default: all); \"scaling\" for the scaling table")
	scale := flag.String("scale", "1,4,16,64,256,1024", "goroutine counts of the scaling table")
	caslap := flag.Bool("memcaslap", false, "also run memcaslap (or memaslap) against the server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the -profile-side side of the -profile phase to this file (a run of -profile-d after the rounds)")
	profPhase := flag.String("profile", "get-64", "the phase whose side -profile-side -cpuprofile profiles")
	flag.Parse()
	log.SetFlags(0)
	if *rounds < 1 || *keys < 1000 || *workers < 1 {
		log.Fatalf("memcachedbench: -rounds and -c must be at least 1, -keys at least 1000")
	}

	if *addr == "" {
		a, p, stop, err := startMemcached()
		if err != nil {
			log.Fatalf("memcachedbench: %v (install memcached, or give -addr)", err)
		}
		stopServer = stop
		defer stop()
		*addr, *pid = a, p
	}
	serverPID = *pid
	fmt.Printf("memcachedbench: memcached at %s, %s, GOMAXPROCS=%d, %d keys, %d rounds of %v per side, load average %s\n",
		*addr, runtime.Version(), runtime.GOMAXPROCS(0), *keys, *rounds, *dur, loadAvg())
	if v, err := serverVersion(*addr); err == nil {
		fmt.Printf("memcachedbench: server %s, pid %d\n", v, serverPID)
	}

	raw := gomc.New(*addr)
	defer raw.Close()
	gm, err := qmc.New(*addr, *gmConns)
	if err != nil {
		fatalf("go-memcache: %v", err)
	}
	defer gm.Close()
	be, err := memcached.New([]string{*addr}, memcached.WithConns(*conns))
	if err != nil {
		fatalf("%v", err)
	}
	defer be.Close()
	d, err := memdict.New[[]byte](be, "bench", memdict.WithCodec(codec.Raw))
	if err != nil {
		fatalf("%v", err)
	}

	// Every side's keys are as long as memdict's on the wire: memdict's
	// backend keys (its namespace "bench", the namespace generation, the
	// names escaped), their first byte changed for the other sides, which
	// write their own values under them (memdict's carry its entry
	// header). The server then does the same work per request for every
	// side; asked for the names themselves, the others would send keys
	// half as long.
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	big := []byte(strings.Repeat("b", 16<<10))
	names := make([]string, *keys)    // memdict's keys
	bigNames := make([]string, *keys) // memdict's keys of big values
	wire := make([]string, *keys)     // the other sides' keys
	wireBig := make([]string, *keys)
	peerKey := func(k string) string { return "p" + d.BackendKey(k)[1:] }
	for i := range names {
		names[i] = "user:" + strconv.Itoa(i)
		bigNames[i] = "big:" + strconv.Itoa(i)
		wire[i], wireBig[i] = peerKey(names[i]), peerKey(bigNames[i])
		for _, kv := range []struct {
			k, peer string
			v       []byte
		}{{names[i], wire[i], value}, {bigNames[i], wireBig[i], big}} {
			if err := raw.Set(&gomc.Item{Key: kv.peer, Value: kv.v}); err != nil {
				fatalf("gomemcache set: %v", err)
			}
			if err := d.Put(kv.k, kv.v); err != nil {
				fatalf("memdict put: %v", err)
			}
		}
	}

	var errCount [3]atomic.Int64
	var lastErr [3]atomic.Value
	check := func(s int, err error) error {
		if err != nil {
			errCount[s].Add(1)
			lastErr[s].Store(err.Error())
		}
		return err
	}
	missing := errors.New("miss")

	// gomemcache
	rawGet := func(ks []string) func(int) error {
		return func(i int) error { _, err := raw.Get(ks[i%len(ks)]); return check(0, err) }
	}
	rawSet := func(i int) error { return check(0, raw.Set(&gomc.Item{Key: wire[i%len(wire)], Value: value})) }
	// go-memcache
	gmGet := func(ks []string) func(int) error {
		return func(i int) error {
			p := gm.Pipeline()
			defer p.Finish()
			r, err := p.MGet(ks[i%len(ks)], qmc.MGetOptions{})()
			if err == nil && r.Type != qmc.MGetResponseTypeVA {
				err = missing
			}
			return check(1, err)
		}
	}
	gmSet := func(i int) error {
		p := gm.Pipeline()
		defer p.Finish()
		_, err := p.MSet(wire[i%len(wire)], value, qmc.MSetOptions{})()
		return check(1, err)
	}
	// memdict
	mdGet := func(ks []string) func(int) error {
		return func(i int) error {
			if _, ok := d.Get(ks[i%len(ks)]); !ok {
				return check(2, missing)
			}
			return nil
		}
	}
	mdSet := func(i int) error { return check(2, d.Put(names[i%len(names)], value)) }
	mix := func(get, set func(int) error) func(int) error {
		return func(i int) error {
			if i%10 == 0 {
				return set(i)
			}
			return get(i)
		}
	}
	// batches returns batches of n of keys.
	batches := func(keys []string, n int) [][]string {
		bs := make([][]string, max(len(keys)/n, 10))
		for j := range bs {
			for i := range n {
				bs[j] = append(bs[j], keys[(j*n+i)%len(keys)])
			}
		}
		return bs
	}
	b100, w100 := batches(names, 100), batches(wire, 100)
	rawPutMulti := func(i int) error {
		for _, k := range w100[i%len(w100)] {
			if err := raw.Set(&gomc.Item{Key: k, Value: value}); err != nil {
				return check(0, err)
			}
		}
		return nil
	}
	gmPutMulti := func(i int) error {
		p := gm.Pipeline()
		defer p.Finish()
		b := w100[i%len(w100)]
		fns := make([]func() (qmc.MSetResponse, error), len(b))
		for j, k := range b {
			fns[j] = p.MSet(k, value, qmc.MSetOptions{})
		}
		for _, fn := range fns {
			if _, err := fn(); err != nil {
				return check(1, err)
			}
		}
		return nil
	}
	mdPutMulti := func(i int) error {
		tx := d.Begin()
		for _, k := range b100[i%len(b100)] {
			if err := tx.Put(k, value); err != nil {
				return check(2, err)
			}
		}
		return check(2, tx.Commit(ctx))
	}
	getMulti := func(n int) (gomcOp, gmOp, mdOp func(int) error) {
		bs, ws := batches(names, n), batches(wire, n)
		gomcOp = func(i int) error {
			m, err := raw.GetMulti(ws[i%len(ws)])
			if err == nil && len(m) != n {
				err = fmt.Errorf("%d of %d keys", len(m), n)
			}
			return check(0, err)
		}
		gmOp = func(i int) error {
			p := gm.Pipeline()
			defer p.Finish()
			b := ws[i%len(ws)]
			fns := make([]func() (qmc.MGetResponse, error), len(b))
			for j, k := range b {
				fns[j] = p.MGet(k, qmc.MGetOptions{})
			}
			for _, fn := range fns {
				r, err := fn()
				if err == nil && r.Type != qmc.MGetResponseTypeVA {
					err = missing
				}
				if err != nil {
					return check(1, err)
				}
			}
			return nil
		}
		mdOp = func(i int) error {
			m, err := d.GetMulti(ctx, bs[i%len(bs)])
			if err == nil && len(m) != n {
				err = fmt.Errorf("%d of %d keys", len(m), n)
			}
			return check(2, err)
		}
		return gomcOp, gmOp, mdOp
	}

	w := strconv.Itoa(*workers)
	clients := func(par, perOp int, gomcOp, gmOp, mdOp func(int) error) []side {
		return []side{
			{sideGomc, func(d time.Duration) sample { return run(par, d, perOp, false, gomcOp) }},
			{sideQmc, func(d time.Duration) sample { return run(par, d, perOp, false, gmOp) }},
			{sideMd, func(d time.Duration) sample { return run(par, d, perOp, false, mdOp) }},
		}
	}
	pipeSide := func(name string, conns, window int, op pipeOp) side {
		return side{name, func(d time.Duration) sample {
			s, err := pipeLoad(*addr, conns, window, d, op)
			if err != nil {
				check(1, fmt.Errorf("%s: %w", name, err)) // counted with go-memcache's: never expected
			}
			return s
		}}
	}
	callersSide := func(op pipeOp) side {
		return side{sideRawC, func(d time.Duration) sample {
			s, err := callersLoad(*addr, *conns, *workers, d, op)
			if err != nil {
				check(1, fmt.Errorf("%s: %w", sideRawC, err)) // counted with go-memcache's: never expected
			}
			return s
		}}
	}
	ceilings := func(op pipeOp) []side {
		return []side{pipeSide(sideRaw2, 2, 32, op), pipeSide(sideRaw4, 4, 128, op), callersSide(op)}
	}
	phases := []phase{
		{name: "get-seq", par: 1, perOp: 1,
			sides:   append(clients(1, 1, rawGet(wire), gmGet(wire), mdGet(names)), pipeSide(sideRawSeq, 1, 1, pipeGet(wire))),
			targets: []target{ratioTarget(sideGomc, 1.0)}},
		{name: "get-" + w, par: *workers, perOp: 1,
			sides:   append(clients(*workers, 1, rawGet(wire), gmGet(wire), mdGet(names)), ceilings(pipeGet(wire))...),
			targets: []target{ratioTarget(sideRaw2, 0.85), cpuTarget(2.5), ratioTarget(sideQmc, 3), ratioTarget(sideGomc, 6)}},
		{name: "set-" + w, par: *workers, perOp: 1,
			sides:   append(clients(*workers, 1, rawSet, gmSet, mdSet), ceilings(pipeSet(wire, value))...),
			targets: []target{ratioTarget(sideRaw2, 0.85), cpuTarget(2.5), ratioTarget(sideGomc, 5)}},
		{name: "mix-" + w, par: *workers, perOp: 1,
			sides: append(clients(*workers, 1, mix(rawGet(wire), rawSet), mix(gmGet(wire), gmSet), mix(mdGet(names), mdSet)),
				ceilings(pipeMix(pipeGet(wire), pipeSet(wire, value)))...),
			targets: []target{ratioTarget(sideGomc, 6)}},
		{name: "getbig-" + w, par: *workers, perOp: 1,
			sides:   append(clients(*workers, 1, rawGet(wireBig), gmGet(wireBig), mdGet(bigNames)), ceilings(pipeGet(wireBig))...),
			targets: []target{ratioTarget(sideGomc, 1.2)}},
		{name: "putmulti-100", par: 1, perOp: 100,
			sides:   clients(1, 100, rawPutMulti, gmPutMulti, mdPutMulti),
			targets: []target{ratioTarget(sideGomc, 5)}},
	}
	for _, g := range []int{1, 16} {
		for _, n := range []int{10, 100, 1000} {
			a, b, c := getMulti(n)
			ph := phase{name: fmt.Sprintf("getmulti-%d-%d", n, g), par: g, perOp: n, sides: clients(g, n, a, b, c)}
			if g == 16 && n >= 100 {
				ph.targets = []target{ratioTarget(sideGomc, 1.3), serverTarget(sideGomc)}
			}
			phases = append(phases, ph)
		}
	}
	selected := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p != "" {
			selected[p] = true
		}
	}

	allOK := true
	for _, ph := range phases {
		if len(selected) > 0 && !selected[ph.name] {
			continue
		}
		prof := ""
		if ph.name == *profPhase {
			prof = *cpuprofile
		}
		allOK = runPhase(ph, prof) && allOK
	}
	fmt.Println("\n(medians over the rounds; client and server: CPU µs per call, per key in putmulti and getmulti;")
	fmt.Println(" writes, reads: syscalls per call or key; ratios of rates: median of the per-round ratios, and their range)")
	for s, name := range []string{sideGomc, sideQmc + " (or a ceiling)", sideMd} {
		if n := errCount[s].Load(); n > 0 {
			fmt.Printf("memcachedbench: %d %s operations failed or missed, last: %v\n", n, name, lastErr[s].Load())
		}
	}
	if len(selected) == 0 || selected["scaling"] {
		var gs []int
		for _, f := range strings.Split(*scale, ",") {
			if g, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && g > 0 {
				gs = append(gs, g)
			}
		}
		runScaling(gs, mdGet(names), gmGet(wire))
	}
	allOK = runNear(be, selected, *workers, *rounds, *dur, value) && allOK
	if *caslap {
		runCaslap(*addr, *dur)
	}
	fmt.Printf("memcachedbench: load average %s at the end\n", loadAvg())
	if !allOK {
		fmt.Println("memcachedbench: some targets missed on this machine")
	}
}

// ratioTarget is memdict's rate at least x times other's.
func ratioTarget(other string, x float64) target {
	what := fmt.Sprintf("memdict / %s >= %.2gx", other, x)
	if strings.HasPrefix(other, "raw") {
		what = fmt.Sprintf("memdict / %s >= %.0f%%", other, 100*x)
	}
	return target{what: what,
		value: func(res map[string][]sample) (float64, string) {
			rs := ratios(res[sideMd], res[other])
			return median(rs), spread(rs)
		},
		ok: func(v float64) bool { return v >= x }}
}

// cpuTarget is memdict's client CPU at most us µs per call.
func cpuTarget(us float64) target {
	return target{what: fmt.Sprintf("memdict client CPU <= %.1f µs/op", us),
		value: func(res map[string][]sample) (float64, string) {
			return medianOf(res[sideMd], sample.cpuPerOp), ""
		},
		ok: func(v float64) bool { return v <= us }}
}

// serverTarget is the server's CPU per key under memdict at most its CPU
// per key under other.
func serverTarget(other string) target {
	return target{what: "server CPU per key under memdict <= under " + other,
		value: func(res map[string][]sample) (float64, string) {
			var rs []float64
			for i, m := range res[sideMd] {
				if i >= len(res[other]) {
					break
				}
				if o := res[other][i].serverPerOp(); o > 0 {
					rs = append(rs, m.serverPerOp()/o)
				}
			}
			return median(rs), spread(rs)
		},
		ok: func(v float64) bool { return v <= 1 }}
}

// ratios returns the per-round ratios of a's rate to b's.
func ratios(a, b []sample) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if r := b[i].rate(); r > 0 {
			rs = append(rs, a[i].rate()/r)
		}
	}
	return rs
}

func medianOf(ss []sample, f func(sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

// runPhase runs ph's rounds, prints its table and reports whether its
// targets hold. With prof, memdict's side runs under the CPU profiler.
func runPhase(ph phase, prof string) bool {
	if *onlySides != "" {
		var keep []side
		for _, s := range ph.sides {
			if strings.Contains(","+*onlySides+",", ","+s.name+",") {
				keep = append(keep, s)
			}
		}
		ph.sides = keep
	}
	res := map[string][]sample{}
	for r := range *rounds {
		for j := range ph.sides {
			s := ph.sides[(j+r)%len(ph.sides)]
			smp := s.run(*dur)
			res[s.name] = append(res[s.name], smp)
			if *verbose {
				fmt.Printf("  round %d %-12s %10.0f/s %6.2f µs/op\n", r, s.name, smp.rate(), smp.cpuPerOp())
			}
		}
	}
	unit := "ops/s"
	if ph.perOp > 1 {
		unit = "keys/s"
	}
	fmt.Printf("\n%-22s %10s %10s %8s %10s %9s %9s %9s\n", fmt.Sprintf("%s (%d goroutines)", ph.name, ph.par),
		unit, "client µs", "(sys)", "server µs", "writes", "reads", "switches")
	for _, s := range ph.sides {
		ss := res[s.name]
		fmt.Printf("  %-20s %10s %10.2f %8.2f %10.2f %9.3f %9.3f %9.3f\n", s.name, si(medianOf(ss, sample.rate)),
			medianOf(ss, sample.cpuPerOp), medianOf(ss, sample.sysPerOp), medianOf(ss, sample.serverPerOp),
			medianOf(ss, sample.writesPerOp), medianOf(ss, sample.readsPerOp), medianOf(ss, sample.csPerOp))
	}
	for _, s := range ph.sides {
		if s.name != sideMd {
			rs := ratios(res[sideMd], res[s.name])
			fmt.Printf("  memdict / %-11s %8.2fx  (%s)\n", s.name, median(rs), spread(rs))
		}
	}
	ok := true
	for _, t := range ph.targets {
		v, sp := t.value(res)
		mark := "ok"
		if !t.ok(v) {
			mark, ok = "MISSED", false
		}
		if sp != "" {
			sp = " (" + sp + ")"
		}
		fmt.Printf("  target: %-56s %.2f%s %s\n", t.what, v, sp, mark)
	}
	if prof != "" {
		// memdict's side alone, once more, under the profiler.
		pf, err := os.Create(prof)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fatalf("%v", err)
		}
		for _, s := range ph.sides {
			if s.name == *profSide {
				smp := s.run(*profDur)
				fmt.Printf("  (profiled: %s %s/s, %.2f µs/op client CPU, %.3f writes/op, into %s)\n", s.name,
					si(smp.rate()), smp.cpuPerOp(), smp.writesPerOp(), prof)
			}
		}
		pprof.StopCPUProfile()
		pf.Close()
	}
	return ok
}

// runScaling prints the scaling table: memdict's and go-memcache's Get at
// each goroutine count of gs, with the median rate, client CPU per call
// and p50/p99 latency over the rounds (the latencies of all rounds
// merged). gomemcache is left out: past a few dozen goroutines it opens a
// connection per concurrent call and closes all but two afterwards.
func runScaling(gs []int, md, gm func(int) error) {
	fmt.Printf("\n%-11s %30s   %30s\n", "scaling", "memdict", "go-memcache")
	fmt.Printf("%-11s %9s %6s %6s %7s   %9s %6s %6s %7s   %s\n", "goroutines",
		"ops/s", "µs/op", "p50", "p99", "ops/s", "µs/op", "p50", "p99", "memdict / go-memcache")
	for _, g := range gs {
		var ms, qs []sample
		var mh, qh histogram
		for r := range *rounds {
			for j := range 2 {
				if (j+r)%2 == 0 {
					s := run(g, *dur, 1, true, md)
					ms = append(ms, s)
					mh.merge(s.lat)
				} else {
					s := run(g, *dur, 1, true, gm)
					qs = append(qs, s)
					qh.merge(s.lat)
				}
			}
		}
		rs := ratios(ms, qs)
		fmt.Printf("%-11d %9s %6.2f %6s %7s   %9s %6.2f %6s %7s   %.2fx (%s)\n", g,
			si(medianOf(ms, sample.rate)), medianOf(ms, sample.cpuPerOp), dur2(mh.quantile(0.5)), dur2(mh.quantile(0.99)),
			si(medianOf(qs, sample.rate)), medianOf(qs, sample.cpuPerOp), dur2(qh.quantile(0.5)), dur2(qh.quantile(0.99)),
			median(rs), spread(rs))
	}
	fmt.Println("(µs/op: client CPU per call; p50, p99: latency of a call)")
}

// si formats a rate with k or M.
func si(x float64) string {
	switch {
	case x >= 10e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// dur2 formats a latency in µs or ms.
func dur2(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	if d >= time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", float64(d)/1e3)
}

// stopServer stops the memcached this program started, if any.
var stopServer func()

// fatalf is log.Fatalf that stops the memcached this program started
// first.
func fatalf(format string, args ...any) {
	if stopServer != nil {
		stopServer()
	}
	log.Fatalf(format, args...)
}

// startMemcached starts memcached on a free loopback port and returns its
// address and process id.
func startMemcached() (string, int, func(), error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return "", 0, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-c", "4096", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	// The server dies with this program, however it exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := serverVersion(addr); err == nil {
			return addr, cmd.Process.Pid, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, nil, fmt.Errorf("memcached on %s did not start", addr)
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
