package memdict_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// nearCacheCoherenceBound is the bound the coherence test asserts on how
// long a near-cached Dict over Redis serves a value after another process
// overwrote it, on loopback: from the moment the writer's SET has returned
// to the moment a Get in this process returns the new value. The test logs
// the measured distribution; on a 2-core machine loaded by other work the
// median is under a millisecond, the 99th percentile a few milliseconds,
// and rare outliers reach tens of milliseconds when the OS does not
// schedule the reading goroutine or the server, so the asserted bound
// leaves room for those. Under -race on such a machine one trial in a
// thousand was seen to reach 130-280 ms, the test process not being
// scheduled: nearCacheCoherenceOutliers of the trials may pass the bound
// (each must still see the write within a second).
const nearCacheCoherenceBound = 100 * time.Millisecond

// nearCacheCoherenceOutliers is how many of the 1000 trials may see the
// write later than nearCacheCoherenceBound: 2, the 99.8th percentile.
const nearCacheCoherenceOutliers = 2

// writerEnv makes the test binary a writer process for the coherence test.
const writerEnv = "MEMDICT_NEAR_WRITER_URL"

// openURL opens the backend at url, closed when the test ends.
func openURL(t *testing.T, url string) backend.Backend {
	t.Helper()
	be, err := backend.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// waitNearHit reads "k" with d until the near cache serves one more hit,
// for 10s at most.
func waitNearHit[V any](t *testing.T, d *memdict.Dict[V], what string) {
	t.Helper()
	hits := d.Stats().NearCache.Hits
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().NearCache.Hits == hits {
		if time.Now().After(deadline) {
			t.Fatalf("no near-cache hit %s", what)
		}
		d.Get("k")
		time.Sleep(time.Millisecond)
	}
}

// TestNearCacheWriterProcess is the second process of
// TestNearCacheCoherenceRedis: it reads numbers on stdin, Puts each under
// key "k" with a plain Dict, and answers "ok" once the write returned.
func TestNearCacheWriterProcess(t *testing.T) {
	url := os.Getenv(writerEnv)
	if url == "" {
		t.Skip("run by TestNearCacheCoherenceRedis as its writer process")
	}
	be := openURL(t, url)
	d := newDict[int](t, be, "coherence", memdict.WithGenerationRefresh(-1))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, err := strconv.Atoi(in.Text())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Put("k", n); err != nil {
			t.Fatal(err)
		}
		fmt.Println("ok")
	}
}

// nearCacheCoherenceP99 is the bound the coherence tests assert on the
// 99th percentile of the same delay.
const nearCacheCoherenceP99 = 10 * time.Millisecond

// TestNearCacheCoherenceRedis: a second process overwrites a key 1000
// times; each time, this process's near-cached Dict returns the new value
// within a second, within nearCacheCoherenceBound of the write in all but
// nearCacheCoherenceOutliers of the 1000 trials, and
// within nearCacheCoherenceP99 in 99% of them.
func TestNearCacheCoherenceRedis(t *testing.T) {
	p := testserver.Redis(t)
	url := "redis://" + p.Addr + "/0"
	be := openURL(t, url)
	d := newDict[int](t, be, "coherence", memdict.WithNearCache(memdict.NearCache{}), memdict.WithGenerationRefresh(-1))
	checkCoherence(t, d, url)
}

// TestNearCacheCoherenceRedisThroughTool: the same through a Tool's Dict
// (tool.Dict, with the near cache as a per-Dict option), whose plugin is
// then moved by SetPlugin to a second Redis: the near cache's tracking
// follows, with the same bounds.
func TestNearCacheCoherenceRedisThroughTool(t *testing.T) {
	urlA := "redis://" + testserver.Redis(t).Addr + "/0"
	urlB := "redis://" + testserver.Redis(t).Addr + "/0"
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{"near": tool.DefaultPluginConfig(urlA)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	d, err := tool.Dict[int](tl, "coherence", "near", memdict.WithNearCache(memdict.NearCache{}), memdict.WithGenerationRefresh(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("first", func(t *testing.T) { checkCoherence(t, d, urlA) })
	if err := tl.SetPlugin(t.Context(), "near", tool.DefaultPluginConfig(urlB)); err != nil {
		t.Fatal(err)
	}
	t.Run("after SetPlugin", func(t *testing.T) { checkCoherence(t, d, urlB) })
}

// checkCoherence starts a writer process on url (TestNearCacheWriterProcess)
// that overwrites "k" under prefix "coherence" 1000 times, and checks that
// d, near-cached, sees each write within the bounds.
func checkCoherence(t *testing.T, d *memdict.Dict[int], url string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNearCacheWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerEnv+"="+url)
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
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	write := func(n int) {
		t.Helper()
		if _, err := io.WriteString(stdin, strconv.Itoa(n)+"\n"); err != nil {
			t.Fatal(err)
		}
		for out.Scan() {
			if out.Text() == "ok" {
				return
			}
		}
		t.Fatalf("writer process: %v", out.Err())
	}

	// Warm up: the value is near-cached once tracking is live.
	write(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := d.Get("k"); v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer's first value not seen in 10s")
		}
		time.Sleep(time.Millisecond)
	}
	waitNearHit(t, d, "at all: tracking not live?")

	const trials = 1000
	lat := make([]time.Duration, 0, trials)
	invBefore := d.Stats().NearCache.Invalidations
	for i := 1; i <= trials; i++ {
		// The old value is in the near cache: a Get is answered by it.
		// (A read that raced with the previous trial's report is not
		// kept, so it may take a second read.)
		hits := d.Stats().NearCache.Hits
		for deadline := time.Now().Add(10 * time.Second); d.Stats().NearCache.Hits == hits; {
			if v, ok := d.Get("k"); !ok || v != i-1 {
				t.Fatalf("trial %d: before the write Get = %d, %v", i, v, ok)
			}
			if time.Now().After(deadline) {
				t.Fatalf("trial %d: the old value is not near-cached", i)
			}
		}
		write(i)
		t0 := time.Now()
		for {
			v, _ := d.Get("k")
			if v == i {
				break
			}
			if time.Since(t0) > time.Second {
				t.Fatalf("trial %d: the new value not seen after 1s (Get = %d)", i, v)
			}
			// A short sleep, not runtime.Gosched: a goroutine that
			// never blocks keeps a single P (GOMAXPROCS=1) from polling
			// the network, so the server's report would wait for the
			// runtime's monitor (about 10 ms) to be read.
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	// The last report's count may be added just after its entry was
	// dropped (and the new value seen): wait for it, within a bound.
	st := d.Stats().NearCache
	for deadline := time.Now().Add(10 * time.Second); st.Invalidations-invBefore < trials && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		st = d.Stats().NearCache
	}
	if st.Invalidations-invBefore < trials {
		t.Fatalf("near %+v: fewer than %d invalidations of a cached value", st, trials)
	}
	slices.Sort(lat)
	p99 := lat[trials*99/100]
	t.Logf("coherence over %d trials: p50 %v, p99 %v, p99.9 %v, max %v; near %+v",
		trials, lat[trials/2], p99, lat[trials*999/1000], lat[trials-1], st)
	over := 0
	for _, l := range lat {
		if l > nearCacheCoherenceBound {
			over++
		}
	}
	if over > nearCacheCoherenceOutliers {
		t.Fatalf("%d of %d trials saw the write later than %v (at most %d may; max %v)",
			over, trials, nearCacheCoherenceBound, nearCacheCoherenceOutliers, lat[trials-1])
	}
	if p99 > nearCacheCoherenceP99 {
		t.Fatalf("the 99th percentile %v is over %v", p99, nearCacheCoherenceP99)
	}
}

// TestNearCacheRedisReconnect: losing the tracking connection empties the
// near cache (a write made meanwhile is not missed), and the near cache
// fills again once tracking is back.
func TestNearCacheRedisReconnect(t *testing.T) {
	p := testserver.Redis(t)
	url := "redis://" + p.Addr + "/0"
	be := openURL(t, url)
	d := newDict[string](t, be, "reconnect", memdict.WithNearCache(memdict.NearCache{}))
	writer := newDict[string](t, openURL(t, url), "reconnect") // as another process
	raw := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer raw.Close()

	_ = writer.Put("k", "v1")
	waitNearHit(t, d, "before the outage")

	// Kill the tracking connection: the near cache is emptied.
	testserver.KillRedisClients(t, raw, "memdict-tracking")
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().NearCache.Resets == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the near cache was not reset after the tracking connection was killed")
		}
		time.Sleep(time.Millisecond)
	}
	// A write during or after the outage is seen.
	_ = writer.Put("k", "v2")
	deadline = time.Now().Add(10 * time.Second)
	for {
		if v, _ := d.Get("k"); v == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write made around the outage was never seen")
		}
		time.Sleep(time.Millisecond)
	}
	waitNearHit(t, d, "after tracking came back")
	if v, _ := d.Get("k"); v != "v2" {
		t.Fatalf("after reconnecting Get = %q, want v2", v)
	}
}

// TestNearCacheRedisClearElsewhere: over Redis, a Clear made by another
// client is seen at once, through the tracked generation key, not at the
// next GenerationRefresh (an hour here).
func TestNearCacheRedisClearElsewhere(t *testing.T) {
	p := testserver.Redis(t)
	url := "redis://" + p.Addr + "/0"
	d := newDict[string](t, openURL(t, url), "cleared", memdict.WithNearCache(memdict.NearCache{}), memdict.WithGenerationRefresh(time.Hour))
	other := newDict[string](t, openURL(t, url), "cleared", memdict.WithGenerationRefresh(time.Hour))
	_ = other.Put("k", "v")
	waitNearHit(t, d, "before the Clear")
	if err := other.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := d.Get("k"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a Clear by another client not seen in 10s (GenerationRefresh is an hour)")
		}
		time.Sleep(time.Millisecond)
	}
}
