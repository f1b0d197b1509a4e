package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

// readOnlyRefresh is the generation refresh of the read-only Dicts below:
// short, so that they follow a writer's generation quickly.
const readOnlyRefresh = 20 * time.Millisecond

// checkReadOnly checks a read-only Dict ro on a namespace without a
// generation key, whose keys the writer w (on the same data) then stores:
// ro reads misses and lists nothing, not errors (before, every Lookup and
// Keys failed with the refused add of the generation); its writes fail,
// naming the prefix and the refusal, and store nothing (raw counts the
// server's keys); once w stores a value, ro reads it within a refresh.
func checkReadOnly(t *testing.T, ro, w *memdict.Dict[string], prefix string, raw func() int) {
	t.Helper()
	ctx := context.Background()
	if v, ok, err := ro.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("read-only Lookup = %q, %v, %v; want a miss", v, ok, err)
	}
	for k, err := range ro.Keys(ctx) {
		t.Fatalf("read-only Keys: %q, %v; want none", k, err)
	}
	err := ro.Store(ctx, "k", "lost")
	if !errors.Is(err, memdict.ErrWriteRefused) || !strings.Contains(err.Error(), fmt.Sprintf("%q", prefix)) {
		t.Fatalf("read-only Store: %v; want ErrWriteRefused naming prefix %q", err, prefix)
	}
	t.Logf("read-only Store: %v", err)
	checkNoInternalKey(t, "Store", err.Error())
	if _, err := ro.Add(ctx, "k", "lost"); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("read-only Add: %v; want ErrWriteRefused", err)
	}
	if err := ro.PutMulti(ctx, map[string]string{"k": "lost"}); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("read-only PutMulti: %v; want ErrWriteRefused", err)
	}
	if n := raw(); n != 0 {
		t.Fatalf("the server holds %d keys after the read-only Dict's writes, want none", n)
	}

	if err := w.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok, err := ro.Lookup(ctx, "k")
		if err != nil {
			t.Fatalf("read-only Lookup after the write: %v", err)
		}
		if ok && v == "v" {
			break
		}
		if ok || time.Now().After(deadline) {
			t.Fatalf("read-only Lookup after the write = %q, %v; want the writer's %q", v, ok, "v")
		}
		time.Sleep(readOnlyRefresh)
	}
	var keys []string
	for k, err := range ro.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("read-only Keys after the write: %q, want [k]", keys)
	}
	g, _ := ro.Generation(ctx)
	if wg, _ := w.Generation(ctx); g != wg {
		t.Fatalf("read-only Dict's generation %d, the writer's %d", g, wg)
	}
}

// A Redis ACL user that may only read (NOPERM on the add of the
// generation), on a namespace without a generation key.
func TestGenerationReadOnlyUser(t *testing.T) {
	p := testserver.Redis(t, "--user", "rw", "on", ">rwpw", "~*", "&*", "+@all",
		"--user", "ro", "on", ">ropw", "~*", "&*", "+@read", "+@connection",
		"--user", "default", "off")
	rc := goredis.NewClient(&goredis.Options{Addr: p.Addr, Username: "rw", Password: "rwpw"})
	t.Cleanup(func() { rc.Close() })
	ro := newDict[string](t, openURL(t, "redis://ro:ropw@"+p.Addr+"/0"), "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	w := newDict[string](t, openURL(t, "redis://rw:rwpw@"+p.Addr+"/0"), "p")
	checkReadOnly(t, ro, w, "p", func() int { return int(rc.DBSize(context.Background()).Val()) })
}

// A Dict on a Redis replica (READONLY on the add of the generation), on a
// namespace without a generation key, whose writer uses the primary.
func TestGenerationReadOnlyReplica(t *testing.T) {
	ctx := context.Background()
	// No delay before the replica's first sync (5s by default); the
	// replica writes the primary's data to a dump.rdb in its --dir, which
	// a server started later in the same directory would load.
	primary := testserver.Redis(t, "--repl-diskless-sync-delay", "0", "--dir", t.TempDir())
	replica := testserver.Redis(t, "--dir", t.TempDir())
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
	t.Cleanup(func() { rc.Close() })
	if err := rc.Do(ctx, "replicaof", "127.0.0.1", primary.Port).Err(); err != nil {
		t.Fatal(err)
	}
	ro := newDict[string](t, openURL(t, "redis://"+replica.Addr+"/0"), "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	w := newDict[string](t, openURL(t, "redis://"+primary.Addr+"/0"), "p")
	checkReadOnly(t, ro, w, "p", func() int { return int(rc.DBSize(ctx).Val()) })
}

// An ACL that lets a client write data keys but not the generation key:
// the Dict reads the namespace as empty, and its writes fail rather than
// go to a generation no other Dict reads. A failure of another kind (the
// server unavailable) still fails the read, as TestGenerationAddFailsNoGenerationZero
// checks.
func TestGenerationAddRefusedWritesFail(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	f := memdicttest.NewFaulty(mem)
	f.FailOp(memdicttest.OpAdd, fmt.Errorf("add: %w: NOPERM", backend.ErrWriteRefused))
	ro := newDict[string](t, f, "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	count := func() int {
		n := 0
		for _, err := range backend.Keys(ctx, mem, "") {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	c, err := memdict.NewCounters(f, "c")
	if err != nil {
		t.Fatal(err)
	}
	if n, found, err := c.Get(ctx, "n"); err != nil || found {
		t.Fatalf("counter Get = %d, %v, %v; want none", n, found, err)
	}
	if _, err := c.Add(ctx, "n", 1); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("counter Add: %v; want ErrWriteRefused", err)
	}
	v, err := ro.GetOrLoad(ctx, "g", func(context.Context, string) (string, error) { return "loaded", nil })
	if err != nil || v != "loaded" {
		t.Fatalf("GetOrLoad = %q, %v; want the loaded value", v, err)
	}
	checkReadOnly(t, ro, newDict[string](t, mem, "p"), "p", count)
}

// refusedDuring is a backend whose first add of key is refused as to a
// client that may not write (a Sentinel's demoted master answering
// READONLY), after during ran with the value of that add.
type refusedDuring struct {
	backend.Backend
	key     string
	during  func(value []byte)
	refused atomic.Bool
}

func (b *refusedDuring) Add(ctx context.Context, it backend.Item) error {
	if it.Key == b.key && b.refused.CompareAndSwap(false, true) {
		b.during(it.Value)
		return fmt.Errorf("add: %w: READONLY You can't write against a read only replica.", backend.ErrWriteRefused)
	}
	return b.Backend.Add(ctx, it)
}

// A Dict's add of the generation is refused (a Sentinel's demoted master
// answering READONLY) while a Clear of the same Dict stores a generation
// (on the new master). The view of the refused add, whose read began
// before the Clear, replaced the Clear's when its generation was no older
// (the same second): the Dict's writes failed with ErrWriteRefused until
// its next refresh (an hour here), and it read under a generation no
// other Dict uses. The Clear's generation now stands.
func TestGenerationRefusedAddAfterClear(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	for try := 1; ; try++ {
		prefix := fmt.Sprintf("p%d", try)
		var d *memdict.Dict[string]
		var added, cleared uint64
		be := &refusedDuring{Backend: mem, key: genKey(prefix)}
		be.during = func(value []byte) {
			added, _ = strconv.ParseUint(string(value), 10, 64)
			if err := d.Clear(ctx); err != nil {
				t.Errorf("Clear: %v", err)
			}
			cleared = storedGen(t, mem, prefix)
		}
		d = newDict[string](t, be, prefix, memdict.WithGenerationRefresh(time.Hour))
		if v, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
			t.Fatalf("Lookup = %q, %v, %v; want a miss", v, ok, err)
		}
		if added != cleared {
			// A second ended between the two: the Clear's generation is
			// later, which install keeps anyway. Again, in another.
			if try == 5 {
				t.Fatalf("the refused add's generation %d, the Clear's %d, in each of %d tries", added, cleared, try)
			}
			continue
		}
		if err := d.Store(ctx, "k", "v"); err != nil {
			t.Fatalf("Store after the Clear: %v", err)
		}
		if g, err := d.Generation(ctx); err != nil || g != cleared {
			t.Fatalf("Generation = %d, %v; want the Clear's %d", g, err, cleared)
		}
		if v, _ := newDict[string](t, mem, prefix).Get("k"); v != "v" {
			t.Fatalf("another Dict reads %q, want %q", v, "v")
		}
		return
	}
}

// A read-only Dict (its add of the generation refused) with a negative
// generation refresh, which means never: it never read the key again, so
// that it read an empty namespace, and failed its writes, for good, the
// writer's value unseen (10 s here, before the fix). A view whose
// generation is not stored is read again each DefaultGenerationRefresh.
func TestGenerationReadOnlyNeverRefresh(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	f := memdicttest.NewFaulty(mem)
	f.FailOp(memdicttest.OpAdd, fmt.Errorf("add: %w: NOPERM", backend.ErrWriteRefused))
	ro := newDict[string](t, f, "p", memdict.WithGenerationRefresh(-1))
	if v, ok, err := ro.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("read-only Lookup = %q, %v, %v; want a miss", v, ok, err)
	}
	// The writer's generation is one a Clear made long ago, not the
	// read-only Dict's own (the time, which a writer adding a generation
	// in the same second shares).
	setGen(t, mem, "p", 1000)
	if err := newDict[string](t, mem, "p").Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * memdict.DefaultGenerationRefresh)
	for {
		v, ok, err := ro.Lookup(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if ok && v == "v" {
			break
		}
		if ok || time.Now().After(deadline) {
			t.Fatalf("read-only Lookup after the write = %q, %v; want the writer's %q", v, ok, "v")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GetOrLoad on a Dict whose client may not write (a Redis replica, which
// refuses every write: the generation's add, the fill lock, the fill)
// tried the key's lock on each miss and reported two errors, the lock's
// and the fill's, and read the key a second time. It now loads without
// the lock and reports the store it cannot make once; the loaded value is
// returned without an error, as when any store after a load fails.
func TestGenerationRefusedGetOrLoadOneError(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	f := memdicttest.NewFaulty(mem)
	for _, op := range []memdicttest.Op{memdicttest.OpAdd, memdicttest.OpSet, memdicttest.OpCompareAndSwap, memdicttest.OpTryLock} {
		f.FailOp(op, fmt.Errorf("%s: %w: READONLY You can't write against a read only replica.", op, backend.ErrWriteRefused))
	}
	var mu sync.Mutex
	var reported []error
	ro := newDict[string](t, f, "p", memdict.WithGenerationRefresh(time.Hour), memdict.WithErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}))
	if _, ok, err := ro.Lookup(ctx, "warm"); err != nil || ok { // reads the generation
		t.Fatalf("read-only Lookup = %v, %v; want a miss", ok, err)
	}
	gets, locks := f.Calls(memdicttest.OpGet), f.Calls(memdicttest.OpTryLock)
	const misses = 3
	for i := range misses {
		key := fmt.Sprint("k", i)
		loads := 0
		v, err := ro.GetOrLoad(ctx, key, func(context.Context, string) (string, error) { loads++; return "loaded " + key, nil })
		if err != nil || v != "loaded "+key || loads != 1 {
			t.Fatalf("GetOrLoad(%q) = %q, %v after %d loads; want the loaded value, no error, one load", key, v, err, loads)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range reported {
		t.Logf("reported: %v", err)
		if !errors.Is(err, memdict.ErrWriteRefused) || !strings.Contains(err.Error(), `prefix "p"`) {
			t.Errorf("reported %v; want ErrWriteRefused naming the prefix", err)
		}
	}
	if len(reported) != misses {
		t.Errorf("%d errors reported for %d misses, want one each", len(reported), misses)
	}
	if n := f.Calls(memdicttest.OpTryLock) - locks; n != 0 {
		t.Errorf("%d fill locks tried on a Dict that may not write, want none", n)
	}
	if n := f.Calls(memdicttest.OpGet) - gets; n != misses {
		t.Errorf("%d reads for %d misses, want one each", n, misses)
	}
}

// A writer whose add of the generation is refused during a Sentinel
// failover (the demoted master answers READONLY), on a namespace without
// a generation key, kept its view of a generation not stored until the
// view's refresh (a second by default, an hour here): its writes failed
// after the new master was up. A write now reads the generation again,
// and tries its add, at most once each 100ms (on the Dict's clock) while
// the view's generation is not stored.
func TestGenerationRefusedWriterRecovers(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	f := memdicttest.NewFaulty(mem)
	readOnly := func() {
		for _, op := range []memdicttest.Op{memdicttest.OpAdd, memdicttest.OpSet, memdicttest.OpCompareAndSwap} {
			f.FailOp(op, fmt.Errorf("%s: %w: READONLY You can't write against a read only replica.", op, backend.ErrWriteRefused))
		}
	}
	readOnly()
	d := newDict[string](t, f, "p", memdict.WithGenerationRefresh(time.Hour), memdict.WithClock(clock.Now))
	if err := d.Store(ctx, "k", "v"); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("Store during the failover: %v; want ErrWriteRefused", err)
	}
	// Still refused when the retry is due: it reads and adds once, fails.
	clock.Advance(100 * time.Millisecond)
	adds := f.Calls(memdicttest.OpAdd)
	for range 3 {
		if err := d.Store(ctx, "k", "v"); !errors.Is(err, memdict.ErrWriteRefused) {
			t.Fatalf("Store during the failover: %v; want ErrWriteRefused", err)
		}
	}
	if n := f.Calls(memdicttest.OpAdd) - adds; n != 1 {
		t.Fatalf("%d adds of the generation by 3 writes in a row, want 1", n)
	}

	f.ClearFaults() // the new master is up
	clock.Advance(99 * time.Millisecond)
	adds = f.Calls(memdicttest.OpAdd)
	if err := d.Store(ctx, "k", "v"); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("Store 99ms after the last retry: %v; want ErrWriteRefused (no retry yet)", err)
	}
	if n := f.Calls(memdicttest.OpAdd) - adds; n != 0 {
		t.Fatalf("%d adds of the generation within 100ms of the last, want none", n)
	}
	clock.Advance(time.Millisecond)
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatalf("Store 100ms after the last retry, the master up: %v", err)
	}
	if v, ok, err := newDict[string](t, mem, "p").Lookup(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("another Dict's Lookup = %q, %v, %v; want the stored %q", v, ok, err, "v")
	}
}

// GetOrLoad on a writer whose add of the generation was refused during a
// failover stores its loads again soon after the new master is up, as
// Store does (TestGenerationRefusedWriterRecovers): before, it loaded
// without storing until the view's refresh (an hour here), every miss a
// load, since its read took the view a write would have read again.
func TestGenerationRefusedGetOrLoadRecovers(t *testing.T) {
	ctx := context.Background()
	mem, clock := memdicttest.NewBackend(t)
	f := memdicttest.NewFaulty(mem)
	for _, op := range []memdicttest.Op{memdicttest.OpAdd, memdicttest.OpSet, memdicttest.OpCompareAndSwap, memdicttest.OpTryLock} {
		f.FailOp(op, fmt.Errorf("%s: %w: READONLY You can't write against a read only replica.", op, backend.ErrWriteRefused))
	}
	d := newDict[string](t, f, "p", memdict.WithGenerationRefresh(time.Hour), memdict.WithClock(clock.Now))
	loads := 0
	load := func(_ context.Context, key string) (string, error) { loads++; return "loaded " + key, nil }
	if v, err := d.GetOrLoad(ctx, "k", load); err != nil || v != "loaded k" {
		t.Fatalf("GetOrLoad during the failover = %q, %v; want the loaded value", v, err)
	}

	f.ClearFaults() // the new master is up
	clock.Advance(100 * time.Millisecond)
	for i := range 3 {
		if v, err := d.GetOrLoad(ctx, "k", load); err != nil || v != "loaded k" {
			t.Fatalf("GetOrLoad %d after the failover = %q, %v; want the loaded value", i, v, err)
		}
	}
	if loads != 2 {
		t.Fatalf("%d loads of one key: 1 during the failover and %d over 3 calls after it; want 1 after (stored, then read)", loads, loads-1)
	}
	if v, ok, err := newDict[string](t, mem, "p").Lookup(ctx, "k"); err != nil || !ok || v != "loaded k" {
		t.Fatalf("another Dict's Lookup = %q, %v, %v; want the loaded value, stored", v, ok, err)
	}
}
