package compress

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	src := []byte(strings.Repeat(`{"name":"Ada","langs":["go","python"]},`, 500))
	c := Encode([]byte("hdr"), src)
	if !bytes.HasPrefix(c, []byte("hdr")) || len(c) > len(src)/10 {
		t.Fatalf("Encode: %d bytes of %d", len(c), len(src))
	}
	out, err := Decode(c[3:], len(src))
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("Decode: %v", err)
	}
	if _, err := Decode(c[3:], len(src)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode above the bound: %v", err)
	}
}

// Hostile frames: a bomb is refused by its stated size before anything is
// allocated; frames that do not state it, that lie about it or that
// follow one another are refused, not decompressed past the bound.
func TestHostileFrames(t *testing.T) {
	bomb := Encode(nil, make([]byte, 64<<20)) // 64 MiB of zeros, a few KB
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _ = Decode(bomb, 1<<20)
	}
	runtime.ReadMemStats(&after)
	if n := (after.TotalAlloc - before.TotalAlloc) / 10; n > 4096 {
		t.Errorf("refusing a bomb allocates %d bytes", n)
	}
	if _, err := Decode(bomb, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of a bomb: %v", err)
	}

	var stream bytes.Buffer // a frame flushed before its end states no size
	w, _ := zstd.NewWriter(&stream, zstd.WithEncoderConcurrency(1))
	w.Write(make([]byte, 1000))
	w.Flush()
	w.Write(make([]byte, 1000))
	w.Close()
	if _, err := Decode(stream.Bytes(), 1<<20); err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("Decode of a frame without its size: %v", err)
	}

	one := Encode(nil, []byte(strings.Repeat("x", 1000)))
	two := append(append([]byte(nil), one...), Encode(nil, make([]byte, 1<<20))...)
	if out, err := Decode(two, 1<<30); err == nil {
		t.Fatalf("Decode of two frames gave %d bytes", len(out))
	}

	lying := append([]byte(nil), one...)
	lying[5]-- // the frame content size field (single segment, 2 bytes): says 999
	if out, err := Decode(lying, 1<<20); err == nil {
		t.Fatalf("Decode of a frame that understates its size gave %d bytes", len(out))
	}

	// 17 bytes stating 64 MiB, holding one: refused before allocating the
	// size stated (64 MiB allocated before).
	liar := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 4, 0, 0, 0, 0, 0x09, 0, 0, 'x'}
	runtime.ReadMemStats(&before)
	_, err := Decode(liar, 64<<20)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("Decode of a frame stating 64 MiB in 17 bytes succeeded")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4096 {
		t.Errorf("refusing a 17-byte frame that states 64 MiB allocates %d bytes (%v)", n, err)
	}

	for _, b := range [][]byte{nil, {0x28, 0xb5}, []byte("not zstd at all"), one[:len(one)/2]} {
		if _, err := Decode(b, 1<<20); err == nil {
			t.Errorf("Decode(%q) succeeded", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(nil, []byte("hello hello hello hello")))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Decode(b, 4096)
		if err == nil && len(out) > 4096 {
			t.Fatalf("%d bytes decoded past the bound", len(out))
		}
	})
}

// json16K is about 16 KiB of JSON records, alike but not equal.
func json16K() []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < 16<<10; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"customer":"Customer %d","email":"customer%d@example.com","items":["SKU-%05d","SKU-%05d"],"total":%d.99,"paid":%v}`,
			1000+i, i%17, i%17, i*7%1000, i*13%1000, i*37%500, i%3 != 0)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// BenchmarkZstd16KJSON measures compression alone on 16 KiB of JSON: the
// ratio, and the time and allocations of Encode and Decode.
func BenchmarkZstd16KJSON(b *testing.B) {
	src := json16K()
	c := Encode(nil, src)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		dst := make([]byte, 0, len(src))
		for b.Loop() {
			dst = Encode(dst[:0], src)
		}
		b.ReportMetric(float64(len(src))/float64(len(c)), "ratio")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := Decode(c, len(src)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(src))/float64(len(c)), "ratio")
	})
}
