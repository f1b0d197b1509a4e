package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	f()
	runtime.ReadMemStats(&ms1)
	return ms1.TotalAlloc - ms0.TotalAlloc
}

// gobEncode returns the gob encoding of v.
func gobEncode(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gobSplit returns the messages of a gob stream, without their lengths.
func gobSplit(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	c := gobChecker{rest: b}
	for len(c.rest) > 0 {
		if err := c.message(); err != nil {
			t.Fatal(err)
		}
		out = append(out, c.buf)
	}
	return out
}

// gobJoin returns a gob stream of messages.
func gobJoin(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = gobAppendUint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

type gobSmall struct{ B int }

// gobBig is 8 KiB, of which a value sends only B.
type gobBig struct {
	A [1024]int64
	B int
}

// gobBigU is 8 KiB, of which gob sends only B.
type gobBigU struct {
	a [1024]int64
	B int
}

func init() { gob.RegisterName("codec.gobBigU", gobBigU{}) }

// Fields gob leaves out, which the tests never read.
var _, _ = gobBigU{}.a, gobAll{}.hidden

// A slice of structs whose fields are all zero takes a byte an element:
// 10 KB read as a slice of 8 KiB structs allocated 358 MiB (encoding/gob
// grows the slice by append past 10 MB). It is refused now, before the
// decoder allocates.
func TestCheckGobBoundsElements(t *testing.T) {
	b := gobEncode(t, make([]gobSmall, 10<<10))
	var v []gobBig
	var err error
	got := allocated(func() { err = Gob.Unmarshal(b, &v) })
	t.Logf("Unmarshal: %v, %d bytes allocated from %d bytes", err, got, len(b))
	if err == nil || !strings.Contains(err.Error(), "MsgPackMaxAlloc") {
		t.Errorf("Unmarshal of a value decoding to %d MiB: %v, want an error naming the bound", 10<<10*8200>>20, err)
	}
	if got > 4<<20 {
		t.Errorf("allocated %d MiB", got>>20)
	}
	// Within the bound, it decodes.
	b = gobEncode(t, make([]gobSmall, 1000))
	if err := Gob.Unmarshal(b, &v); err != nil || len(v) != 1000 {
		t.Errorf("Unmarshal of 1000 elements (8 MB): %v, %d elements", err, len(v))
	}
}

// gobWithCount returns the encoding of v, a map or slice with no
// elements at the end of its message, stating n.
func gobWithCount(t *testing.T, v any, n uint64) []byte {
	msgs := gobSplit(t, gobEncode(t, v))
	last := msgs[len(msgs)-1]
	last = gobAppendUint(bytes.Clone(last[:len(last)-1]), n)
	return gobJoin(append(msgs[:len(msgs)-1:len(msgs)-1], last)...)
}

// encoding/gob makes a map for the count a value states, before it reads
// a pair: 23 bytes stating 2^20 pairs allocated 37.8 MB (36 bytes a pair
// of int64s; 2^30 pairs would take 38 GB, which kills the process). A
// count the value's bytes cannot hold is refused now.
func TestCheckGobMapCount(t *testing.T) {
	b := gobWithCount(t, map[int64]int64{}, 1<<20)
	var v map[int64]int64
	var err error
	got := allocated(func() { err = Gob.Unmarshal(b, &v) })
	t.Logf("Unmarshal: %v, %d bytes allocated from %d bytes", err, got, len(b))
	if err == nil || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("Unmarshal: %v, want an error naming the count", err)
	}
	if got > 1<<20 {
		t.Errorf("allocated %d KiB", got>>10)
	}
}

// A map of structs in a field the Go type lacks is skipped pair by pair,
// and a pair of structs takes no byte once the data ends: 89 bytes
// stating 2^26 pairs kept the reader busy 2.3 s and decoded without an
// error (2^62 would take millennia). It is refused now.
func TestCheckGobSkippedMapCount(t *testing.T) {
	type e struct{}
	type withMap struct {
		A int
		M map[e]e
	}
	type without struct{ A int }
	msgs := gobSplit(t, gobEncode(t, withMap{A: 1, M: map[e]e{{}: {}}}))
	last := msgs[len(msgs)-1]
	// ... field M: a delta, count 1, a key, an element, the struct's end.
	last = gobAppendUint(bytes.Clone(last[:len(last)-4]), 1<<24)
	b := gobJoin(append(msgs[:len(msgs)-1:len(msgs)-1], last)...)
	var v without
	start := time.Now()
	err := Gob.Unmarshal(b, &v)
	t.Logf("Unmarshal of %d bytes: %v, in %v", len(b), err, time.Since(start))
	if err == nil || !strings.Contains(err.Error(), "16777216") {
		t.Errorf("Unmarshal: %v, want an error naming the count", err)
	}
}

// Each field of a struct type a value defines costs the decoder about 50
// bytes to read, more as the slice of fields grows past 10 MB, and 144
// more to compile (the decoder compiles the types of every field of a
// struct before it reads it, sent or not): 3 MB of fields (6 bytes a
// field) allocated 78 MiB, and 9 MB of them in a type no value used 159
// MiB. What reading and compiling take is charged now.
func TestCheckGobChargesStructDefinitions(t *testing.T) {
	def := gobStructDef(65, 500000)
	// A struct of one field, B, of that type.
	outer := gobAppendInt(nil, -66)
	outer = append(outer, 3, 1, 1, 1, 'U', 1)
	outer = gobAppendInt(outer, 66)
	outer = append(outer, 0, 1, 1, 1, 1, 'B', 1)
	outer = gobAppendInt(outer, 65)
	outer = append(outer, 0, 0, 0)
	for _, b := range [][]byte{
		gobJoin(def, append(gobAppendInt(nil, 65), 0)),
		gobJoin(def, outer, append(gobAppendInt(nil, 66), 0)),                       // B not sent
		append(gobJoin(gobStructDef(66, 1500000)), gobEncode(t, gobSmall{B: 1})...), // not used
	} {
		var v gobSmall
		var err error
		got := allocated(func() { err = Gob.Unmarshal(b, &v) })
		t.Logf("Unmarshal: %v, %d bytes allocated from %d bytes", err, got, len(b))
		if err == nil || !strings.Contains(err.Error(), "MsgPackMaxAlloc") {
			t.Errorf("Unmarshal: %v, want an error naming the bound", err)
		}
		if got > 16<<20 {
			t.Errorf("allocated %d MiB", got>>20)
		}
	}
}

// gobStructDef returns the definition, as type id, of a struct of n
// fields named b, of type int.
func gobStructDef(id int64, n uint64) []byte {
	def := gobAppendInt(nil, -id)
	def = append(def, 3, 1, 1, 1, 'T', 1) // StructT: CommonType: Name "T", Id
	def = gobAppendInt(def, id)
	def = append(def, 0, 1) // Field
	def = gobAppendUint(def, n)
	for range n {
		def = append(def, 1, 1, 'b', 1, 4, 0) // Name "b", Id int
	}
	def = append(def, 0, 0)
	return def
}

// An interface value decodes to a new value of the type registered under
// its name: 10,240 of 8 KiB in a []any take 80 MiB. The walk finds the
// registered type and charges it.
func TestCheckGobInterfaceValues(t *testing.T) {
	vals := make([]any, 10<<10)
	for i := range vals {
		vals[i] = gobBigU{}
	}
	b := gobEncode(t, vals)
	var v []any
	var err error
	got := allocated(func() { err = Gob.Unmarshal(b, &v) })
	t.Logf("Unmarshal: %v, %d bytes allocated from %d bytes", err, got, len(b))
	if err == nil || !strings.Contains(err.Error(), "MsgPackMaxAlloc") {
		t.Errorf("Unmarshal: %v, want an error naming the bound", err)
	}
	if err := Gob.Unmarshal(gobEncode(t, vals[:100]), &v); err != nil || len(v) != 100 {
		t.Errorf("Unmarshal of 100: %v, %d", err, len(v))
	}
	// Inside an interface value, the slices of its type are charged: a
	// value naming a registered slice of gobBig holds the elements of a
	// slice of gobSmall (which have the same fields).
	type holder struct{ X any }
	b = gobEncode(t, holder{X: gobSmalls(make([]gobSmall, 10<<10))})
	b = bytes.ReplaceAll(b, []byte("codec.tS"), []byte("codec.tB"))
	var h holder
	got = allocated(func() { err = Gob.Unmarshal(b, &h) })
	t.Logf("Unmarshal: %v, %d bytes allocated from %d bytes", err, got, len(b))
	if err == nil || !strings.Contains(err.Error(), "MsgPackMaxAlloc") {
		t.Errorf("Unmarshal: %v, want an error naming the bound", err)
	}
	if got > 4<<20 {
		t.Errorf("allocated %d MiB", got>>20)
	}
}

type (
	gobSmalls []gobSmall
	gobBigs   []gobBig
)

func init() {
	gob.RegisterName("codec.tS", gobSmalls{})
	gob.RegisterName("codec.tB", gobBigs{})
}

// Types of every shape gob encodes, for the walk to accept as it is.
type (
	gobLeaf struct {
		S  string
		N  int8
		U  uint16
		F  float32
		C  complex128
		B  bool
		Bs []byte
		Ar [3]uint8
	}
	gobTree struct {
		Name     string
		Children []*gobTree
		ByName   map[string]*gobTree
	}
	gobEmbedded struct {
		gobLeaf
		Extra int
	}
	gobAll struct {
		Leaf     gobLeaf
		PLeaf    *gobLeaf
		PPInt    **int
		Leaves   []gobLeaf
		PLeaves  []*gobLeaf
		Grid     [][]int64
		Arr      [2][2]string
		Map      map[string][]*gobLeaf
		MapKey   map[gobKey]float64
		Any      any
		Anys     []any
		AnyMap   map[string]any
		Time     time.Time
		PTime    *time.Time
		Big      *big.Int
		Tree     *gobTree
		Emb      gobEmbedded
		Stringer fmt.Stringer
		Bytes    []byte
		hidden   int
		Fn       func() // not sent
	}
	gobKey struct{ A, B int }
	// gobFewer decodes a gobAll without most of its fields: they are
	// skipped.
	gobFewer struct {
		Leaf gobLeaf
		Tree *gobTree
	}
	gobName string
)

func (n gobName) String() string { return string(n) }

func init() {
	gob.Register(gobLeaf{})
	gob.Register(&gobTree{})
	gob.Register(map[string]any{})
	gob.Register([]any{})
	gob.Register(gobName(""))
	gob.Register(time.Time{})
	gob.Register([2]gobKey{})
	gob.Register(gobAll{})
}

func gobSamples() []any {
	seven := 7
	pseven := &seven
	now := time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC)
	leaf := gobLeaf{S: "s", N: -3, U: 300, F: 1.5, C: 2 + 3i, B: true, Bs: []byte{1, 2}, Ar: [3]uint8{1, 0, 3}}
	tree := &gobTree{Name: "root", Children: []*gobTree{{Name: "a"}, {Name: "b", Children: []*gobTree{{Name: "c"}}}}}
	tree.ByName = map[string]*gobTree{"a": {Name: "a2"}}
	all := gobAll{
		Leaf: leaf, PLeaf: &leaf, PPInt: &pseven,
		Leaves: []gobLeaf{leaf, {}, leaf}, PLeaves: []*gobLeaf{&leaf, {S: "x"}},
		Grid: [][]int64{{1, 2}, {}, {3}}, Arr: [2][2]string{{"a", ""}, {"", "d"}},
		Map:    map[string][]*gobLeaf{"k": {&leaf}, "e": {}},
		MapKey: map[gobKey]float64{{1, 2}: 3, {}: 0},
		Any:    leaf,
		Anys:   []any{1, "two", 3.0, []byte("four"), leaf, tree, map[string]any{"x": []any{1, "y", map[string]any{}}}, []string{"a"}, now, gobName("n"), [2]gobKey{{1, 2}, {3, 4}}, nil},
		AnyMap: map[string]any{"a": 1, "b": []any{leaf, nil}, "c": map[string]any{"d": tree}},
		Time:   now, PTime: &now, Big: big.NewInt(-12345678901234),
		Tree: tree, Emb: gobEmbedded{gobLeaf: leaf, Extra: 9}, Stringer: gobName("str"),
		Bytes: bytes.Repeat([]byte{7}, 20000),
	}
	list := &gobTree{Name: "0"}
	for i := range 500 {
		list = &gobTree{Name: fmt.Sprint(i), Children: []*gobTree{list}}
	}
	return []any{
		all, &all, leaf, tree, list, 42, "a string", []byte("bytes"), []int{1, 2, 3}, []string{"a", "b"},
		map[string]int{"a": 1}, map[int][]string{1: {"x"}}, [4]int{1, 2, 3, 4}, []gobLeaf{leaf, leaf},
		map[string]any{"a": 1, "b": leaf}, []any{nil, 1, leaf}, now, big.NewInt(5), 3 + 4i, gobName("name"),
		make([]gobSmall, 1000), [][]gobLeaf{{leaf}, {}},
	}
}

// Every real encoding is accepted, and decodes as without the walk; a
// struct decoded into one lacking most of its fields too (they are
// skipped).
func TestCheckGobAcceptsRealEncodings(t *testing.T) {
	for i, s := range gobSamples() {
		b := gobEncode(t, s)
		rt := reflect.TypeOf(s)
		want := reflect.New(rt)
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(want.Interface()); err != nil {
			t.Fatalf("sample %d (%T): gob: %v", i, s, err)
		}
		got := reflect.New(rt)
		if err := Gob.Unmarshal(b, got.Interface()); err != nil {
			t.Errorf("sample %d (%T): %v", i, s, err)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("sample %d (%T): decoded differently", i, s)
		}
	}
	// encoding/gob cannot skip a nil in an interface field it does not
	// set (it reads a type after the nil's empty name): those left out.
	all := gobSamples()[0].(gobAll)
	all.Anys = all.Anys[:len(all.Anys)-1]
	all.AnyMap["b"] = []any{all.Leaf}
	var few gobFewer
	if err := Gob.Unmarshal(gobEncode(t, all), &few); err != nil || few.Tree == nil || few.Leaf.S != "s" {
		t.Errorf("into a struct of fewer fields: %v, %+v", err, few)
	}
	var anyAll, want struct{ V any }
	b := gobEncode(t, struct{ V any }{V: all})
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&want); err != nil {
		t.Fatal(err)
	}
	if err := Gob.Unmarshal(b, &anyAll); err != nil || !reflect.DeepEqual(anyAll, want) {
		t.Errorf("a gobAll in an interface: %v", err)
	}
}

// The walk charges at least what the decoder allocates, for values of
// every shape that cost more than the bytes they take: a value the walk
// accepts allocates no more than it says (but for the decoder's own few
// KiB), and what it refuses would have passed the bound.
func TestCheckGobChargesWhatGobAllocates(t *testing.T) {
	emptyMaps := make([]map[int64]int64, 10000)
	fullMaps := make([]map[int64]int64, 1000)
	for i := range emptyMaps {
		emptyMaps[i] = map[int64]int64{}
	}
	for i := range fullMaps {
		fullMaps[i] = map[int64]int64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9}
	}
	ifaces := make([]any, 1000)
	for i := range ifaces {
		ifaces[i] = gobBigU{}
	}
	ptrs := make([]*gobSmall, 1000)
	for i := range ptrs {
		ptrs[i] = &gobSmall{}
	}
	bigMap := map[int64]gobSmall{}
	for i := range 1000 {
		bigMap[int64(i)] = gobSmall{}
	}
	for _, tc := range []struct {
		name string
		v    any
		into reflect.Type
	}{
		{"100 elements", make([]gobSmall, 100), reflect.TypeFor[[]gobBig]()},
		{"1000 elements", make([]gobSmall, 1000), reflect.TypeFor[[]gobBig]()},
		{"5000 elements", make([]gobSmall, 5000), reflect.TypeFor[[]gobBig]()},
		{"empty maps", emptyMaps, reflect.TypeFor[[]map[int64]int64]()},
		{"maps of 9", fullMaps, reflect.TypeFor[[]map[int64]int64]()},
		{"interface values", ifaces, reflect.TypeFor[[]any]()},
		{"pointers", ptrs, reflect.TypeFor[[]*gobBig]()},
		{"a map of structs", bigMap, reflect.TypeFor[map[int64]gobBig]()},
		{"nested", [][]gobSmall{make([]gobSmall, 1000), make([]gobSmall, 1000)}, reflect.TypeFor[[][]gobBig]()},
	} {
		b := gobEncode(t, tc.v)
		c := gobChecker{data: b, rest: b}
		err := c.top(tc.into)
		v := reflect.New(tc.into)
		var got uint64
		if err == nil && c.total <= MsgPackMaxAlloc {
			got = allocated(func() { err = gob.NewDecoder(bytes.NewReader(b)).Decode(v.Interface()) })
		}
		t.Logf("%s: %d bytes, the walk charged %d (%v), gob allocated %d", tc.name, len(b), c.total, err, got)
		if got > c.total+64<<10 {
			t.Errorf("%s: gob allocated %d bytes, the walk charged %d", tc.name, got, c.total)
		}
	}
}

type gobNode struct {
	V    int
	Next *gobNode
}

// encoding/gob decodes a level of nesting with a recursion of some 500
// bytes of stack: a list of 1,000,000 nodes (2 MB) took the test process
// to 496 MB, and past about 2,000,000 Go's 1 GB stack limit ends the
// process. Values nested deeper than the encoder writes (gobMaxDepth)
// are refused now.
func TestCheckGobDepth(t *testing.T) {
	const n = 300000
	msgs := gobSplit(t, gobEncode(t, &gobNode{V: 1}))
	last := msgs[len(msgs)-1]
	// The type's id, then n times Next (field 1 of a struct whose V is 0),
	// and the n+1 structs' ends.
	val := gobAppendInt(nil, gobValueID(last))
	val = append(val, bytes.Repeat([]byte{2}, n)...)
	val = append(val, make([]byte, n+1)...)
	b := gobJoin(append(msgs[:len(msgs)-1:len(msgs)-1], val)...)
	var v *gobNode
	err := Gob.Unmarshal(b, &v)
	t.Logf("Unmarshal of %d levels (%d bytes): %v", n, len(b), err)
	if err == nil || !strings.Contains(err.Error(), "deeper than 100000") {
		t.Errorf("Unmarshal: %v, want an error naming the depth", err)
	}
	// As deep as the encoder writes, it decodes.
	v = nil
	for range gobMaxDepth - 1 {
		v = &gobNode{Next: v}
	}
	b, err = Gob.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := Gob.Unmarshal(b, &v); err != nil {
		t.Errorf("Unmarshal of %d levels: %v", gobMaxDepth, err)
	}
}

// gobValueID returns the type id a value message starts with.
func gobValueID(msg []byte) int64 {
	c := gobChecker{buf: msg}
	id, _ := c.int()
	return id
}

type (
	gobInner struct{ X int }
	gobOuter struct {
		*gobInner
		Y int
	}
)

// A field a value names that the Go type promotes from an embedded
// pointer, nil, made encoding/gob panic in reflect ("indirection through
// nil pointer to embedded struct"), out of Unmarshal: a Dict recovers it,
// any other caller crashed. It is an error now.
func TestGobUnmarshalPanicIsError(t *testing.T) {
	b := gobEncode(t, struct{ X, Y int }{X: 1, Y: 2})
	var v gobOuter
	err := Gob.Unmarshal(b, &v)
	t.Logf("Unmarshal: %v", err)
	if err == nil || !strings.Contains(err.Error(), "nil pointer to embedded struct") {
		t.Errorf("Unmarshal: %v, want the decoder's panic as an error", err)
	}
	// The encoder sends Y only (gobInner is not exported).
	var w gobOuter
	if err := Gob.Unmarshal(gobEncode(t, gobOuter{gobInner: &gobInner{X: 1}, Y: 2}), &w); err != nil || w.Y != 2 {
		t.Errorf("Unmarshal of a real value: %v, %+v", err, w)
	}
}

// The walk never panics, whatever the bytes, nor does Unmarshal into
// types of every shape; what it accepts decodes within the bound.
func FuzzCheckGob(f *testing.F) {
	for _, s := range gobSamples() {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(s); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(gobEncode(f, make([]gobSmall, 100)))
	f.Add(gobEncode(f, []any{gobBigU{}, gobSmalls{{}}}))
	targets := []func() any{
		func() any { return new(gobAll) },
		func() any { return new(gobFewer) },
		func() any { return new(struct{ V any }) },
		func() any { return new([]gobBig) },
		func() any { return new(map[string]any) },
		func() any { return new(*gobTree) },
		func() any { return new(any) },
		func() any { return new(gobOuter) },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, target := range targets {
			_ = checkGob(b, target())
			_ = Gob.Unmarshal(b, target())
		}
	})
}

// What the walk adds to Unmarshal: a typical small struct, and one with
// a 16 KiB []byte.
func BenchmarkGobUnmarshal(b *testing.B) {
	type order struct {
		ID       int64
		Customer string
		Total    float64
		Paid     bool
		Tags     []string
		Extra    map[string]string
	}
	type blob struct {
		Name string
		Data []byte
	}
	for _, bc := range []struct {
		name string
		v    any
		into func() any
	}{
		{"struct", order{ID: 42, Customer: "Nexedi", Total: 99.5, Paid: true, Tags: []string{"erp5", "memcached"}, Extra: map[string]string{"a": "b"}}, func() any { return new(order) }},
		{"bytes16k", blob{Name: "x", Data: bytes.Repeat([]byte{1}, 16<<10)}, func() any { return new(blob) }},
	} {
		data := gobEncode(b, bc.v)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Gob.Unmarshal(data, bc.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/walk", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := checkGob(data, bc.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
