package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
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
	// a reset, then both live, and the first reset again (set up anew).
	r2 := newReports()
	tr2, err := b.Track(ctx, "ne", r2.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Stop()
	waitFor(t, "the resets", func() bool { _, alls := r.snapshot(); return alls >= 2 })
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
	if _, alls := r.snapshot(); alls != 2 {
		t.Fatalf("%d resets, want 2: adding a disjoint prefix reset the others", alls)
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
	// A reset when the connection is lost, and another once tracking is
	// live again: what changed in between went unreported, though a
	// reader may have read it after the first.
	waitFor(t, "the two resets", func() bool { _, alls := r.snapshot(); return alls == 2 })
	waitFor(t, "live again", tr.Live)
	if err := raw.Set(ctx, "lost:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a report after reconnecting", func() bool { ks, _ := r.snapshot(); return len(ks) == 1 })
	// FLUSHDB is reported as a reset too.
	if err := raw.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush", func() bool { _, alls := r.snapshot(); return alls == 3 })
}

// trackerOf returns b's tracker (made by its first Track), or nil.
func trackerOf(b *Backend) *tracker {
	trackers.mu.Lock()
	defer trackers.mu.Unlock()
	return trackers.m[b]
}

// waitTrackerMet waits until b's tracker has failed with an error that
// says msg: its setup met the server's state the test made.
func waitTrackerMet(t *testing.T, b *Backend, msg string) {
	t.Helper()
	waitFor(t, "the tracker to meet "+msg, func() bool {
		tk := trackerOf(b)
		if tk == nil {
			return false
		}
		err := tk.why()
		return err != nil && strings.Contains(err.Error(), msg)
	})
}

// TestTrackingBusyScriptIsTransient sets tracking up while a Lua script
// runs past the server's busy-reply-threshold: Redis answers CLIENT
// TRACKING (not HELLO, which may run then) with -BUSY. Before, the tracker
// took any error reply to HELLO or CLIENT TRACKING for a server without
// tracking: Supported turned false for the Backend's lifetime, every
// later Track failed with ErrNotSupported, and a near cache never worked
// again. Now -BUSY is transient: tracking is not Live while the script
// runs (a near cache with MaxStale 0 keeps nothing), and Live again once
// it ends.
func TestTrackingBusyScriptIsTransient(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t, "--busy-reply-threshold", "100")
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	admin := rawClient(t, p.Addr)
	busy := goredis.NewClient(&goredis.Options{Addr: p.Addr, ReadTimeout: -1})
	defer busy.Close()
	ctx := context.Background()

	done := make(chan error, 1)
	go func() { done <- busy.Eval(ctx, "while true do end", nil).Err() }()
	scriptRuns := true
	defer func() {
		if scriptRuns { // the test failed: end the script, and its goroutine
			_ = admin.ScriptKill(ctx).Err()
			<-done
		}
	}()
	waitFor(t, "the server to answer -BUSY", func() bool {
		err := admin.Ping(ctx).Err()
		return err != nil && strings.HasPrefix(err.Error(), "BUSY")
	})

	r := newReports()
	tr, err := b.Track(ctx, "busy:", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitTrackerMet(t, b, "BUSY")
	if !tr.Supported() {
		t.Fatalf("-BUSY made tracking unsupported: %v", trackerOf(b).why())
	}
	if tr.Live() {
		t.Fatal("Live while the server answers -BUSY")
	}

	if err := admin.ScriptKill(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT KILL: %v", err)
	}
	<-done
	scriptRuns = false
	waitFor(t, "tracking to be live once the script ended", tr.Live)
	if err := admin.Set(ctx, "busy:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report of busy:k", func() bool { ks, _ := r.snapshot(); return len(ks) == 1 })
	tr2, err := b.Track(ctx, "busy2:", func(backend.Invalidation) {})
	if err != nil {
		t.Fatalf("a new Track after the script: %v", err)
	}
	tr2.Stop()
}

// TestTrackingMaxClientsIsTransient puts a proxy in front of the server
// that answers every new connection as Redis does a connection over its
// maxclients ("-ERR max number of clients reached", then it closes it),
// while tracking is set up. Before, the tracker took the reply for a
// server without tracking and turned tracking off for the Backend's
// lifetime (Supported false, every later Track failing with
// ErrNotSupported) after a brief connection storm. Now it dials again,
// and tracking is Live once connections are accepted.
func TestTrackingMaxClientsIsTransient(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	p := hostile.Start(t, srv.Addr, hostile.RESPFramer)
	var full atomic.Bool
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if c.Replies == 0 && full.Load() {
			err := c.Write([]byte("-ERR max number of clients reached\r\n"))
			c.Close()
			return err
		}
		return c.Write(reply)
	}))
	b := mustOpen(t, "redis://"+p.Addr()+"/0?timeout="+loadedTimeout)
	ctx := context.Background()

	full.Store(true)
	tr, err := b.Track(ctx, "mc:", func(backend.Invalidation) {})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	waitTrackerMet(t, b, "max number of clients reached")
	if !tr.Supported() {
		t.Fatalf("a full server made tracking unsupported: %v", trackerOf(b).why())
	}
	if tr.Live() {
		t.Fatal("Live while every connection is refused")
	}
	full.Store(false)
	waitFor(t, "tracking to be live once connections are accepted", tr.Live)
}

// TestLacksTracking: only the answers of a server that lacks HELLO 3 or
// CLIENT TRACKING (old Redis, miniredis, a server without RESP3) mark
// tracking unsupported; a server's passing state is transient.
func TestLacksTracking(t *testing.T) {
	lacks := []string{
		// Redis 4 and 5: no HELLO.
		"ERR unknown command 'HELLO'",
		"ERR unknown command `HELLO`, with args beginning with: `3`, `SETNAME`, ",
		// Redis 5, and miniredis: no CLIENT TRACKING.
		"ERR Unknown subcommand or wrong number of arguments for 'TRACKING'. Try CLIENT HELP",
		"ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.",
		"ERR unknown subcommand 'tracking'. Try CLIENT HELP.",
		// A server without RESP3.
		"NOPROTO unsupported protocol version",
	}
	transient := []string{
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
		"LOADING Redis is loading the dataset in memory",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
		"ERR max number of clients reached",
		"OOM command not allowed when used memory > 'maxmemory'.",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"CLUSTERDOWN The cluster is down",
		"ERR an error this package does not know",
		"BUSY unknown command",
	}
	for _, msg := range lacks {
		if !lacksTracking(msg) {
			t.Errorf("lacksTracking(%q) = false: a server without tracking would be dialed forever", msg)
		}
	}
	for _, msg := range transient {
		if lacksTracking(msg) {
			t.Errorf("lacksTracking(%q) = true: a passing state would turn tracking off for good", msg)
		}
	}
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

// TestCloseWhileTrackingConnects: Close does not wait for the handshake of
// a tracking connection to a server that does not answer. The handshake
// read went on after Close had stopped the tracker, until its own bound
// (trackTimeout, 3s), however short the Backend's timeout: Close (and a
// Tool's reconfiguration, which closes the previous backend) took 3s.
func TestCloseWhileTrackingConnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	be, err := backend.Open(context.Background(), "redis://"+ln.Addr().String()+"?timeout=200ms")
	if err != nil {
		t.Fatal(err)
	}
	b := be.(*Backend)
	defer b.Close()
	if _, err := b.Track(context.Background(), "p:", func(backend.Invalidation) {}); err != nil {
		t.Fatal(err)
	}
	var nc net.Conn
	select {
	case nc = <-accepted:
	case <-time.After(trackTimeout):
		t.Fatal("the tracker did not connect")
	}
	defer nc.Close()
	// Read the handshake, left unanswered: the tracker now waits for the
	// reply.
	var got []byte
	buf := make([]byte, 512)
	for !strings.Contains(string(got), "TRACKING") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("reading the handshake: %v (read %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	start := time.Now()
	b.Close()
	if d := time.Since(start); d >= trackTimeout/2 {
		t.Errorf("Close while a tracking connection waited for its handshake's reply took %v (the Backend's timeout is 200ms)", d.Round(time.Millisecond))
	}
}
