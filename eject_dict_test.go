package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// TestAutoEjectDictNoStaleAfterRejoin checks, through a Dict, what the
// memcached driver's auto-eject promises (docs/drivers.md, "Auto-eject"):
// one of three servers is frozen (SIGSTOP), so that it comes back holding
// the values it had. While it is ejected, its keys are written (Store,
// GetOrLoad) or removed on the servers standing in, and read back so;
// once it is back, none of its keys reads the value it held before it
// left, a removed key included (it was flushed), and its keys are stored
// on it again.
//
// The keys are first stored through a Dict on a backend of their own with
// a long timeout, and the Dict under test then reads a key of each server
// until it has, so that it has the namespace's generation and a
// connection to each server, as it had when it stored the keys itself: on
// a loaded machine (load 12-16 on 2 cores, where a goroutine woken by a
// timer may run hundreds of milliseconds late) a Store of the setup got
// no reply within the 300ms timeout from a healthy server and failed the
// test before anything was frozen.
func TestAutoEjectDictNoStaleAfterRejoin(t *testing.T) {
	var procs []*testserver.Process
	var addrs []string
	for range 3 {
		p := testserver.Memcached(t)
		procs = append(procs, p)
		addrs = append(addrs, p.Addr)
	}
	const params = "retry_interval=100ms&failure_limit=3&auto_eject=true"
	be := openURL(t, "memcached://"+strings.Join(addrs, ",")+"?timeout=300ms&"+params)
	d := newDict[string](t, be, "ej", memdict.WithoutNearCache())
	setup := newDict[string](t, openURL(t, "memcached://"+strings.Join(addrs, ",")+"?timeout=10s&"+params), "ej", memdict.WithoutNearCache())
	ctx := context.Background()
	victim := procs[1]
	serverOf := func(k string) string { return backend.ServerFor(be, d.BackendKey(k)) }
	var onVictim []string
	firstOn := map[string]string{} // a key of each server
	for i := 0; len(onVictim) < 60; i++ {
		k := fmt.Sprint("k", i)
		if err := setup.Store(ctx, k, "v1"); err != nil {
			t.Fatal(err)
		}
		if serverOf(k) == victim.Addr {
			onVictim = append(onVictim, k)
		}
		if _, ok := firstOn[serverOf(k)]; !ok {
			firstOn[serverOf(k)] = k
		}
	}
	// One failure of a healthy server here does not eject it: its next
	// answer resets the count.
	warm := time.Now().Add(10 * time.Second)
	for addr, k := range firstOn {
		for {
			v, ok, err := d.Lookup(ctx, k)
			if err == nil {
				if !ok || v != "v1" {
					t.Fatalf("%s (on %s) before the server is frozen: %q, %v; want v1", k, addr, v, ok)
				}
				break
			}
			if time.Now().After(warm) {
				t.Fatalf("%s (on %s) before the server is frozen: %v", k, addr, err)
			}
		}
	}
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer victim.Signal(syscall.SIGCONT)
	// Calls on its keys time out until it is marked down and ejected.
	deadline := time.Now().Add(10 * time.Second)
	for serverOf(onVictim[0]) == victim.Addr {
		if time.Now().After(deadline) {
			t.Fatal("the stopped server was not ejected within 10s")
		}
		var wg sync.WaitGroup
		for _, k := range onVictim[:3] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, _ = d.Lookup(ctx, k)
			}()
		}
		wg.Wait()
	}
	// Its keys, on the stand-ins: a third stored, a third removed, a
	// third loaded.
	load := func(context.Context, string) (string, error) { return "v2", nil }
	for i, k := range onVictim {
		var err error
		switch i % 3 {
		case 0:
			err = d.Store(ctx, k, "v2")
		case 1:
			// On the stand-in the key is absent: Remove says so.
			if err = d.Remove(ctx, k); errors.Is(err, memdict.ErrNotFound) {
				err = nil
			}
		case 2:
			_, err = d.GetOrLoad(ctx, k, load)
		}
		if err != nil {
			t.Fatalf("%s with its server ejected: %v", k, err)
		}
	}
	for i, k := range onVictim {
		v, ok, err := d.Lookup(ctx, k)
		if want := i%3 != 1; err != nil || ok != want || ok && v != "v2" {
			t.Errorf("%s with its server ejected: %q, %v, %v; want v2 (or none if removed)", k, v, ok, err)
		}
	}
	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for serverOf(onVictim[0]) != victim.Addr {
		if time.Now().After(deadline) {
			t.Fatal("the server was not put back within 10s of SIGCONT")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Back, flushed: no key reads v1, the value written before it left,
	// which the stand-ins' writes and removals made stale.
	for _, k := range onVictim {
		v, ok, err := d.Lookup(ctx, k)
		switch {
		case err != nil:
			t.Errorf("%s after its server came back: %v", k, err)
		case ok && v == "v1":
			t.Errorf("%s reads %q after its server came back, the value it held before it left", k, v)
		case ok:
			t.Errorf("%s reads %q after its server came back, want a miss (it was flushed)", k, v)
		}
	}
	// And its keys are stored on it again.
	if err := d.Store(ctx, onVictim[0], "v3"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := d.Lookup(ctx, onVictim[0]); err != nil || !ok || v != "v3" {
		t.Errorf("%s after a write on the server that came back: %q, %v, %v", onVictim[0], v, ok, err)
	}
}
