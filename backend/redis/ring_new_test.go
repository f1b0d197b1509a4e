//go:build unix

package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// TestConformanceRing runs the conformance suite on a Backend that NewRing
// makes on two shards.
func TestConformanceRing(t *testing.T) {
	t.Parallel()
	a, b := testserver.Redis(t), testserver.Redis(t)
	timeout, err := time.ParseDuration(loadedTimeout)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		be, err := NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": a.Addr, "b": b.Addr}},
			WithMaxValueLen(1<<20), WithTimeout(timeout))
		if err != nil {
			t.Fatal(err)
		}
		return be
	}, conformanceOptions(nil))
}

// TestNewRingErrors: NewRing refuses options it cannot make a Ring of,
// naming what is wrong.
func TestNewRingErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  *goredis.RingOptions
		want string
	}{
		{"nil", nil, "nil options"},
		{"no shards", &goredis.RingOptions{}, "no shards"},
		{"empty address", &goredis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": ""}}, `shard "b" has no address`},
		{"one address twice", &goredis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": "127.0.0.1:1"}},
			`shards "a" and "b" are both at 127.0.0.1:1`},
	} {
		b, err := NewRing(c.opt)
		if err == nil {
			b.Close()
			t.Errorf("NewRing(%s): no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRing(%s): %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestNewRingHeartbeatBounded: NewRing's heartbeat PINGs each shard within
// the timeout, so that the Ring marks a shard that hangs down within a
// few heartbeats (three failed PINGs). go-redis's own heartbeat PINGs
// without a deadline, bounded by ReadTimeout (3s by default): the Ring
// kept the hung shard's keys on it for 9s and more, and checked the other
// shards only every 3s.
func TestNewRingHeartbeatBounded(t *testing.T) {
	t.Parallel()
	a, bsrv := testserver.Redis(t), testserver.Redis(t)
	p := hostile.Start(t, bsrv.Addr, hostile.RESPFramer)
	b, err := NewRing(&goredis.RingOptions{
		Addrs:              map[string]string{"a": a.Addr, "b": p.Addr()},
		HeartbeatFrequency: 20 * time.Millisecond,
	}, WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ring := b.Client().(*goredis.Ring)
	waitRingShard(t, ring, p.Addr(), true)
	p.Hold() // the shard hangs: nothing reaches it
	t.Cleanup(p.Heal)
	start := time.Now()
	waitRingShard(t, ring, p.Addr(), false) // fails after 5s
	t.Logf("the hung shard marked down after %v", time.Since(start).Round(time.Millisecond))
}

// TestRingURL: ring=true makes the hosts a Ring's shards, each named by its
// address (port 6379 by default), with the URL's credentials, database,
// go-redis parameters and TLS (each shard's host verified) on every shard;
// ParseURL refuses it (its options would make go-redis a cluster client)
// and ParseRingURL refuses a URL without it; ring=true with cluster=true or
// sentinel_master, and a host given twice, are errors; Validate, as the
// Tool checks a configuration, agrees.
func TestRingURL(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://u:pw@h1,h2:7001,h3:7002/2?ring=true&pool_size=3&dial_timeout=200ms&max_value_length=100": "",
		"redis://h1?ring=1": "",
		"rediss://h1:6380,h2:6381/0?ring=true&tls_insecure_skip_verify=true": "",
		"redis://h1,h2?ring=true&cluster=true":                               "ring=true with cluster=true",
		"redis://h1,h2?ring=true&sentinel_master=m":                          "ring=true with sentinel_master",
		"redis://u:pw@h1,h1:6379?ring=true":                                  "host h1:6379 given twice",
		"redis://h1,h2?ring=maybe":                                           "ring",
		"redis://h1,h2":                                                      "or a Ring's shards and need ring=true",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		ro, opts, err := ParseRingURL(u)
		verr := backend.Validate(raw)
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) || verr == nil || !strings.Contains(verr.Error(), want) {
				t.Errorf("ParseRingURL(%q) = %v, Validate = %v, want errors containing %q", u.Redacted(), err, verr, want)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("the error shows the password: %v", err)
			}
			continue
		}
		if err != nil || verr != nil {
			t.Errorf("ParseRingURL(%q): %v, Validate: %v", u.Redacted(), err, verr)
			continue
		}
		if _, _, err := ParseURL(u); err == nil || !strings.Contains(err.Error(), "use ParseRingURL") {
			t.Errorf("ParseURL(%q) = %v, want an error saying to use ParseRingURL", u.Redacted(), err)
		}
		var names []string
		for name, addr := range ro.Addrs {
			if name != addr {
				t.Errorf("ParseRingURL(%q): shard %q at %q, want it named by its address", u.Redacted(), name, addr)
			}
			names = append(names, name)
		}
		slices.Sort(names)
		got := strings.Join(names, ",")
		if ro.TLSConfig != nil && ro.TLSConfig.ServerName != "" {
			t.Errorf("ParseRingURL(%q): TLS server name %q for every shard, want each its host", u.Redacted(), ro.TLSConfig.ServerName)
		}
		switch raw {
		case "redis://h1?ring=1":
			eq(t, got, "h1:6379")
		case "rediss://h1:6380,h2:6381/0?ring=true&tls_insecure_skip_verify=true":
			eq(t, got, "h1:6380,h2:6381")
			eq(t, ro.TLSConfig != nil && ro.TLSConfig.InsecureSkipVerify, true)
		default:
			eq(t, got, "h1:6379,h2:7001,h3:7002")
			eq(t, ro.Username+"/"+ro.Password, "u/pw")
			eq(t, ro.DB, 2)
			eq(t, ro.PoolSize, 3)
			eq(t, ro.DialTimeout, 200*time.Millisecond)
			eq(t, newConfig(opts).maxValueSize, 100)
		}
	}
	if _, _, err := ParseRingURL(&url.URL{Scheme: "redis", Host: "h"}); err == nil || !strings.Contains(err.Error(), "use ParseURL") {
		t.Errorf("ParseRingURL of a URL without ring=true: %v, want an error saying to use ParseURL", err)
	}
}

// TestRingURLOpen: backend.Open of a ring=true URL makes the Backend NewRing
// makes (per-shard lanes, guarded connections): its keys are spread over
// the shards, one per shard in Describe, and a shard announcing a value
// over max_value_length fails a Get with a protocol error, allocating
// little.
func TestRingURLOpen(t *testing.T) {
	a := testserver.Redis(t)
	bsrv := testserver.Redis(t)
	p := hostile.Start(t, bsrv.Addr, hostile.RESPFramer)
	be, err := backend.Open(context.Background(), "redis://"+a.Addr+","+p.Addr()+"/0?ring=true&timeout=2s&max_value_length=1048576")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	b, ok := be.(*Backend)
	if !ok || b.ring == nil || !b.owns {
		t.Fatalf("backend.Open of a ring URL: %T (ring %v), want a *Backend on a Ring it owns", be, ok && b.ring != nil)
	}
	ctx := context.Background()
	shards := map[string]bool{}
	for i := range 40 {
		k := fmt.Sprintf("k:%d", i)
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		c, err := b.ring.GetShardClientForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		shards[c.Options().Addr] = true
	}
	if !shards[a.Addr] || !shards[p.Addr()] {
		t.Errorf("40 keys on shards %v, want both %s and %s", shards, a.Addr, p.Addr())
	}
	if d := b.Describe(); len(d.Servers) != 2 {
		t.Errorf("Describe: %+v, want one server per shard", d.Servers)
	}
	comeBackHostile(p)
	key := keyOff(t, b, "k:", a.Addr)
	took, alloc, err := measuredGet(b, key)
	if !errors.Is(err, ErrProtocol) || took > time.Second || alloc > 16<<20 {
		t.Errorf("get on a shard announcing a %d MiB value: %v after %v, %d KiB allocated; want a protocol error at once",
			hugeBulk>>20, err, took, alloc>>10)
	}
}
