package memcached_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// TestTextMultiServerHung: a GetMulti, SetMulti or DeleteMulti over three
// text-only servers (proxies answering the handshake's "mn" with ERROR),
// one of which hangs (the proxy holds what the client sends), with a
// caller's deadline (1s), does the healthy servers' keys. The text-only
// servers were done one after another, the hung server's first (its keys
// come first): it held the call until ctx ended, and the others were then
// sent nothing. A GetMulti returned 0 of the 10 healthy items, and a
// SetMulti or DeleteMulti wrote none of them. They are done in parallel
// now, as the meta servers are: every healthy key is done, the hung
// server's keys are named with ctx's error and its address (GetMulti), or
// the call's outcome is unknown (a write sent to the hung server).
//
// The caller's deadline is what ends each call, so it must leave the
// healthy servers time for their keys (one round trip each through a
// proxy for a write) and come well before the timeout: with 300ms, under
// load (16 on 2 cores, where a goroutine woken by a timer may run
// hundreds of milliseconds late) a DeleteMulti had written 3 of the 10
// healthy keys when it ended (1 run of 60).
func TestTextMultiServerHung(t *testing.T) {
	t.Parallel()
	const callerWait = time.Second
	const timeout = 10 * time.Second
	mc := testserver.Memcached(t)
	var proxies []*hostile.Proxy
	var addrs []string
	for range 3 {
		p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
		p.SetMutator(textOnly)
		proxies = append(proxies, p)
		addrs = append(addrs, p.Addr())
	}
	c, err := memcached.New(addrs, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	victim := addrs[0]
	frozen := keysOn(c, victim, 5)
	live := append(keysOn(c, addrs[1], 5), keysOn(c, addrs[2], 5)...)
	// The hung server's keys first, so that it is the first server of
	// the call.
	all := append(append([]string{}, frozen...), live...)
	ctx := context.Background()
	// Every server found text-only, and connected to, before it hangs.
	if err := c.SetMulti(ctx, itemsOf(all)); err != nil {
		t.Fatal(err)
	}
	proxies[0].Hold()
	t.Cleanup(proxies[0].Heal)

	// reach reads the live keys on the healthy servers directly.
	reach := func() map[string]backend.Item {
		t.Helper()
		got, err := c.GetMulti(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, op := range []string{"GetMulti", "SetMulti", "DeleteMulti"} {
		switch op {
		case "SetMulti":
			if err := c.DeleteMulti(ctx, live); err != nil {
				t.Fatal(err)
			}
		case "DeleteMulti":
			if err := c.SetMulti(ctx, itemsOf(live)); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, callerWait)
		start := time.Now()
		var got map[string]backend.Item
		switch op {
		case "GetMulti":
			got, err = c.GetMulti(cctx, all)
		case "SetMulti":
			err = c.SetMulti(cctx, itemsOf(all))
		default:
			err = c.DeleteMulti(cctx, all)
		}
		d := time.Since(start)
		cancel()
		if op == "GetMulti" {
			me, named := hungKeysNamed(t, op, err, d, context.DeadlineExceeded, victim, frozen)
			if me == nil {
				continue
			}
			n := 0
			for _, k := range live {
				if string(got[k].Value) == k && !named[k] {
					n++
				}
			}
			t.Logf("%s: %v: %d of %d healthy items, %v", op, d.Round(time.Millisecond), n, len(live), err)
			if n != len(live) || len(me.Errors) != len(frozen) {
				t.Errorf("%s with a text-only server hung: %d of %d healthy items, %d keys named; want every healthy item, the %d keys of the hung server named",
					op, n, len(live), len(me.Errors), len(frozen))
			}
		} else {
			// A write was sent to the hung server: the outcome of the
			// call is unknown, but the healthy servers' keys were written.
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s with a text-only server hung: %v; want an error wrapping context.DeadlineExceeded", op, err)
			}
			now := reach()
			n := 0
			for _, k := range live {
				if op == "SetMulti" && string(now[k].Value) == k || op == "DeleteMulti" && now[k].Value == nil {
					n++
				}
			}
			t.Logf("%s: %v: %d of %d healthy keys written, %v", op, d.Round(time.Millisecond), n, len(live), err)
			if n != len(live) {
				t.Errorf("%s with a text-only server hung: %d of %d healthy keys written; want all", op, n, len(live))
			}
		}
		if d > callerWait+2*time.Second {
			t.Errorf("%s took %v; caller's context %v", op, d, callerWait)
		}
	}
}

// TestTextCallerDeadlineServerHung: a call through the text protocol to a
// server that hangs (the proxy holds what the client sends), whose
// caller's deadline (100ms) comes before the timeout, fails with an error
// wrapping context.DeadlineExceeded, and is not counted as the server's
// failure, as on the meta protocol. The connection's deadline is the
// caller's (timedConn), and it often passed before ctx's timer fired: the
// call failed with the connection's "i/o timeout" as backend.ErrUnavailable
// (3 of 3 GetMulti, SetMulti and DeleteMulti in TestTextMultiServerHung),
// counted as a failure of the server: with a failure limit of 1, a
// caller's short deadline marked a healthy but slow server down.
func TestTextCallerDeadlineServerHung(t *testing.T) {
	t.Parallel()
	_, p, c := behindProxy(t, memcached.WithFailureLimit(1), memcached.WithRetryInterval(time.Minute))
	p.SetMutator(textOnly)
	ctx := context.Background()
	storeKeys(t, c, "k")
	p.Hold()
	t.Cleanup(p.Heal)
	for i := range 6 {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := c.Get(cctx, "k")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Get %d past the caller's deadline: %v; want an error wrapping context.DeadlineExceeded, not backend.ErrUnavailable", i, err)
		}
	}
}
