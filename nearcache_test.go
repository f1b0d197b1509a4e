package memdict_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// countingBackend counts the Gets that reach the backend, per backend key,
// and can run a hook after a Get has read its value.
type countingBackend struct {
	backend.Backend
	mu      sync.Mutex
	gets    map[string]int
	total   atomic.Int64
	afterGo func(key string)
}

func newCounting() *countingBackend {
	return &countingBackend{Backend: memory.New(), gets: map[string]int{}}
}

func (c *countingBackend) Get(ctx context.Context, key string) (backend.Item, error) {
	c.total.Add(1)
	c.mu.Lock()
	c.gets[key]++
	hook := c.afterGo
	c.mu.Unlock()
	it, err := c.Backend.Get(ctx, key)
	if hook != nil {
		hook(key)
	}
	return it, err
}

func (c *countingBackend) getsOf(bkey string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[bkey]
}

func nearOpts(stale time.Duration) memdict.Option {
	return memdict.WithNearCache(memdict.NearCache{MaxEntries: 1000, MaxStale: stale})
}

func TestNearCacheHitSkipsBackend(t *testing.T) {
	be := newCounting()
	d := newDict[int](t, be, "p", nearOpts(time.Hour))
	if err := d.Put("k", 7); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if v, ok := d.Get("k"); !ok || v != 7 {
			t.Fatalf("Get = %v, %v", v, ok)
		}
	}
	if n := be.getsOf(d.BackendKey("k")); n != 1 {
		t.Fatalf("10 Gets reached the backend %d times, want 1", n)
	}
	st := d.Stats()
	if st.NearCache.Hits != 9 || st.NearCache.Misses != 1 || st.Hits != 10 {
		t.Fatalf("stats: near %+v, hits %d; want 9 near hits, 1 near miss, 10 hits", st.NearCache, st.Hits)
	}
}

// TestNearCacheOwnWritesInvalidate: every write of this process is seen by
// the next read, without waiting for MaxStale.
func TestNearCacheOwnWritesInvalidate(t *testing.T) {
	ctx := context.Background()
	writes := []struct {
		name  string
		write func(d *memdict.Dict[int]) error
		want  int
		found bool
	}{
		{"Put", func(d *memdict.Dict[int]) error { return d.Put("k", 2) }, 2, true},
		{"Store", func(d *memdict.Dict[int]) error { return d.Store(ctx, "k", 3) }, 3, true},
		{"PutMulti", func(d *memdict.Dict[int]) error { return d.PutMulti(ctx, map[string]int{"k": 4}) }, 4, true},
		{"Delete", func(d *memdict.Dict[int]) error { return d.Delete("k") }, 0, false},
		{"Remove", func(d *memdict.Dict[int]) error { return d.Remove(ctx, "k") }, 0, false},
		{"Update", func(d *memdict.Dict[int]) error {
			_, err := d.Update(ctx, "k", func(old int, ok bool) (int, error) { return old + 10, nil })
			return err
		}, 11, true},
		{"TxCommit", func(d *memdict.Dict[int]) error {
			tx := d.Begin()
			_ = tx.Put("k", 5)
			return tx.Commit(ctx)
		}, 5, true},
		{"TxDelete", func(d *memdict.Dict[int]) error {
			tx := d.Begin()
			_ = tx.Delete("k")
			return tx.Commit(ctx)
		}, 0, false},
		{"Clear", func(d *memdict.Dict[int]) error { return d.Clear(ctx) }, 0, false},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			d := newDict[int](t, memory.New(), "p", nearOpts(time.Hour))
			if err := d.Put("k", 1); err != nil {
				t.Fatal(err)
			}
			if v, ok := d.Get("k"); !ok || v != 1 {
				t.Fatalf("Get = %v, %v", v, ok)
			}
			if v, ok := d.Get("k"); !ok || v != 1 || d.Stats().NearCache.Hits != 1 {
				t.Fatalf("second Get = %v, %v, near %+v; want a near hit", v, ok, d.Stats().NearCache)
			}
			if err := w.write(d); err != nil {
				t.Fatal(err)
			}
			if v, ok := d.Get("k"); ok != w.found || v != w.want {
				t.Fatalf("after %s Get = %v, %v; want %v, %v", w.name, v, ok, w.want, w.found)
			}
		})
	}
}

// TestNearCacheAddInvalidates: an Add that stored (after a delete made
// elsewhere) is seen at once.
func TestNearCacheAddInvalidates(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[string](t, be, "p", nearOpts(time.Hour))
	_ = d.Put("k", "old")
	d.Get("k")
	if err := be.Delete(ctx, d.BackendKey("k")); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Add(ctx, "k", "new"); !ok || err != nil {
		t.Fatalf("Add = %v, %v", ok, err)
	}
	if v, _ := d.Get("k"); v != "new" {
		t.Fatalf("after Add Get = %q", v)
	}
}

// TestNearCacheOtherDictSameProcess: Dicts of this process on one backend
// and prefix drop each other's written keys.
func TestNearCacheOtherDictSameProcess(t *testing.T) {
	be := memory.New()
	reader := newDict[string](t, be, "shared", nearOpts(time.Hour))
	writer := newDict[string](t, be, "shared", nearOpts(time.Hour))
	plain := newDict[string](t, be, "shared")
	_ = plain.Put("k", "v1")
	if v, _ := reader.Get("k"); v != "v1" {
		t.Fatalf("Get = %q", v)
	}
	_ = writer.Put("k", "v2")
	if v, _ := reader.Get("k"); v != "v2" {
		t.Fatalf("after another Dict's Put, Get = %q, want v2", v)
	}
	if v, _ := reader.Get("k"); v != "v2" {
		t.Fatalf("Get = %q", v)
	}
	other := newDict[string](t, be, "other", nearOpts(time.Hour))
	_ = other.Put("k", "x")
	hits := reader.Stats().NearCache.Hits
	if v, _ := reader.Get("k"); v != "v2" || reader.Stats().NearCache.Hits != hits+1 {
		t.Fatalf("a write to another prefix dropped the entry: %q, %+v", v, reader.Stats().NearCache)
	}
}

// TestNearCacheMaxStale: a write the Dict cannot see (made by another
// process, here straight to the backend) is served for at most MaxStale.
func TestNearCacheMaxStale(t *testing.T) {
	ctx := context.Background()
	clock := memory.NewFakeClock(time.Unix(1e9, 0))
	be := memory.New(memory.WithClock(clock))
	d := newDict[string](t, be, "p", memdict.WithNearCache(memdict.NearCache{MaxStale: 5 * time.Second, Now: clock.Now}))
	writer := newDict[string](t, be, "p") // a plain Dict: as another process
	_ = writer.Put("k", "v1")
	if v, _ := d.Get("k"); v != "v1" {
		t.Fatalf("Get = %q", v)
	}
	if err := be.Set(ctx, backend.Item{Key: d.BackendKey("k"), Value: mustItem(t, writer, "k", "v2")}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	if v, _ := d.Get("k"); v != "v1" {
		t.Fatalf("within MaxStale Get = %q, want the cached v1", v)
	}
	clock.Advance(time.Millisecond)
	if v, _ := d.Get("k"); v != "v2" {
		t.Fatalf("after MaxStale Get = %q, want v2", v)
	}
}

// mustItem returns the stored bytes of v as d writes them.
func mustItem(t *testing.T, d *memdict.Dict[string], key, v string) []byte {
	t.Helper()
	if err := d.Put(key, v); err != nil {
		t.Fatal(err)
	}
	it, err := d.Backend().Get(context.Background(), d.BackendKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return it.Value
}

type mutable struct {
	Name  string
	Tags  []string
	Attrs map[string]int
	Ptr   *int
}

type flat struct {
	A, B int
	S    string
	When time.Time
	Arr  [3]float64
}

// TestNearCacheValueSafety: changing a value returned by a hit does not
// change what the next hit returns.
func TestNearCacheValueSafety(t *testing.T) {
	be := memory.New()
	t.Run("struct", func(t *testing.T) {
		d := newDict[mutable](t, be, "mut", nearOpts(time.Hour))
		n := 5
		_ = d.Put("k", mutable{Name: "a", Tags: []string{"x", "y"}, Attrs: map[string]int{"a": 1}, Ptr: &n})
		for i := range 3 {
			v, ok := d.Get("k")
			if !ok || v.Tags[0] != "x" || v.Attrs["a"] != 1 || *v.Ptr != 5 || v.Name != "a" {
				t.Fatalf("Get %d = %+v: a caller's change reached the cache", i, v)
			}
			v.Tags[0], v.Attrs["a"], *v.Ptr, v.Name = "changed", 99, 99, "changed"
		}
		if d.Stats().NearCache.Hits != 2 {
			t.Fatalf("near %+v: want 2 hits", d.Stats().NearCache)
		}
	})
	t.Run("bytes field", func(t *testing.T) {
		type blob struct{ B []byte }
		for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
			d := newDict[blob](t, be, "blob-"+c.Name(), nearOpts(time.Hour), memdict.WithCodec(c))
			_ = d.Put("k", blob{B: []byte("abc")})
			for i := range 3 {
				v, _ := d.Get("k")
				if string(v.B) != "abc" {
					t.Fatalf("%s: Get %d = %q: a caller's change reached the cache", c.Name(), i, v.B)
				}
				v.B[0] = 'X'
			}
		}
	})
	t.Run("pointer", func(t *testing.T) {
		d := newDict[*mutable](t, be, "ptr", nearOpts(time.Hour))
		_ = d.Put("k", &mutable{Name: "a"})
		v, _ := d.Get("k")
		v.Name = "changed"
		if w, _ := d.Get("k"); w.Name != "a" || w == v {
			t.Fatalf("second Get = %+v (same pointer: %v)", w, w == v)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		d := newDict[[]byte](t, be, "bytes", nearOpts(time.Hour))
		_ = d.Put("k", []byte("abc"))
		v, _ := d.Get("k")
		v[0] = 'X'
		if w, _ := d.Get("k"); string(w) != "abc" {
			t.Fatalf("second Get = %q", w)
		}
	})
	t.Run("slice", func(t *testing.T) {
		d := newDict[[]int](t, be, "slice", nearOpts(time.Hour))
		_ = d.Put("k", []int{1, 2})
		v, _ := d.Get("k")
		v[0] = 9
		if w, _ := d.Get("k"); w[0] != 1 {
			t.Fatalf("second Get = %v", w)
		}
	})
	t.Run("map", func(t *testing.T) {
		d := newDict[map[string]string](t, be, "map", nearOpts(time.Hour))
		_ = d.Put("k", map[string]string{"a": "b"})
		v, _ := d.Get("k")
		v["a"] = "changed"
		if w, _ := d.Get("k"); w["a"] != "b" {
			t.Fatalf("second Get = %v", w)
		}
	})
	t.Run("ShareValues", func(t *testing.T) {
		d := newDict[[]int](t, be, "share", memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour, ShareValues: true}))
		_ = d.Put("k", []int{1, 2})
		v, _ := d.Get("k")
		w, _ := d.Get("k")
		if &v[0] != &w[0] {
			t.Fatal("ShareValues: hits do not share the cached slice")
		}
	})
}

// TestNearCacheNoDecodeForImmutable: hits on values with nothing to
// mutate are shared, without a decode: no allocation.
func TestNearCacheNoDecodeForImmutable(t *testing.T) {
	be := memory.New()
	d := newDict[flat](t, be, "flat", nearOpts(time.Hour))
	want := flat{A: 1, B: 2, S: "s", When: time.Unix(5, 0).UTC(), Arr: [3]float64{1, 2, 3}}
	_ = d.Put("k", want)
	d.Get("k")
	if n := testing.AllocsPerRun(100, func() {
		if v, ok := d.Get("k"); !ok || v.A != want.A || v.S != want.S || !v.When.Equal(want.When) || v.Arr != want.Arr {
			t.Fatalf("Get = %+v, %v", v, ok)
		}
	}); n != 0 {
		t.Fatalf("a hit on a flat struct allocates %v times, want 0 (no decode)", n)
	}
	m := newDict[mutable](t, be, "mutable", nearOpts(time.Hour))
	_ = m.Put("k", mutable{Tags: []string{"a"}})
	m.Get("k")
	if n := testing.AllocsPerRun(100, func() { m.Get("k") }); n == 0 {
		t.Fatal("a hit on a struct holding a slice does not decode a fresh copy")
	}
}

// TestNearCacheFillRace: a value read from the backend while the key is
// written is not kept: the next read sees the write.
func TestNearCacheFillRace(t *testing.T) {
	be := newCounting()
	d := newDict[string](t, be, "p", nearOpts(time.Hour))
	writer := newDict[string](t, be, "p", nearOpts(time.Hour))
	_ = writer.Put("k", "old")
	bkey := d.BackendKey("k")
	var once sync.Once
	be.mu.Lock()
	be.afterGo = func(key string) {
		if key == bkey {
			// The write lands after the read found the old value and
			// before it is kept.
			once.Do(func() { _ = writer.Put("k", "new") })
		}
	}
	be.mu.Unlock()
	if v, _ := d.Get("k"); v != "old" {
		t.Fatalf("first Get = %q", v)
	}
	if v, _ := d.Get("k"); v != "new" {
		t.Fatalf("second Get = %q: the value read before the write was kept", v)
	}
}

// TestNearCacheScanResistance: a scan of many keys read once does not
// push a hot key out.
func TestNearCacheScanResistance(t *testing.T) {
	be := newCounting()
	d := newDict[int](t, be, "scan", memdict.WithNearCache(memdict.NearCache{MaxEntries: 100, MaxStale: time.Hour}))
	ctx := context.Background()
	for i := range 5000 {
		if err := d.Store(ctx, fmt.Sprint("cold", i), i); err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Put("hot", 1)
	for range 200 {
		d.Get("hot")
	}
	// The hot key is read once every 250 cold keys: more than the
	// cache holds, so an LRU cache would have evicted it before each of
	// those 20 reads and read it 21 times in all. W-TinyLFU keeps it but
	// for a few reads (its frequency sketch and admission are approximate).
	for i := range 5000 {
		d.Get(fmt.Sprint("cold", i))
		if i%250 == 249 {
			d.Get("hot")
		}
	}
	hot := be.getsOf(d.BackendKey("hot"))
	if hot > 10 {
		t.Fatalf("the hot key went to the backend %d times (of 21 reads) during the scan", hot)
	}
	t.Logf("the hot key went to the backend %d times", hot)
	st := nearBounded(d, 110, "")
	if st.Evictions == 0 || st.Entries > 110 {
		t.Fatalf("near %+v: want evictions and about 100 entries at most", st)
	}
}

// putAndGet puts value(i) under "k<i>" for i below n, reading each back
// at once.
func putAndGet[V any](d *memdict.Dict[V], n int, value func(i int) V) {
	for i := range n {
		k := fmt.Sprint("k", i)
		_ = d.Put(k, value(i))
		d.Get(k)
	}
}

// nearBounded polls d's near cache, whose eviction runs in the
// background, until it holds at most max entries or 10 s have passed,
// reading key (if not "") between polls, and returns its stats for the
// caller to check.
func nearBounded[V any](d *memdict.Dict[V], max int, key string) memdict.NearCacheStats {
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().NearCache.Entries > max && time.Now().Before(deadline) {
		if key != "" {
			d.Get(key)
		}
		time.Sleep(time.Millisecond)
	}
	return d.Stats().NearCache
}

// TestNearCacheMaxBytes: the byte bound holds.
func TestNearCacheMaxBytes(t *testing.T) {
	be := memory.New()
	d := newDict[string](t, be, "bytes", memdict.WithNearCache(memdict.NearCache{MaxBytes: 20_000, MaxStale: time.Hour}))
	big := strings.Repeat("x", 1000)
	putAndGet(d, 200, func(int) string { return big })
	st := nearBounded(d, 20, "k0")
	// Twenty entries of 1 KB and their keys pass 20 KB: the eviction in
	// the background goes on below them.
	for deadline := time.Now().Add(10 * time.Second); st.Bytes > 20_000 && time.Now().Before(deadline); st = d.Stats().NearCache {
		d.Get("k0")
		time.Sleep(time.Millisecond)
	}
	if st.Entries > 20 || st.Bytes > 20_000 || st.Bytes < 1000 {
		t.Fatalf("near %+v: 200 values of 1 KB in 20 KB", st)
	}
}

// TestNearCacheMaxBytesCompressed: the byte bound holds for compressed
// values too. An entry that keeps the decoded value (ShareValues) was
// weighed by its stored, compressed size: sixteen values of 256 KiB that
// compress to a few hundred bytes each all stayed in a near cache of
// 1 MiB.
func TestNearCacheMaxBytesCompressed(t *testing.T) {
	type blob struct{ S string }
	const size, max = 256 << 10, 1 << 20
	d := newDict[blob](t, memory.New(), "z", memdict.WithCodec(codec.Zstd(nil, 1024)),
		memdict.WithNearCache(memdict.NearCache{MaxBytes: max, MaxStale: time.Hour, ShareValues: true}))
	big := strings.Repeat("x", size)
	putAndGet(d, 16, func(int) blob { return blob{big} })
	st := nearBounded(d, max/size, "k15")
	for deadline := time.Now().Add(10 * time.Second); st.Bytes > max && time.Now().Before(deadline); st = d.Stats().NearCache {
		d.Get("k15")
		time.Sleep(time.Millisecond)
	}
	if st.Entries > max/size || st.Bytes > max || st.Bytes < size {
		t.Fatalf("near %+v: 16 values of %d bytes, compressed, in %d bytes", st, size, max)
	}
}

// TestNearCacheBytes: Stats counts the bytes the near cache holds, as
// MaxBytes counts them, with or without MaxBytes.
func TestNearCacheBytes(t *testing.T) {
	d := newDict[string](t, memory.New(), "b", memdict.WithNearCache(memdict.NearCache{MaxStale: time.Hour}))
	entry := func(key, v string) int64 { // header, value, key, overhead
		return 3 + int64(len(v)) + int64(len(key)) + memdict.NearCacheEntryOverhead
	}
	_ = d.Put("a", "xx")
	_ = d.Put("bb", strings.Repeat("y", 100))
	d.Get("a")
	d.Get("bb")
	d.Get("a") // a hit: no change
	if got, want := d.Stats().NearCache.Bytes, entry("a", "xx")+entry("bb", strings.Repeat("y", 100)); got != want {
		t.Fatalf("Bytes = %d, want %d", got, want)
	}
	_ = d.Put("bb", "z") // drops bb
	if got, want := d.Stats().NearCache.Bytes, entry("a", "xx"); got != want {
		t.Fatalf("Bytes after a write = %d, want %d", got, want)
	}
	if err := d.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := d.Stats().NearCache.Bytes; got != 0 {
		t.Fatalf("Bytes after Clear = %d, want 0", got)
	}
}

func TestNearCacheOptionErrors(t *testing.T) {
	be := memory.New()
	for _, nc := range []memdict.NearCache{
		{MaxEntries: -1, MaxStale: time.Second},
		{MaxBytes: -1, MaxStale: time.Second},
		{MaxStale: -time.Second},
		{}, // memory cannot report changes: MaxStale is needed
	} {
		if _, err := memdict.New[int](be, "p", memdict.WithNearCache(nc)); err == nil || !strings.Contains(err.Error(), "WithNearCache") {
			t.Errorf("New with %+v: error %v, want one naming WithNearCache", nc, err)
		}
	}
}

// trackingBackend is a memory backend with a fake backend.Invalidator.
type trackingBackend struct {
	*memory.Store
	mu     sync.Mutex
	fns    map[string]func(backend.Invalidation)
	live   atomic.Bool
	starts atomic.Int32 // Track calls for data prefixes
}

type fakeTracking struct {
	b      *trackingBackend
	prefix string
}

func (f fakeTracking) Live() bool      { return f.b.live.Load() }
func (f fakeTracking) Supported() bool { return true }
func (f fakeTracking) Stop() {
	f.b.mu.Lock()
	delete(f.b.fns, f.prefix)
	f.b.mu.Unlock()
}

func (b *trackingBackend) Track(_ context.Context, prefix string, fn func(backend.Invalidation)) (backend.Tracking, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fns[prefix] = fn
	if !strings.HasPrefix(prefix, "#!") {
		b.starts.Add(1)
	}
	return fakeTracking{b, prefix}, nil
}

func (b *trackingBackend) report(inv backend.Invalidation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, fn := range b.fns {
		if inv.All {
			fn(inv)
			continue
		}
		var keys []string
		for _, k := range inv.Keys {
			if strings.HasPrefix(k, p) {
				keys = append(keys, k)
			}
		}
		if keys != nil {
			fn(backend.Invalidation{Keys: keys})
		}
	}
}

func TestNearCacheTracking(t *testing.T) {
	ctx := context.Background()
	be := &trackingBackend{Store: memory.New(), fns: map[string]func(backend.Invalidation){}}
	d := newDict[string](t, be, "tracked", memdict.WithNearCache(memdict.NearCache{})) // no MaxStale: allowed
	writer := newDict[string](t, be.Store, "tracked")
	_ = writer.Put("k", "v1")
	// Not live: nothing is kept.
	d.Get("k")
	d.Get("k")
	if st := d.Stats().NearCache; st.Hits != 0 {
		t.Fatalf("near %+v: values kept while tracking is not live", st)
	}
	be.live.Store(true)
	d.Get("k")
	if v, _ := d.Get("k"); v != "v1" || d.Stats().NearCache.Hits != 1 {
		t.Fatalf("live: Get = %q, near %+v", v, d.Stats().NearCache)
	}
	// Another process writes; the server reports the key.
	_ = writer.Put("k", "v2")
	if v, _ := d.Get("k"); v != "v1" {
		t.Fatalf("before the report Get = %q, want the cached v1", v)
	}
	be.report(backend.Invalidation{Keys: []string{d.BackendKey("k"), "unrelated:0:k"}})
	if v, _ := d.Get("k"); v != "v2" {
		t.Fatalf("after the report Get = %q, want v2", v)
	}
	if st := d.Stats().NearCache; st.Invalidations != 1 {
		t.Fatalf("near %+v: want 1 invalidation", st)
	}
	// A lost connection empties the cache.
	d.Get("k")
	_ = writer.Put("k", "v3")
	be.report(backend.Invalidation{All: true})
	if v, _ := d.Get("k"); v != "v3" {
		t.Fatalf("after a reset Get = %q, want v3", v)
	}
	if st := d.Stats().NearCache; st.Resets != 1 {
		t.Fatalf("near %+v: want 1 reset", st)
	}
	// A Clear moves the generation, and the tracking prefix stays.
	if err := d.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get("k"); ok {
		t.Fatal("Get after Clear found a value")
	}
	if n := be.starts.Load(); n != 1 {
		t.Fatalf("Track called %d times for data prefixes, want once", n)
	}
}

func TestNearCacheGetMulti(t *testing.T) {
	ctx := context.Background()
	be := newCounting()
	d := newDict[int](t, be, "multi", nearOpts(time.Hour))
	_ = d.PutMulti(ctx, map[string]int{"a": 1, "b": 2, "c": 3})
	d.Get("a")
	got, err := d.GetMulti(ctx, []string{"a", "b", "c", "missing"})
	if err != nil || len(got) != 3 || got["a"] != 1 || got["b"] != 2 || got["c"] != 3 {
		t.Fatalf("GetMulti = %v, %v", got, err)
	}
	before := be.total.Load()
	got, err = d.GetMulti(ctx, []string{"a", "b", "c"})
	if err != nil || len(got) != 3 || got["c"] != 3 {
		t.Fatalf("second GetMulti = %v, %v", got, err)
	}
	if be.total.Load() != before {
		t.Fatal("a GetMulti of near-cached keys went to the backend")
	}
	if st := d.Stats(); st.Hits != 7 || st.NearCache.Hits != 4 {
		t.Fatalf("stats: hits %d, near %+v", st.Hits, st.NearCache)
	}
}

// TestNearCacheBothBounds: with MaxEntries and MaxBytes, small entries are
// bounded by the entry count.
func TestNearCacheBothBounds(t *testing.T) {
	d := newDict[int](t, memory.New(), "both", memdict.WithNearCache(memdict.NearCache{MaxEntries: 10, MaxBytes: 1 << 20, MaxStale: time.Hour}))
	putAndGet(d, 200, func(i int) int { return i })
	if st := nearBounded(d, 10, "k0"); st.Entries > 10 || st.Evictions == 0 {
		t.Fatalf("near %+v: 200 small values with MaxEntries 10", st)
	}
}
