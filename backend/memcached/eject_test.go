package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// ejectClient starts three memcached and a Client over them with
// auto-eject, and stores nkeys keys ("key-<i>" = "v1-<i>").
func ejectClient(t *testing.T, nkeys int, opts ...memcached.Option) ([]*testserver.Process, *memcached.Client, []string) {
	t.Helper()
	procs, addrs := startMemcacheds(t, 3)
	opts = append([]memcached.Option{memcached.WithTimeout(500 * time.Millisecond),
		memcached.WithRetryInterval(200 * time.Millisecond), memcached.WithFailureLimit(3),
		memcached.WithAutoEject(true)}, opts...)
	c, err := memcached.New(addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	keys := make([]string, nkeys)
	items := make([]backend.Item, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		items[i] = backend.Item{Key: keys[i], Value: fmt.Appendf(nil, "v1-%d", i)}
	}
	if err := c.SetMulti(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	return procs, c, keys
}

// markDown makes calls on keys of victim until the Client has ejected it
// (ServerFor no longer names it), within 10s.
func markDown(t *testing.T, c *memcached.Client, victim string, keys []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.ServerFor(keys[0]) == victim {
		if time.Now().After(deadline) {
			t.Fatalf("%s not ejected after 10s", victim)
		}
		var wg sync.WaitGroup
		for _, k := range keys[:3] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = c.Get(context.Background(), k)
			}()
		}
		wg.Wait()
	}
}

// waitBack waits, up to 10s, until the Client has put victim back in the
// ring.
func waitBack(t *testing.T, c *memcached.Client, victim, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.ServerFor(key) != victim {
		if time.Now().After(deadline) {
			t.Fatalf("%s not back in the ring after 10s", victim)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rewriteAndRead stores "v2-<i>" under every key and reads them all back;
// it returns how many read back as v2.
func rewriteAndRead(t *testing.T, c *memcached.Client, keys []string) int {
	t.Helper()
	ctx := context.Background()
	for i, k := range keys {
		if err := c.Set(ctx, backend.Item{Key: k, Value: fmt.Appendf(nil, "v2-%d", i)}); err != nil {
			t.Errorf("Set %s with its server ejected: %v", k, err)
		}
	}
	hits := 0
	for i, k := range keys {
		if it, err := c.Get(ctx, k); err == nil && string(it.Value) == fmt.Sprintf("v2-%d", i) {
			hits++
		}
	}
	return hits
}

// checkNoStale reads every key and fails t for any that reads "v1-...",
// the value written before the server left; it returns the hits.
func checkNoStale(t *testing.T, c *memcached.Client, keys []string) int {
	t.Helper()
	hits := 0
	for _, k := range keys {
		it, err := c.Get(context.Background(), k)
		switch {
		case err == nil && strings.HasPrefix(string(it.Value), "v1-"):
			t.Errorf("%s on %s reads %q, the value written before its server left", k, c.ServerFor(k), it.Value)
		case err == nil:
			hits++
		case !errors.Is(err, backend.ErrNotFound):
			t.Errorf("Get %s after the server came back: %v", k, err)
		}
	}
	return hits
}

// TestAutoEjectStopped: one of three servers is frozen (SIGSTOP), so that
// it comes back with the values it held. Once it is marked down and
// ejected, rewritten keys read back (at least 99%, all of them here);
// after SIGCONT it is put back, and no key reads the value it held from
// before (it was flushed).
func TestAutoEjectStopped(t *testing.T) {
	procs, c, keys := ejectClient(t, 3000)
	victim := procs[1].Addr
	onVictim := keysOn(c, victim, 50)
	if err := procs[1].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer procs[1].Signal(syscall.SIGCONT)
	waitStopped(t, procs[1].Pid())
	markDown(t, c, victim, onVictim)
	hits := rewriteAndRead(t, c, keys)
	t.Logf("server ejected: %d of %d rewritten keys read back", hits, len(keys))
	if hits*100 < len(keys)*99 {
		t.Errorf("%d of %d rewritten keys read back with a server ejected, want at least 99%%", hits, len(keys))
	}
	if err := procs[1].Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitBack(t, c, victim, onVictim[0])
	hits = checkNoStale(t, c, keys)
	// The victim's keys were flushed; the others' read v2.
	if want := len(keys) - len(keysIn(c, victim, keys)); hits != want {
		t.Errorf("%d hits after the server came back, want %d (every key of the others)", hits, want)
	}
	// And it is used again.
	setValue(t, c, onVictim[0], "v3", 0)
	if got := rawCommand(t, victim, "mg "+onVictim[0]+" v q\r\nmn\r\n", "MN\r\n"); got != "VA 2\r\nv3\r\nMN\r\n" {
		t.Errorf("the write after the return did not reach %s: %q", victim, got)
	}
}

// keysIn returns the keys of keys that c places on addr.
func keysIn(c *memcached.Client, addr string, keys []string) []string {
	var out []string
	for _, k := range keys {
		if c.ServerFor(k) == addr {
			out = append(out, k)
		}
	}
	return out
}

// TestAutoEjectKilled: one of three servers is killed (SIGKILL): once it
// is ejected, rewritten keys read back; restarted, it is put back, and
// its keys are stored on it again.
func TestAutoEjectKilled(t *testing.T) {
	procs, c, keys := ejectClient(t, 3000)
	victim := procs[2].Addr
	onVictim := keysOn(c, victim, 50)
	procs[2].Stop(t)
	markDown(t, c, victim, onVictim)
	hits := rewriteAndRead(t, c, keys)
	t.Logf("server ejected: %d of %d rewritten keys read back", hits, len(keys))
	if hits*100 < len(keys)*99 {
		t.Errorf("%d of %d rewritten keys read back with a server ejected, want at least 99%%", hits, len(keys))
	}
	procs[2].Restart(t)
	waitBack(t, c, victim, onVictim[0])
	checkNoStale(t, c, keys)
	setValue(t, c, onVictim[0], "v3", 0)
	wantValue(t, c, onVictim[0], "v3", "a key of the restarted server")
}

// TestAutoEjectStandInTTL: while a server is ejected, a write of one of
// its keys gets at most auto_eject_ttl on the stand-in server, whatever
// TTL it asked; once the server is back it is not ejected again before
// auto_eject_ttl has passed (its keys fail fast meanwhile), then it is.
func TestAutoEjectStandInTTL(t *testing.T) {
	const ejectTTL = 3 * time.Second
	procs, c, _ := ejectClient(t, 10, memcached.WithAutoEjectTTL(ejectTTL))
	victim := procs[0].Addr
	onVictim := keysOn(c, victim, 50)
	procs[0].Stop(t)
	markDown(t, c, victim, onVictim)
	ctx := context.Background()
	k := onVictim[0]
	for _, ttl := range []time.Duration{0, time.Hour, time.Second} {
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("x"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		exp := metadumpExp(t, c.ServerFor(k), k)
		left := time.Until(time.Unix(exp, 0))
		want := min(ttl, ejectTTL)
		if ttl == 0 {
			want = ejectTTL
		}
		if exp <= 0 || left > want+time.Second {
			t.Errorf("TTL %v on the stand-in %s: expires in %v (exp=%d), want at most %v", ttl, c.ServerFor(k), left, exp, want)
		}
	}
	procs[0].Restart(t)
	waitBack(t, c, victim, k)
	back := time.Now()
	procs[0].Stop(t)
	// Marked down again at once, but not ejected before ejectTTL.
	for time.Since(back) < ejectTTL-time.Second {
		_, err := c.Get(ctx, k)
		if c.ServerFor(k) != victim {
			t.Fatalf("ejected again %v after it came back, before auto_eject_ttl %v", time.Since(back), ejectTTL)
		}
		if err == nil || !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Get of a key of the stopped server: %v, want unavailable", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	markDown(t, c, victim, onVictim)
	// back is taken up to one poll of waitBack after the return.
	if d := time.Since(back); d < ejectTTL-100*time.Millisecond {
		t.Errorf("ejected again %v after it came back, before auto_eject_ttl %v", d, ejectTTL)
	}
}

// TestAutoEjectStandInRace: a write is a stand-in's by the server it goes
// to, not by the ring when its TTL is computed. A Set (or SetMulti) of a
// key of the ejected server A goes to its stand-in B, and waits there for
// B's first connection; A is put back meanwhile. The value written on B
// still gets at most auto_eject_ttl: it used to get its full TTL (here
// none), since the ring then had nothing ejected, and stayed on B for
// good, to be served again the next time A is ejected.
func TestAutoEjectStandInRace(t *testing.T) {
	b := testserver.Memcached(t)
	for _, op := range []string{"Set", "SetMulti"} {
		t.Run(op, func(t *testing.T) {
			// A: a port with nothing behind it for now.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			aAddr := ln.Addr().String()
			ln.Close()

			var hold atomic.Bool
			var c *memcached.Client
			var key string
			hook := func(where string) {
				if where == "dial" && hold.Load() {
					// B's first connection: held until A is back
					// (bounded: the test fails below if A is not).
					deadline := time.Now().Add(4 * time.Second)
					for c.ServerFor(key) != aAddr && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
				}
			}
			c, err = memcached.New([]string{aAddr, b.Addr}, memcached.WithAutoEject(true),
				memcached.WithFailureLimit(1), memcached.WithRetryInterval(50*time.Millisecond),
				memcached.WithAutoEjectTTL(time.Minute), memcached.WithTimeout(testTimeout),
				memcached.WithTestHook(hook))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := 0; ; i++ {
				key = fmt.Sprintf("race-%s-%d", op, i)
				if c.ServerFor(key) == aAddr {
					break
				}
			}
			// A refuses connections: marked down, ejected.
			_, _ = c.Get(context.Background(), key)
			deadline := time.Now().Add(10 * time.Second)
			for c.ServerFor(key) != b.Addr {
				if time.Now().After(deadline) {
					t.Fatal("A not ejected after 10s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			// A comes back: it answers the probes ("version") and the
			// flush that precede its return.
			ln, err = net.Listen("tcp", aAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer nc.Close()
						br := bufio.NewReader(nc)
						for {
							line, err := br.ReadString('\n')
							if err != nil {
								return
							}
							switch strings.TrimSpace(line) {
							case "version":
								fmt.Fprintf(nc, "VERSION 1.6.18\r\n")
							case "flush_all":
								fmt.Fprintf(nc, "OK\r\n")
							default:
								return
							}
						}
					}()
				}
			}()
			// The write picks B (A is out), and waits for B's first
			// connection until A is back.
			hold.Store(true)
			it := backend.Item{Key: key, Value: []byte("v")}
			if op == "Set" {
				err = c.Set(context.Background(), it)
			} else {
				err = c.SetMulti(context.Background(), []backend.Item{it})
			}
			hold.Store(false)
			if err != nil {
				t.Fatal(err)
			}
			if c.ServerFor(key) != aAddr {
				t.Fatal("A was not put back while the write waited")
			}
			out := rawCommand(t, b.Addr, "mg "+key+" t v\r\nmn\r\n", "MN\r\n")
			var left int
			if _, err := fmt.Sscanf(out, "VA 1 t%d", &left); err != nil {
				t.Fatalf("mg on the stand-in B: %q", out)
			}
			// 61: auto_eject_ttl and the second every TTL gets (expiration).
			if left < 0 || left > 61 {
				t.Errorf("a %s of A's key on its stand-in B has TTL %d (-1: none), want at most auto_eject_ttl (60s) and a second", op, left)
			}
		})
	}
}

// TestAutoEjectOff: without auto_eject (the default) a server marked down
// stays in the ring: its keys fail fast, and are not stored elsewhere.
func TestAutoEjectOff(t *testing.T) {
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(500*time.Millisecond),
		memcached.WithRetryInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	victim := procs[1].Addr
	keys := keysOn(c, victim, 10)
	procs[1].Stop(t)
	for range 5 {
		_, _ = c.Get(context.Background(), keys[0])
	}
	time.Sleep(500 * time.Millisecond)
	if s := c.ServerFor(keys[0]); s != victim {
		t.Fatalf("without auto_eject the key moved to %s", s)
	}
	if err := c.Set(context.Background(), backend.Item{Key: keys[1], Value: []byte("x")}); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Set of a key of the dead server: %v, want unavailable", err)
	}
}

// TestAutoEjectStandInOutlived: a server that came back is not ejected
// again while a value written on a stand-in for one of its keys may still
// live there. With auto_eject_ttl=10ms a value written on the stand-in
// gets exptime 2 (whole seconds, rounded up, and one more for memcached's
// clock): it lives one to two seconds. The server came back and was
// ejected again a few hundred milliseconds later, 10ms after its return,
// and the stand-in served that value again, older than the one written
// on the server in between. Now the server stays in until every such
// value has expired (the TTL in memcached's whole seconds, plus the
// timeout for a write that picked the stand-in before the return).
func TestAutoEjectStandInOutlived(t *testing.T) {
	procs, c, _ := ejectClient(t, 10, memcached.WithAutoEjectTTL(10*time.Millisecond),
		memcached.WithRetryInterval(50*time.Millisecond), memcached.WithTimeout(300*time.Millisecond))
	victim := procs[0].Addr
	onVictim := keysOn(c, victim, 50)
	k := onVictim[0]
	procs[0].Stop(t)
	markDown(t, c, victim, onVictim)
	setValue(t, c, k, "stand-in", 0)
	procs[0].Restart(t)
	waitBack(t, c, victim, k)
	setValue(t, c, k, "fresh", 0)
	wantValue(t, c, k, "fresh", "the key once its server is back")
	procs[0].Stop(t)
	markDown(t, c, victim, onVictim)
	it, err := c.Get(context.Background(), k)
	switch {
	case err == nil && string(it.Value) == "stand-in":
		t.Fatalf("%s, ejected again, reads %q from the stand-in %s: the value written there before the server came back, older than %q",
			k, it.Value, c.ServerFor(k), "fresh")
	case err != nil && !errors.Is(err, backend.ErrNotFound):
		t.Fatalf("Get %s with its server ejected again: %v", k, err)
	}
}
