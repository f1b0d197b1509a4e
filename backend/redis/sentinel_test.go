package redis

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// sentinelURL is the URL of the master name through s's sentinels, with
// params.
func sentinelURL(s *testserver.RedisSentinelNodes, params string) string {
	return "redis://" + strings.Join(s.SentinelAddrs, ",") + "/0?sentinel_master=" + s.Name + params
}

// TestSentinelURL: sentinel_master makes the hosts sentinels (26379 by
// default, several allowed); it cannot be combined with cluster=true, and
// sentinel_password needs it.
func TestSentinelURL(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://s1,s2,s3:26380/2?sentinel_master=mymaster&sentinel_password=pw&sentinel_username=su": "",
		"redis://u:p@s1/0?sentinel_master=m":                               "",
		"rediss://s1,s2/0?sentinel_master=m&tls_insecure_skip_verify=true": "",
		"redis://s1,s2/0?sentinel_master=m&cluster=true":                   "sentinel_master with cluster=true",
		"redis://h/0?sentinel_password=pw":                                 "without sentinel_master",
		"redis://h1,h2/0":                                                  "need sentinel_master=NAME",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		uo, _, err := ParseURL(u)
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseURL(%q) = %v, want an error containing %q", raw, err, want)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("the error shows the password: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", raw, err)
			continue
		}
		if uo.MasterName == "" || uo.IsClusterMode {
			t.Errorf("ParseURL(%q): master %q, cluster %v", raw, uo.MasterName, uo.IsClusterMode)
		}
		for _, a := range uo.Addrs {
			if strings.HasPrefix(a, "s1:") && a != "s1:26379" {
				t.Errorf("ParseURL(%q): sentinel address %q, want the port 26379", raw, a)
			}
		}
		if strings.Contains(raw, "rediss") && uo.TLSConfig.ServerName != "" {
			t.Errorf("ParseURL(%q): TLS server name %q for every connection, want each its host", raw, uo.TLSConfig.ServerName)
		}
	}
	if got := backend.Redact("redis://s1/0?sentinel_master=m&sentinel_password=s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("Redact shows the sentinel password: %s", got)
	}
}

// TestConformanceSentinel runs the conformance suite through sentinels.
func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	s := testserver.RedisSentinel(t, "conformance", 1, 2, nil, nil)
	backendtest.Run(t, opener(sentinelURL(s, "&max_value_size=1048576&timeout="+loadedTimeout)), conformanceOptions(nil))
}

// TestSentinelPassword: a master with a password behind sentinels with
// their own (requirepass): the URL gives both, and works; a wrong sentinel
// password fails the calls with an error that does not show it.
func TestSentinelPassword(t *testing.T) {
	t.Parallel()
	s := testserver.RedisSentinel(t, "auth", 1, 2,
		[]string{"--requirepass", "masterpw", "--masterauth", "masterpw"},
		[]string{"sentinel auth-pass auth masterpw", "requirepass sentinelpw"})
	ctx := context.Background()
	u := "redis://:masterpw@" + strings.Join(s.SentinelAddrs, ",") + "/0?sentinel_master=auth&sentinel_password=sentinelpw&timeout=" + loadedTimeout
	b := mustOpen(t, u)
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := b.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %q, %v", it.Value, err)
	}
	// Describe names the master by its name, not go-redis's placeholder
	// address of a failover client.
	if d := backend.Describe(backend.Wrap(b)); d.System != "redis" || len(d.Servers) != 1 || d.Servers[0].Addr != "master auth (sentinel)" || d.Servers[0].Open < 1 {
		t.Errorf("Describe = %+v, want the server named master auth (sentinel) with a connection", d)
	}
	bad := mustOpen(t, strings.NewReplacer("sentinelpw", "wrongpw", "timeout="+loadedTimeout, "timeout=1s").Replace(u))
	err := bad.Set(ctx, backend.Item{Key: "k", Value: []byte("v")})
	if err == nil {
		t.Fatal("Set with a wrong sentinel password succeeded")
	}
	if strings.Contains(err.Error(), "wrongpw") || strings.Contains(err.Error(), "masterpw") {
		t.Errorf("the error shows a password: %v", err)
	}
}

// TestSentinelFailover kills the master (SIGKILL) under load, over a
// master, a replica and three sentinels (down-after-milliseconds 1000,
// failover-timeout 3000). A writer stores an increasing number every
// 10ms; two readers with near caches read it: one in the writer's
// process (on its Backend: the writer's writes drop the key from its near
// cache at once), one as another process would (on a Backend of its own:
// only the server's reports, on its tracking connection, drop it).
//
// Every call ends within its timeout; the longest run of failed writes
// is under 8s; writes succeed again within a second of the promotion
// (with a tolerance for a loaded machine), and go on succeeding. No read
// of the first reader returns a value older than one the new master
// acknowledged before the read began; none of the second older than one
// it acknowledged trackDelay before (the time a report takes to arrive,
// on any server, failover or not). And the second reader's tracking moves
// to the new master: its near cache serves again, and sees the writer's
// next write.
func TestSentinelFailover(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := testserver.RedisSentinel(t, "failover", 1, 3, nil, nil)
	u := sentinelURL(s, "&timeout=500ms&retry_interval=5s") // a probe every 5s would come too late: the sentinels are asked
	const trackDelay = 250 * time.Millisecond
	wb, rb := mustOpen(t, u), mustOpen(t, u)
	near := memdict.WithNearCache(memdict.NearCache{})
	w, err := memdict.New[int](wb, "fo", near)
	if err != nil {
		t.Fatal(err)
	}
	local, err := memdict.New[int](wb, "fo", near)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := memdict.New[int](rb, "fo", near)
	if err != nil {
		t.Fatal(err)
	}
	readers := []*memdict.Dict[int]{local, remote}
	allowance := []time.Duration{0, trackDelay}
	ctx := context.Background()
	if err := w.Store(ctx, "k", 0); err != nil {
		t.Fatal(err)
	}
	waitNear(t, local, "k", 0)
	waitNear(t, remote, "k", 0)

	type ack struct {
		v  int
		at time.Time
	}
	type read struct {
		v, reader int
		start     time.Time
	}
	var (
		mu          sync.Mutex
		acks        []ack
		reads       []read
		slow        []string
		runStart    time.Time // of the current run of failed writes
		longestRun  time.Duration
		lastErr     error
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		killedAt    time.Time
		readsFailed int
	)
	wg.Add(2)
	go func() { // the writer
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for v := 1; ; v++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			err := w.Store(ctx, "k", v)
			now := time.Now()
			mu.Lock()
			if d := now.Sub(start); d > timeout+300*time.Millisecond {
				slow = append(slow, "write: "+d.String())
			}
			if err != nil {
				lastErr = err
				if runStart.IsZero() {
					runStart = start
				}
				longestRun = max(longestRun, now.Sub(runStart))
			} else {
				runStart = time.Time{}
				acks = append(acks, ack{v, now})
			}
			mu.Unlock()
		}
	}()
	go func() { // the readers, in turn
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			v, ok, err := readers[i%2].Lookup(ctx, "k")
			d := time.Since(start)
			mu.Lock()
			if d > timeout+300*time.Millisecond {
				slow = append(slow, "read: "+d.String())
			}
			if err == nil && ok {
				reads = append(reads, read{v, i % 2, start})
			} else {
				readsFailed++
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	oldMaster := s.Master.Addr
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	s.Master.Stop(t)
	var promotedAt time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		if a, err := s.MasterAddr(); err == nil && a != oldMaster {
			promotedAt = time.Now()
			t.Logf("master %s killed; sentinels named %s after %v", oldMaster, a, promotedAt.Sub(killedAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica promoted 30s after the master was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Run on for two seconds after the promotion.
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes acknowledged, longest run of failed writes %v (last error: %v); %d reads, %d failed or missed",
		len(acks), longestRun.Round(time.Millisecond), lastErr, len(reads), readsFailed)
	if len(slow) > 0 {
		t.Errorf("%d calls took longer than the timeout %v (+300ms): %v", len(slow), timeout, slow[:min(5, len(slow))])
	}
	if longestRun >= 8*time.Second {
		t.Errorf("longest run of failed writes %v, want under 8s", longestRun)
	}
	var firstAfter time.Time
	for _, a := range acks {
		if a.at.After(promotedAt) {
			firstAfter = a.at
			break
		}
	}
	switch {
	case firstAfter.IsZero():
		t.Fatal("no write succeeded after the promotion")
	case firstAfter.Sub(promotedAt) > time.Second+500*time.Millisecond:
		t.Errorf("first write %v after the promotion, want within 1s (+500ms for a loaded machine)", firstAfter.Sub(promotedAt))
	default:
		t.Logf("first write %v after the sentinels named the new master", firstAfter.Sub(promotedAt).Round(time.Millisecond))
	}
	if n := len(acks); n == 0 || time.Since(acks[n-1].at) > time.Second {
		t.Errorf("writes do not go on succeeding after the failover")
	}
	// Reads against the new master's acknowledgements (every write
	// acknowledged after the kill was).
	older := 0
	for _, rd := range reads {
		best := -1 // the newest value acknowledged by the new master in time
		for _, a := range acks {
			if a.at.After(killedAt) && !a.at.After(rd.start.Add(-allowance[rd.reader])) {
				best = a.v
			}
		}
		if rd.v < best {
			if older < 5 {
				t.Errorf("reader %d: a read begun %v after the kill returned %d, older than %d, acknowledged by the new master %v before it",
					rd.reader, rd.start.Sub(killedAt), rd.v, best, allowance[rd.reader])
			}
			older++
		}
	}
	if older > 0 {
		t.Errorf("%d reads older than a value the new master had acknowledged", older)
	}
	// The other process's tracking is on the new master: its near cache
	// serves, and sees the next write.
	if err := w.Store(ctx, "k", -1); err != nil {
		t.Fatal(err)
	}
	waitNear(t, remote, "k", -1)
}

// waitNear reads k with d until it reads want from the near cache,
// failing t after 10s.
func waitNear(t *testing.T, d *memdict.Dict[int], k string, want int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hits := d.Stats().NearCache.Hits
		v, ok, err := d.Lookup(ctx, k)
		if err == nil && ok && v == want && d.Stats().NearCache.Hits > hits {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not read as %d from the near cache within 10s: %d, %v, %v", k, want, v, ok, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
