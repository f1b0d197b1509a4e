package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
)

// record is the struct value the Dict subtests store.
type record struct {
	Name  string            `json:"name"`
	Count int               `json:"count"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Ratio float64           `json:"ratio"`
}

func (r record) equal(o record) bool {
	return r.Name == o.Name && r.Count == o.Count && r.Ratio == o.Ratio &&
		strings.Join(r.Tags, "\x00") == strings.Join(o.Tags, "\x00") && fmt.Sprint(r.Attrs) == fmt.Sprint(o.Attrs)
}

// dictOf returns a Dict of V on h's backend under h's prefix (plus sub),
// whose backend keys are deleted at cleanup, with limits that fit the
// backend.
func dictOf[V any](h *harness, sub string, opts ...memdict.Option) *memdict.Dict[V] {
	h.t.Helper()
	return dictOn[V](h, h.be, sub, opts...)
}

// dictOn is dictOf on be, a backend wrapping h's.
func dictOn[V any](h *harness, be backend.Backend, sub string, opts ...memdict.Option) *memdict.Dict[V] {
	h.t.Helper()
	base := []memdict.Option{memdict.WithMaxValueLen(0)}
	if h.opts.MaxKeyLen > 0 {
		base = append(base, memdict.WithMaxKeyLen(max(h.opts.MaxKeyLen, 80)))
	}
	base = append(base, h.nearOpts()...)
	d, err := memdict.New[V](be, h.prefix+sub, append(base, opts...)...)
	if err != nil {
		h.t.Fatalf("memdict.New: %v", err)
	}
	return d
}

// nearOpts returns the options every Dict of the suite gets: the suite's
// clock under Advance, and in the NearCache group its near cache.
func (h *harness) nearOpts() []memdict.Option {
	var opts []memdict.Option
	if h.opts.now != nil {
		// Envelope times on the clock Advance moves (see Run).
		opts = append(opts, memdict.WithClock(h.opts.now))
	}
	if h.opts.near == nil {
		return opts
	}
	return append(opts, memdict.WithNearCache(*h.opts.near))
}

// track remembers the backend keys of keys for deletion at cleanup.
func track[V any](h *harness, d *memdict.Dict[V], keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		h.keys = append(h.keys, d.BackendKey(k))
	}
}

// runDict runs the subtests that go through memdict's typed Dict.
func runDict(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	tests := []struct {
		name string
		fn   func(h *harness)
	}{
		{"PutGetDelete", dictPutGetDelete},
		{"Codecs", dictCodecs},
		{"Add", dictAdd},
		{"TTL", dictTTL},
		{"Touch", dictTouch},
		{"Multi", dictMulti},
		{"BinaryValues", dictBinaryValues},
		{"TooLarge", dictTooLarge},
		{"OddKeys", dictOddKeys},
		{"Isolation", dictIsolation},
		{"ForeignValue", dictForeignValue},
		{"Concurrent", dictConcurrent},
		{"Closed", dictClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newBackend, opts)
			if tt.name == "TTL" || tt.name == "Touch" {
				if h.realTime() {
					t.Parallel()
				}
			}
			tt.fn(h)
		})
	}
}

func dictPutGetDelete(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[record](h, "")
	track(h, d, "r")
	if v, ok, err := d.Lookup(ctx, "r"); err != nil || ok {
		t.Fatalf("Lookup on empty = %+v, %v, %v; want a clean miss", v, ok, err)
	}
	want := record{Name: "ada", Count: 3, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"}, Ratio: 0.5}
	noErr(t, "Store", d.Store(ctx, "r", want))
	got, ok, err := d.Lookup(ctx, "r")
	if err != nil || !ok || !got.equal(want) {
		t.Fatalf("Lookup = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	want.Count = 4
	noErr(t, "Put", d.Put("r", want))
	if got, ok := d.Get("r"); !ok || got.Count != 4 {
		t.Fatalf("after overwrite Get = %+v, %v", got, ok)
	}
	noErr(t, "Remove", d.Remove(ctx, "r"))
	wantErr(t, "second Remove", d.Remove(ctx, "r"), memdict.ErrNotFound)
	noErr(t, "Delete of an absent key", d.Delete("r"))
	if _, ok := d.Get("r"); ok {
		t.Fatal("removed key still readable")
	}
}

func dictCodecs(h *harness) {
	t, ctx := h.t, h.ctx()
	want := record{Name: "codec", Count: 7, Tags: []string{"x"}}
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
		d := dictOf[record](h, c.Name(), memdict.WithCodec(c))
		track(h, d, "k")
		noErr(t, c.Name()+" Store", d.Store(ctx, "k", want))
		if got, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || !got.equal(want) {
			t.Fatalf("%s: Lookup = %+v, %v, %v", c.Name(), got, ok, err)
		}
	}
	// Read with the wrong codec: a clear decode error, not a wrong value.
	wrong := dictOf[record](h, "msgpack", memdict.WithCodec(codec.JSON))
	_, ok, err := wrong.Lookup(ctx, "k")
	wantErr(t, "Lookup with the wrong codec", err, memdict.ErrDecode)
	if ok || !strings.Contains(err.Error(), "msgpack") {
		t.Fatalf("wrong codec: ok=%v err=%v", ok, err)
	}
}

func dictAdd(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[string](h, "")
	track(h, d, "k")
	if ok, err := d.Add(ctx, "k", "first"); !ok || err != nil {
		t.Fatalf("Add on absent = %v, %v", ok, err)
	}
	if ok, err := d.Add(ctx, "k", "second"); ok || err != nil {
		t.Fatalf("Add on present = %v, %v; want false, nil", ok, err)
	}
	if v, _ := d.Get("k"); v != "first" {
		t.Fatalf("Add overwrote: %q", v)
	}
}

func dictTTL(h *harness) {
	t, ctx := h.t, h.ctx()
	short := h.survivingTTL() // long enough to read the values back first
	d := dictOf[int](h, "", memdict.WithDefaultTTL(short))
	track(h, d, "default", "item", "forever", "long")
	noErr(t, "Put", d.Put("default", 1))
	noErr(t, "Store TTL", d.Store(ctx, "item", 2, memdict.TTL(short)))
	noErr(t, "Store TTL(0)", d.Store(ctx, "forever", 3, memdict.TTL(0)))
	noErr(t, "Store long", d.Store(ctx, "long", 4, memdict.TTL(h.longTTL())))
	for _, k := range []string{"default", "item"} {
		if _, ok := d.Get(k); !ok {
			t.Fatalf("%q gone before its TTL", k)
		}
	}
	h.expire(short)
	for _, k := range []string{"default", "item"} {
		if v, ok := d.Get(k); ok {
			t.Fatalf("%q = %d after its TTL", k, v)
		}
	}
	for _, k := range []string{"forever", "long"} {
		if _, ok := d.Get(k); !ok {
			t.Fatalf("%q expired", k)
		}
	}
	wantErr(t, "negative TTL", d.Store(ctx, "bad", 1, memdict.TTL(-time.Second)), backend.ErrInvalidTTL)
}

func dictTouch(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[string](h, "")
	track(h, d, "k", "keep")
	wantErr(t, "Touch absent", d.Touch(ctx, "k", time.Hour), memdict.ErrNotFound)
	noErr(t, "Store", d.Store(ctx, "k", "v", memdict.TTL(h.longTTL())))
	noErr(t, "Store", d.Store(ctx, "keep", "v", memdict.TTL(h.survivingTTL())))
	noErr(t, "Touch", d.Touch(ctx, "k", h.shortTTL()))
	noErr(t, "Touch 0", d.Touch(ctx, "keep", 0))
	h.expire(h.survivingTTL())
	if _, ok := d.Get("k"); ok {
		t.Fatal("Touch did not shorten the TTL")
	}
	if _, ok := d.Get("keep"); !ok {
		t.Fatal("Touch(0) did not make the value permanent")
	}
}

func dictMulti(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[int](h, "")
	in := map[string]int{}
	var keys []string
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		keys = append(keys, k)
		if i%3 != 0 {
			in[k] = i
		}
	}
	track(h, d, keys...)
	noErr(t, "PutMulti", d.PutMulti(ctx, in))
	got, err := d.GetMulti(ctx, append(keys, keys[1]))
	noErr(t, "GetMulti", err)
	if len(got) != len(in) {
		t.Fatalf("GetMulti found %d keys, want %d", len(got), len(in))
	}
	for k, v := range in {
		if got[k] != v {
			t.Fatalf("GetMulti[%q] = %d, want %d", k, got[k], v)
		}
	}
	empty, err := d.GetMulti(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("GetMulti(nil) = %v, %v", empty, err)
	}
}

func dictBinaryValues(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[[]byte](h, "")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("\x00\r\nEND\r\n\xff"), 1)
	big = append(big, make([]byte, max(0, h.opts.MaxValueSize-3-len(big)-1024))...) // header and slack for the item overhead
	values := map[string][]byte{"empty": {}, "all-bytes": all, "protocol-like": []byte("VALUE x 0 1\r\nEND\r\n"), "big": big}
	if h.opts.MaxValueSize < 0 {
		delete(values, "big")
	}
	for k, v := range values {
		track(h, d, k)
		noErr(t, "Store "+k, d.Store(ctx, k, v))
	}
	for k, v := range values {
		got, ok, err := d.Lookup(ctx, k)
		if err != nil || !ok || !bytes.Equal(got, v) {
			t.Fatalf("Lookup(%q) = %s, %v, %v; want %s", k, show(got), ok, err, show(v))
		}
	}
	s := dictOf[string](h, "")
	if v, ok := s.Get("all-bytes"); !ok || v != string(all) {
		t.Fatal("a []byte value does not read back as the same string")
	}
}

func dictTooLarge(h *harness) {
	t, ctx := h.t, h.ctx()
	limit := h.opts.MaxValueSize
	if limit < 0 {
		limit = 1 << 20
	}
	d := dictOf[[]byte](h, "", memdict.WithMaxValueLen(limit))
	track(h, d, "k")
	noErr(t, "Store", d.Store(ctx, "k", []byte("old")))
	err := d.Store(ctx, "k", make([]byte, limit))
	wantErr(t, "Store over the limit", err, memdict.ErrValueTooLarge)
	if v, ok := d.Get("k"); !ok || string(v) != "old" {
		t.Fatalf("after a refused Store the value is %q, %v; want \"old\"", v, ok)
	}
}

func dictOddKeys(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[string](h, "")
	long := strings.Repeat("κλειδί-", 60)
	keys := []string{"", " ", "with space", "tab\tnew\nline\r\n", "\x00nul", "\xff\xfe not utf-8", "ünïcödé ✓", "colon:hash#percent%", "*?[glob]\\", long, long + "!"}
	track(h, d, keys...)
	for _, k := range keys {
		noErr(t, fmt.Sprintf("Store(%q)", k), d.Store(ctx, k, "v="+k))
	}
	for _, k := range keys {
		if v, ok, err := d.Lookup(ctx, k); err != nil || !ok || v != "v="+k {
			t.Fatalf("Lookup(%q) = %q, %v, %v", k, v, ok, err)
		}
	}
	got, err := d.GetMulti(ctx, keys)
	noErr(t, "GetMulti", err)
	if len(got) != len(keys) {
		t.Fatalf("GetMulti found %d of %d odd keys", len(got), len(keys))
	}
}

func dictIsolation(h *harness) {
	t := h.t
	// ERP5's "<prefix>_<key>" made these two the same memcached key.
	a := dictOf[string](h, "a_b")
	b := dictOf[string](h, "a")
	s1 := dictOf[string](h, "a_b", memdict.WithSiteID("site1"))
	s2 := dictOf[string](h, "a_b", memdict.WithSiteID("site2"))
	track(h, a, "c")
	track(h, b, "b_c")
	track(h, s1, "c")
	track(h, s2, "c")
	noErr(t, "Put", a.Put("c", "a_b+c"))
	noErr(t, "Put", b.Put("b_c", "a+b_c"))
	noErr(t, "Put", s1.Put("c", "site1"))
	noErr(t, "Put", s2.Put("c", "site2"))
	for _, c := range []struct {
		d         *memdict.Dict[string]
		key, want string
	}{{a, "c", "a_b+c"}, {b, "b_c", "a+b_c"}, {s1, "c", "site1"}, {s2, "c", "site2"}} {
		if v, _ := c.d.Get(c.key); v != c.want {
			t.Fatalf("Get(%q) = %q, want %q", c.key, v, c.want)
		}
	}
}

func dictForeignValue(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[int](h, "")
	track(h, d, "foreign")
	// Another program wrote under the Dict's key.
	noErr(t, "raw Set", h.be.Set(ctx, backend.Item{Key: d.BackendKey("foreign"), Value: []byte("12")}))
	_, ok, err := d.Lookup(ctx, "foreign")
	wantErr(t, "Lookup of a foreign value", err, memdict.ErrDecode)
	if ok {
		t.Fatal("foreign value reported as found")
	}
	if _, ok := d.Get("foreign"); ok {
		t.Fatal("Get of a foreign value reported a hit")
	}
}

func dictConcurrent(h *harness) {
	t := h.t
	d := dictOf[record](h, "")
	n := h.opts.Concurrency
	keys := []string{"a", "b", "c", "d"}
	track(h, d, keys...)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := keys[(g+i)%len(keys)]
				if err := d.Put(k, record{Name: k, Count: g*1000 + i}); err != nil {
					errs <- err
					return
				}
				if v, ok := d.Get(k); ok && v.Name != k {
					errs <- fmt.Errorf("Get(%q) returned the value of %q", k, v.Name)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.Sets != uint64(n*50) {
		t.Fatalf("Stats.Sets = %d, want %d", st.Sets, n*50)
	}
}

func dictClosed(h *harness) {
	t, ctx := h.t, h.ctx()
	d := dictOf[int](h, "")
	noErr(t, "Close", h.be.Close())
	_, _, err := d.Lookup(ctx, "k")
	wantErr(t, "Lookup after Close", err, memdict.ErrClosed)
	wantErr(t, "Store after Close", d.Store(ctx, "k", 1), memdict.ErrClosed)
	var oe *memdict.OpError
	if !errors.As(err, &oe) || oe.Key != "k" {
		t.Fatalf("error after Close is not an *OpError for the key: %v", err)
	}
	if _, ok := d.Get("k"); ok {
		t.Fatal("Get after Close found a value")
	}
}
