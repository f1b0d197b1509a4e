package redis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// reports collects what a Tracking's function receives.
type reports struct {
	mu   sync.Mutex
	keys []string
	alls int
	ch   chan struct{}
}

func newReports() *reports { return &reports{ch: make(chan struct{}, 1000)} }

func (r *reports) fn(inv backend.Invalidation) {
	r.mu.Lock()
	if inv.All {
		r.alls++
	}
	r.keys = append(r.keys, inv.Keys...)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *reports) snapshot() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...), r.alls
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func trackingServer(t *testing.T, b *Backend, raw goredis.UniversalClient) {
	ctx := context.Background()
	r := newReports()
	tr, err := b.Track(ctx, "near:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitFor(t, "tracking to be live", tr.Live)
	if !tr.Supported() {
		t.Fatal("Supported is false on a real server")
	}
	// A write by another client, inside and outside the prefix.
	if err := raw.Set(ctx, "other:k", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "near:k", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report of near:k", func() bool { ks, _ := r.snapshot(); return len(ks) > 0 })
	if ks, _ := r.snapshot(); len(ks) != 1 || ks[0] != "near:k" {
		t.Fatalf("reported keys %q, want [near:k]", ks)
	}
	// Writes through the Backend itself are reported too (no NOLOOP).
	if err := b.Delete(ctx, "near:k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report of the delete", func() bool { ks, _ := r.snapshot(); return len(ks) == 2 })

	// A second prefix that covers the first sets the connections up anew:
	// a reset, then both live.
	r2 := newReports()
	tr2, err := b.Track(ctx, "ne", r2.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Stop()
	waitFor(t, "the reset", func() bool { _, alls := r.snapshot(); return alls >= 1 })
	waitFor(t, "both live", func() bool { return tr.Live() && tr2.Live() })
	// A disjoint prefix is added on the live connections, without reset.
	r3 := newReports()
	tr3, err := b.Track(ctx, "zz:", r3.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr3.Stop()
	waitFor(t, "the third live", tr3.Live)
	if err := raw.Set(ctx, "zz:1", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report of zz:1", func() bool { ks, _ := r3.snapshot(); return len(ks) == 1 })
	if _, alls := r.snapshot(); alls != 1 {
		t.Fatalf("%d resets, want 1: adding a disjoint prefix reset the others", alls)
	}
}

func TestTrackingServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0")
	raw := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer raw.Close()
	trackingServer(t, b, raw)
}

func TestTrackingCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	b := mustOpen(t, "redis://"+c.Addrs[0]+"?cluster=true")
	raw := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs})
	defer raw.Close()
	trackingServer(t, b, raw)
	// Keys on every master are reported.
	r := newReports()
	tr, err := b.Track(context.Background(), "spread:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitFor(t, "live", tr.Live)
	for i := range 30 {
		if err := raw.Set(context.Background(), "spread:"+strings.Repeat("x", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "30 reports", func() bool { ks, _ := r.snapshot(); return len(ks) == 30 })
}

// TestTrackingLostConnection: a killed tracking connection resets every
// registration, and tracking comes back.
func TestTrackingLostConnection(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0")
	raw := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer raw.Close()
	ctx := context.Background()
	r := newReports()
	tr, err := b.Track(ctx, "lost:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitFor(t, "live", tr.Live)
	testserver.KillRedisClients(t, raw, "memdict-tracking")
	waitFor(t, "the reset", func() bool { _, alls := r.snapshot(); return alls == 1 })
	waitFor(t, "live again", tr.Live)
	if err := raw.Set(ctx, "lost:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a report after reconnecting", func() bool { ks, _ := r.snapshot(); return len(ks) == 1 })
	// FLUSHDB is reported as a reset too.
	if err := raw.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush", func() bool { _, alls := r.snapshot(); return alls == 2 })
}

func TestTrackingClosed(t *testing.T) {
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	b.Close()
	if _, err := b.Track(context.Background(), "p:", func(backend.Invalidation) {}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Track after Close: %v, want ErrClosed", err)
	}
}

func TestMinimalPrefixes(t *testing.T) {
	got := minimal([]string{"b:", "a:x:", "a:", "c", "c:1", "a:"})
	if strings.Join(got, " ") != "a: b: c" {
		t.Fatalf("minimal = %q", got)
	}
}

// TestTrackingTLSAndAuth: the tracking connection dials as the client
// does: over TLS, and with the client's password.
func TestTrackingTLSAndAuth(t *testing.T) {
	t.Parallel()
	t.Run("TLS", func(t *testing.T) {
		p, files := testserver.RedisTLS(t)
		b := mustOpen(t, "rediss://"+p.Addr+"?tls_ca="+files.CAFile)
		trackOne(t, b)
	})
	t.Run("Password", func(t *testing.T) {
		p := testserver.Redis(t, "--requirepass", "s3cret")
		b := mustOpen(t, "redis://:s3cret@"+p.Addr+"/0")
		trackOne(t, b)
	})
}

// trackOne checks that a write through b is reported on its tracking
// connection.
func trackOne(t *testing.T, b *Backend) {
	t.Helper()
	ctx := context.Background()
	r := newReports()
	tr, err := b.Track(ctx, "one:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitFor(t, "tracking to be live", tr.Live)
	if err := b.Set(ctx, backend.Item{Key: "one:k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report", func() bool { ks, _ := r.snapshot(); return len(ks) == 1 && ks[0] == "one:k" })
}
