package memdict_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// An element of an array costs one byte (a nil, an empty map) and decodes
// to a whole element of the Dict's type: a 10 KiB value of 10 Ki nils
// made a Dict[[]T] of an 8 KiB T allocate 160 MiB (16,000 times the
// value; a 1 MiB value, memcached's largest, 16 GiB). Slices and maps of
// more than codec.MsgPackMaxAlloc are refused before decoding.
func TestHostileMsgpackElementAmplification(t *testing.T) {
	type big struct{ A [1024]int64 }
	const n = 10 << 10
	for name, elem := range map[string]byte{"nils": 0xc0, "empty maps": 0x80} {
		t.Run(name, func(t *testing.T) {
			payload := []byte{0xdd, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(payload[1:], n)
			payload = append(payload, bytes.Repeat([]byte{elem}, n)...)
			be := memory.New()
			d := newDict[[]big](t, be, "p")
			plant(t, be, d, "k", msgpackValue(payload...))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := d.Lookup(context.Background(), "k")
			runtime.ReadMemStats(&after)
			if !errors.Is(err, memdict.ErrDecode) {
				t.Errorf("Lookup: %v, want ErrDecode", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("a %d-byte value made Lookup allocate %d bytes (%dx)", len(payload)+3, alloc, alloc/uint64(len(payload)+3))
			}
		})
	}
}
