package memdict_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/codec/python"
	"github.com/memdict/memdict/internal/keyspace"
)

// erp5Entry is an entry of an ERP5 Dict, as Python pickles a dict.
type erp5Entry struct {
	Name   string   `pickle:"name"`
	Visits int      `pickle:"visits"`
	Roles  []string `pickle:"roles"`
	Last   *string  `pickle:"last"`
}

// rawItem reads key from be directly, failing t if it is not there.
func rawItem(t *testing.T, be backend.Backend, key string) backend.Item {
	t.Helper()
	it, err := be.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("backend Get(%q): %v", key, err)
	}
	return it
}

// TestFormatERP5Layout: a Dict of format erp5 stores under ERP5's key
// (site id, prefix, quoted-printable) the value python-memcached would
// store, with its client flags and without memdict's header; and reads
// what ERP5 stores there.
func TestFormatERP5Layout(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	const site, prefix, key = "erp5_site", "my_app", "user/é 1"
	opts := []memdict.Option{memdict.WithFormat(memdict.FormatERP5), memdict.WithSiteID(site)}
	bkey, err := keyspace.ERP5Key(site, prefix, key, 250)
	if err != nil || bkey != "erp5_site_my_app_user/=C3=A9=201" {
		t.Fatalf("ERP5Key = %q, %v", bkey, err)
	}

	entries := newDict[erp5Entry](t, be, prefix, opts...)
	if got := entries.BackendKey(key); got != bkey {
		t.Errorf("BackendKey(%q) = %q, want %q", key, got, bkey)
	}
	last := "2024-05-06"
	want := erp5Entry{Name: "Ada", Visits: 3, Roles: []string{"Assignor"}, Last: &last}
	if err := entries.Store(ctx, key, want); err != nil {
		t.Fatal(err)
	}
	it := rawItem(t, be, bkey)
	if it.Flags != python.FlagPickle {
		t.Fatalf("stored with flags %d, want %d (pickle)", it.Flags, python.FlagPickle)
	}
	var asPython map[string]any
	if err := python.Unmarshal(it.Value, it.Flags, &asPython); err != nil {
		t.Fatalf("the stored value is not python-memcached's: %v", err)
	}
	if asPython["name"] != "Ada" || asPython["visits"] != int64(3) || asPython["last"] != last {
		t.Fatalf("stored %#v", asPython)
	}
	got, ok, err := entries.Lookup(ctx, key)
	if err != nil || !ok || got.Name != "Ada" || got.Visits != 3 || *got.Last != last || len(got.Roles) != 1 {
		t.Fatalf("Lookup = %+v, %v, %v", got, ok, err)
	}

	// Scalars are stored as python-memcached stores them.
	for _, c := range []struct {
		store func() error
		data  string
		flags uint32
	}{
		{func() error { return newDict[string](t, be, prefix, opts...).Store(ctx, "s", "héllo") }, "héllo", python.FlagText},
		{func() error { return newDict[int](t, be, prefix, opts...).Store(ctx, "i", -42) }, "-42", python.FlagInt},
		{func() error { return newDict[[]byte](t, be, prefix, opts...).Store(ctx, "b", []byte{0, 0xff}) }, "\x00\xff", python.FlagBytes},
	} {
		if err := c.store(); err != nil {
			t.Fatal(err)
		}
	}
	for k, w := range map[string]struct {
		data  string
		flags uint32
	}{"s": {"héllo", python.FlagText}, "i": {"-42", python.FlagInt}, "b": {"\x00\xff", python.FlagBytes}} {
		it := rawItem(t, be, site+"_"+prefix+"_"+k)
		if string(it.Value) != w.data || it.Flags != w.flags {
			t.Errorf("%s: stored %q with flags %d, want %q with flags %d", k, it.Value, it.Flags, w.data, w.flags)
		}
	}

	// A value ERP5 wrote (a protocol 2 pickle of a dict, flags 1) reads.
	data, flags, err := python.Marshal(map[string]any{"name": "Bob", "visits": 1, "roles": []string{}})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := keyspace.ERP5Key(site, prefix, "bob", 250)
	if err := be.Set(ctx, backend.Item{Key: bob, Value: data, Flags: flags}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := entries.Lookup(ctx, "bob"); err != nil || !ok || got.Name != "Bob" || got.Visits != 1 || got.Last != nil {
		t.Fatalf("Lookup of ERP5's entry = %+v, %v, %v", got, ok, err)
	}

	// Keys are never hashed: ERP5's limit makes a long key invalid.
	long := strings.Repeat("k", 300)
	for name, err := range map[string]error{
		"Store":  entries.Store(ctx, long, want),
		"Remove": entries.Remove(ctx, long),
		"Lookup": func() error { _, _, err := entries.Lookup(ctx, long); return err }(),
		"Touch":  entries.Touch(ctx, long, time.Hour),
	} {
		if !errors.Is(err, memdict.ErrInvalidKey) || !errors.Is(err, keyspace.ErrKeyTooLong) {
			t.Errorf("%s of a %d-byte key: %v, want ErrInvalidKey", name, len(long), err)
		}
	}
	if got := entries.BackendKey(long); got != "" {
		t.Errorf("BackendKey of a key too long = %q, want \"\"", got)
	}
	m, err := entries.GetMulti(ctx, []string{key, long})
	var me *memdict.MultiError
	if !errors.As(err, &me) || len(me.Failed) != 1 || me.Failed[0].Key != long || !errors.Is(err, memdict.ErrInvalidKey) || m[key].Name != "Ada" {
		t.Errorf("GetMulti with a key too long = %v, %v", m, err)
	}
}

// TestFormatPythonKeys: format python stores under the prefix and the
// key as they are, and refuses keys memcached cannot carry.
func TestFormatPythonKeys(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[string](t, be, "svc:", memdict.WithFormat(memdict.FormatPython), memdict.WithSiteID("ignored"))
	if err := d.Store(ctx, "user:1", "Ada"); err != nil {
		t.Fatal(err)
	}
	if it := rawItem(t, be, "svc:user:1"); string(it.Value) != "Ada" || it.Flags != python.FlagText {
		t.Fatalf("stored %q with flags %d", it.Value, it.Flags)
	}
	for _, k := range []string{"a b", "tab\t", "nl\n", "del\x7f", strings.Repeat("k", 247)} {
		if err := d.Store(ctx, k, "x"); !errors.Is(err, memdict.ErrInvalidKey) {
			t.Errorf("Store(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	empty := newDict[string](t, be, "", memdict.WithFormat(memdict.FormatPython))
	if err := empty.Store(ctx, "", "x"); !errors.Is(err, memdict.ErrInvalidKey) {
		t.Errorf("Store of an empty key with an empty prefix: %v, want ErrInvalidKey", err)
	}
	if err := empty.Store(ctx, strings.Repeat("k", 250), "x"); err != nil {
		t.Errorf("a 250-byte key: %v", err)
	}
}

// TestFormatDecodeErrors: values that are not what the flags say, or
// that do not fit V, are ErrDecode (never a panic or a wrong value).
func TestFormatDecodeErrors(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	opt := memdict.WithFormat(memdict.FormatPython)
	for _, it := range []backend.Item{
		{Key: "p:bad", Value: []byte("\x80\x02not a pickle"), Flags: python.FlagPickle},
		{Key: "p:list", Value: []byte("\x80\x02]q\x00K\x01a."), Flags: python.FlagPickle},
		{Key: "p:flags", Value: []byte("x"), Flags: 1 << 9},
		{Key: "p:memdict", Value: []byte("\xc1r\x00hello"), Flags: 0}, // memdict's own: bytes to Python
	} {
		if err := be.Set(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	ints := newDict[int](t, be, "p:", opt)
	for _, k := range []string{"bad", "list", "flags", "memdict"} {
		if v, ok, err := ints.Lookup(ctx, k); !errors.Is(err, memdict.ErrDecode) || ok {
			t.Errorf("Lookup(%q) into an int = %v, %v, %v; want ErrDecode", k, v, ok, err)
		}
	}
	// The bytes memdict's own format wrote are bytes to a Python format.
	if v, ok, err := newDict[[]byte](t, be, "p:", opt).Lookup(ctx, "memdict"); err != nil || !ok || string(v) != "\xc1r\x00hello" {
		t.Errorf("Lookup into []byte = %q, %v, %v", v, ok, err)
	}
}

// TestFormatRaw: a Dict[Raw] of a Python format reads and writes values
// with their client flags, which the memdict command shows decoded.
func TestFormatRaw(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[memdict.Raw](t, be, "p:", memdict.WithFormat(memdict.FormatPython))
	data, flags, _ := python.Marshal(map[string]any{"a": []int{1, 2}})
	if err := d.Store(ctx, "k", memdict.Raw{Payload: data, Flags: flags}); err != nil {
		t.Fatal(err)
	}
	r, ok, err := d.Lookup(ctx, "k")
	if err != nil || !ok || r.Codec != 0 || r.Flags != python.FlagPickle || string(r.Payload) != string(data) {
		t.Fatalf("Lookup = %+v, %v, %v", r, ok, err)
	}
	v, ok := r.Decoded()
	if m, _ := v.(map[string]any); !ok || len(m) != 1 || len(m["a"].([]any)) != 2 {
		t.Fatalf("Decoded = %#v, %v", v, ok)
	}
	if err := d.Store(ctx, "k", memdict.Raw{Codec: codec.RawID, Payload: []byte("x")}); !errors.Is(err, memdict.ErrEncode) {
		t.Errorf("a Raw with a codec ID in format python: %v, want ErrEncode", err)
	}
	own := newDict[memdict.Raw](t, be, "own")
	if err := own.Store(ctx, "k", memdict.Raw{Codec: codec.RawID, Payload: []byte("x"), Flags: 1}); !errors.Is(err, memdict.ErrEncode) {
		t.Errorf("a Raw with client flags in format memdict: %v, want ErrEncode", err)
	}
}

// TestFormatNotAvailable: what needs memdict's own layout fails with
// ErrNotSupported, saying which format and where it was set.
func TestFormatNotAvailable(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	sh, err := memdict.NewSharedSettings(memdict.Settings{Format: memdict.FormatERP5, MaxKeyLen: 250})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, says string
		opts       []memdict.Option
	}{
		{"option", "with WithFormat(memdict.FormatERP5)", []memdict.Option{memdict.WithFormat(memdict.FormatERP5)}},
		{"settings", "on a format: erp5 plugin", []memdict.Option{memdict.WithSettings(sh)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDict[string](t, be, "p", c.opts...)
			if err := d.Put("k", "v"); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, memdict.ErrNotSupported) || !strings.Contains(err.Error(), c.says) {
					t.Errorf("%s: %v; want ErrNotSupported saying %q", what, err, c.says)
				}
			}
			check("Clear", d.Clear(ctx))
			_, err := d.Generation(ctx)
			check("Generation", err)
			check("Invalidate", d.Invalidate(ctx, "k"))
			for _, err := range d.Keys(ctx) {
				check("Keys", err)
			}
			for _, err := range d.All(ctx) {
				check("All", err)
			}
			ctr, err := memdict.NewCounters(be, "c", c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			check("Counters.Clear", ctr.Clear(ctx))
			_, err = memdict.New[string](be, "p", append(c.opts[:len(c.opts):len(c.opts)], memdict.WithStaleWhileRevalidate(time.Second))...)
			check("New with WithStaleWhileRevalidate", err)
			_, err = memdict.New[string](be, "p", append(c.opts[:len(c.opts):len(c.opts)], memdict.WithNearCache(memdict.NearCache{MaxStale: time.Second}))...)
			check("New with WithNearCache", err)
			if v, ok := d.Get("k"); !ok || v != "v" {
				t.Errorf("the value after the refused operations: %q, %v", v, ok)
			}
		})
	}
	if _, err := memdict.NewSharedSettings(memdict.Settings{Format: memdict.FormatERP5, NearCache: &memdict.NearCache{MaxStale: time.Second}}); err == nil {
		t.Error("settings of format erp5 with a near cache: no error")
	}
	if _, err := memdict.NewSharedSettings(memdict.Settings{Format: "pickle"}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("an unknown format: %v", err)
	}
	if _, err := memdict.New[string](be, "p", memdict.WithFormat("pickle")); err == nil {
		t.Error("WithFormat of an unknown format: no error")
	}
}

// TestFormatGetOrLoad: GetOrLoad in a Python format loads once per key in
// the process and stores Python's value, but leaves nothing of memdict's
// in the server (no lease placeholder, no lock key, no cached absence).
func TestFormatGetOrLoad(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[erp5Entry](t, be, "my_app", memdict.WithFormat(memdict.FormatERP5))
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(ctx context.Context, key string) (erp5Entry, error) {
		loads.Add(1)
		<-release
		return erp5Entry{Name: key, Visits: 1}, nil
	}
	const callers = 8
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := d.GetOrLoad(ctx, "ada", load)
			if err == nil && v.Name != "ada" {
				err = errors.New("wrong value " + v.Name)
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for memdict.FlightWaiters(d, "ada") < callers-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads for %d callers, want 1", n, callers)
	}
	it := rawItem(t, be, "my_app_ada")
	if it.Flags != python.FlagPickle {
		t.Fatalf("loaded value stored with flags %d", it.Flags)
	}
	// No absence is cached: the loader is asked each time.
	none := func(context.Context, string) (erp5Entry, error) { loads.Add(1); return erp5Entry{}, memdict.ErrNoValue }
	for range 2 {
		if _, err := d.GetOrLoad(ctx, "nobody", none); !errors.Is(err, memdict.ErrNoValue) {
			t.Fatalf("GetOrLoad of an absent value: %v", err)
		}
	}
	if n := loads.Load(); n != 3 {
		t.Fatalf("%d loads, want 3: an absence is not cached in format erp5", n)
	}
	var keys []string
	for k, err := range backend.Keys(ctx, be, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != "my_app_ada" {
		t.Fatalf("the server holds %q, want only the entry", keys)
	}
}

// TestFormatUpdateAndCounters: Update's compare-and-swap and counters
// work on Python's values: every concurrent update counts, and counters
// are ints that Python reads as int.
func TestFormatUpdateAndCounters(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[erp5Entry](t, be, "my_app", memdict.WithFormat(memdict.FormatERP5))
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := d.Update(ctx, "ada", func(e erp5Entry, _ bool) (erp5Entry, error) {
					e.Name, e.Visits = "Ada", e.Visits+1
					return e, nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, ok := d.Get("ada"); !ok || e.Visits != workers*each {
		t.Fatalf("after %d updates: %+v, %v", workers*each, e, ok)
	}
	if it := rawItem(t, be, "my_app_ada"); it.Flags != python.FlagPickle {
		t.Fatalf("updated value stored with flags %d", it.Flags)
	}

	c, err := memdict.NewCounters(be, "hits", memdict.WithFormat(memdict.FormatERP5))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Inc(ctx, "home"); err != nil {
			t.Fatal(err)
		}
	}
	it := rawItem(t, be, "hits_home")
	var n int
	if err := python.Unmarshal(it.Value, it.Flags, &n); err != nil || it.Flags != python.FlagInt || n != 3 {
		t.Fatalf("counter stored as %q with flags %d (%v)", it.Value, it.Flags, err)
	}
	if err := c.Set(ctx, "home", 40); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Add(ctx, "home", 2); err != nil || v != 42 || rawItem(t, be, "hits_home").Flags != python.FlagInt {
		t.Fatalf("Add after Set = %d, %v", v, err)
	}
	ints := newDict[int](t, be, "hits", memdict.WithFormat(memdict.FormatERP5))
	if v, ok := ints.Get("home"); !ok || v != 42 {
		t.Fatalf("a Dict[int] reads the counter as %d, %v", v, ok)
	}
}

// TestFormatFollowsSettings: a Dict on shared settings (a Tool plugin's)
// follows a change of format from its next call, as it follows a change
// of codec.
func TestFormatFollowsSettings(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	sh, err := memdict.NewSharedSettings(memdict.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	d := newDict[string](t, be, "my_app", memdict.WithSettings(sh))
	if err := d.Store(ctx, "k", "own"); err != nil {
		t.Fatal(err)
	}
	s := memdict.DefaultSettings()
	s.Format = memdict.FormatERP5
	if err := sh.Store(s); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); ok {
		t.Fatalf("after the switch to format erp5, the memdict value reads as %q", v)
	}
	if err := d.Store(ctx, "k", "erp5"); err != nil {
		t.Fatal(err)
	}
	if it := rawItem(t, be, "my_app_k"); string(it.Value) != "erp5" || it.Flags != python.FlagText {
		t.Fatalf("stored %q with flags %d", it.Value, it.Flags)
	}
	if err := sh.Store(memdict.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); !ok || v != "own" {
		t.Fatalf("back in format memdict: %q, %v", v, ok)
	}
}
