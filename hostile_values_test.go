package memdict_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// Stored values are untrusted input: another program, or anyone with
// access to the cache, can store any bytes under a key a Dict reads. These
// tests store hostile msgpack payloads in the Dict's envelope (magic,
// codec, no flags) and read them.

// plant stores v as the backend value of d's key.
func plant[V any](t *testing.T, be backend.Backend, d *memdict.Dict[V], key string, v []byte) {
	t.Helper()
	if err := be.Set(context.Background(), backend.Item{Key: d.BackendKey(key), Value: v}); err != nil {
		t.Fatal(err)
	}
}

// msgpackValue frames a msgpack payload as the Dict stores it.
func msgpackValue(payload ...byte) []byte {
	return append([]byte{0xC1, codec.MsgPackID, 0}, payload...)
}

// A header's declared length is bounded by the bytes left: an 8-byte value
// declaring an array of 16 Mi elements made a read allocate 256 MiB (up to
// 64 GiB with the largest length), before it found the value truncated.
func TestHostileMsgpackLengths(t *testing.T) {
	for name, payload := range map[string][]byte{
		"array32": {0xdd, 0x01, 0x00, 0x00, 0x00},
		"map32":   {0xdf, 0x00, 0x80, 0x00, 0x00},
		"str32":   {0xdb, 0x10, 0x00, 0x00, 0x00},
		"nested":  {0x91, 0x91, 0xdd, 0x01, 0x00, 0x00, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			check := func(t *testing.T, lookup func() error) {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				err := lookup()
				runtime.ReadMemStats(&after)
				if !errors.Is(err, memdict.ErrDecode) {
					t.Fatalf("Lookup: %v, want ErrDecode", err)
				}
				if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
					t.Fatalf("a %d-byte value made Lookup allocate %d bytes (%v)", len(payload)+3, n, err)
				}
			}
			t.Run("[]int64", func(t *testing.T) {
				be := memory.New()
				d := newDict[[]int64](t, be, "p")
				plant(t, be, d, "k", msgpackValue(payload...))
				check(t, func() error { _, _, err := d.Lookup(context.Background(), "k"); return err })
			})
			t.Run("any", func(t *testing.T) {
				be := memory.New()
				d := newDict[any](t, be, "p")
				plant(t, be, d, "k", msgpackValue(payload...))
				check(t, func() error { _, _, err := d.Lookup(context.Background(), "k"); return err })
			})
		})
	}
}

// Nesting is bounded (codec.MsgPackMaxDepth): the decoder recurses once
// per level, so a value of about 8 MiB, or a compressed one of under a
// kilobyte, nested 8 Mi deep killed the reading process with a stack
// overflow. A value just deeper than the bound is refused; one at the
// bound decodes.
func TestHostileMsgpackNesting(t *testing.T) {
	nested := func(depth int) []byte {
		return msgpackValue(append(bytes.Repeat([]byte{0x91}, depth), 0xc0)...)
	}
	be := memory.New()
	d := newDict[any](t, be, "p")
	plant(t, be, d, "deep", nested(codec.MsgPackMaxDepth+1))
	if _, _, err := d.Lookup(context.Background(), "deep"); !errors.Is(err, memdict.ErrDecode) {
		t.Errorf("Lookup of a value nested %d deep: %v, want ErrDecode", codec.MsgPackMaxDepth+1, err)
	}
	plant(t, be, d, "ok", nested(codec.MsgPackMaxDepth))
	if _, ok, err := d.Lookup(context.Background(), "ok"); !ok || err != nil {
		t.Errorf("Lookup of a value nested %d deep = %v, %v", codec.MsgPackMaxDepth, ok, err)
	}
	type T struct{ A int }
	ds := newDict[T](t, be, "s")
	plant(t, be, ds, "deep", msgpackValue(append([]byte{0x81, 0xa1, 'z'}, nested(codec.MsgPackMaxDepth + 1)[3:]...)...))
	if _, _, err := ds.Lookup(context.Background(), "deep"); !errors.Is(err, memdict.ErrDecode) {
		t.Errorf("Lookup into a struct of an unknown field nested deep: %v, want ErrDecode", err)
	}
}

// A value the decoder panics on is an error: {"T": nil} decoded into a
// struct with a time.Time field panicked in msgpack (IsNil on a struct),
// in Get and Lookup. memdict writes exactly those bytes for a
// struct{ T *time.Time } whose T is nil, so a change of the field's type
// made every reader panic.
func TestMsgpackDecoderPanic(t *testing.T) {
	type Event struct{ T time.Time }
	be := memory.New()
	d := newDict[Event](t, be, "p")
	plant(t, be, d, "k", msgpackValue(0x81, 0xa1, 'T', 0xc0))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("the read panicked: %v", r)
		}
	}()
	if _, _, err := d.Lookup(context.Background(), "k"); !errors.Is(err, memdict.ErrDecode) {
		t.Errorf("Lookup: %v, want ErrDecode", err)
	}
	if _, ok := d.Get("k"); ok {
		t.Error("Get found a value")
	}
	// The codec still decodes afterwards (a panicking decoder is not
	// pooled again).
	if err := d.Put("k", Event{T: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Get("k"); !ok || !v.T.Equal(time.Unix(1, 0)) {
		t.Errorf("Get after the panic = %v, %v", v, ok)
	}
}

// panicky is a codec whose Unmarshal panics, as a buggy custom codec may
// on bytes it did not write.
type panicky struct{}

func (panicky) ID() byte                           { return 0xf7 }
func (panicky) Name() string                       { return "panicky" }
func (panicky) Marshal(v any) ([]byte, error)      { return []byte("x"), nil }
func (panicky) Unmarshal(data []byte, v any) error { panic("odd input") }

// A custom codec that panics on a stored value fails the read with
// ErrDecode, and Raw.Decoded (the CLI, the admin page) shows the bytes:
// neither crashes the process.
func TestCodecPanicIsErrDecode(t *testing.T) {
	if err := codec.Register(panicky{}); err != nil {
		t.Fatal(err)
	}
	be := memory.New()
	d := newDict[map[string]int](t, be, "p", memdict.WithCodec(panicky{}))
	plant(t, be, d, "k", []byte{0xC1, 0xf7, 0, 'x'})
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("a codec's panic reached the caller: %v", r)
		}
	}()
	if _, _, err := d.Lookup(context.Background(), "k"); !errors.Is(err, memdict.ErrDecode) {
		t.Errorf("Lookup: %v, want ErrDecode", err)
	}
	if v, ok := memdict.ParseRaw([]byte{0xC1, 0xf7, 0, 'x'}).Decoded(); ok {
		t.Errorf("Raw.Decoded of a value its codec panics on = %v, true", v)
	}
}

// Put of a value that holds itself is ErrEncode: the msgpack encoder
// recursed without end and the stack overflow killed the process.
func TestPutCyclicValue(t *testing.T) {
	be := memory.New()
	d := newDict[map[string]any](t, be, "p")
	m := map[string]any{}
	m["self"] = m
	if err := d.Put("k", m); !errors.Is(err, memdict.ErrEncode) {
		t.Errorf("Put of a map holding itself: %v, want ErrEncode", err)
	}
	if _, ok := d.Get("k"); ok {
		t.Error("the failed Put stored a value")
	}
}
