package memcached_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// rawCAS returns the CAS value memcached holds for key, read with a meta
// get on a connection of its own.
func rawCAS(t *testing.T, addr, key string) uint64 {
	t.Helper()
	line, _, _ := strings.Cut(rawCommand(t, addr, "mg "+key+" c\r\nmn\r\n", "MN\r\n"), "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "HD" || !strings.HasPrefix(f[1], "c") {
		t.Fatalf("mg %s c: %q", key, line)
	}
	v, err := strconv.ParseUint(f[1][1:], 10, 64)
	if err != nil {
		t.Fatalf("mg %s c: %q: %v", key, line, err)
	}
	return v
}

// casOnLive is c.CompareAndSwap(item) as a caller that retries
// backend.ErrUnavailable does: a compare-and-swap is not sent again by the
// Client, so one that meets a connection the server had closed (a restart,
// a reset) fails; the retry goes on a new connection.
func casOnLive(c *memcached.Client, item backend.Item) error {
	var err error
	for range 8 {
		err = c.CompareAndSwap(context.Background(), item)
		if !errors.Is(err, backend.ErrUnavailable) {
			break
		}
	}
	return err
}

// TestRestartCASTokenOfEarlierRun: memcached numbers CAS values from 1
// again when it restarts. A token read before a restart was the bare CAS
// value, which another client's writes after the restart brought the
// key's new version to (here after 6 writes): CompareAndSwap with it
// overwrote that version, a lost update. Tokens are now the CAS value
// XORed with a key of the server's run (pid and start time), so the old
// token fails with a conflict and the other client's value stays; tokens
// read after the restart work, and so does one read before a reconnect
// to the same run.
func TestRestartCASTokenOfEarlierRun(t *testing.T) {
	c, p := newClient(t)
	ctx := context.Background()
	for range 5 {
		setValue(t, c, "other", "x", 0)
	}
	setValue(t, c, "k", "v1", 0)
	old, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	oldRaw := rawCAS(t, p.Addr, "k")

	p.Restart(t)
	// Another client writes k until its CAS is the one k had before.
	b := 0
	for ; b < 1000 && (b == 0 || rawCAS(t, p.Addr, "k") < oldRaw); b++ {
		rawCommand(t, p.Addr, "ms k 9\r\nB's write\r\n", "HD\r\n")
	}
	if got := rawCAS(t, p.Addr, "k"); got != oldRaw {
		t.Fatalf("after %d writes k's CAS is %d, want the %d it had before the restart", b, got, oldRaw)
	}
	// The first call after the restart may fail on a connection the
	// server closed; the retry goes on a new connection, whose hello goes
	// in the same write as the first requests.
	err = casOnLive(c, backend.Item{Key: "k", Value: []byte("A's update"), CAS: old.CAS})
	if !errors.Is(err, backend.ErrCASConflict) {
		t.Errorf("CompareAndSwap with a token read before the restart = %v, want a conflict (B's write, made after the restart, has the CAS value the token was read with)", err)
	}
	wantValue(t, c, "k", "B's write", "k after the stale CompareAndSwap")

	// Tokens of the new run work, also across a new connection to it.
	cur, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := casOnLive(c, backend.Item{Key: "k", Value: []byte("A's retry"), CAS: cur.CAS}); err != nil {
		t.Fatalf("CompareAndSwap with a fresh token: %v", err)
	}
	// A token read by another Client of the same run.
	c2, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cur, err = c2.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := casOnLive(c, backend.Item{Key: "k", Value: []byte("A's last"), CAS: cur.CAS}); err != nil {
		t.Fatalf("CompareAndSwap with a token another Client read in the same run: %v", err)
	}
	wantValue(t, c, "k", "A's last", "k after the last CompareAndSwap")
}

// TestReconnectCASTokenSameRun: a token read before the Client's
// connections were reset, the server still running (the same run), still
// works on a new connection, also as the first request written there with
// the hello: the compare-and-swap waits for the hello's reply, which says
// the run its token is translated with. Sent at once, it would go out
// untranslated and fail with a conflict that no other write caused.
func TestReconnectCASTokenSameRun(t *testing.T) {
	t.Parallel()
	_, p, c := behindProxy(t, memcached.WithTimeout(testTimeout))
	ctx := context.Background()
	setValue(t, c, "k", "v1", 0)
	it, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	p.ResetAll()
	if err := casOnLive(c, backend.Item{Key: "k", Value: []byte("v2"), CAS: it.CAS}); err != nil {
		t.Fatalf("CompareAndSwap with a token of the same run, on a new connection: %v", err)
	}
	wantValue(t, c, "k", "v2", "k after the CompareAndSwap")
}

// TestRestartLeaseOfEarlierRun: a fill lease won before a restart, whose
// CAS the restarted server's counter gave to the placeholder of another
// client's lease on the same key, could fill the key over that lease (its
// CompareAndSwap matched): two clients each held the lease, and the one
// that won it first, possibly with an older load, filled the key. The
// lease's token is of the earlier run now, and its fill fails with a
// conflict.
func TestRestartLeaseOfEarlierRun(t *testing.T) {
	c, p := newClient(t)
	ctx := context.Background()
	opts := backend.LeaseOptions{TTL: 30 * time.Second}
	for range 5 {
		setValue(t, c, "other", "x", 0)
	}
	old, err := c.GetLease(ctx, "k", opts)
	if err != nil || !old.Won {
		t.Fatalf("GetLease = %+v, %v", old, err)
	}
	oldRaw := rawCAS(t, p.Addr, "k")

	p.Restart(t)
	// Another client writes other keys until the CAS of its lease's
	// placeholder is the one the first lease had.
	for range 1000 {
		rawCommand(t, p.Addr, "ms other 1\r\nx\r\n", "HD\r\n")
		if rawCAS(t, p.Addr, "other") >= oldRaw-1 {
			break
		}
	}
	if line := rawCommand(t, p.Addr, "mg k N30 c\r\nmn\r\n", "MN\r\n"); !strings.HasPrefix(line, "EN") && !strings.Contains(line, " W") {
		t.Fatalf("the other client's lease: %q", line)
	}
	if got := rawCAS(t, p.Addr, "k"); got != oldRaw {
		t.Fatalf("the other client's placeholder has CAS %d, want the %d of the lease before the restart", got, oldRaw)
	}
	err = casOnLive(c, backend.Item{Key: "k", Value: []byte("old load"), CAS: old.Item.CAS})
	if !errors.Is(err, backend.ErrCASConflict) {
		t.Errorf("the fill of a lease won before the restart = %v, want a conflict (another client holds the lease now)", err)
	}
	if it, err := c.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("k after the stale fill = %q, %v; want a miss (the other client's placeholder)", it.Value, err)
	}
}
