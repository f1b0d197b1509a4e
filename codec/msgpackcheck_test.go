package codec

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// checkMsgPack accepts every value the codec writes, whatever its formats.
func TestCheckMsgPackAcceptsEncoded(t *testing.T) {
	type inner struct {
		F float32
		B []byte
	}
	values := []any{
		nil, true, false, 0, 1, -1, -33, 127, 128, 255, 256, 65535, 65536, 1 << 40, -1 << 40, 1.5, float32(2.5),
		"", "short", strings.Repeat("s", 40), strings.Repeat("s", 300), strings.Repeat("s", 70000),
		[]byte{}, []byte("bin"), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("b"), 70000),
		[]int{}, []int{1, 2, 3}, make([]int, 20), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1}, map[string][]string{"x": {"y", "z"}},
		time.Unix(1700000000, 5), time.Unix(1700000000, 0), inner{1.5, []byte("x")},
		[]any{map[string]any{"deep": []any{[]any{[]any{1}}}}},
	}
	for _, v := range values {
		b, err := MsgPack.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", v, err)
		}
		if err := checkMsgPack(b); err != nil {
			t.Errorf("checkMsgPack of %T %.40v (% x): %v", v, v, b[:min(len(b), 16)], err)
		}
	}
}

// checkMsgPack refuses truncated values, lengths beyond the bytes left,
// the unused byte 0xc1 and nesting beyond MsgPackMaxDepth.
func TestCheckMsgPackRefuses(t *testing.T) {
	deep := func(n int) []byte { return append(bytes.Repeat([]byte{0x91}, n), 0xc0) }
	for _, c := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"nil", []byte{0xc0}, true},
		{"0xc1", []byte{0xc1}, false},
		{"fixarray short", []byte{0x92, 0x01}, false},
		{"fixmap short", []byte{0x81, 0x01}, false},
		{"array16 beyond", []byte{0xdc, 0x00, 0x03, 0x01, 0x02}, false},
		{"array32 huge", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false},
		{"map16 beyond", []byte{0xde, 0x00, 0x02, 0x01, 0x02, 0x03}, false},
		{"map32 huge", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, false},
		{"str8 beyond", []byte{0xd9, 0x05, 'a'}, false},
		{"str32 huge", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, false},
		{"bin16 truncated length", []byte{0xc5, 0x00}, false},
		{"bin32 beyond", []byte{0xc6, 0x00, 0x00, 0x01, 0x00, 0x00}, false},
		{"ext8 without type", []byte{0xc7, 0x01}, false},
		{"ext8", []byte{0xc7, 0x01, 0x05, 0xaa}, true},
		{"fixext16 short", append([]byte{0xd8, 0x01}, make([]byte, 15)...), false},
		{"fixext16", append([]byte{0xd8, 0x01}, make([]byte, 16)...), true},
		{"float64 short", []byte{0xcb, 0, 0, 0}, false},
		{"uint64", []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{"int16 short", []byte{0xd1, 0}, false},
		{"trailing bytes are Unmarshal's", []byte{0x01, 0x02}, true},
		{"at the depth bound", deep(MsgPackMaxDepth), true},
		{"beyond the depth bound", deep(MsgPackMaxDepth + 1), false},
	} {
		if err := checkMsgPack(c.b); (err == nil) != c.ok {
			t.Errorf("%s (% x): %v, want ok %v", c.name, c.b[:min(len(c.b), 12)], err, c.ok)
		}
	}
}

// FuzzMsgPackUnmarshal: whatever the bytes, Unmarshal returns (no panic,
// no crash) into the kinds of value a Dict decodes into.
func FuzzMsgPackUnmarshal(f *testing.F) {
	for _, v := range []any{map[string]any{"a": []any{1, "x", nil}}, []int{1, 2}, "s", struct{ T time.Time }{time.Unix(1, 0)}} {
		b, _ := MsgPack.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa1, 'T', 0xc0})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a any
		_ = MsgPack.Unmarshal(b, &a)
		var s struct {
			T time.Time
			M map[string][]int
			P *int
		}
		_ = MsgPack.Unmarshal(b, &s)
		var l []int64
		_ = MsgPack.Unmarshal(b, &l)
	})
}

// BenchmarkMsgPackUnmarshal measures Unmarshal, its check included, of a
// small record and of one carrying 16 KiB of bytes.
func BenchmarkMsgPackUnmarshal(b *testing.B) {
	type rec struct {
		ID    int64    `json:"id"`
		Name  string   `json:"name"`
		Email string   `json:"email"`
		Tags  []string `json:"tags"`
		Blob  []byte   `json:"blob,omitempty"`
	}
	for _, c := range []struct {
		name string
		v    rec
	}{
		{"small", rec{ID: 7, Name: "Ada Lovelace", Email: "ada@example.com", Tags: []string{"a", "b", "c"}}},
		{"16KiB", rec{ID: 7, Name: "Ada", Blob: bytes.Repeat([]byte("x"), 16<<10)}},
	} {
		data, err := MsgPack.Marshal(c.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.Run("check", func(b *testing.B) {
				for b.Loop() {
					_ = checkMsgPack(data)
				}
			})
			b.Run("unmarshal", func(b *testing.B) {
				for b.Loop() {
					var r rec
					if err := MsgPack.Unmarshal(data, &r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// A value that holds itself, or nests deeper than MsgPackMaxDepth, is an
// encoding error: the encoder recursed once per level, so a map that held
// itself (or a pointer, slice or interface cycle) overflowed the writer's
// stack, a fatal error, not a panic. Values at the bound encode (and
// decode), and the encoder's skipped fields (unexported, "-") may cycle.
func TestMsgPackEncodeDepth(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(256 << 20)) // fail fast without the check
	type node struct {
		Next   *node
		Any    any
		parent *node
		Skip   *node `msgpack:"-"`
	}
	selfMap := map[string]any{}
	selfMap["m"] = selfMap
	selfSlice := []any{nil}
	selfSlice[0] = selfSlice
	selfPtr := &node{}
	selfPtr.Next = selfPtr
	selfAny := &node{}
	selfAny.Any = []any{selfAny}
	var selfIface any
	selfIface = &selfIface
	nest := func(n int) any {
		var v any = 1
		for range n {
			v = []any{v}
		}
		return v
	}
	for name, v := range map[string]any{
		"map": selfMap, "slice": selfSlice, "pointer": selfPtr, "through any": selfAny,
		"interface": &selfIface, "too deep": nest(MsgPackMaxDepth + 1),
	} {
		if _, err := MsgPack.Marshal(v); err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Errorf("Marshal of %s: %v, want an error", name, err)
		}
	}
	skipped := &node{}
	skipped.parent, skipped.Skip = skipped, skipped
	for name, v := range map[string]any{"at the bound": nest(MsgPackMaxDepth), "skipped fields": skipped} {
		b, err := MsgPack.Marshal(v)
		if err != nil {
			t.Errorf("Marshal of %s: %v", name, err)
			continue
		}
		var back any
		if err := MsgPack.Unmarshal(b, &back); err != nil {
			t.Errorf("Unmarshal of %s: %v", name, err)
		}
	}
}

// Gob's Marshal of a value that holds itself is an error: gob followed
// the cycle until the stack overflowed, a fatal error. A list longer than
// msgpack's bound still encodes and decodes.
func TestGobEncodeCycle(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(256 << 20)) // fail fast without the check
	type node struct {
		V    int
		Next *node
		prev *node
	}
	self := &node{V: 1}
	self.Next = self
	if _, err := Gob.Marshal(self); err == nil || !strings.Contains(err.Error(), "holding itself") {
		t.Errorf("Marshal of a pointer cycle: %v, want an error", err)
	}
	var list *node
	for i := range MsgPackMaxDepth + 10 {
		list = &node{V: i, Next: list}
		if list.Next != nil {
			list.Next.prev = list // not encoded: unexported
		}
	}
	b, err := Gob.Marshal(list)
	if err != nil {
		t.Fatalf("Marshal of a list of %d: %v", MsgPackMaxDepth+10, err)
	}
	var back *node
	if err := Gob.Unmarshal(b, &back); err != nil || back.V != list.V {
		t.Errorf("Unmarshal of the list: %v", err)
	}
}

// A decoder keeps the buffer it read strings and binaries into, as large
// as the largest it read: pooled, a decoder that once read a value of 8
// MiB kept 8 MiB for as long as reads of small values reused it. A
// decoder that read a large value is not pooled.
func TestMsgPackDecoderKeepsNoLargeBuffer(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one pool: reuse is certain
	small, _ := MsgPack.Marshal("small")
	large, _ := MsgPack.Marshal(strings.Repeat("x", 8<<20))
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var s string
	if err := MsgPack.Unmarshal(small, &s); err != nil {
		t.Fatal(err)
	}
	before := heap()
	if err := MsgPack.Unmarshal(large, &s); err != nil || len(s) != 8<<20 {
		t.Fatal(err)
	}
	s = ""
	// Reads between collections keep a pooled decoder (sync.Pool drops
	// one unused for two).
	for range 3 {
		if err := MsgPack.Unmarshal(small, &s); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
	}
	if err := MsgPack.Unmarshal(small, &s); err != nil {
		t.Fatal(err)
	}
	if kept := int64(heap()) - int64(before); kept > 1<<20 {
		t.Errorf("%d KiB kept after reading an 8 MiB string, then small values", kept>>10)
	}
	runtime.KeepAlive(large)
}

// checkAlloc refuses a value whose slices and maps would take more than
// MsgPackMaxAlloc in the type decoded into, wherever they are (a struct's
// field, an embedded struct's, a map's values, any), and accepts large
// values whose elements are small, or skipped (a field the type has not).
func TestCheckAllocBoundsElements(t *testing.T) {
	type big struct{ A [1024]int64 }
	type inner struct{ Items []big }
	type outer struct {
		inner
		Tags []string `json:"tags"`
	}
	array := func(n int, elem ...byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
		return append(b, bytes.Repeat(elem, n)...)
	}
	field := func(name string, value []byte) []byte {
		return append(append([]byte{0x81, 0xa0 | byte(len(name))}, name...), value...)
	}
	pairs := binary.BigEndian.AppendUint32([]byte{0xdf}, 9000)
	pairs = append(pairs, bytes.Repeat([]byte{0xa0, 0xc0}, 9000)...)
	for _, c := range []struct {
		name string
		data []byte
		v    any
		ok   bool
	}{
		{"[]big of nils", array(10<<10, 0xc0), new([]big), false},
		{"a struct's field", field("Items", array(10<<10, 0x80)), new(inner), false},
		{"an embedded struct's field", field("Items", array(10<<10, 0xc0)), new(outer), false},
		{"a pointer's", array(10<<10, 0xc0), new(*[]*[]big), true},
		{"a map's values", pairs, new(map[string]big), false},
		{"any", array(5<<20, 0xc0), new(any), false},
		{"strings", field("tags", array(512<<10, 0xa1, 'x')), new(outer), true},
		{"a field skipped", field("zz", array(10<<10, 0xc0)), new(outer), true},
		{"any within the bound", array(1<<20, 0xc0), new(any), true},
	} {
		err := checkAlloc(c.data, c.v)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
		if err := MsgPack.Unmarshal(c.data, c.v); (err == nil) != c.ok {
			t.Errorf("Unmarshal of %s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// The JSON codec bounds what a value's slices and maps take, as msgpack
// does: an element of two or three bytes ("{}," or "0,") decodes to a
// whole element of the type. 60 KB of empty objects read as a []T of an
// 8 KiB T allocated 160 MB before, and a key spelled in another case, or
// escaped, still names its field, as encoding/json matches it.
func TestCheckJSONAllocBoundsElements(t *testing.T) {
	type big struct{ A [1024]int64 }
	type inner struct {
		Items []big `json:"items"`
	}
	type outer struct {
		inner
		Tags []string `json:"tags"`
	}
	array := func(n int, elem string) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]")
	}
	field := func(name string, value []byte) []byte {
		return append([]byte(`{"`+name+`":`), append(value, '}')...)
	}
	pairs := []byte("{" + strings.TrimSuffix(strings.Repeat(`"":{},`, 9000), ",") + "}")
	for _, c := range []struct {
		name string
		data []byte
		v    any
		ok   bool
	}{
		{"[]big of empty objects", array(20<<10, "{}"), new([]big), false},
		{"[]big of nulls", array(20<<10, "null"), new([]big), false},
		{"a struct's field", field("items", array(20<<10, "{}")), new(inner), false},
		{"a field in another case", field("ITEMS", array(20<<10, "{}")), new(inner), false},
		{"a field escaped", field(`\u0069tems`, array(20<<10, "{}")), new(inner), false},
		{"an embedded struct's field", field("items", array(20<<10, "{}")), new(outer), false},
		{"a map's values", pairs, new(map[string]big), false},
		{"any", array(6<<20, "0"), new(any), false},
		{"strings", field("tags", array(512<<10, `"x"`)), new(outer), true},
		{"a field skipped", field("zz", array(20<<10, "{}")), new(outer), true},
		{"a few", array(100, "{}"), new([]big), true},
		{"not JSON", append([]byte("[{} x"), array(20<<10, "{}")...), new([]big), true},
	} {
		err := checkJSONAlloc(c.data, c.v)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
		if c.name == "not JSON" {
			continue // left to the decoder, which refuses it
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = JSON.Unmarshal(c.data, c.v)
		runtime.ReadMemStats(&after)
		if (err == nil) != c.ok {
			t.Errorf("Unmarshal of %s: %v, want ok %v", c.name, err, c.ok)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; !c.ok && alloc > 8<<20 {
			t.Errorf("Unmarshal of %s (%d bytes) allocated %d bytes", c.name, len(c.data), alloc)
		}
	}
}
