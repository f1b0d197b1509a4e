package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime"
	"strings"
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

// An element decoded into a pointer allocates what it points to: the
// walks charged the pointer's 8 bytes only, so 20 KB of empty maps (0x80)
// read as a []*T of an 8 KiB T allocated 168 MB, 61 KB of "{}," 168 MB
// (and of "0," 170 MB: encoding/json allocates the T, refuses the number
// and goes on). So did a pointer field of a slice's structs, a map's
// pointer values, an array of pointers and a pointer to a pointer. They
// charge what the pointers point to now, nil and null nothing.
func TestCheckAllocChargesPointees(t *testing.T) {
	type big struct{ A [1024]int64 }
	type withPtr struct{ P *big }
	const n = 20 << 10 // 160 MiB of big
	mpArray := func(n int, elem ...byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
		return append(b, bytes.Repeat(elem, n)...)
	}
	mpMap := func(n int, pair ...byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(n))
		return append(b, bytes.Repeat(pair, n)...)
	}
	jsArray := func(n int, elem string) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]")
	}
	jsMap := func(n int, pair string) []byte {
		return []byte("{" + strings.TrimSuffix(strings.Repeat(pair+",", n), ",") + "}")
	}
	for _, c := range []struct {
		name  string
		codec Codec
		data  []byte
		v     any
		ok    bool
	}{
		{"msgpack []*big of empty maps", MsgPack, mpArray(n, 0x80), new([]*big), false},
		{"msgpack []*big of empty arrays", MsgPack, mpArray(n, 0x90), new([]*big), false},
		{"msgpack []**big", MsgPack, mpArray(n, 0x80), new([]**big), false},
		{"msgpack a pointer field", MsgPack, mpArray(n, 0x81, 0xa1, 'P', 0x80), new([]withPtr), false},
		{"msgpack a map's pointer values", MsgPack, mpMap(n, 0xa0, 0x80), new(map[string]*big), false},
		{"msgpack an array of pointers", MsgPack, mpArray(n/4, 0x94, 0x80, 0x80, 0x80, 0x80), new([][4]*big), false},
		{"msgpack []*big of nils", MsgPack, mpArray(n, 0xc0), new([]*big), true},
		{"msgpack []*big within the bound", MsgPack, mpArray(4<<10, 0x80), new([]*big), true},
		{"json []*big of empty objects", JSON, jsArray(n, "{}"), new([]*big), false},
		{"json []*big of numbers", JSON, jsArray(n, "0"), new([]*big), false},
		{"json []**big", JSON, jsArray(n, "{}"), new([]**big), false},
		{"json a pointer field", JSON, jsArray(n, `{"P":{}}`), new([]withPtr), false},
		{"json a map's pointer values", JSON, jsMap(n, `"":{}`), new(map[string]*big), false},
		{"json an array of pointers", JSON, jsArray(n/4, "[{},{},{},{}]"), new([][4]*big), false},
		{"json []*big of nulls", JSON, jsArray(n, "null"), new([]*big), true},
		{"json []*big within the bound", JSON, jsArray(1<<10, "{}"), new([]*big), true},
	} {
		decodeBounded(t, c.name, c.codec, c.data, c.v, c.ok, 2*MsgPackMaxAlloc)
	}
}

// A type holding a pointer to itself is charged what each pointer points
// to, and still decodes: maxCost ends at the recursion.
func TestCheckAllocRecursivePointers(t *testing.T) {
	type node struct {
		Next *node
		Pad  [1024]int64
	}
	for _, c := range []Codec{MsgPack, JSON} {
		var list *node
		for range 3 {
			list = &node{Next: list}
		}
		list.Pad[0] = 7
		b, err := c.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		var back *node
		if err := c.Unmarshal(b, &back); err != nil || back.Pad[0] != 7 || back.Next == nil || back.Next.Next == nil {
			t.Errorf("%s: Unmarshal of a list of 3: %v", c.Name(), err)
		}
	}
	// 9,000 nodes of 8 KiB, one byte each: 70 MiB.
	b := binary.BigEndian.AppendUint32([]byte{0xdd}, 9000)
	b = append(b, bytes.Repeat([]byte{0x80}, 9000)...)
	if err := checkAlloc(b, new([]*node)); err == nil {
		t.Errorf("checkAlloc accepted 9,000 empty maps read as []*node")
	}
}

// A []*T of real data decodes whole, in both codecs, within the bound.
func TestPointerSliceRoundTrip(t *testing.T) {
	type rec struct {
		ID   int64             `json:"id"`
		Name string            `json:"name"`
		Tags []string          `json:"tags"`
		Attr map[string]*int64 `json:"attr"`
		Next *rec              `json:"next,omitempty"`
	}
	var in []*rec
	for i := range 2000 {
		v := int64(i)
		r := &rec{ID: v, Name: fmt.Sprintf("name %d", i), Tags: []string{"a", "b"}, Attr: map[string]*int64{"v": &v}}
		if i%3 == 0 {
			r.Next = &rec{ID: -v}
		}
		if i%7 == 0 {
			r = nil
		}
		in = append(in, r)
	}
	for _, c := range []Codec{MsgPack, JSON} {
		b, err := c.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out []*rec
		if err := c.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: Unmarshal of %d bytes: %v", c.Name(), len(b), err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: the []*rec read back differs", c.Name())
		}
	}
}

// A map allocates its header and a group of 8 slots however few its
// pairs, and up to 16/7 slots a pair beyond: the walks charged a pair
// its key and value and 16 bytes, so 0.9 MB of one-pair maps ({"": 0})
// read as a []map[string]int allocated 91 MB (113 MB as a []any), 2 MB
// of one map of a million pairs 81 MB, and 2.1 MB of JSON one-pair
// objects 100 MB (131 MB as any). They charge the map's table now.
func TestCheckAllocChargesMaps(t *testing.T) {
	const n = 300 << 10
	mpArray := func(n int, elem ...byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
		return append(b, bytes.Repeat(elem, n)...)
	}
	mpMap := binary.BigEndian.AppendUint32([]byte{0xdf}, 1<<20)
	mpMap = append(mpMap, bytes.Repeat([]byte{0xa0, 0x00}, 1<<20)...)
	jsArray := func(n int, elem string) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]")
	}
	for _, c := range []struct {
		name  string
		codec Codec
		data  []byte
		v     any
		ok    bool
	}{
		{"msgpack []map of one pair", MsgPack, mpArray(n, 0x81, 0xa0, 0x00), new([]map[string]int), false},
		{"msgpack []any of maps of one pair", MsgPack, mpArray(n, 0x81, 0xa0, 0x00), new([]any), false},
		{"msgpack a map of a million pairs", MsgPack, mpMap, new(map[string]int), false},
		{"msgpack []map within the bound", MsgPack, mpArray(n/8, 0x81, 0xa0, 0x00), new([]map[string]int), true},
		{"json []map of one pair", JSON, jsArray(n, `{"":0}`), new([]map[string]int), false},
		{"json any of objects of one pair", JSON, jsArray(n, `{"":0}`), new(any), false},
		{"json []map within the bound", JSON, jsArray(n/8, `{"":0}`), new([]map[string]int), true},
	} {
		decodeBounded(t, c.name, c.codec, c.data, c.v, c.ok, MsgPackMaxAlloc)
	}
}

// msgpack v5.4.1 makes a slice of n and appends it to the nil one, two
// slices of n, and sets a struct it reads a nil or an empty array into
// to reflect.Zero's, which allocates one of a struct larger than 1 KiB:
// 7 KB of nils read as a []T of an 8 KiB T allocated 172 MB (24 KiB an
// element), charged 57 MB, one slice of 8 KiB an element. They are
// charged twice the slice and the zero struct now.
func TestCheckAllocCountsSliceCopyAndZeroStruct(t *testing.T) {
	type big struct{ A [1024]int64 }
	type holder struct{ B big }
	type small struct{ A [100]int64 }
	array := func(n int, elem ...byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
		return append(b, bytes.Repeat(elem, n)...)
	}
	for _, c := range []struct {
		name string
		data []byte
		v    any
		ok   bool
	}{
		{"[]big of nils", array(7000, 0xc0), new([]big), false},
		{"[]big of empty arrays", array(7000, 0x90), new([]big), false},
		{"a field of big set to nil", array(7000, 0x81, 0xa1, 'B', 0xc0), new([]holder), false},
		{"[]big of nils within the bound", array(2000, 0xc0), new([]big), true},
		{"[]small of nils", array(7000, 0xc0), new([]small), true},
	} {
		decodeBounded(t, c.name, MsgPack, c.data, c.v, c.ok, MsgPackMaxAlloc)
	}
}

// The JSON walk reads every key of a struct's object: it unmarshaled
// each to a string, 24,000 allocations (1.3 MB) for 124 KB of a []*T of
// 2,000 records, which now count enough (their pointers and maps) to be
// walked: Unmarshal took 1.8 times as long. A key without escapes is
// looked up as it is, without a copy.
func TestCheckJSONAllocKeysWithoutCopies(t *testing.T) {
	type rec struct {
		ID   int64            `json:"id"`
		Name string           `json:"name"`
		Tags []string         `json:"tags"`
		Attr map[string]int64 `json:"attr"`
	}
	var in []*rec
	for i := range 2000 {
		in = append(in, &rec{ID: int64(i), Name: fmt.Sprintf("name %d", i), Tags: []string{"a"}, Attr: map[string]int64{"v": 1}})
	}
	b, err := JSON.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	w := jsonWalker{data: b}
	w.value(reflect.TypeFor[[]*rec](), 0)
	if w.bad || w.total == 0 {
		t.Fatalf("walk: bad %v, total %d", w.bad, w.total)
	}
	allocs := testing.AllocsPerRun(3, func() {
		w := jsonWalker{data: b}
		w.value(reflect.TypeFor[[]*rec](), 0)
	})
	if allocs > 100 {
		t.Errorf("the walk of %d records allocated %.0f times", len(in), allocs)
	}
}

// decodeBounded decodes data into v with cd: with ok it must decode, else
// be refused past MsgPackMaxAlloc; either way allocating at most limit
// bytes.
func decodeBounded(t *testing.T, name string, cd Codec, data []byte, v any, ok bool, limit uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := cd.Unmarshal(data, v)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if !ok && (err == nil || !strings.Contains(err.Error(), "beyond MsgPackMaxAlloc")) {
		t.Errorf("%s: %d bytes allocated from %d bytes, error %v; want refused", name, alloc, len(data), err)
	}
	if ok && err != nil {
		t.Errorf("%s: %v, want decoded", name, err)
	}
	if alloc > limit {
		t.Errorf("%s: %d MiB allocated from %d bytes", name, alloc>>20, len(data))
	}
}
