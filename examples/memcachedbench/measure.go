package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// What a side costs, besides its rate: the client's CPU time
// (getrusage, the whole process: the side's goroutines and the runtime
// working for them), the server's CPU time (the sum of
// /proc/<pid>/task/*/schedstat, the time each of memcached's threads ran),
// and the process's read and write syscalls (/proc/self/io syscr and
// syscw: read(2) and write(2) and their kin, which is what Go's net
// package uses on TCP). The sides run one at a time, so the deltas over a
// side's run are its own.

// counters is a reading of the costs at one moment.
type counters struct {
	at     time.Time
	cpu    time.Duration // user + system time of this process
	sys    time.Duration // system time of this process
	server time.Duration // on-CPU time of the server's threads; 0 if unknown
	reads  int64         // syscr
	writes int64         // syscw
	cs     int64         // context switches of this process's threads
}

// serverPID is the memcached whose CPU time is measured (0: none).
var serverPID int

func readCounters() counters {
	c := counters{at: time.Now(), server: serverCPU(serverPID)}
	c.cpu, c.sys = cpuTime()
	c.reads, c.writes = syscalls()
	c.cs = contextSwitches()
	return c
}

// sample is what one side did in one run.
type sample struct {
	ops     int64 // calls, or keys for the multi-key phases
	elapsed time.Duration
	cpu     time.Duration
	sys     time.Duration
	server  time.Duration
	reads   int64
	writes  int64
	cs      int64
	lat     *histogram // nil unless latencies were recorded
}

func since(c0 counters, ops int64) sample {
	c1 := readCounters()
	return sample{ops: ops, elapsed: c1.at.Sub(c0.at), cpu: c1.cpu - c0.cpu, sys: c1.sys - c0.sys, server: c1.server - c0.server,
		reads: c1.reads - c0.reads, writes: c1.writes - c0.writes, cs: c1.cs - c0.cs}
}

func (s sample) rate() float64 { return float64(s.ops) / s.elapsed.Seconds() }

// perOp returns x per op, in microseconds for durations.
func (s sample) perOp(x float64) float64 { return x / float64(max(s.ops, 1)) }

func (s sample) cpuPerOp() float64    { return s.perOp(float64(s.cpu.Nanoseconds()) / 1e3) }
func (s sample) sysPerOp() float64    { return s.perOp(float64(s.sys.Nanoseconds()) / 1e3) }
func (s sample) serverPerOp() float64 { return s.perOp(float64(s.server.Nanoseconds()) / 1e3) }
func (s sample) writesPerOp() float64 { return s.perOp(float64(s.writes)) }
func (s sample) readsPerOp() float64  { return s.perOp(float64(s.reads)) }
func (s sample) csPerOp() float64     { return s.perOp(float64(s.cs)) }

// cpuTime returns the CPU time (user plus system) the process has used,
// and the system time alone.
func cpuTime() (all, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano())
}

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
		f := bytes.Fields(b)
		if len(f) > 0 {
			n, _ := strconv.ParseInt(string(f[0]), 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

// syscalls returns this process's read and write syscall counts
// (/proc/self/io), or zeros where it is not available.
func syscalls() (reads, writes int64) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// contextSwitches returns the context switches (voluntary and not) of
// this process's threads, from /proc/self/task/*/status.
func contextSwitches() int64 {
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// histogram counts latencies in buckets of about 6% (16 per power of two),
// from 1 ns to 2^40 ns; one per goroutine, merged at the end.
type histogram struct {
	counts [41 * 16]int64
}

func bucketOf(ns int64) int {
	if ns < 16 {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 5 // ns >> e is 16..31
	return min((e+1)*16+int(ns>>e)-16, len(histogram{}.counts)-1)
}

// lower returns the smallest latency of bucket b.
func lower(b int) time.Duration {
	if b < 16 {
		return time.Duration(b)
	}
	e := b/16 - 1
	return time.Duration(int64(16+b%16) << e)
}

func (h *histogram) add(d time.Duration) { h.counts[bucketOf(int64(d))]++ }

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
}

// quantile returns the latency below which q of the recorded ones lie (the
// bucket's lower bound).
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for _, n := range h.counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := int64(q * float64(total))
	var seen int64
	for b, n := range h.counts {
		seen += n
		if seen > want {
			return lower(b)
		}
	}
	return lower(len(h.counts) - 1)
}

// run calls op from par goroutines for about dur and returns what it cost;
// perOp is the number of keys one call handles. With lat it records each
// call's latency. A call that fails is not counted.
func run(par int, dur time.Duration, perOp int, lat bool, op func(i int) error) sample {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var hmu sync.Mutex
	var h *histogram
	if lat {
		h = new(histogram)
	}
	c0 := readCounters()
	for g := range par {
		wg.Go(func() {
			local := int64(0)
			var lh *histogram
			if lat {
				lh = new(histogram)
			}
			for i := g * 7919; !stop.Load(); i++ {
				var t0 time.Time
				if lat {
					t0 = time.Now()
				}
				if op(i) == nil {
					local++
					if lat {
						lh.add(time.Since(t0))
					}
				}
			}
			n.Add(local)
			if lat {
				hmu.Lock()
				h.merge(lh)
				hmu.Unlock()
			}
		})
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	s := since(c0, n.Load()*int64(perOp))
	s.lat = h
	return s
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
