package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/testserver"
)

// leaseClients starts a memcached and opens two Clients on it: two
// processes of a fleet, as far as leases go.
func leaseClients(t *testing.T, extra ...string) (a, b *memcached.Client, p *testserver.Process) {
	t.Helper()
	p = testserver.Memcached(t, extra...)
	open := func() *memcached.Client {
		c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return open(), open(), p
}

func getLease(t *testing.T, c *memcached.Client, key string, o backend.LeaseOptions) backend.Lease {
	t.Helper()
	l, err := c.GetLease(context.Background(), key, o)
	if err != nil {
		t.Fatalf("GetLease(%q): %v", key, err)
	}
	if l.Item.Key != key {
		t.Fatalf("GetLease(%q): Item.Key %q", key, l.Item.Key)
	}
	return l
}

// wonLease gets a lease on key, which must be cold: the lease must be won.
func wonLease(t *testing.T, c *memcached.Client, key string, o backend.LeaseOptions) backend.Lease {
	t.Helper()
	l := getLease(t, c, key, o)
	if !l.Won {
		t.Fatalf("cold key %q: %+v", key, l)
	}
	return l
}

// want checks a lease's flags (and value, when found).
func wantLease(t *testing.T, what string, l backend.Lease, found, stale, won, busy bool, value string) {
	t.Helper()
	if l.Found != found || l.Stale != stale || l.Won != won || l.Busy != busy {
		t.Fatalf("%s: lease Found=%v Stale=%v Won=%v Busy=%v, want Found=%v Stale=%v Won=%v Busy=%v",
			what, l.Found, l.Stale, l.Won, l.Busy, found, stale, won, busy)
	}
	if found && string(l.Item.Value) != value {
		t.Fatalf("%s: lease value %q, want %q", what, l.Item.Value, value)
	}
	if !found && l.Item.Value != nil {
		t.Fatalf("%s: lease without value carries %q", what, l.Item.Value)
	}
	if l.Item.CAS == 0 {
		t.Fatalf("%s: lease without CAS", what)
	}
}

// fill stores value under key with a TTL of an hour through c with the
// CAS of lease l, failing t (what: which fill) if it cannot.
func fill(t *testing.T, c *memcached.Client, key, value string, l backend.Lease, what string) {
	t.Helper()
	if err := c.CompareAndSwap(context.Background(), backend.Item{Key: key, Value: []byte(value), TTL: time.Hour, CAS: l.Item.CAS}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// release gives l back through c, failing t (what: which release) if it
// cannot.
func release(t *testing.T, c *memcached.Client, l backend.Lease, what string) {
	t.Helper()
	if err := c.ReleaseLease(context.Background(), l); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantFillConflict fails t (what: which fill) unless storing value under
// key through c with the CAS of lease l fails with ErrCASConflict.
func wantFillConflict(t *testing.T, c *memcached.Client, key, value string, l backend.Lease, what string) {
	t.Helper()
	err := c.CompareAndSwap(context.Background(), backend.Item{Key: key, Value: []byte(value), CAS: l.Item.CAS})
	if !errors.Is(err, backend.ErrCASConflict) {
		t.Fatalf("%s: %v, want ErrCASConflict", what, err)
	}
}

// wantMissing fails t unless c's Get of key finds nothing.
func wantMissing(t *testing.T, c *memcached.Client, key string) {
	t.Helper()
	ctx := context.Background()
	if it, err := c.Get(ctx, key); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get(%q) of a placeholder = %q, %v; want ErrNotFound", key, it.Value, err)
	}
	m, err := c.GetMulti(ctx, []string{key, "other:" + key})
	if err != nil || len(m) != 1 {
		t.Fatalf("GetMulti of a placeholder and a value = %v, %v; want the value alone", m, err)
	}
}

var leaseOpts = backend.LeaseOptions{TTL: 30 * time.Second}

// TestLeaseWinBusy: the first caller of a missing key wins, the others
// are told a fill is in progress; plain reads report the placeholder
// missing, in a multi-key read too.
func TestLeaseWinBusy(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	ctx := context.Background()
	const key = "cold"
	if err := a.Set(ctx, backend.Item{Key: "other:" + key, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	la := getLease(t, a, key, leaseOpts)
	wantLease(t, "first caller", la, false, false, true, false, "")
	lb := getLease(t, b, key, leaseOpts)
	wantLease(t, "second caller", lb, false, false, false, true, "")
	lb2 := getLease(t, a, key, leaseOpts)
	wantLease(t, "third caller", lb2, false, false, false, true, "")
	if la.Item.CAS != lb.Item.CAS {
		t.Errorf("placeholder CAS %d for the winner, %d for the loser", la.Item.CAS, lb.Item.CAS)
	}
	wantMissing(t, a, key)
	wantMissing(t, b, key)
	// Reading it did not hand out the lease again.
	wantLease(t, "after plain reads", getLease(t, b, key, leaseOpts), false, false, false, true, "")
}

// TestLeaseFill: the winner fills with CompareAndSwap and the lease's CAS;
// readers then see the value, and leases on it are neither won nor busy.
func TestLeaseFill(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	ctx := context.Background()
	const key = "fill"
	l := getLease(t, a, key, leaseOpts)
	wantLease(t, "cold", l, false, false, true, false, "")
	fill(t, a, key, "loaded", l, "fill")
	it, err := b.Get(ctx, key)
	if err != nil || string(it.Value) != "loaded" {
		t.Fatalf("Get after fill = %q, %v", it.Value, err)
	}
	m, err := b.GetMulti(ctx, []string{key})
	if err != nil || string(m[key].Value) != "loaded" {
		t.Fatalf("GetMulti after fill = %v, %v", m, err)
	}
	wantLease(t, "after fill", getLease(t, b, key, leaseOpts), true, false, false, false, "loaded")
	// A second fill with the same lease is refused.
	wantFillConflict(t, a, key, "again", l, "second fill")
}

// TestLeaseFillConflict: a write made while the lease was out wins over
// the winner's fill, which fails with ErrCASConflict.
func TestLeaseFillConflict(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	const key = "conflict"
	l := wonLease(t, a, key, leaseOpts)
	setValue(t, b, key, "written", 0)
	wantFillConflict(t, a, key, "loaded", l, "fill after a write")
	wantValue(t, a, key, "written", "Get")
}

// TestLeaseExpiry: a winner that never fills lets another caller win once
// the placeholder's TTL (1 s) is over.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	a, b, p := leaseClients(t)
	o := backend.LeaseOptions{TTL: time.Second}
	var key string
	var start time.Time
	for attempt := 0; ; attempt++ {
		// A new key if memcached's clock ticked (see serverClock).
		key = fmt.Sprint("dead-winner", attempt)
		before := serverClock(t, p.Addr)
		wonLease(t, a, key, o)
		start = time.Now()
		l := getLease(t, b, key, o)
		if l.Busy && !l.Won {
			break
		}
		if serverClock(t, p.Addr) == before || attempt == 4 {
			t.Fatalf("right after: %+v, want busy (%d attempts)", l, attempt+1)
		}
	}
	deadline := start.Add(15 * time.Second)
	for {
		l := getLease(t, b, key, o)
		if l.Won {
			t.Logf("second caller won after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if !l.Busy || l.Found {
			t.Fatalf("while the placeholder lasts: %+v, want busy", l)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no win %v after the 1s lease", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if l := getLease(t, a, key, o); !l.Busy || l.Won {
		t.Fatalf("after the takeover: %+v, want busy", l)
	}
}

// TestReleaseLease: a released lease lets the next caller win at once; a
// release after somebody wrote the key leaves the value alone.
func TestReleaseLease(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	ctx := context.Background()
	const key = "release"
	l := wonLease(t, a, key, leaseOpts)
	release(t, a, l, "ReleaseLease")
	l2 := getLease(t, b, key, leaseOpts)
	wantLease(t, "after release", l2, false, false, true, false, "")
	// Releasing the first lease again does not take the second one away.
	release(t, a, l, "ReleaseLease of a released lease")
	wantLease(t, "after a second release", getLease(t, a, key, leaseOpts), false, false, false, true, "")
	// A loser's lease, and a lease on a value, release nothing.
	busy := getLease(t, a, key, leaseOpts)
	release(t, a, busy, "ReleaseLease of a busy lease")
	wantLease(t, "after releasing a busy lease", getLease(t, a, key, leaseOpts), false, false, false, true, "")

	// Somebody writes while the lease is out: the release keeps the value.
	setValue(t, a, key, "written", 0)
	release(t, b, l2, "ReleaseLease after a write")
	wantValue(t, a, key, "written", "Get after the release")
	found := getLease(t, a, key, leaseOpts)
	wantLease(t, "on the value", found, true, false, false, false, "written")
	found.Won = true // even so
	release(t, a, found, "ReleaseLease on a value")
	if _, err := a.Get(ctx, key); err != nil {
		t.Fatalf("the value is gone after ReleaseLease of a lease on it: %v", err)
	}
}

// TestMarkStale: a value marked stale is served with Stale; the first
// GetLease wins its refresh, the others are busy, and the refresh (a
// CompareAndSwap with the winner's CAS) makes it fresh again. MarkStale's
// TTL bounds how long the stale value lives.
func TestMarkStale(t *testing.T) {
	t.Parallel()
	a, b, p := leaseClients(t)
	ctx := context.Background()
	const key = "stale"
	setValue(t, a, key, "old", time.Hour)
	if err := b.MarkStale(ctx, key, 30*time.Second); err != nil {
		t.Fatalf("MarkStale: %v", err)
	}
	// (Any mg of a stale item takes the lease if nobody has: ask for the
	// TTL after the first GetLease.)
	win := getLease(t, a, key, leaseOpts)
	wantLease(t, "first caller", win, true, true, true, false, "old")
	if ttl := remainingTTL(t, p.Addr, key); ttl <= 0 || ttl > 31 {
		t.Errorf("remaining TTL after MarkStale with 30s: %d, want at most 31 (30 and the second every TTL gets)", ttl)
	}
	wantLease(t, "second caller", getLease(t, b, key, leaseOpts), true, true, false, true, "old")
	wantLease(t, "third caller", getLease(t, a, key, leaseOpts), true, true, false, true, "old")
	// Plain reads serve the stale value.
	wantValue(t, b, key, "old", "Get of a stale value")
	fill(t, a, key, "new", win, "refresh")
	wantLease(t, "after the refresh", getLease(t, b, key, leaseOpts), true, false, false, false, "new")

	// A MarkStale made while the refresh is loading makes its fill fail.
	if err := b.MarkStale(ctx, key, 0); err != nil {
		t.Fatal(err)
	}
	win = getLease(t, a, key, leaseOpts)
	wantLease(t, "stale again", win, true, true, true, false, "new")
	if ttl := remainingTTL(t, p.Addr, key); ttl < 3000 {
		t.Errorf("remaining TTL after MarkStale with 0: %d, want the hour kept", ttl)
	}
	if err := b.MarkStale(ctx, key, 0); err != nil {
		t.Fatal(err)
	}
	wantFillConflict(t, a, key, "newer", win, "fill after another MarkStale")
	// ... and hands the refresh out again.
	wantLease(t, "after the second MarkStale", getLease(t, b, key, leaseOpts), true, true, true, false, "new")

	if err := a.MarkStale(ctx, "absent", time.Second); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("MarkStale of an absent key: %v, want ErrNotFound", err)
	}
	// The stale value expires after MarkStale's TTL.
	if err := a.MarkStale(ctx, key, time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := a.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("stale value still there long after MarkStale's 1s TTL")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestPlainReadTakesStaleLease pins memcached's behaviour (1.6.18 and
// later): the first mg of a stale item gets W whatever its flags, so a
// plain Get of a value marked stale takes the refresh lease, and GetLease
// then reports Stale and Busy.
func TestPlainReadTakesStaleLease(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	ctx := context.Background()
	const key = "stale-read"
	setValue(t, a, key, "old", time.Hour)
	if err := a.MarkStale(ctx, key, 0); err != nil {
		t.Fatal(err)
	}
	wantValue(t, b, key, "old", "Get of a stale value")
	wantLease(t, "after a plain Get", getLease(t, a, key, leaseOpts), true, true, false, true, "old")
}

// remainingTTL asks the server for key's remaining TTL in seconds.
func remainingTTL(t *testing.T, addr, key string) int {
	t.Helper()
	line := rawCommand(t, addr, "mg "+key+" t\r\nmn\r\n", "MN")
	var ttl int
	// "HD t30 X Z": Sscanf stops after the number.
	if _, err := fmt.Sscanf(line, "HD t%d", &ttl); err != nil {
		t.Fatalf("mg %s t: %q: %v", key, line, err)
	}
	return ttl
}

// TestLeaseRefreshWithin: a value whose remaining TTL is below
// RefreshWithin hands one caller the refresh (memcached's R flag); with a
// shorter RefreshWithin, or on a value without expiry, nobody wins.
func TestLeaseRefreshWithin(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	ctx := context.Background()
	for _, it := range []backend.Item{
		{Key: "expiring", Value: []byte("v"), TTL: 20 * time.Second},
		{Key: "forever", Value: []byte("v")},
	} {
		if err := a.Set(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	short := backend.LeaseOptions{TTL: 10 * time.Second, RefreshWithin: 2 * time.Second}
	long := backend.LeaseOptions{TTL: 10 * time.Second, RefreshWithin: time.Minute}
	wantLease(t, "remaining TTL above RefreshWithin", getLease(t, a, "expiring", short), true, false, false, false, "v")
	wantLease(t, "no expiry", getLease(t, a, "forever", long), true, false, false, false, "v")
	win := getLease(t, a, "expiring", long)
	wantLease(t, "remaining TTL below RefreshWithin", win, true, false, true, false, "v")
	wantLease(t, "second caller", getLease(t, b, "expiring", long), true, false, false, true, "v")
	wantLease(t, "second caller, short", getLease(t, b, "expiring", short), true, false, false, true, "v")
	// Plain reads see the value (not a placeholder).
	if it, err := b.Get(ctx, "expiring"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get during a refresh = %q, %v", it.Value, err)
	}
	if err := a.CompareAndSwap(ctx, backend.Item{Key: "expiring", Value: []byte("v2"), TTL: time.Hour, CAS: win.Item.CAS}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	wantLease(t, "after the refresh", getLease(t, b, "expiring", long), true, false, false, false, "v2")
}

// TestLeaseDict: a Dict over the Client reports a key holding only a lease
// placeholder missing, through Get, Lookup and GetMulti.
func TestLeaseDict(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	d, err := memdict.New[string](c, "lease", memdict.WithCodec(codec.Raw))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Put("filled", "v"); err != nil {
		t.Fatal(err)
	}
	wonLease(t, c, d.BackendKey("pending"), leaseOpts)
	if v, ok := d.Get("pending"); ok {
		t.Fatalf("Dict.Get of a placeholder = %q, true", v)
	}
	if v, ok, err := d.Lookup(ctx, "pending"); ok || err != nil {
		t.Fatalf("Dict.Lookup of a placeholder = %q, %v, %v", v, ok, err)
	}
	m, err := d.GetMulti(ctx, []string{"pending", "filled"})
	if err != nil || len(m) != 1 || m["filled"] != "v" {
		t.Fatalf("Dict.GetMulti = %v, %v", m, err)
	}
}

// TestLeaseMultiServer: leases are routed by key like every other call:
// each placeholder is on the server that holds its key.
func TestLeaseMultiServer(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, addr := range addrs {
		key := keysOn(c, addr, 1)[0]
		wonLease(t, c, key, leaseOpts)
		for _, other := range addrs {
			reply := rawCommand(t, other, "mg "+key+" v\r\nmn\r\n", "MN")
			switch {
			case other == addr && reply != "VA 0 Z\r\n\r\nMN\r\n":
				t.Errorf("placeholder of %q on %s: %q", key, other, reply)
			case other != addr && reply != "EN\r\nMN\r\n":
				t.Errorf("key %q of %s found on %s: %q", key, addr, other, reply)
			}
		}
		if err := c.MarkStale(context.Background(), key, 0); err != nil {
			t.Fatalf("MarkStale(%q): %v", key, err)
		}
	}
}

// TestLeaseNotSupported: through nutcracker (no meta commands) and on a
// server without CAS, the lease methods fail with ErrNotSupported naming
// the server, and backend.TryLock (Add) works instead.
func TestLeaseNotSupported(t *testing.T) {
	t.Parallel()
	_, addrs := startMemcacheds(t, 1)
	nc := testserver.Nutcracker(t, addrs, "    hash: md5")
	noCAS := testserver.Memcached(t, "-C")
	for name, addr := range map[string]string{"nutcracker": nc.Listen, "no CAS": noCAS.Addr} {
		c, err := memcached.New([]string{addr}, memcached.WithTimeout(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, backend.ErrNotSupported) {
				t.Fatalf("%s %s: %v, want ErrNotSupported", name, what, err)
			}
			if got := backend.ServerOf(err); got != addr {
				t.Errorf("%s %s: error %v names server %q, want %q", name, what, err, got, addr)
			}
		}
		_, err = c.GetLease(ctx, "k", leaseOpts)
		check("GetLease", err)
		check("ReleaseLease", c.ReleaseLease(ctx, backend.Lease{Item: backend.Item{Key: "k", CAS: 1}, Won: true}))
		check("MarkStale", c.MarkStale(ctx, "k", 0))
		_, err = c.GetLease(ctx, "k", leaseOpts) // after the first calls learnt the server
		check("GetLease again", err)
		ok, err := backend.TryLock(ctx, c, "lock", backend.NewLockToken(), time.Minute)
		if !ok || err != nil {
			t.Fatalf("%s TryLock: %v, %v", name, ok, err)
		}
		if ok, err := backend.TryLock(ctx, c, "lock", backend.NewLockToken(), time.Minute); ok || err != nil {
			t.Fatalf("%s second TryLock: %v, %v", name, ok, err)
		}
	}
}

// TestLeaseInvalidInput: bad TTLs and keys are refused before anything is
// sent; a closed Client and a done context fail as other calls do.
func TestLeaseInvalidInput(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	ctx := context.Background()
	for _, o := range []backend.LeaseOptions{{}, {TTL: -time.Second}, {TTL: time.Second, RefreshWithin: -time.Second}} {
		if _, err := c.GetLease(ctx, "k", o); !errors.Is(err, backend.ErrInvalidTTL) {
			t.Errorf("GetLease with %+v: %v, want ErrInvalidTTL", o, err)
		}
	}
	if err := c.MarkStale(ctx, "k", -time.Second); !errors.Is(err, backend.ErrInvalidTTL) {
		t.Errorf("MarkStale with a negative TTL: %v", err)
	}
	for _, key := range []string{"", "has space", strings.Repeat("k", 251)} {
		if _, err := c.GetLease(ctx, key, leaseOpts); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("GetLease(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := c.MarkStale(ctx, key, 0); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("MarkStale(%q): %v, want ErrInvalidKey", key, err)
		}
		l := backend.Lease{Item: backend.Item{Key: key, CAS: 1}, Won: true}
		if err := c.ReleaseLease(ctx, l); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("ReleaseLease(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	// A sub-second TTL is a second.
	wonLease(t, c, "short", backend.LeaseOptions{TTL: time.Millisecond})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GetLease(cctx, "k", leaseOpts); !errors.Is(err, context.Canceled) {
		t.Errorf("GetLease with a cancelled context: %v", err)
	}
	c.Close()
	if _, err := c.GetLease(ctx, "k", leaseOpts); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("GetLease after Close: %v", err)
	}
	if err := c.MarkStale(ctx, "k", 0); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("MarkStale after Close: %v", err)
	}
}

// TestLeaseHostileReply: a lease reply declaring a huge value is a
// protocol error (nothing of that size allocated, the connection closed);
// a reply with lease flags on a command that takes none is one too.
func TestLeaseHostileReply(t *testing.T) {
	t.Parallel()
	s := newProtoFake(t, true, func(line string, c net.Conn, r *bufio.Reader) bool {
		echo := metaFlags(line)
		switch {
		case strings.HasPrefix(line, "mg huge "):
			fmt.Fprintf(c, "VA %d c1 W%s\r\n", 1<<30, echo)
		case strings.HasPrefix(line, "mg nomem "):
			fmt.Fprintf(c, "EN%s\r\n", echo)
		case strings.HasPrefix(line, "mg "):
			fmt.Fprintf(c, "VA 0 c7 W%s\r\n\r\n", echo)
		case strings.HasPrefix(line, "md "):
			fmt.Fprintf(c, "VA 1 W%s\r\nx\r\n", echo)
		}
		return true
	})
	c := fakeClient(t, s, memcached.WithTimeout(testTimeout))
	ctx := context.Background()
	if _, err := c.GetLease(ctx, "huge", leaseOpts); !errors.Is(err, memcached.ErrProtocol) {
		t.Fatalf("GetLease with a 1 GiB reply: %v, want ErrProtocol", err)
	}
	l, err := c.GetLease(ctx, "k", leaseOpts)
	if err != nil || !l.Won || l.Found || l.Item.CAS != 7 {
		t.Fatalf("GetLease = %+v, %v", l, err)
	}
	if l, err := c.GetLease(ctx, "nomem", leaseOpts); err != nil || l.Won || l.Busy || l.Found {
		t.Fatalf("GetLease answered EN = %+v, %v; want a miss without lease", l, err)
	}
	if err := c.MarkStale(ctx, "k", 0); !errors.Is(err, memcached.ErrProtocol) {
		t.Fatalf("MarkStale answered with a value: %v, want ErrProtocol", err)
	}
}

// TestLeaseFlags: a lease that finds a value returns its client flags,
// and a fill stores the flags it carries.
func TestLeaseFlags(t *testing.T) {
	t.Parallel()
	a, b, _ := leaseClients(t)
	const key = "flagged"
	l := wonLease(t, a, key, leaseOpts)
	if err := a.CompareAndSwap(context.Background(), backend.Item{Key: key, Value: []byte("pickle"), Flags: 1, CAS: l.Item.CAS}); err != nil {
		t.Fatal(err)
	}
	got := getLease(t, b, key, leaseOpts)
	wantLease(t, "after the fill", got, true, false, false, false, "pickle")
	if got.Item.Flags != 1 {
		t.Fatalf("lease of a value stored with flags 1 carries flags %d", got.Item.Flags)
	}
}
