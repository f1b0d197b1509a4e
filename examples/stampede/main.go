// Command stampede shows memdict's fleet-wide GetOrLoad: a crowd of
// processes all asking for one key at once costs one load, not one per
// process, and with stale-while-revalidate the crowd keeps being served
// the stale value while one of them refreshes it.
//
//	go run ./examples/stampede -url memcached://127.0.0.1:11211
//	go run ./examples/stampede -url redis://127.0.0.1:6379/0 -swr
//	go run ./examples/stampede -url memcached://127.0.0.1:11211 -procs 20 -g 100 -load-time 500ms
//
// The program starts -procs child processes of itself (re-running its own
// executable), each with -g goroutines. Every child opens -url, warms its
// connections and reports ready; when all are ready the parent tells them
// to go at once. The loader sleeps -load-time (a database query) and
// counts its calls with an increment of a counter key in the backend, so
// the count is fleet-wide. -url must name a server that the processes
// share: memcached://, memcacheds://, redis:// or rediss:// (mem:// is
// private to each process and is refused).
//
// Cold mode (the default): one key, new for each run, that no one has
// loaded; every goroutine calls GetOrLoad on it once. Its latency is
// measured from the go signal to GetOrLoad's return, so it is about
// -load-time for every caller: the losers wait for the winner's value.
//
// SWR mode (-swr): the parent stores the key (with WithDefaultTTL(-ttl) and
// WithStaleWhileRevalidate(-swr-window)) and waits until it is stale:
// -ttl, plus 1.2 s because memcached's clock ticks in whole seconds and
// its early-refresh flag (R) is only handed out once the remaining TTL,
// in seconds, is below the window. Then every goroutine calls GetOrLoad
// once every -every for -swr-for (default -load-time + 200 ms, so the
// calls cover the whole refresh): the first call fleet-wide wins the
// refresh and loads in the background while every call returns the stale
// value at once. The calls are paced so that the figure is the latency of
// serving the stale value, not of 400 goroutines saturating a small
// machine's CPUs: each goroutine starts at a random offset within -every
// and then calls on a fixed schedule (a call that overruns its slot skips
// the missed ones rather than bursting), and each latency is measured from
// the call's start to its return. After the phase the children wait (up
// to -lease-ttl + -load-time + 10 s) until the refreshed value is stored,
// so that the winner is not killed in the middle of its refresh.
//
// Output: one line "loads: N", the loader's calls fleet-wide as the
// backend's counter has them (1 is the point: exactly one load, or in SWR
// mode exactly one refresh), and one line of latency percentiles over
// every call, for example
//
//	loads: 1
//	latency: calls=400 p50=203.1ms p90=208.4ms p99=215.9ms max=219.0ms
//
// In SWR mode the latency line also says how many calls were served the
// stale value. A bad flag or URL, an unreachable server or a failed call
// makes it exit non-zero with a message on standard error. Timings depend
// on the machine; this is a program, not a test (its tests are in
// stampede_test.go).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/all" // memcached://, redis://, mem:// (refused)
)

// childEnv is set to 1 in the children's environment. The program itself
// recognises its children by the hidden -child flag; the tests, whose
// binary re-runs itself as the children, dispatch on childEnv in TestMain.
const childEnv = "MEMDICT_STAMPEDE_CHILD"

// prefix is the Dict's key prefix; counterPrefix the Counters'.
const (
	prefix        = "stampede"
	counterPrefix = "stampede-loads"
	seedValue     = "seed"
)

// staleMargin is how long past the seed's TTL the parent waits in SWR mode
// before the go signal: memcached's clock has whole seconds.
const staleMargin = 1200 * time.Millisecond

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	url       string
	procs     int
	g         int
	loadTime  time.Duration
	leaseTTL  time.Duration
	swr       bool
	ttl       time.Duration // SWR: the seed's fresh TTL
	swrWindow time.Duration
	every     time.Duration
	swrFor    time.Duration
	timeout   time.Duration

	// Set by the parent on its children's command lines.
	child   bool
	key     string // the Dict key all callers ask for
	counter string // the counter of the loader's calls
}

// exitUsage is the exit status of a bad command line, as flag's.
const exitUsage = 2

// run is the program: it parses args and runs the parent or, with the
// hidden -child flag, a child. It returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stampede: %v\n", err)
		return exitUsage
	}
	if cfg.child {
		if err := runChild(ctx, cfg, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "stampede child %d: %v\n", os.Getpid(), err)
			return 1
		}
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	res, err := runParent(ctx, cfg, exe, stderr)
	if res != nil {
		fmt.Fprint(stdout, res.String())
	}
	if err != nil {
		fmt.Fprintf(stderr, "stampede: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("stampede", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "", "backend URL the processes share: memcached://host:port or redis://host:port/db (required)")
	fs.IntVar(&c.procs, "procs", 8, "child processes")
	fs.IntVar(&c.g, "g", 50, "goroutines per child process")
	fs.DurationVar(&c.loadTime, "load-time", 200*time.Millisecond, "how long the loader takes")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", memdict.DefaultLeaseTTL, "the Dict's WithLeaseTTL")
	fs.BoolVar(&c.swr, "swr", false, "stale-while-revalidate mode: seed the key, let it go stale, measure calls during the refresh")
	fs.DurationVar(&c.ttl, "ttl", 2*time.Second, "SWR mode: the seed's fresh TTL (WithDefaultTTL; memcached has whole seconds)")
	fs.DurationVar(&c.swrWindow, "swr-window", 30*time.Second, "SWR mode: WithStaleWhileRevalidate's window")
	fs.DurationVar(&c.every, "every", 20*time.Millisecond, "SWR mode: each goroutine calls GetOrLoad once every this long")
	fs.DurationVar(&c.swrFor, "swr-for", 0, "SWR mode: how long the goroutines keep calling (0: -load-time + 200ms)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&c.child, "child", false, "internal: run as a child process")
	fs.StringVar(&c.key, "key", "", "internal: the key (child)")
	fs.StringVar(&c.counter, "counter", "", "internal: the counter's name (child)")
	hidden := map[string]bool{"child": true, "key": true, "counter": true}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: stampede -url memcached://127.0.0.1:11211 [-swr] [flags]\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hidden[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(stderr, "  -%s%s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if c.swrFor == 0 {
		c.swrFor = c.loadTime + 200*time.Millisecond
	}
	return c, c.check()
}

// check reports the first bad flag.
func (c config) check() error {
	switch {
	case c.url == "":
		return errors.New("-url is required: a memcached:// or redis:// URL of a server the processes share")
	case c.procs < 1:
		return fmt.Errorf("-procs %d: need at least 1 process", c.procs)
	case c.g < 1:
		return fmt.Errorf("-g %d: need at least 1 goroutine per process", c.g)
	case c.loadTime < 0:
		return fmt.Errorf("-load-time %v is negative", c.loadTime)
	case c.leaseTTL <= 0:
		return fmt.Errorf("-lease-ttl %v must be positive", c.leaseTTL)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout %v must be positive", c.timeout)
	case c.swr && c.ttl < time.Second:
		return fmt.Errorf("-ttl %v: must be at least 1s (memcached's TTLs are whole seconds)", c.ttl)
	case c.swr && c.swrWindow <= 0:
		return fmt.Errorf("-swr-window %v must be positive", c.swrWindow)
	case c.swr && c.every <= 0:
		return fmt.Errorf("-every %v must be positive", c.every)
	case c.swr && c.swrFor < 0:
		return fmt.Errorf("-swr-for %v is negative", c.swrFor)
	case c.child && (c.key == "" || c.counter == ""):
		return errors.New("-child needs -key and -counter (it is started by the parent, not by hand)")
	}
	if !strings.Contains(c.url, "://") {
		return fmt.Errorf("-url %q: no scheme; want memcached://host:port or redis://host:port/db", backend.Redact(c.url))
	}
	u, err := url.Parse(c.url)
	if err != nil {
		return fmt.Errorf("-url %q: %v", backend.Redact(c.url), err)
	}
	if strings.EqualFold(u.Scheme, "mem") {
		return fmt.Errorf("-url %q: the in-memory backend is private to each process, so the children would not share it; use a memcached:// or redis:// URL", backend.Redact(c.url))
	}
	if err := backend.Validate(c.url); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	return nil
}

// dicts opens the backend and the Dict and Counters every process uses.
type dicts struct {
	be    backend.Backend
	d     *memdict.Dict[string]
	loads *memdict.Counters
}

func open(ctx context.Context, c config) (*dicts, error) {
	be, err := backend.Open(ctx, c.url)
	if err != nil {
		return nil, err
	}
	opts := []memdict.Option{memdict.WithLeaseTTL(c.leaseTTL)}
	if c.swr {
		opts = append(opts, memdict.WithDefaultTTL(c.ttl), memdict.WithStaleWhileRevalidate(c.swrWindow))
	} else {
		opts = append(opts, memdict.WithDefaultTTL(10*time.Minute)) // the servers forget the run's key
	}
	d, err := memdict.New[string](be, prefix, opts...)
	if err != nil {
		be.Close()
		return nil, err
	}
	loads, err := memdict.NewCounters(be, counterPrefix, memdict.WithDefaultTTL(10*time.Minute))
	if err != nil {
		be.Close()
		return nil, err
	}
	return &dicts{be: be, d: d, loads: loads}, nil
}

func (x *dicts) Close() error { return x.be.Close() }

// loader returns the loader every caller passes to GetOrLoad: it counts
// its call in the backend, then takes c.loadTime.
func (x *dicts) loader(c config, rep *childReport, mu *sync.Mutex) func(context.Context, string) (string, error) {
	return func(ctx context.Context, key string) (string, error) {
		mu.Lock()
		rep.Loads++
		rep.LoadStarts = append(rep.LoadStarts, time.Now().UnixNano())
		mu.Unlock()
		if _, err := x.loads.Inc(ctx, c.counter); err != nil {
			return "", fmt.Errorf("counting the load: %w", err)
		}
		t := time.NewTimer(c.loadTime)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
		return fmt.Sprintf("loaded by pid %d at %s", os.Getpid(), time.Now().Format(time.RFC3339Nano)), nil
	}
}

// childReport is what a child prints, as one JSON line after "result ".
type childReport struct {
	Latencies []time.Duration `json:"latencies_ns"`
	Stale     int             `json:"stale"`  // SWR: calls that returned the seed
	Loads     int64           `json:"loads"`  // this process's loader calls
	Errors    int             `json:"errors"` // failed calls
	FirstErr  string          `json:"first_error,omitempty"`
	// Wall-clock times (Unix ns), comparable across the processes of one
	// machine: when this process's loader calls started, and when its
	// first call returned a value.
	LoadStarts  []int64 `json:"load_starts,omitempty"`
	FirstReturn int64   `json:"first_return,omitempty"`
}

// runChild is a child process: open, warm up, say "ready", wait for "go"
// on stdin, run the callers, print the report.
func runChild(ctx context.Context, c config, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	x, err := open(ctx, c)
	if err != nil {
		return err
	}
	defer x.Close()
	if err := x.warm(ctx, c.g); err != nil {
		return fmt.Errorf("warming up: %w", err)
	}
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("waiting for the parent's go: got %q, %v (the parent went away?)", line, err)
	}

	var (
		mu     sync.Mutex
		rep    childReport
		wg     sync.WaitGroup
		start  = time.Now()
		load   = x.loader(c, &rep, &mu)
		record = func(lat time.Duration, v string, err error) {
			now := time.Now().UnixNano()
			mu.Lock()
			defer mu.Unlock()
			rep.Latencies = append(rep.Latencies, lat)
			if err != nil {
				rep.Errors++
				if rep.FirstErr == "" {
					rep.FirstErr = err.Error()
				}
				return
			}
			if v == seedValue {
				rep.Stale++
			}
			if rep.FirstReturn == 0 || now < rep.FirstReturn {
				rep.FirstReturn = now
			}
		}
	)
	for range c.g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !c.swr {
				v, err := x.d.GetOrLoad(ctx, c.key, load)
				record(time.Since(start), v, err)
				return
			}
			x.pacedCalls(ctx, c, start, load, record)
		}()
	}
	wg.Wait()
	if c.swr {
		if err := x.waitRefreshed(ctx, c); err != nil {
			mu.Lock()
			rep.Errors++
			rep.FirstErr = err.Error()
			mu.Unlock()
		}
	}
	b, err := json.Marshal(&rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "result %s\n", b)
	return err
}

// warm makes g concurrent reads through the Dict and a read of the
// counter, so that connections are open and pools filled before the go
// signal and the measured calls do not dial.
func (x *dicts) warm(ctx context.Context, g int) error {
	if _, _, err := x.loads.Get(ctx, "warm"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, g)
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if _, _, err := x.d.Lookup(ctx, "warm"); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pacedCalls is one SWR caller: a GetOrLoad every c.every, starting at a
// random offset within c.every, for c.swrFor after start. A call that
// overruns its slot skips the slots it missed.
func (x *dicts) pacedCalls(ctx context.Context, c config, start time.Time, load func(context.Context, string) (string, error), record func(time.Duration, string, error)) {
	end := start.Add(c.swrFor)
	next := start.Add(time.Duration(mrand.Int64N(int64(c.every))))
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for next.Before(end) {
		t.Reset(time.Until(next))
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		t0 := time.Now()
		v, err := x.d.GetOrLoad(ctx, c.key, load)
		now := time.Now()
		record(now.Sub(t0), v, err)
		for !next.After(now) {
			next = next.Add(c.every)
		}
	}
}

// waitRefreshed polls the key until it no longer holds the seed: the
// refresh stored its value. Bounded by the lease TTL plus the load time
// plus 10 s.
func (x *dicts) waitRefreshed(ctx context.Context, c config) error {
	deadline := time.Now().Add(c.leaseTTL + c.loadTime + 10*time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		v, ok, err := x.d.Lookup(ctx, c.key)
		if err == nil && ok && v != seedValue {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the refreshed value was not stored within %v (last read: %q, found %v, %v)",
				c.leaseTTL+c.loadTime+10*time.Second, v, ok, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// result is what the parent gathered.
type result struct {
	swr       bool
	loads     uint64 // the backend's counter
	childLoad int64  // the children's own count of loader calls
	latencies []time.Duration
	stale     int
	errors    int
	// loadStarts are the loader calls' start times, sorted; firstReturn
	// is the earliest return of a value by any call.
	loadStarts  []time.Time
	firstReturn time.Time
}

// String is the program's output: "loads: N" and the latency line.
func (r *result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "loads: %d\n", r.loads)
	fmt.Fprintf(&b, "latency: calls=%d", len(r.latencies))
	if r.swr {
		fmt.Fprintf(&b, " stale=%d", r.stale)
	}
	if r.errors > 0 {
		fmt.Fprintf(&b, " errors=%d", r.errors)
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"max", 1}} {
		fmt.Fprintf(&b, " %s=%v", p.name, round(percentile(r.latencies, p.q)))
	}
	b.WriteByte('\n')
	return b.String()
}

// percentile returns the nearest-rank q-quantile of sorted latencies (0
// for none).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// round keeps four significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 10*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

// newID returns a random id that makes the run's keys its own.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// childProc is one running child.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at EOF
}

// runParent starts the children (running exe), runs the stampede and
// gathers the result. It returns the result it has, if any, with an error
// when something failed.
func runParent(ctx context.Context, c config, exe string, stderr io.Writer) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, ok := stderr.(*os.File); !ok {
		stderr = &syncWriter{w: stderr} // the children's output is copied concurrently
	}
	id := newID()
	c.counter = "loads-" + id
	if c.swr {
		c.key = "swr-" + id
	} else {
		c.key = "cold-" + id
	}
	x, err := open(ctx, c)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	// Reach the server before starting anything: a wrong address fails here.
	if _, _, err := x.loads.Get(ctx, c.counter); err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", backend.Redact(c.url), err)
	}
	var staleAt time.Time
	if c.swr {
		if err := x.d.Store(ctx, c.key, seedValue); err != nil {
			return nil, fmt.Errorf("seeding %q: %w", c.key, err)
		}
		staleAt = time.Now().Add(c.ttl + staleMargin)
	}

	// Start the children; kill them all if anything goes wrong.
	children := make([]*childProc, 0, c.procs)
	defer func() {
		for _, ch := range children {
			if ch.cmd.ProcessState == nil {
				_ = ch.cmd.Process.Kill()
				_ = ch.cmd.Wait()
			}
			go func() {
				for range ch.lines { // until the reader sees the closed pipe
				}
			}()
		}
	}()
	args := childArgs(c)
	for i := range c.procs {
		ch, err := startChild(exe, args, stderr)
		if err != nil {
			return nil, fmt.Errorf("starting child %d: %w", i, err)
		}
		children = append(children, ch)
	}
	for i, ch := range children {
		line, err := ch.next(ctx)
		if err != nil || line != "ready" {
			return nil, fmt.Errorf("child %d (pid %d) did not get ready: %q, %v%s", i, ch.cmd.Process.Pid, line, err, ch.exitNote(err))
		}
	}
	if c.swr {
		select {
		case <-time.After(time.Until(staleAt)):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	for i, ch := range children {
		if _, err := io.WriteString(ch.stdin, "go\n"); err != nil {
			return nil, fmt.Errorf("telling child %d to go: %w", i, err)
		}
	}

	res := &result{swr: c.swr}
	var errs []error
	for i, ch := range children {
		line, err := ch.next(ctx)
		rest, ok := strings.CutPrefix(line, "result ")
		if err != nil || !ok {
			errs = append(errs, fmt.Errorf("child %d (pid %d) gave no result: %q, %v%s", i, ch.cmd.Process.Pid, line, err, ch.exitNote(err)))
			continue
		}
		var rep childReport
		if err := json.Unmarshal([]byte(rest), &rep); err != nil {
			errs = append(errs, fmt.Errorf("child %d: bad report: %w", i, err))
			continue
		}
		res.latencies = append(res.latencies, rep.Latencies...)
		res.stale += rep.Stale
		res.childLoad += rep.Loads
		res.errors += rep.Errors
		for _, ns := range rep.LoadStarts {
			res.loadStarts = append(res.loadStarts, time.Unix(0, ns))
		}
		if t := time.Unix(0, rep.FirstReturn); rep.FirstReturn != 0 && (res.firstReturn.IsZero() || t.Before(res.firstReturn)) {
			res.firstReturn = t
		}
		if rep.FirstErr != "" {
			errs = append(errs, fmt.Errorf("child %d: %d failed calls, the first: %s", i, rep.Errors, rep.FirstErr))
		}
		if err := ch.finish(ctx); err != nil {
			errs = append(errs, fmt.Errorf("child %d: %w", i, err))
		}
	}
	slices.Sort(res.latencies)
	slices.SortFunc(res.loadStarts, time.Time.Compare)
	n, _, err := x.loads.Get(ctx, c.counter)
	if err != nil {
		errs = append(errs, fmt.Errorf("reading the load counter: %w", err))
	}
	res.loads = n
	if err == nil && int64(n) != res.childLoad {
		errs = append(errs, fmt.Errorf("the backend counted %d loads but the children ran the loader %d times", n, res.childLoad))
	}
	return res, errors.Join(errs...)
}

// childArgs is a child's command line.
func childArgs(c config) []string {
	return []string{
		"-child", "-key", c.key, "-counter", c.counter,
		"-url", c.url,
		"-g", fmt.Sprint(c.g),
		"-load-time", c.loadTime.String(),
		"-lease-ttl", c.leaseTTL.String(),
		"-swr=" + fmt.Sprint(c.swr),
		"-ttl", c.ttl.String(),
		"-swr-window", c.swrWindow.String(),
		"-every", c.every.String(),
		"-swr-for", c.swrFor.String(),
		"-timeout", c.timeout.String(),
	}
}

// startChild runs exe with args as a child: its stdout is read line by
// line, its stderr goes to stderr.
func startChild(exe string, args []string, stderr io.Writer) (*childProc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &childProc{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		defer close(ch.lines)
		r := bufio.NewReaderSize(stdout, 1<<16)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				ch.lines <- strings.TrimRight(line, "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, nil
}

// next returns the child's next line of output.
func (ch *childProc) next(ctx context.Context) (string, error) {
	select {
	case line, ok := <-ch.lines:
		if !ok {
			return "", io.EOF
		}
		return line, nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// exitNote describes how a child that closed its output (err is io.EOF)
// ended.
func (ch *childProc) exitNote(err error) string {
	if !errors.Is(err, io.EOF) {
		return ""
	}
	if err := ch.cmd.Wait(); err != nil {
		return " (" + err.Error() + ")"
	}
	return " (it exited)"
}

// finish waits for the child to close its output and exit.
func (ch *childProc) finish(ctx context.Context) error {
	_ = ch.stdin.Close()
	for {
		select {
		case _, ok := <-ch.lines:
			if ok {
				continue // nothing more is expected; ignore it
			}
			return ch.cmd.Wait()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// syncWriter serialises the writes of several children's stderr copiers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
