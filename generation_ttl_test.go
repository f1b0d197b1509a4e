package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
	"github.com/memdict/memdict/tool"
)

// genLeft returns the generation key of prefix's TTL left on be (0: none),
// or fails the test if the key is absent.
func genLeft(t *testing.T, be backend.Backend, prefix string) time.Duration {
	t.Helper()
	it, err := backend.GetTTL(context.Background(), be, genKey(prefix))
	if err != nil {
		t.Fatalf("the generation key of %q: %v", prefix, err)
	}
	return it.TTL
}

// checkLeft fails the test unless the generation key of prefix has want
// left to live, within slack.
func checkLeft(t *testing.T, be backend.Backend, prefix, when string, want, slack time.Duration) {
	t.Helper()
	if left := genLeft(t, be, prefix); left < want-slack || left > want+slack {
		t.Fatalf("%s: the generation key has %v left to live, want %v", when, left, want)
	}
}

// A namespace's generation key is stored with a TTL when a Dict first uses
// the namespace, and Clear keeps it: before, the key never expired, and a
// program with a prefix per user left one key per user for good on a
// server that evicts nothing (a Redis with noeviction). On every backend,
// memcached's TTLs of 30 days and more (sent as a Unix time) included.
func TestGenerationTTLOnCreateAndClear(t *testing.T) {
	ctx := context.Background()
	backends := []struct {
		name  string
		be    func(t *testing.T) backend.Backend
		slack time.Duration // the backend's rounding and the test's time
	}{
		{"memory", func(t *testing.T) backend.Backend { be, _ := memdicttest.NewBackend(t); return be }, 0},
		{"memcached", func(t *testing.T) backend.Backend { return openURL(t, "memcached://"+testserver.Memcached(t).Addr) }, 5 * time.Second},
		{"redis", func(t *testing.T) backend.Backend { return openURL(t, "redis://"+testserver.Redis(t).Addr) }, 5 * time.Second},
	}
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.be(t)
			d := newDict[string](t, be, "p")
			if _, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
				t.Fatalf("Lookup: %v, %v; want a miss", ok, err)
			}
			checkLeft(t, be, "p", "created", memdict.DefaultGenerationTTL, bc.slack)
			// Another TTL, and the key without one: Clear gives it.
			if err := be.Touch(ctx, genKey("p"), 0); err != nil {
				t.Fatal(err)
			}
			short := newDict[string](t, be, "p", memdict.WithGenerationTTL(time.Hour))
			if err := short.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			checkLeft(t, be, "p", "after a Clear", time.Hour, bc.slack)
			if err := d.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			checkLeft(t, be, "p", "after a Clear", memdict.DefaultGenerationTTL, bc.slack)
			// A key lost is added back with the TTL by a Dict that knows it.
			if err := be.Delete(ctx, genKey("p")); err != nil {
				t.Fatal(err)
			}
			memdict.MarkGenerationDue(d)
			if _, _, err := d.Lookup(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			checkLeft(t, be, "p", "written back", memdict.DefaultGenerationTTL, bc.slack)
			// A negative TTL: none, as before.
			forever := newDict[string](t, be, "forever", memdict.WithGenerationTTL(-1))
			if err := forever.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			checkLeft(t, be, "forever", "no TTL", 0, 0)
		})
	}
}

// A Dict of a Tool, whose settings are its plugin's, stores the key with
// the same TTL; a plugin's generation_ttl sets another.
func TestGenerationTTLTool(t *testing.T) {
	ctx := context.Background()
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{
		tool.DefaultPlugin: tool.DefaultPluginConfig("mem://"),
		"short":            withPlugin(tool.DefaultPluginConfig("mem://"), func(pc *tool.PluginConfig) { pc.GenerationTTL = time.Hour }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	for _, c := range []struct {
		plugin string
		want   time.Duration
	}{{"", memdict.DefaultGenerationTTL}, {"short", time.Hour}} {
		d, err := tool.Dict[string](tl, "p", c.plugin)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		be, err := tl.Backend(ctx, c.plugin)
		if err != nil {
			t.Fatal(err)
		}
		checkLeft(t, be, "p", fmt.Sprintf("plugin %q", c.plugin), c.want, time.Second)
	}
}

// withPlugin returns pc changed by f.
func withPlugin(pc tool.PluginConfig, f func(*tool.PluginConfig)) tool.PluginConfig {
	f(&pc)
	return pc
}

// A Dict that uses its namespace renews the key's TTL, at most once each
// tenth of it: the key of a namespace in use never expires, and a refresh
// does not write. Another Dict that finds the key renewed within the tenth
// does not touch it again.
func TestGenerationTTLRenewedInUse(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	f := memdicttest.NewFaulty(mem)
	d := newDict[string](t, f, "p", memdict.WithClock(clock.Now))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	gen, _ := d.Generation(ctx)
	ttl, keep := memdict.DefaultGenerationTTL, memdict.DefaultGenerationTTL/10
	use := func(d *memdict.Dict[string]) {
		t.Helper()
		memdict.MarkGenerationDue(d)
		if v, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || v != "v" {
			t.Fatalf("Lookup = %q, %v, %v; want v", v, ok, err)
		}
		memdict.WaitGenerationRenewals(d)
	}
	clock.Advance(keep / 2)
	use(d)
	checkLeft(t, mem, "p", "within a tenth", ttl-keep/2, 0)
	if n := f.Calls(memdicttest.OpTouch); n != 0 {
		t.Fatalf("%d touches within a tenth of the TTL, want none", n)
	}
	clock.Advance(keep / 2)
	use(d)
	checkLeft(t, mem, "p", "a tenth after", ttl, 0)
	// Ten times the TTL in use: the key stays, with the generation.
	for range 100 {
		clock.Advance(keep)
		use(d)
	}
	if g := storedGen(t, mem, "p"); g != gen {
		t.Fatalf("the stored generation is %d after 10 TTLs in use, want %d", g, gen)
	}
	if n := f.Calls(memdicttest.OpTouch); n != 101 {
		t.Fatalf("%d touches over 101 tenths of the TTL, want 101", n)
	}
	// A new Dict (a short-lived one: one per request) finds the key
	// renewed: it does not touch it.
	clock.Advance(keep / 2)
	use(newDict[string](t, f, "p", memdict.WithClock(clock.Now)))
	if n := f.Calls(memdicttest.OpTouch); n != 101 {
		t.Fatalf("a new Dict touched the key renewed %v ago", keep/2)
	}
	// One that finds it older renews it: Dicts made and dropped keep the
	// key of the namespace they use alive too.
	clock.Advance(keep)
	use(newDict[string](t, f, "p", memdict.WithClock(clock.Now)))
	checkLeft(t, mem, "p", "renewed by a new Dict", ttl, 0)
}

// The key of a namespace no Dict uses expires with its TTL; the next Dict
// to use the namespace adds a new generation, under which the entries of
// the old one are misses, never served.
func TestGenerationTTLExpiresUnused(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	d := newDict[string](t, mem, "p", memdict.WithClock(clock.Now))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(memdict.DefaultGenerationTTL + time.Second)
	if _, err := mem.Get(ctx, genKey("p")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the generation key of an unused namespace after its TTL: %v, want ErrNotFound", err)
	}

	// A namespace whose generation a Clear long ago made (its time:
	// the new one, of this second, is later).
	const old = 1000
	if err := mem.Add(ctx, backend.Item{Key: genKey("q"), Value: []byte(strconv.Itoa(old)), TTL: memdict.DefaultGenerationTTL}); err != nil {
		t.Fatal(err)
	}
	q := newDict[string](t, mem, "q", memdict.WithClock(clock.Now))
	if err := q.Store(ctx, "k", "old"); err != nil {
		t.Fatal(err)
	}
	if g, _ := q.Generation(ctx); g != old {
		t.Fatalf("generation %d, want %d", g, old)
	}
	clock.Advance(memdict.DefaultGenerationTTL + time.Second)
	n := newDict[string](t, mem, "q", memdict.WithClock(clock.Now))
	if v, ok, err := n.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("Lookup after the key expired = %q, %v, %v; want a miss", v, ok, err)
	}
	if g := storedGen(t, mem, "q"); g <= old {
		t.Fatalf("stored generation %d after the key expired, want a new one after %d", g, old)
	}
	checkLeft(t, mem, "q", "the new generation", memdict.DefaultGenerationTTL, 0)
}

// A Dict that never reads its generation again (a negative refresh) still
// renews the key while it is used: before, the key expired under it, and
// a new Dict added another generation, so that the two no longer shared
// their values.
func TestGenerationTTLNeverRefresh(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	// The real clock: what goes stale each tenth is the view's timer.
	const ttl = memdict.MinGenerationTTL
	d := newDict[string](t, mem, "p", memdict.WithGenerationRefresh(-1), memdict.WithGenerationTTL(ttl))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if _, _, err := d.Lookup(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	memdict.WaitGenerationRenewals(d)
	if _, err := mem.Get(ctx, genKey("p")); err != nil {
		t.Fatalf("the generation key of a namespace in use, after 2 TTLs: %v", err)
	}
	n := newDict[string](t, mem, "p")
	if v, ok, err := n.Lookup(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("a new Dict's Lookup = %q, %v, %v; want v", v, ok, err)
	}
}

// A GenerationTTL under MinGenerationTTL is refused, naming it, by New,
// by SharedSettings and by a Tool's plugin configuration: a tenth of a
// millisecond TTL had the generation read again on almost every call,
// and one under 10ns was never renewed (its tenth was 0).
func TestGenerationTTLTooShort(t *testing.T) {
	mem := memory.New()
	defer mem.Close()
	for _, d := range []time.Duration{time.Nanosecond, 9 * time.Nanosecond, time.Millisecond, memdict.MinGenerationTTL - 1} {
		if _, err := memdict.New[string](mem, "p", memdict.WithGenerationTTL(d)); err == nil || !strings.Contains(err.Error(), "GenerationTTL "+d.String()) {
			t.Errorf("New with WithGenerationTTL(%v): %v; want an error naming GenerationTTL %v", d, err, d)
		}
		if err := (memdict.Settings{GenerationTTL: d}).Validate(); err == nil {
			t.Errorf("Settings{GenerationTTL: %v}.Validate() = nil", d)
		}
		pc := tool.DefaultPluginConfig("memory://")
		pc.GenerationTTL = d
		if err := pc.Validate(); err == nil || !strings.Contains(err.Error(), "generation_ttl") {
			t.Errorf("a plugin with generation_ttl %v: %v; want an error naming generation_ttl", d, err)
		}
	}
	for _, d := range []time.Duration{0, -1, memdict.MinGenerationTTL, memdict.DefaultGenerationTTL} {
		if _, err := memdict.New[string](mem, "p", memdict.WithGenerationTTL(d)); err != nil {
			t.Errorf("New with WithGenerationTTL(%v): %v", d, err)
		}
	}
}

// A client that may not write (a replica, an ACL user that may only read)
// has its touch refused: its reads go on, and it tries again a tenth of
// the TTL later, not at each refresh.
func TestGenerationTTLTouchRefused(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	w := newDict[string](t, mem, "p", memdict.WithClock(clock.Now))
	if err := w.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	f := memdicttest.NewFaulty(mem)
	f.FailOp(memdicttest.OpTouch, fmt.Errorf("touch: %w: READONLY", backend.ErrWriteRefused))
	ro := newDict[string](t, f, "p", memdict.WithClock(clock.Now))
	keep := memdict.DefaultGenerationTTL / 10
	for i := range 20 {
		clock.Advance(keep / 4)
		memdict.MarkGenerationDue(ro)
		if v, ok, err := ro.Lookup(ctx, "k"); err != nil || v != "v" {
			t.Fatalf("read-only Lookup %d = %q, %v, %v; want v", i, v, ok, err)
		}
		memdict.WaitGenerationRenewals(ro)
	}
	// 20 refreshes over five tenths of the TTL: one touch each tenth.
	if n := f.Calls(memdicttest.OpTouch); n != 5 {
		t.Fatalf("%d refused touches over five tenths of the TTL, want 5", n)
	}
}

// A Redis ACL user that may only read (+@read) may not run the script
// that reads a key's TTL: its Dicts read the generation with a plain GET,
// and do not touch the key. Before the fallback, every new Dict of such a
// user failed its first call ("authentication failed"), where it read
// the writer's values; ten of them here, on one backend, so that the
// refused scripts would also mark the server down if they counted as its
// failures.
func TestGenerationTTLReadOnlyUser(t *testing.T) {
	ctx := context.Background()
	p := testserver.Redis(t, "--user", "rw", "on", ">rwpw", "~*", "&*", "+@all",
		"--user", "ro", "on", ">ropw", "~*", "&*", "+@read", "+@connection",
		"--user", "default", "off")
	w := newDict[string](t, openURL(t, "redis://rw:rwpw@"+p.Addr+"/0"), "p")
	if err := w.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	ro := openURL(t, "redis://ro:ropw@"+p.Addr+"/0")
	for i := range 10 {
		d := newDict[string](t, ro, "p")
		if v, ok, err := d.Lookup(ctx, "k"); err != nil || v != "v" {
			t.Fatalf("read-only Dict %d: Lookup = %q, %v, %v; want v", i, v, ok, err)
		}
	}
}
