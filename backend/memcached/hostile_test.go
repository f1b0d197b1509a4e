package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// The hostile-server suite: a real memcached behind an internal/hostile
// proxy that mistreats a share of its replies at random (an extra reply, a
// missing one, another's, a relabelled opaque, a reply cut short with a
// FIN or a RST, a value of 2^31 or 2^63-1 bytes, a 10 MB line, binary
// noise, a byte every 100 ms), on the meta protocol and on the text
// protocol, several seeds, a few seconds each, while goroutines read and
// write keys whose values name their key. It asserts that no call returns
// another key's value, that every call ends within its timeout (plus
// scheduling noise), and that the heap of the process stays within the
// largest value accepted plus a few MB. The proxy runs in a child process
// (the test binary itself, TestHostileProxyProcess), so that its own
// buffers (the 10 MB lines it sends) do not count in that heap.

// hostileProxyEnv names the environment variable that makes
// TestHostileProxyProcess serve a proxy: "upstream seed proto".
const hostileProxyEnv = "MEMDICT_HOSTILE_PROXY"

// TestHostileProxyProcess is not a test of its own: started by
// startHostileProxy in a child process, it serves a hostile proxy (the
// upstream, the seed and the protocol in hostileProxyEnv), prints its
// address and serves until its standard input is closed. Run otherwise, it
// returns at once.
func TestHostileProxyProcess(t *testing.T) {
	spec := os.Getenv(hostileProxyEnv)
	if spec == "" {
		return // not a test of its own: see startHostileProxy
	}
	var upstream, proto string
	var seed uint64
	if _, err := fmt.Sscanf(spec, "%s %d %s", &upstream, &seed, &proto); err != nil {
		t.Fatalf("%s=%q: %v", hostileProxyEnv, spec, err)
	}
	p := hostile.Start(t, upstream, hostile.MemcachedFramer)
	// The first three replies of a connection (its handshake's: mn,
	// stats settings, stats) pass.
	r := hostile.NewRandom(seed, 0.05, 3, hostile.MemcachedKinds...)
	var m hostile.Mutator = r
	if proto == "text" {
		m = hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
			if string(reply) == "MN\r\n" {
				return c.Write([]byte("ERROR\r\n"))
			}
			return r.Mutate(c, reply)
		})
	}
	p.SetMutator(m)
	fmt.Printf("ADDR %s\n", p.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	counts := map[string]int{}
	for _, l := range p.Log() {
		if f := strings.Fields(l); len(f) > 4 {
			counts[f[4]]++
		}
	}
	fmt.Fprintf(os.Stderr, "hostile proxy (seed %d, %s): %d replies mistreated: %v\n", seed, proto, len(p.Log()), counts)
}

// startHostileProxy runs TestHostileProxyProcess in a child process and
// returns the address of its proxy to upstream, stopped when the test ends.
func startHostileProxy(t *testing.T, upstream string, seed uint64, proto string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileProxyProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", hostileProxyEnv, upstream, seed, proto))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// One reader: the address line, then the rest (nothing, normally).
	lines := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
		if !ok {
			t.Fatalf("hostile proxy process: %q, want its address", line)
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("hostile proxy process: no address after 30s")
	}
	return ""
}

// hostileRunTime is how long each seed runs.
const hostileRunTime = 2 * time.Second

// TestHostileServer runs the hostile-server suite: meta protocol with
// seeds 1 to 4, text protocol with seeds 1 and 2.
func TestHostileServer(t *testing.T) {
	mc := testserver.Memcached(t)
	for _, run := range []struct {
		proto string
		seeds []uint64
	}{{"meta", []uint64{1, 2, 3, 4}}, {"text", []uint64{1, 2}}} {
		for _, seed := range run.seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", run.proto, seed), func(t *testing.T) {
				hostileRun(t, mc.Addr, seed, run.proto)
			})
		}
	}
}

// hostileValue is a value of key: it names its key, then n, then padding.
func hostileValue(key string, n int, rnd *rand.Rand) []byte {
	v := fmt.Appendf(nil, "key=%s;n=%d;", key, n)
	return append(v, strings.Repeat("x", rnd.IntN(3000))...)
}

// hostileRun runs one seed.
func hostileRun(t *testing.T, upstream string, seed uint64, proto string) {
	const timeout = 250 * time.Millisecond
	const tolerance = 300 * time.Millisecond // scheduling noise on a loaded machine
	addr := startHostileProxy(t, upstream, seed, proto)
	c, err := memcached.New([]string{addr}, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("hostile:%d:%s:%d", seed, proto, i)
	}

	// The heap, sampled meanwhile, against what it held before.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	var calls, fails, wrong, slow atomic.Int64
	var slowest atomic.Int64
	errKinds := sync.Map{}
	end := time.Now().Add(hostileRunTime)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(g)))
			ctx := context.Background()
			check := func(k string, v []byte) {
				if !strings.HasPrefix(string(v), "key="+k+";") {
					wrong.Add(1)
					t.Errorf("key %q read as %.60q: another key's value", k, v)
				}
			}
			for n := 0; time.Now().Before(end); n++ {
				k := keys[rnd.IntN(len(keys))]
				start := time.Now()
				var err error
				switch op := rnd.IntN(10); {
				case op < 4:
					var it backend.Item
					if it, err = c.Get(ctx, k); err == nil {
						check(k, it.Value)
					}
				case op < 6:
					ks := []string{k, keys[rnd.IntN(len(keys))], keys[rnd.IntN(len(keys))], keys[rnd.IntN(len(keys))]}
					var got map[string]backend.Item
					got, err = c.GetMulti(ctx, ks)
					for gk, it := range got {
						check(gk, it.Value)
					}
				case op < 8:
					err = c.Set(ctx, backend.Item{Key: k, Value: hostileValue(k, n, rnd)})
				case op < 9:
					k2 := keys[rnd.IntN(len(keys))]
					err = c.SetMulti(ctx, []backend.Item{{Key: k, Value: hostileValue(k, n, rnd)}, {Key: k2, Value: hostileValue(k2, n, rnd)}})
				default:
					err = c.Touch(ctx, k, time.Hour)
				}
				d := time.Since(start)
				calls.Add(1)
				for {
					m := slowest.Load()
					if int64(d) <= m || slowest.CompareAndSwap(m, int64(d)) {
						break
					}
				}
				if d > timeout+tolerance {
					slow.Add(1)
					t.Errorf("a call took %v, timeout %v: %v", d, timeout, err)
				}
				if err != nil && !errors.Is(err, backend.ErrNotFound) {
					fails.Add(1)
					kind := "other"
					switch {
					case errors.Is(err, memcached.ErrProtocol):
						kind = "protocol"
					case strings.Contains(err.Error(), "timeout"):
						kind = "timeout"
					case errors.Is(err, backend.ErrUnavailable):
						kind = "unavailable"
					}
					v, _ := errKinds.LoadOrStore(kind, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stopSampling)
	sampler.Wait()
	kinds := map[string]int64{}
	errKinds.Range(func(k, v any) bool {
		kinds[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	growth := int64(peak.Load()) - int64(base)
	t.Logf("%d calls, %d failed %v, %d wrong values, slowest %v; heap grew by %.1f MB at most",
		calls.Load(), fails.Load(), kinds, wrong.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), float64(growth)/(1<<20))
	// The largest value accepted in a reply (max_value_length and the
	// server's item_size_max, 1 MiB each), and a few MB for the calls in
	// flight and the garbage the collector has not taken yet.
	const limit = 1<<20 + 8<<20
	if growth > limit {
		t.Errorf("the heap grew by %d bytes, more than the %d allowed", growth, limit)
	}
	if calls.Load() < 50 {
		t.Errorf("only %d calls in %v", calls.Load(), hostileRunTime)
	}
	if fails.Load() == 0 {
		t.Errorf("no call failed: the proxy did not mistreat anything")
	}
	if got := strconv.Itoa(int(wrong.Load())); got != "0" {
		t.Errorf("%s wrong values", got)
	}
}
