package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// order is a JSON document of a few hundred bytes.
type order struct {
	ID       int      `json:"id"`
	Customer string   `json:"customer"`
	Email    string   `json:"email"`
	Items    []string `json:"items"`
	Total    float64  `json:"total"`
	Paid     bool     `json:"paid"`
	Note     string   `json:"note"`
}

// orders returns n orders: about 175 bytes of JSON each, 16 KiB for 94.
func orders(n int) []order {
	out := make([]order, n)
	for i := range out {
		out[i] = order{
			ID: 1000 + i, Customer: fmt.Sprintf("Customer %d", i%17), Email: fmt.Sprintf("customer%d@example.com", i%17),
			Items: []string{fmt.Sprintf("SKU-%05d", i*7%1000), fmt.Sprintf("SKU-%05d", i*13%1000)},
			Total: float64(i*37%500) + 0.99, Paid: i%3 != 0, Note: "leave at the door if nobody answers",
		}
	}
	return out
}

// raw reads the bytes a backend holds for d's key.
func raw[V any](t *testing.T, be backend.Backend, d *memdict.Dict[V], key string) []byte {
	t.Helper()
	it, err := be.Get(context.Background(), d.BackendKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return it.Value
}

// A value above the threshold is stored compressed, with the flag in its
// header; a Dict without compression reads it, and values below the
// threshold are stored as before.
func TestZstdCodec(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	z := newDict[[]order](t, be, "o", memdict.WithCodec(codec.Zstd(codec.JSON, 0)))
	plain := newDict[[]order](t, be, "o", memdict.WithCodec(codec.JSON))
	big, small := orders(64), orders(1)
	if err := z.Put("big", big); err != nil {
		t.Fatal(err)
	}
	if err := z.Put("small", small); err != nil {
		t.Fatal(err)
	}
	stored := raw(t, be, z, "big")
	if stored[2]&0x20 == 0 || len(stored) > 4096 {
		t.Fatalf("the big value is stored in %d bytes, header flags %#x", len(stored), stored[2])
	}
	if s := raw(t, be, z, "small"); s[2]&0x20 != 0 || !strings.Contains(string(s), "Customer 0") {
		t.Fatalf("the small value is stored as %q", s)
	}
	for _, d := range []*memdict.Dict[[]order]{z, plain} {
		got, ok, err := d.Lookup(ctx, "big")
		if err != nil || !ok || len(got) != 64 || got[63].Email != big[63].Email {
			t.Fatalf("Lookup through %s = %d orders, %v, %v", d.Codec().Name(), len(got), ok, err)
		}
		if got, ok, err := d.Lookup(ctx, "small"); err != nil || !ok || got[0].Customer != "Customer 0" {
			t.Fatalf("Lookup of the small value through %s = %v, %v, %v", d.Codec().Name(), got, ok, err)
		}
	}
	// Values written without compression read through the compressing
	// Dict.
	if err := plain.Put("old", big); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := z.Lookup(ctx, "old"); err != nil || !ok || len(got) != 64 {
		t.Fatalf("Lookup of an uncompressed value = %v, %v", ok, err)
	}
	// Rewriting the envelope (Touch, Invalidate) keeps the compression.
	if err := z.Touch(ctx, "big", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := z.Invalidate(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := plain.Lookup(ctx, "big"); err != nil || !ok || len(got) != 64 {
		t.Fatalf("Lookup after Touch and Invalidate = %v, %v", ok, err)
	}
	// A Raw Dict, and ParseRaw, show the codec's encoding.
	rd := newDict[memdict.Raw](t, be, "o")
	r, ok, err := rd.Lookup(ctx, "big")
	if err != nil || !ok || r.Codec != codec.JSONID || !strings.HasPrefix(string(r.Payload), `[{"id":1000`) {
		t.Fatalf("Raw Lookup = %q, %v, %v", r.Payload[:min(40, len(r.Payload))], ok, err)
	}
	if pr := memdict.ParseRaw(raw(t, be, z, "big")); pr.Codec != codec.JSONID || !strings.HasPrefix(string(pr.Payload), `[{"id":1000`) {
		t.Fatalf("ParseRaw = %q", pr.Payload[:min(40, len(pr.Payload))])
	}
	if name := z.Codec().Name(); name != "json+zstd" || z.Codec().ID() != codec.JSONID {
		t.Fatalf("codec %q, ID %q", name, z.Codec().ID())
	}
}

// The Dict's MaxValueLen bounds the value before compression: compression
// saves room, it does not raise the limit that readers decompress to.
func TestZstdMaxValueLen(t *testing.T) {
	dj := newDict[[]order](t, memory.New(), "o", memdict.WithCodec(codec.Zstd(codec.JSON, 0)), memdict.WithMaxValueLen(10_000))
	if err := dj.Put("big", orders(64)); !errors.Is(err, memdict.ErrValueTooLarge) {
		t.Fatalf("Put of 16 KiB under a limit of 10 KB: %v", err)
	}
}

// A hostile compressed value (a few KB that decompress to 64 MiB) is
// refused by the size its frame states, without allocating it.
func TestZstdBomb(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[[]order](t, be, "o", memdict.WithCodec(codec.JSON))
	if err := d.Put("k", orders(1)); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 64<<20), nil)
	v := append([]byte{0xC1, codec.JSONID, 0x20}, bomb...)
	if err := be.Set(ctx, backend.Item{Key: d.BackendKey("k"), Value: v}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := d.Lookup(ctx, "k")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, memdict.ErrDecode) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Lookup of a bomb: %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("refusing a bomb allocated %d bytes", n)
	}
	rd := newDict[memdict.Raw](t, be, "o")
	if r, ok, err := rd.Lookup(ctx, "k"); err != nil || !ok || r.Codec != 0 || len(r.Payload) != len(v) {
		t.Fatalf("Raw Lookup of a bomb = codec %d, %d bytes, %v, %v", r.Codec, len(r.Payload), ok, err)
	}
}

// BenchmarkZstdJSON16K measures a 16 KiB JSON value through a Dict on the
// memory backend, with and without codec.Zstd: the bytes stored
// (bytes/value), and the time and allocations of Put (encode) and Lookup
// (decode).
func BenchmarkZstdJSON16K(b *testing.B) {
	ctx := context.Background()
	v := orders(94) // 16.4 KiB of JSON
	for _, c := range []codec.Codec{codec.JSON, codec.Zstd(codec.JSON, 0), codec.MsgPack, codec.Zstd(codec.MsgPack, 0)} {
		be := memory.New()
		d, err := memdict.New[[]order](be, "b", memdict.WithCodec(c))
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Put("k", v); err != nil {
			b.Fatal(err)
		}
		it, _ := be.Get(ctx, d.BackendKey("k"))
		size := float64(len(it.Value))
		b.Run("put/"+c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Store(ctx, "k", v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(size, "bytes/value")
		})
		b.Run("get/"+c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := d.Lookup(ctx, "k"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
			b.ReportMetric(size, "bytes/value")
		})
	}
}
