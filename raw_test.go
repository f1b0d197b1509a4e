package memdict_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/testing/memdicttest"
)

type rawRecord struct {
	Name string
	N    int
}

// A Dict[Raw] reads what typed Dicts of every codec wrote, as it is, and
// what it writes reads back through them.
func TestRawRoundTrip(t *testing.T) {
	ctx := context.Background()
	be, _ := memdicttest.NewBackend(t)
	for _, maxKey := range []int{0, 80} { // 80: long keys are hashed
		key := "k"
		if maxKey > 0 {
			key = strings.Repeat("long key ", 20)
		}
		opts := []memdict.Option{memdict.WithMaxKeyLen(maxKey)}
		records, _ := memdict.New[rawRecord](be, "rec", opts...)
		texts, _ := memdict.New[string](be, "text", opts...)
		rawRec, _ := memdict.New[memdict.Raw](be, "rec", opts...)
		rawText, _ := memdict.New[memdict.Raw](be, "text", opts...)

		if err := records.Store(ctx, key, rawRecord{"a", 1}); err != nil {
			t.Fatal(err)
		}
		if err := texts.Store(ctx, key, "hello"); err != nil {
			t.Fatal(err)
		}
		r, ok, err := rawRec.Lookup(ctx, key)
		if err != nil || !ok || r.Codec != codec.MsgPackID {
			t.Fatalf("max key %d: Raw of a record = %+v, %v, %v", maxKey, r, ok, err)
		}
		var back rawRecord
		if err := codec.MsgPack.Unmarshal(r.Payload, &back); err != nil || back != (rawRecord{"a", 1}) {
			t.Fatalf("Raw payload decodes to %+v, %v", back, err)
		}
		r, ok, err = rawText.Lookup(ctx, key)
		if err != nil || !ok || r.Codec != codec.RawID || string(r.Payload) != "hello" {
			t.Fatalf("max key %d: Raw of a string = %+v, %v, %v", maxKey, r, ok, err)
		}
		// The payload is the caller's own.
		r.Payload[0] = 'j'
		if s, _, _ := texts.Lookup(ctx, key); s != "hello" {
			t.Fatalf("changing a Raw payload changed the stored value: %q", s)
		}

		p, _ := codec.MsgPack.Marshal(rawRecord{"b", 2})
		if err := rawRec.Store(ctx, key, memdict.Raw{Codec: codec.MsgPackID, Payload: p}); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := records.Lookup(ctx, key); err != nil || !ok || v != (rawRecord{"b", 2}) {
			t.Fatalf("record written as Raw reads %+v, %v, %v", v, ok, err)
		}
		m, err := rawRec.GetMulti(ctx, []string{key, "absent"})
		if err != nil || len(m) != 1 || m[key].Codec != codec.MsgPackID {
			t.Fatalf("GetMulti = %+v, %v", m, err)
		}
	}
}

// A value memdict did not frame reads as codec 0 and the whole value; a
// Raw without a codec is not written.
func TestRawUnframedAndErrors(t *testing.T) {
	ctx := context.Background()
	be, _ := memdicttest.NewBackend(t)
	d, _ := memdict.New[memdict.Raw](be, "p", memdict.WithMaxValueLen(16))
	if err := be.Set(ctx, backend.Item{Key: d.BackendKey("foreign"), Value: []byte("memccat wrote this")}); err != nil {
		t.Fatal(err)
	}
	r, ok, err := d.Lookup(ctx, "foreign")
	if err != nil || !ok || r.Codec != 0 || string(r.Payload) != "memccat wrote this" {
		t.Fatalf("unframed value = %+v, %v, %v", r, ok, err)
	}
	if _, ok, err := d.Lookup(ctx, "absent"); ok || err != nil {
		t.Fatalf("absent key: %v, %v", ok, err)
	}
	if err := d.Store(ctx, "k", memdict.Raw{Payload: []byte("x")}); !errors.Is(err, memdict.ErrEncode) {
		t.Fatalf("Store of a Raw without codec: %v, want ErrEncode", err)
	}
	if err := d.Store(ctx, "k", memdict.Raw{Codec: codec.RawID, Payload: make([]byte, 14)}); !errors.Is(err, memdict.ErrValueTooLarge) {
		t.Fatalf("Store of a Raw over the limit: %v, want ErrValueTooLarge", err)
	}
	if err := d.Store(ctx, "k", memdict.Raw{Codec: codec.RawID, Payload: make([]byte, 13)}); err != nil {
		t.Fatalf("Store of a Raw at the limit: %v", err)
	}
	if st := d.Stats(); st.Hits != 1 || st.Misses != 1 || st.Sets != 1 {
		t.Errorf("Stats = %d hits, %d misses, %d sets; want 1, 1, 1", st.Hits, st.Misses, st.Sets)
	}
}

func TestRawDecoded(t *testing.T) {
	b, err := codec.MsgPack.Marshal(map[string]any{"n": 3, "bin": []byte{0xff}})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := memdict.Raw{Codec: codec.MsgPackID, Payload: b}.Decoded()
	if !ok {
		t.Fatal("msgpack value not decoded")
	}
	if m := v.(map[string]any); m["bin"] != "/w==" {
		t.Errorf("binary field = %v, want base64 /w==", m["bin"])
	}
	if _, ok := (memdict.Raw{Codec: codec.RawID, Payload: []byte{0xff}}).Decoded(); ok {
		t.Error("binary raw value decoded as text")
	}
	if s, ok := (memdict.Raw{Payload: []byte("text")}).Decoded(); !ok || s != "text" {
		t.Errorf("unframed text = %v, %v", s, ok)
	}
	nan, _ := codec.MsgPack.Marshal(math.NaN())
	if _, ok := (memdict.Raw{Codec: codec.MsgPackID, Payload: nan}).Decoded(); ok {
		t.Error("NaN decoded as JSON")
	}
	if _, ok := (memdict.Raw{Codec: 'z', Payload: []byte("?")}).Decoded(); ok {
		t.Error("value of an unknown codec decoded")
	}
}

// ParseBackendKey reads back what BackendKey made; GenerationKey names
// the key Clear writes.
func TestParseBackendKey(t *testing.T) {
	ctx := context.Background()
	be, _ := memdicttest.NewBackend(t)
	d, _ := memdict.New[int](be, "my prefix", memdict.WithSiteID("site"), memdict.WithMaxKeyLen(80))
	if err := d.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	gen, _ := d.Generation(ctx)
	if _, err := be.Get(ctx, d.GenerationKey()); err != nil {
		t.Fatalf("the generation key %q after Clear: %v", d.GenerationKey(), err)
	}
	for _, key := range []string{"k", "a:b c", strings.Repeat("x", 100)} {
		p, err := memdict.ParseBackendKey(d.BackendKey(key))
		want := memdict.ParsedKey{SiteID: "site", Prefix: "my prefix", Generation: gen, Key: key}
		if len(key) == 100 {
			want.Key, want.Hashed = "", true
		}
		if err != nil || p != want {
			t.Errorf("ParseBackendKey(BackendKey(%q)) = %+v, %v; want %+v", key, p, err, want)
		}
	}
	for _, bad := range []string{d.GenerationKey(), "foreign", "a:b"} {
		if _, err := memdict.ParseBackendKey(bad); err == nil {
			t.Errorf("ParseBackendKey(%q): no error", bad)
		}
	}
}

// LockKey names the lock GetOrLoad takes on a backend without leases: it
// is held while the loader runs, gone after, never a data key, and within
// the Dict's key length for a key that is hashed.
func TestLockKey(t *testing.T) {
	ctx := context.Background()
	be, _ := memdicttest.NewBackend(t)
	d, _ := memdict.New[string](be, "locks", memdict.WithMaxKeyLen(80))
	long := strings.Repeat("y", 200)
	for _, key := range []string{"k", long} {
		lk := d.LockKey(key)
		if len(lk) > 80 || !strings.HasPrefix(lk, "#!") {
			t.Fatalf("LockKey(%d-byte key) = %q", len(key), lk)
		}
		if _, err := memdict.ParseBackendKey(lk); err == nil {
			t.Errorf("LockKey %q parses as a data key", lk)
		}
		var held bool
		v, err := d.GetOrLoad(ctx, key, func(ctx context.Context, k string) (string, error) {
			_, err := be.Get(ctx, lk)
			held = err == nil
			return "loaded", nil
		})
		if err != nil || v != "loaded" {
			t.Fatalf("GetOrLoad = %q, %v", v, err)
		}
		if !held {
			t.Errorf("the lock %q was not held while the loader ran", lk)
		}
		if _, err := be.Get(ctx, lk); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("the lock %q after the fill: %v; want it released", lk, err)
		}
	}
	if d.LockKey("a") == d.LockKey("b") {
		t.Error("two keys share a lock key")
	}
}
