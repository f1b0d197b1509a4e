package memcached_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// memcachedAt starts memcached listening on ip:port (and, for the test
// helpers, on 127.0.0.1 at a port of its own, its Addr).
func memcachedAt(t *testing.T, ip string, port int) *testserver.Process {
	t.Helper()
	args := []string{"-l", fmt.Sprintf("%s:%d,127.0.0.1:%s", ip, port, testserver.PortPlaceholder), "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return testserver.Start(t, "memcached", args...)
}

// fakeDNS is a resolver whose answers the test sets.
type fakeDNS struct {
	mu      sync.Mutex
	hosts   map[string][]string
	lookups atomic.Int64
}

func (d *fakeDNS) set(host string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts[host] = ips
}

func (d *fakeDNS) lookup(_ context.Context, host string) ([]string, error) {
	d.lookups.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if ips, ok := d.hosts[host]; ok && len(ips) > 0 {
		return ips, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

// currConns returns the curr_connections of the memcached at addr.
func currConns(t *testing.T, addr string) int {
	t.Helper()
	for _, line := range strings.Split(rawCommand(t, addr, "stats\r\n", "END\r\n"), "\r\n") {
		if v, ok := strings.CutPrefix(line, "STAT curr_connections "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no curr_connections in stats")
	return 0
}

// TestResolveInterval: two servers named a.test and b.test. a.test's name
// moves from one memcached (127.0.0.1) to another (127.0.0.2), under load:
// no call fails, the calls for a.test's keys go to the new server, the
// connections to the old one are closed, and b.test's keys stay where they
// were (all still hits: no key moved on the ring). A failed lookup keeps
// the known addresses.
func TestResolveInterval(t *testing.T) {
	oldA := testserver.Memcached(t)
	port := oldA.Port
	newA := memcachedAt(t, "127.0.0.2", port)
	_ = memcachedAt(t, "127.0.0.3", port) // b.test
	dns := &fakeDNS{hosts: map[string][]string{}}
	dns.set("a.test", "127.0.0.1")
	dns.set("b.test", "127.0.0.3")
	c, err := memcached.New([]string{fmt.Sprintf("a.test:%d", port), fmt.Sprintf("b.test:%d", port)},
		memcached.WithTimeout(2*time.Second), memcached.WithResolveInterval(20*time.Millisecond),
		memcached.WithResolver(dns.lookup))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	aName := fmt.Sprintf("a.test:%d", port)
	// The first lookup is made in the background: wait for it.
	for dns.lookups.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	var keys []string
	for i := range 400 {
		k := fmt.Sprintf("key-%d", i)
		keys = append(keys, k)
		setValue(t, c, k, "v-"+k, 0)
	}
	aKeys := keysIn(c, aName, keys)
	bKeys := keysIn(c, fmt.Sprintf("b.test:%d", port), keys)
	if len(aKeys) == 0 || len(bKeys) == 0 {
		t.Fatalf("keys: %d on a.test, %d on b.test", len(aKeys), len(bKeys))
	}
	if got := rawCommand(t, oldA.Addr, "mg "+aKeys[0]+" v q\r\nmn\r\n", "MN\r\n"); !strings.HasPrefix(got, "VA") {
		t.Fatalf("a.test's key not on 127.0.0.1: %q", got)
	}
	before := currConns(t, oldA.Addr)

	// Load while the name moves.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, fails atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := bKeys[(g*7+i)%len(bKeys)]
				var err error
				if i%2 == 0 {
					k = aKeys[(g*7+i)%len(aKeys)]
					err = c.Set(ctx, backend.Item{Key: k, Value: []byte("load")})
				} else {
					_, err = c.Get(ctx, k)
				}
				calls.Add(1)
				if err != nil {
					fails.Add(1)
					t.Errorf("%s during the move: %v", k, err)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	dns.set("a.test", "127.0.0.2")
	deadline := time.Now().Add(10 * time.Second)
	probe := aKeys[0]
	for {
		setValue(t, c, probe, "moved", 0)
		if got := rawCommand(t, newA.Addr, "mg "+probe+" v q\r\nmn\r\n", "MN\r\n"); got == "VA 5\r\nmoved\r\nMN\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a.test's writes do not reach its new address 10s after the change")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d calls during the move, %d failed", calls.Load(), fails.Load())
	// The old connections are closed (the stats connection is one).
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := currConns(t, oldA.Addr)
		if n <= before-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the old address (%d before the move)", n, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// No key of b.test moved.
	for _, k := range bKeys {
		wantValue(t, c, k, "v-"+k, "b.test's key after a.test moved")
	}
	// A failed lookup keeps the addresses.
	dns.set("a.test")
	n := dns.lookups.Load()
	for dns.lookups.Load() < n+4 {
		time.Sleep(5 * time.Millisecond)
	}
	setValue(t, c, probe, "again", 0)
	wantValue(t, c, probe, "again", "a.test's key after a failed lookup")
	if got := rawCommand(t, newA.Addr, "mg "+probe+" v q\r\nmn\r\n", "MN\r\n"); got != "VA 5\r\nagain\r\nMN\r\n" {
		t.Errorf("after a failed lookup the write went elsewhere: new server has %q", got)
	}
	stats, err := c.ServerStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := stats[0].Stats["memdict_addresses"]; got != fmt.Sprintf("127.0.0.2:%d", port) {
		t.Errorf("memdict_addresses of a.test = %q", got)
	}
}

// TestResolveIntervalURL: resolve_interval is a URL parameter; with a
// negative value the URL is refused.
func TestResolveIntervalURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"memcached://h:1?resolve_interval=30s":               true,
		"memcached://h:1?resolve_interval=0":                 true,
		"memcached://h:1?resolve_interval=-1s":               false,
		"memcached://h:1?auto_eject=true&auto_eject_ttl=30s": true,
		"memcached://h:1?auto_eject=true&failure_limit=0":    false,
		"memcached://h:1?auto_eject_ttl=0s":                  false,
		"memcached://h:1?auto_eject=maybe":                   false,
	} {
		if err := backend.Validate(u); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", u, err)
		}
	}
}

// TestResolveDialDuringMove: a connection whose connect began before the
// server's name moved, and reached the old address after the resolver
// had retired the old connections, must take no call. Two memcached on
// 127.0.0.1 and 127.0.0.2 hold the key with different values; a.test
// moves from one to the other while a connect to the first is under way,
// and the resolver then stays quiet (a long resolve interval). Every read
// must come from the address the name gives: it came from the old one
// through the late connection, until the next lookup. A GetMulti connects
// first and queues its request apart, on a new connection if the first
// was retired meanwhile: there the name moves back during that second
// connect too.
func TestResolveDialDuringMove(t *testing.T) {
	for _, tc := range []struct {
		call  string
		moves int // connects during which a.test moves to the other address
	}{{"Get", 1}, {"GetMulti", 2}} {
		t.Run(tc.call, func(t *testing.T) { resolveDialDuringMove(t, tc.call, tc.moves) })
	}
}

// resolveDialDuringMove is TestResolveDialDuringMove for one call.
func resolveDialDuringMove(t *testing.T, call string, moves int) {
	one := testserver.Memcached(t)
	port := one.Port
	_ = memcachedAt(t, "127.0.0.2", port)
	dns := &fakeDNS{hosts: map[string][]string{}}
	dns.set("a.test", "127.0.0.2")
	// While gate is not nil, lookups wait for it: the resolver is quiet.
	var gateMu sync.Mutex
	var gate chan struct{}
	setGate := func(closed bool) {
		gateMu.Lock()
		defer gateMu.Unlock()
		if closed && gate == nil {
			gate = make(chan struct{})
		} else if !closed && gate != nil {
			close(gate)
			gate = nil
		}
	}
	lookup := func(ctx context.Context, host string) ([]string, error) {
		gateMu.Lock()
		g := gate
		gateMu.Unlock()
		if g != nil {
			select {
			case <-g:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return dns.lookup(ctx, host)
	}
	var at atomic.Value // the address a.test resolves to
	at.Store("127.0.0.2")
	// lookedUp waits, up to 10s, until the resolver has made a whole
	// lookup after now (and so moved the connections it found).
	lookedUp := func() {
		n := dns.lookups.Load()
		for deadline := time.Now().Add(10 * time.Second); dns.lookups.Load() < n+2; {
			if time.Now().After(deadline) {
				t.Error("the resolver made no lookup in 10s")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	move := func(to string) {
		at.Store(to)
		dns.set("a.test", to)
		setGate(false)
		lookedUp()
	}
	var left, moved atomic.Int32
	hook := func(where string) {
		if where != "dialed" || left.Add(-1) < 0 {
			return
		}
		// The connect reached the address a.test gave when it began;
		// the name moves to the other one, and the resolver retires
		// what it finds before this connection is stored.
		to := "127.0.0.1"
		if at.Load() == to {
			to = "127.0.0.2"
		}
		move(to)
		setGate(true)
		moved.Add(1)
	}
	name := fmt.Sprintf("a.test:%d", port)
	c, err := memcached.New([]string{name}, memcached.WithConns(1), memcached.WithTimeout(2*time.Second),
		memcached.WithResolveInterval(5*time.Millisecond), memcached.WithResolver(lookup),
		memcached.WithTestHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setGate(false); c.Close() })
	lookedUp()
	// A first connection, to 127.0.0.2: the server is known to speak the
	// meta protocol, so the next connect sends its hello ahead of the
	// first request.
	setValue(t, c, "k", "at 127.0.0.2", 0)
	rawCommand(t, one.Addr, "set k 0 0 12\r\nat 127.0.0.1\r\n", "STORED\r\n")

	// a.test moves to 127.0.0.1: the connection to 127.0.0.2 is retired.
	move("127.0.0.1")
	left.Store(int32(moves))
	for i := range 3 {
		var it backend.Item
		var err error
		if call == "Get" {
			it, err = c.Get(context.Background(), "k")
		} else {
			var got map[string]backend.Item
			if got, err = c.GetMulti(context.Background(), []string{"k"}); err == nil {
				it = got["k"]
			}
		}
		if err != nil {
			t.Fatalf("%s %d: %v", call, i, err)
		}
		if want := "at " + at.Load().(string); string(it.Value) != want {
			t.Fatalf("%s %d, a.test at %s, read %q from the address it left", call, i, at.Load(), it.Value)
		}
		if got := moved.Load(); got != int32(moves) {
			t.Fatalf("a.test moved during %d connects, want %d", got, moves)
		}
	}
}

// proxiedConn is a connection whose remote address is a proxy's, as a
// connection a SOCKS or HTTP CONNECT dialer returns.
type proxiedConn struct{ net.Conn }

func (proxiedConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(10, 9, 9, 9), Port: 1080}
}

// TestResolveDialerThroughProxy: with discovery and a dialer (WithDialer)
// whose connections name a proxy as their remote address, not the
// address dialed, calls are served and the connections stay, lookup
// after lookup (every 20ms). A
// connection was told from one to an old address by its RemoteAddr: each
// was retired as soon as it was stored, and every call failed with
// "connection retired" after five connects.
func TestResolveDialerThroughProxy(t *testing.T) {
	srv := testserver.Memcached(t)
	dns := &fakeDNS{hosts: map[string][]string{}}
	dns.set("a.test", "127.0.0.1")
	var dials atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return proxiedConn{nc}, nil
	}
	c, err := memcached.New([]string{fmt.Sprintf("a.test:%d", srv.Port)},
		memcached.WithTimeout(2*time.Second), memcached.WithResolveInterval(20*time.Millisecond),
		memcached.WithResolver(dns.lookup), memcached.WithDialer(dial), memcached.WithConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	servedAfterLookups(t, c, dns)
	if n := dials.Load(); n > 2 {
		t.Errorf("%d connects for 40 calls on one connection over lookups every 20ms, want at most 2 (the handshake's and the pool's)", n)
	}
}

// TestResolveAddressNotCanonical: a resolver (WithResolver: a discovery
// service of the program's own) that gives an address in another form
// than the connection's RemoteAddr prints ("::ffff:127.0.0.1", an IPv4
// address mapped into IPv6; RemoteAddr says 127.0.0.1) is served too:
// the connection was retired as soon as it was stored, and every call
// failed with "connection retired".
func TestResolveAddressNotCanonical(t *testing.T) {
	srv := testserver.Memcached(t)
	dns := &fakeDNS{hosts: map[string][]string{}}
	dns.set("a.test", "::ffff:127.0.0.1")
	c, err := memcached.New([]string{fmt.Sprintf("a.test:%d", srv.Port)},
		memcached.WithTimeout(2*time.Second), memcached.WithResolveInterval(20*time.Millisecond),
		memcached.WithResolver(dns.lookup), memcached.WithConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	servedAfterLookups(t, c, dns)
}

// servedAfterLookups waits until dns has been asked twice (the first
// lookup is made in the background), then checks that 20 Sets and Gets
// through c succeed.
func servedAfterLookups(t *testing.T, c *memcached.Client, dns *fakeDNS) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); dns.lookups.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not two lookups of a.test in 10s")
		}
	}
	ctx := context.Background()
	for i := range 20 {
		k := fmt.Sprintf("key-%d", i)
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatalf("Set %s: %v", k, err)
		}
		if it, err := c.Get(ctx, k); err != nil || string(it.Value) != "v" {
			t.Fatalf("Get %s: %q, %v", k, it.Value, err)
		}
	}
}
