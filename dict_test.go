package memdict_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

type user struct {
	Name  string   `json:"name"`
	Age   int      `json:"age"`
	Tags  []string `json:"tags"`
	Admin bool     `json:"admin"`
}

func newDict[V any](t testing.TB, be backend.Backend, prefix string, opts ...memdict.Option) *memdict.Dict[V] {
	t.Helper()
	d, err := memdict.New[V](be, prefix, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMapLikeTier(t *testing.T) {
	be := memory.New()
	d := newDict[int](t, be, "my_first_test")
	if v, ok := d.Get("some_key"); ok || v != 0 {
		t.Fatalf("Get on empty = %v, %v", v, ok)
	}
	if err := d.Put("some_key", 41); err != nil {
		t.Fatal(err)
	}
	v, ok := d.Get("some_key")
	if !ok || v != 41 {
		t.Fatalf("Get = %v, %v; want 41, true", v, ok)
	}
	if err := d.Put("some_key", v+1); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("some_key"); v != 42 {
		t.Fatalf("after overwrite Get = %v", v)
	}
	if err := d.Delete("some_key"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("some_key"); err != nil {
		t.Fatalf("Delete of absent key: %v", err)
	}
	if _, ok := d.Get("some_key"); ok {
		t.Fatal("deleted key still there")
	}
	st := d.Stats()
	if st.Hits != 2 || st.Misses != 2 || st.Sets != 2 || st.Deletes != 1 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestStructValuesAndExplicitStore(t *testing.T) {
	ctx := context.Background()
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
		t.Run(c.Name(), func(t *testing.T) {
			d := newDict[user](t, memory.New(), "users", memdict.WithCodec(c))
			u := user{Name: "ada", Age: 36, Tags: []string{"x"}}
			if err := d.Store(ctx, "ada", u); err != nil {
				t.Fatal(err)
			}
			u.Age = 99 // changing the local copy does not store it
			got, ok, err := d.Lookup(ctx, "ada")
			if err != nil || !ok || got.Age != 36 || got.Name != "ada" {
				t.Fatalf("Lookup = %+v, %v, %v", got, ok, err)
			}
			got.Tags[0] = "mutated" // nor does mutating a value read back
			again, _, _ := d.Lookup(ctx, "ada")
			if again.Tags[0] != "x" {
				t.Fatalf("stored value changed to %+v without a Put", again)
			}
		})
	}
}

func TestStringAndBytes(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	s := newDict[string](t, be, "s")
	b := newDict[[]byte](t, be, "s") // same prefix: raw values are shared
	if err := s.Put("k", "héllo\x00world"); err != nil {
		t.Fatal(err)
	}
	got, ok := b.Get("k")
	if !ok || string(got) != "héllo\x00world" {
		t.Fatalf("bytes Get = %q, %v", got, ok)
	}
	got[0] = 'X' // the caller owns the slice it got
	if v, _ := s.Get("k"); v != "héllo\x00world" {
		t.Fatalf("mutating a returned []byte changed the store: %q", v)
	}
	in := []byte{1, 2, 3}
	if err := b.Store(ctx, "b", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 9
	if v, _ := b.Get("b"); !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Fatalf("Store kept the caller's slice: %v", v)
	}
	if err := b.Put("empty", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, ok := b.Get("empty"); !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value = %#v, %v", v, ok)
	}
	if err := s.Put("empty", ""); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get("empty"); !ok || v != "" {
		t.Fatalf("empty string = %q, %v", v, ok)
	}
}

func TestDecodeErrors(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	ints := newDict[int](t, be, "p")
	strs := newDict[string](t, be, "p")
	jsons := newDict[int](t, be, "p", memdict.WithCodec(codec.JSON))
	var hooked []error
	var mu sync.Mutex
	users := newDict[user](t, be, "p", memdict.WithErrorHandler(func(err error) {
		mu.Lock()
		hooked = append(hooked, err)
		mu.Unlock()
	}))

	if err := strs.Put("s", "text"); err != nil {
		t.Fatal(err)
	}
	if err := ints.Put("i", 7); err != nil {
		t.Fatal(err)
	}
	// A foreign value under the Dict's key.
	if err := be.Set(ctx, backend.Item{Key: ints.BackendKey("foreign"), Value: []byte("42")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		look func() error
		want string
	}{
		{"string read as int", func() error { _, _, err := ints.Lookup(ctx, "s"); return err }, "written with codec raw, this Dict uses msgpack"},
		{"msgpack read as json", func() error { _, _, err := jsons.Lookup(ctx, "i"); return err }, "written with codec msgpack, this Dict uses json"},
		{"int read as struct", func() error { _, _, err := users.Lookup(ctx, "i"); return err }, "msgpack"},
		{"foreign value", func() error { _, _, err := ints.Lookup(ctx, "foreign"); return err }, "not written by memdict"},
	}
	for _, tt := range tests {
		err := tt.look()
		var oe *memdict.OpError
		if !errors.Is(err, memdict.ErrDecode) || !errors.As(err, &oe) || oe.Op != "get" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want ErrDecode mentioning %q", tt.name, err, tt.want)
		}
	}
	// The map-like tier gives a miss and hands the error to the hook.
	if v, ok := users.Get("i"); ok || v.Name != "" {
		t.Fatalf("Get of undecodable = %+v, %v", v, ok)
	}
	if len(hooked) != 1 || !errors.Is(hooked[0], memdict.ErrDecode) {
		t.Fatalf("hook got %v", hooked)
	}
	if users.Stats().Errors != 2 {
		t.Fatalf("Errors = %d, want 2", users.Stats().Errors)
	}
}

// failing is a backend whose every call fails as a dead server's would.
type failing struct{ backend.Backend }

func (failing) Get(context.Context, string) (backend.Item, error) {
	return backend.Item{}, backend.ErrUnavailable
}
func (failing) Set(context.Context, backend.Item) error { return backend.ErrUnavailable }

func TestOutageIsAMissInGetAndAnErrorInLookup(t *testing.T) {
	var got error
	d := newDict[int](t, failing{memory.New()}, "p", memdict.WithErrorHandler(func(err error) { got = err }))
	if v, ok := d.Get("k"); ok || v != 0 {
		t.Fatalf("Get = %v, %v", v, ok)
	}
	if !errors.Is(got, memdict.ErrUnavailable) {
		t.Fatalf("hook got %v", got)
	}
	_, ok, err := d.Lookup(context.Background(), "k")
	if ok || !errors.Is(err, memdict.ErrUnavailable) || !strings.Contains(err.Error(), `memdict: get "k"`) {
		t.Fatalf("Lookup = %v, %v", ok, err)
	}
	if err := d.Put("k", 1); !errors.Is(err, memdict.ErrUnavailable) {
		t.Fatalf("Put err = %v", err)
	}
}

func TestFullTier(t *testing.T) {
	ctx := context.Background()
	clock := memory.NewFakeClock(time.Unix(1_700_000_000, 0))
	be := memory.New(memory.WithClock(clock))
	d := newDict[string](t, be, "p", memdict.WithDefaultTTL(time.Minute))

	if err := d.Store(ctx, "default", "v"); err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, "forever", "v", memdict.TTL(0)); err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, "short", "v", memdict.TTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, "bad", "v", memdict.TTL(-time.Second)); !errors.Is(err, backend.ErrInvalidTTL) {
		t.Fatalf("negative TTL: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, ok := d.Get("short"); ok {
		t.Fatal("short TTL did not expire")
	}
	if _, ok := d.Get("default"); !ok {
		t.Fatal("default TTL expired too early")
	}
	clock.Advance(time.Hour)
	if _, ok := d.Get("default"); ok {
		t.Fatal("default TTL did not expire")
	}
	if _, ok := d.Get("forever"); !ok {
		t.Fatal("TTL(0) expired")
	}

	// Add stores only once.
	if ok, err := d.Add(ctx, "once", "first"); !ok || err != nil {
		t.Fatalf("Add = %v, %v", ok, err)
	}
	if ok, err := d.Add(ctx, "once", "second"); ok || err != nil {
		t.Fatalf("second Add = %v, %v", ok, err)
	}
	if v, _ := d.Get("once"); v != "first" {
		t.Fatalf("Add overwrote: %q", v)
	}

	// Touch and Remove tell a miss.
	if err := d.Touch(ctx, "absent", time.Second); !errors.Is(err, memdict.ErrNotFound) {
		t.Fatalf("Touch absent: %v", err)
	}
	if err := d.Touch(ctx, "once", time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	if _, ok := d.Get("once"); ok {
		t.Fatal("Touch did not set the TTL")
	}
	if err := d.Remove(ctx, "absent"); !errors.Is(err, memdict.ErrNotFound) {
		t.Fatalf("Remove absent: %v", err)
	}

	// Multi.
	if err := d.PutMulti(ctx, map[string]string{"a": "1", "b": "2", "c": "3"}); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetMulti(ctx, []string{"a", "b", "zz", "a", "forever"})
	if err != nil || len(got) != 3 || got["a"] != "1" || got["b"] != "2" || got["forever"] != "v" {
		t.Fatalf("GetMulti = %v, %v", got, err)
	}
	if got, err := d.GetMulti(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti(nil) = %v, %v", got, err)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := newDict[int](t, memory.New(), "p")
	if err := d.Store(ctx, "k", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Store: %v", err)
	}
	if _, _, err := d.Lookup(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lookup: %v", err)
	}
	if _, ok := d.Get("k"); ok {
		t.Fatal("cancelled Store stored")
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[string](t, be, "p")
	long := strings.Repeat("κ", 300)
	keys := []string{"", "with space", "new\nline", "\xff\xfe invalid utf-8", "colon:hash#pct%", long, long + "x"}
	for _, k := range keys {
		if err := d.Put(k, "v:"+k); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	for _, k := range keys {
		if v, ok := d.Get(k); !ok || v != "v:"+k {
			t.Fatalf("Get(%q) = %q, %v", k, v, ok)
		}
		if bk := d.BackendKey(k); len(bk) > memdict.DefaultMaxKeyLen || strings.ContainsAny(bk, " \n") {
			t.Fatalf("backend key %q unsafe", bk)
		}
	}
	// The hashed key's value carries its key: a value stored under the
	// hash for another key reads as a miss, not as the wrong value.
	other := newDict[string](t, be, "p")
	it, err := be.Get(ctx, d.BackendKey(long))
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Set(ctx, backend.Item{Key: other.BackendKey(long + "x"), Value: it.Value}); err != nil {
		t.Fatal(err)
	}
	if v, ok := other.Get(long + "x"); ok {
		t.Fatalf("value of another long key read back: %q", v)
	}
}

func TestPrefixAndSiteIsolation(t *testing.T) {
	be := memory.New()
	a := newDict[string](t, be, "a_b")
	b := newDict[string](t, be, "a")
	s1 := newDict[string](t, be, "a_b", memdict.WithSiteID("site1"))
	s2 := newDict[string](t, be, "a_b", memdict.WithSiteID("site2"))
	_ = a.Put("c", "a_b/c")
	_ = b.Put("b_c", "a/b_c")
	_ = s1.Put("c", "site1")
	_ = s2.Put("c", "site2")
	for _, tc := range []struct {
		d    *memdict.Dict[string]
		key  string
		want string
	}{{a, "c", "a_b/c"}, {b, "b_c", "a/b_c"}, {s1, "c", "site1"}, {s2, "c", "site2"}} {
		if v, _ := tc.d.Get(tc.key); v != tc.want {
			t.Errorf("Get(%q) = %q, want %q", tc.key, v, tc.want)
		}
	}
}

func TestValueTooLargeKeepsOldValue(t *testing.T) {
	ctx := context.Background()
	d := newDict[[]byte](t, memory.New(), "p", memdict.WithMaxValueLen(1000))
	if err := d.Store(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	err := d.Store(ctx, "k", make([]byte, 1000))
	if !errors.Is(err, memdict.ErrValueTooLarge) || !strings.Contains(err.Error(), "limit is 1000") {
		t.Fatalf("Store too large: %v", err)
	}
	if v, _ := d.Get("k"); string(v) != "old" {
		t.Fatalf("old value lost: %q", v)
	}
	if err := d.Store(ctx, "k", make([]byte, 1000-3)); err != nil {
		t.Fatalf("value at the limit: %v", err)
	}
	ds := newDict[string](t, memory.New(), "p", memdict.WithMaxValueLen(10))
	if err := ds.Put("k", strings.Repeat("x", 8)); !errors.Is(err, memdict.ErrValueTooLarge) {
		t.Fatalf("string too large: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	be := memory.New()
	sh, _ := memdict.NewSharedSettings(memdict.DefaultSettings())
	for name, opts := range map[string][]memdict.Option{
		"negative ttl":      {memdict.WithDefaultTTL(-1)},
		"short key len":     {memdict.WithMaxKeyLen(10)},
		"negative key len":  {memdict.WithMaxKeyLen(-1)},
		"negative val len":  {memdict.WithMaxValueLen(-1)},
		"nil codec":         {memdict.WithCodec(nil)},
		"nil settings":      {memdict.WithSettings(nil)},
		"settings twice":    {memdict.WithSettings(sh), memdict.WithSettings(sh)},
		"settings, bad len": {memdict.WithSettings(sh), memdict.WithMaxKeyLen(10)},
	} {
		if _, err := memdict.New[int](be, "p", opts...); err == nil || !strings.HasPrefix(err.Error(), "memdict: New") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := memdict.New[int](nil, "p"); err == nil {
		t.Error("nil backend accepted")
	}
}

// A Dict not made by New (the zero Dict), a nil Update function and a nil
// loader give errors that say so, not panics: the zero Dict panicked on
// every call (its metrics have no stripes, its settings are nil), and a
// nil function once it was called.
func TestZeroDictAndNilFuncs(t *testing.T) {
	ctx := context.Background()
	var z memdict.Dict[int]
	calls := []struct {
		name string
		call func() error
	}{
		{"Lookup", func() error { _, _, err := z.Lookup(ctx, "k"); return err }},
		{"Store", func() error { return z.Store(ctx, "k", 1) }},
		{"Add", func() error { _, err := z.Add(ctx, "k", 1); return err }},
		{"Remove", func() error { return z.Remove(ctx, "k") }},
		{"Touch", func() error { return z.Touch(ctx, "k", time.Minute) }},
		{"GetMulti", func() error { _, err := z.GetMulti(ctx, []string{"k"}); return err }},
		{"PutMulti", func() error { return z.PutMulti(ctx, map[string]int{"k": 1}) }},
		{"Update", func() error {
			_, err := z.Update(ctx, "k", func(o int, _ bool) (int, error) { return o, nil })
			return err
		}},
		{"GetOrLoad", func() error {
			_, err := z.GetOrLoad(ctx, "k", func(context.Context, string) (int, error) { return 1, nil })
			return err
		}},
		{"Clear", func() error { return z.Clear(ctx) }},
		{"Generation", func() error { _, err := z.Generation(ctx); return err }},
		{"Keys", func() error {
			for _, err := range z.Keys(ctx) {
				return err
			}
			return nil
		}},
		{"Tx", func() error { tx := z.Begin(); _ = tx.Put("k", 1); return tx.Commit(ctx) }},
	}
	for _, c := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a zero Dict panicked: %v", c.name, r)
				}
			}()
			if err := c.call(); err == nil || !strings.Contains(err.Error(), "not made by memdict.New") {
				t.Errorf("%s on a zero Dict: %v, want an error saying it was not made by New", c.name, err)
			}
		}()
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Get, Put or Delete on a zero Dict panicked: %v", r)
			}
		}()
		if _, ok := z.Get("k"); ok {
			t.Error("Get on a zero Dict found a value")
		}
		if z.Put("k", 1) == nil || z.Delete("k") == nil {
			t.Error("Put or Delete on a zero Dict succeeded")
		}
	}()

	d := newDict[int](t, memory.New(), "p")
	if _, err := d.Update(ctx, "k", nil); err == nil || !strings.Contains(err.Error(), `update "k": nil fn`) {
		t.Errorf("Update with a nil fn: %v", err)
	}
	if _, err := d.GetOrLoad(ctx, "k", nil); err == nil || !strings.Contains(err.Error(), `getorload "k": nil load function`) {
		t.Errorf("GetOrLoad with a nil load: %v", err)
	}
}

func TestSharedSettingsReconfigureLiveDicts(t *testing.T) {
	be := memory.New()
	sh, err := memdict.NewSharedSettings(memdict.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	d := newDict[string](t, be, "p", memdict.WithSettings(sh))
	_ = d.Put("k", "before")
	s := sh.Load()
	s.SiteID = "other-site"
	if err := sh.Store(s); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get("k"); ok {
		t.Fatal("site id change not seen by a live Dict")
	}
	if d.Settings().SiteID != "other-site" {
		t.Fatalf("Settings = %+v", d.Settings())
	}
	s.MaxKeyLen = 5
	if err := sh.Store(s); err == nil || !strings.Contains(err.Error(), "MaxKeyLen 5") {
		t.Fatalf("invalid settings stored: %v", err)
	}
	if d.Settings().MaxKeyLen != memdict.DefaultMaxKeyLen {
		t.Fatal("invalid Store changed the settings")
	}
}

func TestConcurrentUse(t *testing.T) {
	d := newDict[int](t, memory.New(), "p")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				key := string(rune('a' + i%5))
				if err := d.Put(key, i); err != nil {
					t.Error(err)
					return
				}
				if v, ok := d.Get(key); ok && (v < 0 || v >= 500 || v%5 != i%5) {
					t.Errorf("Get(%q) = %d", key, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := d.Stats(); st.Sets != 8*500 || st.Hits+st.Misses != 8*500 {
		t.Fatalf("Stats = %+v", st)
	}
}

func BenchmarkDictStringGetHit(b *testing.B) {
	d := newDict[string](b, memory.New(), "bench")
	if err := d.Put("some_key", "a value of some thirty-two bytes"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Get("some_key"); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkDictStringPut(b *testing.B) {
	d := newDict[string](b, memory.New(), "bench")
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Put("some_key", "a value of some thirty-two bytes"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDictStructGetHit(b *testing.B) {
	d := newDict[user](b, memory.New(), "bench")
	_ = d.Put("ada", user{Name: "ada", Age: 36, Tags: []string{"x", "y"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Get("ada"); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkDictStringGetHitParallel(b *testing.B) {
	d := newDict[string](b, memory.New(), "bench")
	_ = d.Put("some_key", "v")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Get("some_key")
		}
	})
}

// BenchmarkDictGetMulti: the Dict's own work in a GetMulti of n keys, all
// found, over the memory backend.
func BenchmarkDictGetMulti(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			d := newDict[string](b, memory.New(), "bench")
			keys := make([]string, n)
			for i := range keys {
				keys[i] = "user:" + strconv.Itoa(i)
				if err := d.Put(keys[i], "a value of some thirty-two bytes"); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if m, err := d.GetMulti(ctx, keys); err != nil || len(m) != n {
					b.Fatal(len(m), err)
				}
			}
		})
	}
}

// A Lookup through one of memdict's own codecs decodes into a V kept for
// reuse, not a new one: the codec takes the V's address through an
// interface, so each read allocated one beside the backend key (2
// allocations per MessagePack Lookup of a struct without pointers, now
// 1). The V is
// zeroed before each reuse: a field the next value leaves out (JSON's
// omitempty) reads as zero, and a value already returned keeps what it
// holds.
func TestLookupReusesDecodedValue(t *testing.T) {
	type flat struct {
		A, B int64
	}
	type sparse struct {
		A    int64    `json:"a,omitempty" msgpack:"a,omitempty"`
		B    int64    `json:"b,omitempty" msgpack:"b,omitempty"`
		Tags []string `json:"tags,omitempty" msgpack:"tags,omitempty"`
	}
	ctx := t.Context()
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
		t.Run(c.Name(), func(t *testing.T) {
			d := newDict[flat](t, memory.New(), "p", memdict.WithCodec(c))
			if err := d.Store(ctx, "k", flat{A: 1, B: 2}); err != nil {
				t.Fatal(err)
			}
			// encoding/json and encoding/gob allocate as they decode;
			// MessagePack into a flat struct does not.
			if a := testing.AllocsPerRun(100, func() { _, _, _ = d.Lookup(ctx, "k") }); c == codec.MsgPack && !raceOn && a > 1 {
				t.Errorf("Lookup of a flat struct: %.0f allocations, want at most 1 (the backend key)", a)
			}
			s := newDict[sparse](t, memory.New(), "p", memdict.WithCodec(c))
			for k, v := range map[string]sparse{"a": {A: 1, Tags: []string{"x"}}, "b": {B: 2}} {
				if err := s.Store(ctx, k, v); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				va, _, errA := s.Lookup(ctx, "a")
				vb, _, errB := s.Lookup(ctx, "b")
				if errA != nil || errB != nil {
					t.Fatal(errA, errB)
				}
				if va.A != 1 || va.B != 0 || len(va.Tags) != 1 || va.Tags[0] != "x" ||
					vb.A != 0 || vb.B != 2 || vb.Tags != nil {
					t.Fatalf("Lookup a, b = %+v, %+v; want {A:1 Tags:[x]}, {B:2}", va, vb)
				}
			}
		})
	}
}
