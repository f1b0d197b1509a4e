package codec

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
)

// A struct read from a msgpack array (its fields in order), which the
// decoder accepts for any struct: its fields were charged as any's, 16
// bytes an element, so 10 KB made 240 MiB. They take their types now.
func TestCheckAllocStructAsArray(t *testing.T) {
	type big struct{ A [1024]int64 }
	type inner struct{ Items []big }
	const n = 10 << 10
	b := []byte{0x91} // array of one field
	b = binary.BigEndian.AppendUint32(append(b, 0xdd), n)
	b = append(b, bytes.Repeat([]byte{0xc0}, n)...)
	err := checkAlloc(b, new(inner))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var v inner
	uerr := MsgPack.Unmarshal(b, &v)
	runtime.ReadMemStats(&ms1)
	t.Logf("checkAlloc: %v; Unmarshal: %v, %d items, %d bytes allocated from %d bytes", err, uerr, len(v.Items), ms1.TotalAlloc-ms0.TotalAlloc, len(b))
	if err == nil {
		t.Errorf("checkAlloc accepted a value decoding to %d MiB", uint64(n)*8192>>20)
	}
}

// Two fields whose names fold alike: encoding/json sets the one named
// exactly, and the walk charged the last one declared (381 MB from 30 KB).
// It charges the costliest of them now.
func TestCheckJSONAllocNamesFoldingAlike(t *testing.T) {
	type big struct{ A [1024]int64 }
	type s struct {
		A []big  `json:"Items"`
		B []int8 `json:"items"`
	}
	const n = 10 << 10
	b := []byte(`{"Items":[` + string(bytes.Repeat([]byte("{},"), n-1)) + `{}]}`)
	err := checkJSONAlloc(b, new(s))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var v s
	uerr := JSON.Unmarshal(b, &v)
	runtime.ReadMemStats(&ms1)
	t.Logf("checkJSONAlloc: %v; Unmarshal: %v, %d items, %d bytes allocated from %d bytes", err, uerr, len(v.A), ms1.TotalAlloc-ms0.TotalAlloc, len(b))
	if err == nil {
		t.Errorf("checkJSONAlloc accepted a value decoding to %d MiB", uint64(n)*8192>>20)
	}
}

// encoding/json grows a slice by appending, allocating about five times
// its elements in all: a value the walk counted within the bound
// allocated 276 MiB. The walk counts the growth now.
func TestCheckJSONAllocCountsGrowth(t *testing.T) {
	type big struct{ A [1024]int64 }
	const n = 8000 // 62.5 MiB of elements
	b := []byte(`[` + string(bytes.Repeat([]byte("{},"), n-1)) + `{}]`)
	err := checkJSONAlloc(b, new([]big))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var v []big
	uerr := JSON.Unmarshal(b, &v)
	runtime.ReadMemStats(&ms1)
	got := ms1.TotalAlloc - ms0.TotalAlloc
	t.Logf("checkJSONAlloc: %v; Unmarshal: %v, %d bytes allocated from %d bytes", err, uerr, got, len(b))
	if err == nil && got > 2*MsgPackMaxAlloc {
		t.Errorf("accepted, and allocated %d MiB, bound %d MiB", got>>20, MsgPackMaxAlloc>>20)
	}
}
