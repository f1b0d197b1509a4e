package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memcached"
)

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
			a := run(workers, dur, 1, false, get(plain, ph.keys)).rate()
			b := run(workers, dur, 1, false, get(near, ph.keys)).rate()
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
