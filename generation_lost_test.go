package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

// storedGen returns the generation the backend holds for prefix, or fails
// the test.
func storedGen(t *testing.T, be backend.Backend, prefix string) uint64 {
	t.Helper()
	it, err := be.Get(context.Background(), genKey(prefix))
	if err != nil {
		t.Fatalf("the generation key of %q: %v", prefix, err)
	}
	g, err := strconv.ParseUint(string(it.Value), 10, 64)
	if err != nil {
		t.Fatalf("the generation key of %q holds %q", prefix, it.Value)
	}
	return g
}

// setGen stores generation g for prefix, as a Clear long ago (or one
// ahead of this clock) would have.
func setGen(t *testing.T, be backend.Backend, prefix string, g uint64) {
	t.Helper()
	if err := be.Set(context.Background(), backend.Item{Key: genKey(prefix), Value: []byte(strconv.FormatUint(g, 10))}); err != nil {
		t.Fatal(err)
	}
}

// The memcached server holding a namespace's generation key restarts
// while the one holding its values does not, and every Dict that knew the
// generation is gone. A Dict made afterwards must not read generation 0,
// where the values written before the first Clear still are: before, it
// read "old", the value the Clear had dropped, until its TTL.
func TestGenerationKeyLostOnRestart(t *testing.T) {
	ctx := context.Background()
	genSrv, dataSrv := testserver.Memcached(t), testserver.Memcached(t)
	addrs := []string{genSrv.Addr, dataSrv.Addr}
	c, err := memcached.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	var prefix string
	for i := 0; prefix == ""; i++ {
		p := fmt.Sprintf("lost%d", i)
		if c.ServerFor(genKey(p)) == genSrv.Addr && c.ServerFor(dataKey(p, "k")) == dataSrv.Addr {
			prefix = p
		}
	}
	// Generation 0, as every namespace is before its first Clear (the
	// key absent, before the fix).
	setGen(t, c, prefix, 0)
	d := newDict[string](t, c, prefix)
	if err := d.Store(ctx, "k", "old"); err != nil {
		t.Fatal(err)
	}
	if err := d.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, "k", "new"); err != nil {
		t.Fatal(err)
	}
	cleared, _ := d.Generation(ctx)
	c.Close()

	genSrv.Restart(t)
	c2, err := memcached.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	if _, err := c2.Get(ctx, dataKey(prefix, "k")); err != nil {
		t.Fatalf("the value of generation 0 did not survive on the other server: %v", err)
	}
	if _, err := c2.Get(ctx, genKey(prefix)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the generation key after the restart: %v, want it lost", err)
	}

	d2 := newDict[string](t, c2, prefix)
	v, ok, err := d2.Lookup(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if ok && v != "new" {
		t.Fatalf("a Dict made after the generation key was lost reads %q, a value its Clear dropped", v)
	}
	g, _ := d2.Generation(ctx)
	if g < cleared || storedGen(t, c2, prefix) != g {
		t.Fatalf("new Dict's generation %d, stored %d; the Clear's was %d", g, storedGen(t, c2, prefix), cleared)
	}
	// Its writes are shared: another new Dict reads them.
	if err := d2.Store(ctx, "k", "newer"); err != nil {
		t.Fatal(err)
	}
	if v, _ := newDict[string](t, c2, prefix).Get("k"); v != "newer" {
		t.Fatalf("another new Dict reads %q", v)
	}
}

// Dicts made at once on a namespace without a generation key agree on
// one generation, the one stored, a time in Unix seconds as Clear makes.
func TestGenerationFirstDictsAgree(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	start := uint64(time.Now().Unix())
	const n = 16
	gens := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		d := newDict[string](t, be, "p")
		wg.Go(func() {
			g, err := d.Generation(ctx)
			if err != nil {
				t.Error(err)
			}
			gens[i] = g
		})
	}
	wg.Wait()
	stored := storedGen(t, be, "p")
	if stored < start {
		t.Fatalf("stored generation %d, want a time in Unix seconds (at least %d)", stored, start)
	}
	for i, g := range gens {
		if g != stored {
			t.Fatalf("Dict %d uses generation %d, the key holds %d", i, g, stored)
		}
	}
}

// A Dict that knew an old generation (a Clear long ago) and a Dict made
// after the key was lost, before the first wrote it back: the new one
// stores a new generation, which the old one takes at its refresh.
func TestGenerationKeyLostOldDictTakesNew(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	const refresh = 10 * time.Millisecond
	setGen(t, be, "p", 1000)
	old := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	_ = old.Put("k", "old")
	_ = be.Delete(ctx, genKey("p"))

	n := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	if g, _ := n.Generation(ctx); g <= 1000 {
		t.Fatalf("new Dict's generation %d, want one after the lost 1000", g)
	}
	if v, ok := n.Get("k"); ok {
		t.Fatalf("new Dict reads %q", v)
	}
	_ = n.Put("k", "new")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := old.Get("k"); v == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old Dict never took the new generation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	g1, _ := old.Generation(ctx)
	g2, _ := n.Generation(ctx)
	if g1 != g2 || storedGen(t, be, "p") != g1 {
		t.Fatalf("old Dict at %d, new at %d, stored %d", g1, g2, storedGen(t, be, "p"))
	}
}

// The other way: the lost generation is later than this clock (Clears
// faster than one a second, or a clock ahead). The new Dict's generation
// is older; the old Dict raises it back to its own and the new one
// follows.
func TestGenerationKeyLostNewDictTakesLater(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	const refresh = 10 * time.Millisecond
	later := uint64(time.Now().Unix()) + 1_000_000
	setGen(t, be, "p", later)
	old := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	_ = old.Put("k", "v")
	_ = be.Delete(ctx, genKey("p"))

	n := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	if g, _ := n.Generation(ctx); g == 0 || g >= later {
		t.Fatalf("new Dict's generation %d, want this clock's (the key was lost)", g)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ := n.Get("k")
		if vo, _ := old.Get("k"); vo != "v" {
			t.Fatalf("the old Dict reads %q, its generation went back", vo)
		}
		if v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new Dict never took the later generation back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if g, _ := n.Generation(ctx); g != later || storedGen(t, be, "p") != later {
		t.Fatalf("new Dict at %d, stored %d, want %d", g, storedGen(t, be, "p"), later)
	}
}

// addFirst is a backend whose Add of key has another write of the key
// (another Dict's) land first, once.
type addFirst struct {
	backend.Backend
	key   string
	value string
	once  sync.Once
}

func (b *addFirst) Add(ctx context.Context, it backend.Item) error {
	if it.Key == b.key {
		b.once.Do(func() {
			_ = b.Backend.Add(ctx, backend.Item{Key: b.key, Value: []byte(b.value)})
		})
	}
	return b.Backend.Add(ctx, it)
}

// A Dict that knows a generation finds the key lost and writes its own
// back, but a new Dict's add of an older one lands first: the old Dict
// raises it in the same read, so that the Dicts made meanwhile come back
// within one refresh. Before, it took the older one as stored and kept
// its own, leaving the older one stored until its next refresh.
func TestGenerationWriteBackLosesToOlderAdd(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	const refresh = 10 * time.Millisecond
	later := uint64(time.Now().Unix()) + 1_000_000
	setGen(t, mem, "p", later)
	be := &addFirst{Backend: mem, key: genKey("p"), value: strconv.FormatUint(later-1_000_000, 10)}
	old := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	if g, _ := old.Generation(ctx); g != later {
		t.Fatalf("generation %d, want %d", g, later)
	}
	_ = mem.Delete(ctx, genKey("p"))
	time.Sleep(2 * refresh) // old's view is due to be read again
	_, _, _ = old.Lookup(ctx, "k")
	if g := storedGen(t, mem, "p"); g != later {
		t.Fatalf("after the old Dict's refresh, the key holds %d, want its %d", g, later)
	}
}

// A Dict that finds no generation key and cannot add one fails its
// operation rather than read generation 0, which holds, on the servers
// that kept them, the values written before a Clear whose key was lost.
func TestGenerationAddFailsNoGenerationZero(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	setGen(t, mem, "p", 0)
	_ = newDict[string](t, mem, "p").Put("k", "old")
	_ = mem.Delete(ctx, genKey("p"))

	f := memdicttest.NewFaulty(mem)
	f.FailOp(memdicttest.OpAdd, nil)
	d := newDict[string](t, f, "p")
	v, ok, err := d.Lookup(ctx, "k")
	if ok {
		t.Fatalf("Lookup read %q at generation 0", v)
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Fatalf("Lookup: %v, want the add's failure", err)
	}
	checkNoInternalKey(t, "Lookup", err.Error())
	f.ClearFaults()
	if v, ok, err := d.Lookup(ctx, "k"); ok || err != nil {
		t.Fatalf("Lookup once the add works = %q, %v, %v; want a miss", v, ok, err)
	}
}

// A generation key holding the largest uint64 (garbage, or a hostile
// writer's) leaves no later generation: Clear's new one wrapped to the
// time in seconds, which the Dict did not install (a generation never goes
// back), so Clear returned nil and the value stored before it was still
// read, for good (the Dict raised the key back at its next refresh).
// Such a generation is now garbage, which Clear overwrites.
func TestGenerationLargestIsGarbage(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	defer be.Close()
	setGen(t, be, "p", math.MaxUint64)
	d := newDict[string](t, be, "p")
	_ = d.Store(ctx, "k", "v") // stored under that generation, or refused
	if err := d.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if v, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
		t.Errorf("Lookup after Clear: %q, %v, %v; want a miss", v, ok, err)
	}
	g, err := d.Generation(ctx)
	if err != nil || g == math.MaxUint64 || g != storedGen(t, be, "p") {
		t.Errorf("Generation after Clear: %d, %v; stored %d", g, err, storedGen(t, be, "p"))
	}
}

// A generation key holding the uint64 before the largest (garbage, or a
// hostile writer's): Clear's next generation was the largest, which
// parseGen refuses, so that a Dict made after the Clear failed every call
// with ErrDecode; the next Clear stored the time, which the Dict that
// made it did not install (older than the largest), so that it still
// read what it stored after the first, and its refresh raised the key
// back. Clear now starts again from the time, and every Dict takes it.
func TestGenerationNextToLargest(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	defer be.Close()
	const refresh = 10 * time.Millisecond
	setGen(t, be, "p", math.MaxUint64-1)
	d := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := d.Clear(ctx); err != nil {
			t.Fatalf("Clear %d: %v", i, err)
		}
		if v, ok, err := d.Lookup(ctx, "k"); err != nil || ok {
			t.Fatalf("Lookup after Clear %d: %q, %v, %v; want a miss", i, v, ok, err)
		}
		if v, ok, err := newDict[string](t, be, "p").Lookup(ctx, "k"); err != nil || ok {
			t.Fatalf("a new Dict's Lookup after Clear %d: %q, %v, %v; want a miss", i, v, ok, err)
		}
		if err := d.Store(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * refresh) // d's view is due to be read again
	if _, _, err := d.Lookup(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	g, err := d.Generation(ctx)
	if stored := storedGen(t, be, "p"); err != nil || g != stored || g >= math.MaxUint64-1 {
		t.Fatalf("Generation after the Clears: %d, %v; stored %d", g, err, stored)
	}
}
