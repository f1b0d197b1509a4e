package memdicttest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

func TestNewDictClock(t *testing.T) {
	d, clock := memdicttest.NewDict[string](t, "p", memdict.WithDefaultTTL(time.Minute))
	if err := d.Put("k", "v"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if _, ok := d.Get("k"); !ok {
		t.Fatal("expired early")
	}
	clock.Advance(time.Second)
	if _, ok := d.Get("k"); ok {
		t.Fatal("did not expire")
	}
}

func TestFaulty(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d, err := memdict.New[int](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", 1); err != nil {
		t.Fatal(err)
	}

	f.FailNext(2, nil)
	if _, _, err := d.Lookup(ctx, "k"); !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "injected fault in get") {
		t.Fatalf("first failing Lookup: %v", err)
	}
	if err := d.Put("k", 2); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("second failing call: %v", err)
	}
	if v, ok := d.Get("k"); !ok || v != 1 {
		t.Fatalf("third call = %v, %v; want the old value", v, ok)
	}

	boom := errors.New("boom")
	f.FailOp(memdicttest.OpSet, boom)
	if err := d.Put("k", 3); !errors.Is(err, boom) {
		t.Fatalf("FailOp(set): %v", err)
	}
	if _, ok := d.Get("k"); !ok {
		t.Fatal("FailOp(set) failed a get")
	}

	f.ClearFaults()
	f.SetDown(true)
	if _, ok := d.Get("k"); ok {
		t.Fatal("a down server answered")
	}
	if _, _, err := d.Lookup(ctx, "k"); !errors.Is(err, memdict.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	f.SetDown(false)
	if v, ok := d.Get("k"); !ok || v != 1 {
		t.Fatalf("after recovery = %v, %v", v, ok)
	}

	f.SetLatency(time.Hour)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := d.Lookup(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latency with deadline: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("latency ignored the deadline")
	}
	f.SetLatency(0)

	before := f.Calls(memdicttest.OpGet)
	d.Get("k")
	d.Get("k")
	if got := f.Calls(memdicttest.OpGet) - before; got != 2 {
		t.Fatalf("two Gets counted as %d calls of get", got)
	}
	if f.Calls(memdicttest.OpDelete) != 0 {
		t.Fatal("calls counted under the wrong operation")
	}

	// Optional abilities are forwarded.
	var keys []string
	for k, err := range f.Keys(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// The value's key and the Dict's generation key.
	slices.Sort(keys)
	if want := []string{d.GenerationKey(), d.BackendKey("k")}; !slices.Equal(keys, want) {
		t.Fatalf("Keys = %q, want %q", keys, want)
	}
	if st, err := f.ServerStats(ctx); err != nil || len(st) != 1 {
		t.Fatalf("ServerStats = %v, %v", st, err)
	}
	if err := f.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	f.FailOp(memdicttest.OpPing, nil)
	if err := f.Ping(ctx); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Ping with fault: %v", err)
	}
}

// A service that falls back to computing when its cache is out.
func price(d *memdict.Dict[int], item string) (int, string) {
	ctx := context.Background()
	if v, ok, err := d.Lookup(ctx, item); err == nil && ok {
		return v, "cache"
	}
	v := len(item) * 100
	_ = d.Store(ctx, item, v)
	return v, "computed"
}

func Example() {
	// In a test: d, clock := memdicttest.NewDict[int](t, "prices")
	f := memdicttest.NewFaulty(memory.New())
	d, _ := memdict.New[int](f, "prices")

	fmt.Println(price(d, "tea"))
	fmt.Println(price(d, "tea"))
	f.SetDown(true) // the cache server dies
	fmt.Println(price(d, "tea"))
	// Output:
	// 300 computed
	// 300 cache
	// 300 computed
}

// FailKeys fails the matching keys only, and GetMulti names them in a
// *backend.MultiError while returning the others, as a backend with one of
// several servers down does.
func TestFaultyFailKeys(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	for _, k := range []string{"a1", "a2", "b1"} {
		if err := f.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	f.FailKeys(func(k string) bool { return strings.HasPrefix(k, "a") }, nil)
	items, err := f.GetMulti(ctx, []string{"a1", "a2", "b1", "b2"})
	kes, ok := backend.KeyErrors(err)
	if !ok || len(kes) != 2 || kes[0].Key != "a1" || kes[1].Key != "a2" || !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("GetMulti error %v, want a *backend.MultiError naming a1 and a2", err)
	}
	if len(items) != 1 || string(items["b1"].Value) != "b1" {
		t.Errorf("GetMulti items %v, want b1 only", items)
	}
	if _, err := f.Get(ctx, "a1"); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Get(a1) = %v", err)
	}
	if err := f.Set(ctx, backend.Item{Key: "a3", Value: []byte("x")}); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Set(a3) = %v", err)
	}
	if _, err := f.Get(ctx, "b1"); err != nil {
		t.Errorf("Get(b1) = %v", err)
	}
	f.ClearFaults()
	if _, err := f.GetMulti(ctx, []string{"a1", "a2"}); err != nil {
		t.Errorf("GetMulti after ClearFaults: %v", err)
	}
}

// A Faulty keeps the abilities of what it wraps, so that a Dict over it
// runs the code it runs in production: over memcached, GetOrLoad takes
// the server's fill leases through the Faulty (not lock keys), PutMulti
// writes in one SetMulti; and the faults reach those abilities too.
func TestFaultyAbilities(t *testing.T) {
	ctx := context.Background()
	mc := testserver.Memcached(t)
	c, err := memcached.New([]string{mc.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := memdicttest.NewFaulty(c)
	d, err := memdict.New[string](f, "abilities-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		t.Fatal(err)
	}
	// The Dict stores its namespace generation (an add) first.
	if _, err := d.Generation(ctx); err != nil {
		t.Fatal(err)
	}
	adds := f.Calls(memdicttest.OpAdd)
	load := func(context.Context, string) (string, error) { return "loaded", nil }
	if v, err := d.GetOrLoad(ctx, "k", load); err != nil || v != "loaded" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	if f.Calls(memdicttest.OpGetLease) == 0 || f.Calls(memdicttest.OpTryLock) != 0 || f.Calls(memdicttest.OpAdd) != adds {
		t.Fatalf("GetOrLoad through the Faulty: %d getlease, %d trylock, %d add calls; want memcached's leases",
			f.Calls(memdicttest.OpGetLease), f.Calls(memdicttest.OpTryLock), f.Calls(memdicttest.OpAdd)-adds)
	}
	if err := d.PutMulti(ctx, map[string]string{"a": "1", "b": "2", "c": "3"}); err != nil {
		t.Fatal(err)
	}
	if f.Calls(memdicttest.OpSetMulti) != 1 || f.Calls(memdicttest.OpSet) != 0 {
		t.Fatalf("PutMulti through the Faulty: %d setmulti, %d set calls; want one SetMulti", f.Calls(memdicttest.OpSetMulti), f.Calls(memdicttest.OpSet))
	}

	// A fault in the leases: GetOrLoad treats the failed read as a miss
	// and loads.
	f.FailOp(memdicttest.OpGetLease, nil)
	leases := f.Calls(memdicttest.OpGetLease)
	var loads int
	if v, err := d.GetOrLoad(ctx, "n", func(context.Context, string) (string, error) { loads++; return "new", nil }); err != nil || v != "new" || loads != 1 {
		t.Fatalf("GetOrLoad with failing leases = %q, %v after %d loads; want one load", v, err, loads)
	}
	if f.Calls(memdicttest.OpGetLease) == leases {
		t.Fatal("GetOrLoad made no lease call to fail")
	}
	f.ClearFaults()

	// FailKeys on the keys of a SetMulti: the others are written, the
	// failed one named.
	bad := d.BackendKey("b")
	f.FailKeys(func(k string) bool { return k == bad }, nil)
	err = d.PutMulti(ctx, map[string]string{"a": "x", "b": "y", "c": "z"})
	var me *memdict.MultiError
	if !errors.As(err, &me) || len(me.Failed) != 1 || me.Failed[0].Key != "b" || !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("PutMulti with b failing = %v; want a MultiError naming b", err)
	}
	f.ClearFaults()
	got, err := d.GetMulti(ctx, []string{"a", "b", "c"})
	if err != nil || got["a"] != "x" || got["b"] != "2" || got["c"] != "z" {
		t.Fatalf("after the PutMulti, GetMulti = %v, %v", got, err)
	}
	if f.Calls(memdicttest.OpSetMulti) != 2 {
		t.Fatalf("%d SetMulti calls, want 2", f.Calls(memdicttest.OpSetMulti))
	}
	// And the failed SetMulti as a whole.
	f.FailOp(memdicttest.OpSetMulti, nil)
	if err := d.PutMulti(ctx, map[string]string{"a": "1", "b": "2"}); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("PutMulti with SetMulti failing = %v", err)
	}
	// A property (the server of a key) is answered even by a Faulty that
	// plays a server that is down: it takes no I/O.
	f.SetDown(true)
	if got := backend.ServerFor(f, "k"); got != mc.Addr {
		t.Fatalf("ServerFor through a down Faulty = %q, want %q", got, mc.Addr)
	}
}

// Over a backend without leases, a Faulty says so at the call, and a
// Dict over it uses lock keys, whose calls the faults reach.
func TestFaultyLocks(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d, _ := memdict.New[string](f, "locks")
	f.FailOp(memdicttest.OpTryLock, nil)
	var loads int
	if v, err := d.GetOrLoad(ctx, "k", func(context.Context, string) (string, error) { loads++; return "v", nil }); err != nil || v != "v" || loads != 1 {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	if f.Calls(memdicttest.OpGetLease) == 0 || f.Calls(memdicttest.OpTryLock) == 0 {
		t.Fatalf("%d getlease, %d trylock calls", f.Calls(memdicttest.OpGetLease), f.Calls(memdicttest.OpTryLock))
	}
}

// timed is a backend that says the bound of its calls.
type timed struct{ backend.Backend }

func (timed) Timeout() time.Duration { return 42 * time.Millisecond }

// Faulty says the timeout of the backend it wraps, so that a Dict over it
// bounds its calls as over that backend.
func TestFaultyTimeout(t *testing.T) {
	s := memory.New()
	defer s.Close()
	if got := backend.Timeout(memdicttest.NewFaulty(timed{s})); got != 42*time.Millisecond {
		t.Errorf("Timeout of a Faulty over a backend with a 42ms timeout = %v", got)
	}
	if got := backend.Timeout(memdicttest.NewFaulty(s)); got != 0 {
		t.Errorf("Timeout of a Faulty over the memory backend = %v, want 0", got)
	}
}
