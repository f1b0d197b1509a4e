package codec

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The Gob codec's bound on what a value makes encoding/gob allocate, as
// checkAlloc is msgpack's. encoding/gob sizes what it decodes by the
// counts a value states: a map of n pairs is made for n before a pair is
// read (23 bytes stating 2^20 pairs allocated 38 MB), a slice of n
// elements for up to 10 MB of them, and an element that takes one byte
// of the value (a struct whose fields are all zero) decodes to a whole Go
// element (10 KB read as a slice of 8 KiB structs allocated 358 MiB). So
// checkGob walks the value first, as the decoder will read it: the
// messages, the type definitions, and the values with the Go types they
// decode into, adding up what their slices, maps, pointers, interface
// values and type definitions take.

// gobChunk is the most of a slice's elements encoding/gob allocates at
// once (internal/saferio's chunk); a longer slice grows by append as its
// elements are read.
const gobChunk = 10 << 20

// gobSlice returns what the decoder allocates for a slice of n elements
// of size bytes: at once up to gobChunk, else gobChunk and then capacities
// growing by 1.25 times (as append grows a large slice) up to at most a
// quarter past the length, c, which add up to 5c less 5 times the first.
func gobSlice(n, size uint64) uint64 {
	hi, b := bits.Mul64(n, size)
	switch {
	case hi != 0 || b > 1<<58:
		return 1 << 62
	case b <= gobChunk:
		return b
	}
	return gobChunk + (25*b-20*gobChunk)/4
}

// gobMap returns what the decoder allocates for a map of type t of n
// pairs, as made for the count: its header and the key and element it
// decodes into (about 200 bytes for an empty map, which takes a byte of
// the value), and its slots, 8 at least, with their control bytes and
// the slack of tables a power of two in size (36 bytes a pair of int64s
// measured).
func gobMap(t reflect.Type, n uint64) uint64 {
	kv := uint64(t.Key().Size() + t.Elem().Size())
	if n == 0 {
		return 256 + kv // its slots are made for its first pair
	}
	hi, slots := bits.Mul64(max(n, 8), 2*kv+16)
	if hi != 0 || slots > 1<<62 {
		return 1 << 62
	}
	return 256 + kv + slots
}

// gobStructField is what compiling the decoder of a struct's field
// allocates (its instruction, its error message, its closure), besides
// the field's name.
const gobStructField = 256

// Type ids encoding/gob fixes.
const (
	gobBool      = 1
	gobInt       = 2
	gobUint      = 3
	gobFloat     = 4
	gobBytes     = 5
	gobString    = 6
	gobComplex   = 7
	gobInterface = 8
	gobFirstUser = 64 // ids from 9 to 63 are gob's own types
)

// The kinds of types a value defines.
const (
	gobArrayT = iota
	gobSliceT
	gobStructT
	gobMapT
	gobEncoderT // GobEncoder, BinaryMarshaler, TextMarshaler: +0, +1, +2
	gobBinaryT
	gobTextT
)

// gobWire is a type a value defined.
type gobWire struct {
	kind      int
	elem, key int64 // an array's, slice's or map's
	len       int64 // an array's
	fields    []gobWireField
	raw       []byte // the definition as it came, for concreteType

	// The Go types the decoder compiled its reading of this struct type
	// into, and whether for values skipped; the fields of the last one,
	// in the order of fields (nil: not set).
	compiled []reflect.Type
	skipped  bool
	goType   reflect.Type
	goFields []reflect.Type
}

// gobWireField is a field of a struct type: its name, data[at:at+n] of
// the value, and its type.
type gobWireField struct {
	at, n uint32
	id    int32
}

// errGobFails ends a walk where the decoder fails before it allocates
// more: a type that does not match, data that ends early. What the walk
// added up so far is what the decoder may have allocated.
var errGobFails = errors.New("gob: the decoder fails here")

// gobChecker walks a gob value as encoding/gob's Decoder reads it: buf is
// what is left of the message being read, rest the messages after it.
type gobChecker struct {
	data      []byte // the whole value
	buf, rest []byte
	types     map[int64]*gobWire
	defs      []int64                 // the ids defined, in order
	concrete  map[string]reflect.Type // the types of interface values' names
	total     uint64
	over      string // what took the total past the bound
	extType   reflect.Type
	ext       int // external(extType)
}

// Types that decode themselves, in the order encoding/gob looks for them
// (it leaves TextUnmarshaler out).
var gobDecoders = [2]reflect.Type{reflect.TypeFor[gob.GobDecoder](), reflect.TypeFor[encoding.BinaryUnmarshaler]()}

// What the walk knows of the program's Go types, worked out once.
var (
	gobExternals    sync.Map // reflect.Type → int: gobExternal
	gobStructFields sync.Map // reflect.Type → map[string]reflect.Type: gobFieldsOf
)

// gobExternal returns which of gobDecoders base, the type without its
// pointers, or a pointer to it implements (gobEncoderT, gobBinaryT), or
// -1.
func gobExternal(base reflect.Type) int {
	if x, ok := gobExternals.Load(base); ok {
		return x.(int)
	}
	x := -1
	pt := reflect.PointerTo(base)
	for i, d := range gobDecoders {
		if base.Implements(d) || pt.Implements(d) {
			x = gobEncoderT + i
			break
		}
	}
	gobExternals.Store(base, x)
	return x
}

// gobFieldsOf returns the fields of struct t a gob value sets, by name,
// as Decoder.compileDec finds them: exported, by FieldByName (promoted
// from embedded structs, unless two are at the same depth).
func gobFieldsOf(t reflect.Type) map[string]reflect.Type {
	if fs, ok := gobStructFields.Load(t); ok {
		return fs.(map[string]reflect.Type)
	}
	fs := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		r, _ := utf8.DecodeRuneInString(f.Name)
		if sf, ok := t.FieldByName(f.Name); ok && unicode.IsUpper(r) {
			fs[f.Name] = sf.Type
		}
	}
	gobStructFields.Store(t, fs)
	return fs
}

// checkGob returns an error if decoding data into what v points to would
// make encoding/gob allocate more than MsgPackMaxAlloc for the slices,
// maps, pointers and interface values it decodes to, or if data states
// counts it cannot hold, nests deeper than gobMaxDepth, or uses gob's own
// type ids for a value, which no encoder does. Data the decoder would
// refuse anyway is left to its error where that comes before it
// allocates.
func checkGob(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil // the decoder's error
	}
	c := gobChecker{data: data, rest: data}
	err := c.top(t.Elem())
	if c.total > MsgPackMaxAlloc {
		return fmt.Errorf("gob: a value of %d bytes would make the decoder allocate %d bytes or more, beyond MsgPackMaxAlloc (%d): %s", len(data), c.total, MsgPackMaxAlloc, c.over)
	}
	if err == errGobFails {
		return nil // the decoder's error
	}
	return err
}

// top walks the value as Decoder.Decode reads it into a t.
func (c *gobChecker) top(t reflect.Type) error {
	id, err := c.typeSequence(false)
	if err != nil {
		return err
	}
	return c.decodeValue(id, t, 0)
}

func (c *gobChecker) left() uint64 { return uint64(len(c.buf) + len(c.rest)) }

// uint reads an unsigned integer of the current message.
func (c *gobChecker) uint() (uint64, error) {
	if len(c.buf) == 0 {
		return 0, errGobFails
	}
	b := c.buf[0]
	c.buf = c.buf[1:]
	if b <= 0x7f {
		return uint64(b), nil
	}
	n := -int(int8(b))
	if n > 8 || n > len(c.buf) {
		return 0, errGobFails
	}
	var x uint64
	for _, b := range c.buf[:n] {
		x = x<<8 | uint64(b)
	}
	c.buf = c.buf[n:]
	return x, nil
}

// int reads a signed integer of the current message.
func (c *gobChecker) int() (int64, error) {
	x, err := c.uint()
	if x&1 != 0 {
		return ^int64(x >> 1), err
	}
	return int64(x >> 1), err
}

// bytes reads a length and as many bytes of the current message.
func (c *gobChecker) bytes() ([]byte, error) {
	n, err := c.uint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(c.buf)) {
		return nil, errGobFails
	}
	b := c.buf[:n]
	c.buf = c.buf[n:]
	return b, nil
}

// message reads the next message into buf, as Decoder.recvMessage.
func (c *gobChecker) message() error {
	if len(c.rest) == 0 {
		return errGobFails
	}
	c.buf, c.rest = c.rest, nil
	n, err := c.uint()
	c.buf, c.rest = nil, c.buf
	if err != nil {
		return err
	}
	if n > uint64(len(c.rest)) {
		return fmt.Errorf("gob: a message at offset %d declares %d bytes, more than the %d left", len(c.data)-len(c.rest), n, len(c.rest))
	}
	c.buf, c.rest = c.rest[:n], c.rest[n:]
	return nil
}

// typeSequence reads type definitions up to the id of a value, as
// Decoder.decodeTypeSequence.
func (c *gobChecker) typeSequence(inInterface bool) (int64, error) {
	for {
		if len(c.buf) == 0 {
			if err := c.message(); err != nil {
				return 0, err
			}
		}
		id, err := c.int()
		if err != nil {
			return 0, err
		}
		if id >= 0 {
			return id, nil
		}
		if err := c.define(-id); err != nil {
			return 0, err
		}
		if len(c.buf) > 0 {
			if !inInterface {
				return 0, errGobFails
			}
			if _, err := c.uint(); err != nil { // the count of a delimited value
				return 0, err
			}
		}
	}
}

// define reads the definition of type id (a wireType), charging what
// the decoder allocates for it: the wireType and the type it holds, and
// a struct's fields (52 bytes a field of a one-byte name, which takes 6
// bytes of the value, measured).
func (c *gobChecker) define(id int64) error {
	if id < gobFirstUser || c.types[id] != nil {
		return errGobFails // "duplicate type received"
	}
	c.charge("a type definition", 1, 256)
	if c.total > MsgPackMaxAlloc {
		return errGobFails
	}
	start := c.buf
	w := &gobWire{kind: -1}
	err := c.fields(7, func(f int) error {
		if w.kind >= 0 {
			return fmt.Errorf("gob: the definition of type %d at offset %d holds two types", id, c.offset())
		}
		w.kind = f
		return c.fields(3, func(g int) error {
			switch {
			case g == 0: // CommonType
				return c.fields(2, func(h int) error {
					if h == 0 {
						_, err := c.bytes()
						return err
					}
					_, err := c.int()
					return err
				})
			case f == gobStructT: // Field []fieldType
				n, err := c.uint()
				if err != nil {
					return err
				}
				if g != 1 || n > uint64(len(c.buf)) {
					return errGobFails
				}
				// The decoder's []fieldType, and the fields' names.
				if c.charge("a struct type's fields", 1, gobSlice(n, 24)); c.total > MsgPackMaxAlloc {
					return errGobFails
				}
				w.fields = make([]gobWireField, 0, n)
				for range n {
					var fd gobWireField
					if err := c.fields(2, func(h int) error {
						if h == 0 {
							b, err := c.bytes()
							fd.at, fd.n = uint32(c.offset()-len(b)), uint32(len(b))
							if len(b) > 0 {
								c.charge("a field's name", 1, uint64(len(b)))
							}
							return err
						}
						id, err := c.int()
						if id != int64(int32(id)) {
							return errGobFails // "out of range"
						}
						fd.id = int32(id)
						return err
					}); err != nil {
						return err
					}
					w.fields = append(w.fields, fd)
				}
				return nil
			case f >= gobEncoderT || f == gobSliceT && g > 1 || f == gobMapT && g > 2:
				return errGobFails // "field numbers out of bounds"
			}
			x, err := c.int()
			switch {
			case f == gobArrayT && g == 2:
				w.len = x
			case f == gobMapT && g == 1:
				w.key = x
			default:
				w.elem = x
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	if w.kind < 0 {
		return fmt.Errorf("gob: the definition of type %d at offset %d holds no type", id, c.offset())
	}
	w.raw = start[:len(start)-len(c.buf)]
	if c.types == nil {
		c.types = map[int64]*gobWire{}
	}
	c.types[id] = w
	c.defs = append(c.defs, id)
	return nil
}

// offset returns where in the value the walk is, roughly: the start of
// what is left of the current message.
func (c *gobChecker) offset() int { return len(c.data) - len(c.rest) - len(c.buf) }

// fields reads a struct of n fields, calling field for each that is
// present, as the decoder reads a struct: field numbers as deltas, up to
// a zero or the end of the message.
func (c *gobChecker) fields(n int, field func(int) error) error {
	f := -1
	for len(c.buf) > 0 {
		delta, err := c.uint()
		if err != nil {
			return err
		}
		if delta == 0 {
			return nil
		}
		if delta > uint64(n-1-f) {
			return errGobFails // "field numbers out of bounds"
		}
		f += int(delta)
		if err := field(f); err != nil {
			return err
		}
	}
	return nil
}

// decodeValue walks a value of wire type id decoded into t, as
// Decoder.decodeValue: a struct's fields, or else a zero and the value.
func (c *gobChecker) decodeValue(id int64, t reflect.Type, depth int) error {
	base, ok := gobBase(t)
	if !ok {
		return errGobFails
	}
	// The decoder keeps the reading of the value's own type under the
	// type it was handed (a pointer to it, for Decode), apart from the
	// same type met inside: charged again.
	if w := c.types[id]; w != nil && w.kind == gobStructT {
		c.chargeCompile(w)
	}
	if err := c.compile(id, t, 0); err != nil {
		return err
	}
	if base.Kind() == reflect.Struct && gobExternal(base) < 0 {
		c.chargePointers(t)
		return c.value(id, base, depth)
	}
	if z, err := c.uint(); err != nil || z != 0 {
		return errGobFails // "non-zero delta for singleton"
	}
	return c.value(id, t, depth)
}

// chargePointers adds what setting a value of type t allocates for its
// pointers (at most 100, as encoding/gob follows: a type such as
// type P *P it refuses).
func (c *gobChecker) chargePointers(t reflect.Type) {
	for i := 0; t.Kind() == reflect.Pointer && i < 100; i++ {
		c.charge("a pointer's value", 1, uint64(t.Elem().Size()))
		t = t.Elem()
	}
}

// charge adds n allocations of size bytes to the total, for what, which
// the error names if that takes the total past the bound. The walk stops
// there, so the total cannot overflow.
func (c *gobChecker) charge(what string, n, size uint64) {
	hi, lo := bits.Mul64(n, gobRound(size))
	if hi != 0 || lo > 1<<62 {
		lo = 1 << 62
	}
	c.total += lo
	if c.total > MsgPackMaxAlloc && c.over == "" {
		c.over = fmt.Sprintf("%s at offset %d, %d × %d bytes", what, c.offset(), n, size)
	}
}

// gobRound returns at least what an allocation of size bytes takes: a
// small one rounded up to its size class (33 bytes take 48, 8200 take
// 9472), a large one to whole pages.
func gobRound(size uint64) uint64 {
	if size > 32<<10 {
		return (min(size, 1<<62) + 8191) &^ 8191
	}
	return size + size/4 + 16
}

// gobScalar returns the wire type of a bool or number Go type, or 0.
func gobScalar(t reflect.Type) int64 {
	switch t.Kind() {
	case reflect.Bool:
		return gobBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return gobInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return gobUint
	case reflect.Float32, reflect.Float64:
		return gobFloat
	}
	return 0
}

// external is gobExternal, remembering the last type asked about: the
// elements of a slice are of one.
func (c *gobChecker) external(t reflect.Type) int {
	if t != c.extType {
		c.extType, c.ext = t, gobExternal(t)
	}
	return c.ext
}

// gobBase returns t without its pointers, and false for a type that is
// nothing but pointers to itself.
func gobBase(t reflect.Type) (reflect.Type, bool) {
	for i := 0; t.Kind() == reflect.Pointer; i++ {
		if i == 100 {
			return t, false
		}
		t = t.Elem()
	}
	return t, true
}

// wire returns the type a value defined with id, or nil, refusing gob's
// own types, which no encoder sends for a value.
func (c *gobChecker) wire(id int64) (*gobWire, error) {
	if id > gobInterface && id < gobFirstUser {
		return nil, fmt.Errorf("gob: a value at offset %d is of type %d, one of gob's own", c.offset(), id)
	}
	return c.types[id], nil
}

// value walks a value of wire type id decoded into t (nil: skipped).
func (c *gobChecker) value(id int64, t reflect.Type, depth int) error {
	if depth > gobMaxDepth {
		return fmt.Errorf("gob: a value nested deeper than %d levels", gobMaxDepth)
	}
	if c.total > MsgPackMaxAlloc {
		return errGobFails // over already: checkGob says so
	}
	if t == nil {
		return c.skip(id, depth)
	}
	c.chargePointers(t)
	t, ok := gobBase(t)
	if !ok {
		return errGobFails
	}
	w, err := c.wire(id)
	if err != nil {
		return err
	}
	if x := c.external(t); x >= 0 {
		if w == nil || w.kind != x {
			return errGobFails
		}
		_, err := c.bytes()
		return err
	}
	if w != nil && w.kind >= gobEncoderT {
		return errGobFails
	}
	want := gobScalar(t)
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
	case reflect.Complex64, reflect.Complex128:
		want = gobComplex
	case reflect.String:
		want = gobString
	case reflect.Interface:
		if id != gobInterface {
			return errGobFails
		}
		return c.iface(t, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			want = gobBytes
			break
		}
		if w == nil || w.kind != gobSliceT {
			return errGobFails
		}
		n, err := c.count("slice", 1)
		if err != nil {
			return err
		}
		c.charge("a slice", 1, gobSlice(n, uint64(t.Elem().Size())))
		return c.elems(n, w.elem, t.Elem(), depth)
	case reflect.Array:
		if w == nil || w.kind != gobArrayT || w.len != int64(t.Len()) {
			return errGobFails
		}
		if n, err := c.uint(); err != nil || n != uint64(w.len) {
			return errGobFails // "length mismatch"
		}
		return c.elems(uint64(w.len), w.elem, t.Elem(), depth)
	case reflect.Map:
		if w == nil || w.kind != gobMapT {
			return errGobFails
		}
		n, err := c.count("map", 2)
		if err != nil {
			return err
		}
		c.charge("a map", 1, gobMap(t, n))
		for range n {
			if err := c.value(w.key, t.Key(), depth+1); err != nil {
				return err
			}
			if err := c.value(w.elem, t.Elem(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		if w == nil || w.kind != gobStructT {
			return errGobFails
		}
		return c.structValue(w, t, depth)
	default:
		return errGobFails // "decode can't handle type"
	}
	if id != want {
		return errGobFails
	}
	return c.skip(id, depth)
}

// count reads the count of a slice's elements or a map's pairs, which
// each take per bytes of the value at least.
func (c *gobChecker) count(what string, per uint64) (uint64, error) {
	at := c.offset()
	n, err := c.uint()
	if err != nil {
		return 0, err
	}
	if n > c.left()/per {
		return 0, fmt.Errorf("gob: a %s at offset %d declares %d elements, more than the %d bytes left can hold", what, at, n, c.left())
	}
	return n, nil
}

// elems walks the n elements of an array or slice, as
// Decoder.decodeArrayHelper: each needs a byte left in the message.
func (c *gobChecker) elems(n uint64, id int64, t reflect.Type, depth int) error {
	if id >= gobBool && id <= gobFloat && (t == nil || gobScalar(t) == id && c.external(t) < 0) {
		// Numbers, which allocate nothing: read at once.
		for range n {
			if _, err := c.uint(); err != nil {
				return err
			}
		}
		return nil
	}
	for range n {
		if len(c.buf) == 0 {
			return errGobFails
		}
		if err := c.value(id, t, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// structValue walks a struct of wire type w decoded into t, as
// Decoder.decodeStruct.
func (c *gobChecker) structValue(w *gobWire, t reflect.Type, depth int) error {
	fields := c.goFields(w, t)
	return c.fields(len(w.fields), func(f int) error {
		return c.value(int64(w.fields[f].id), fields[f], depth+1)
	})
}

// goFields returns the types of the fields of Go struct t that the
// fields of struct type w set, nil for those skipped, as
// Decoder.compileDec matches them: by name, exported.
func (c *gobChecker) goFields(w *gobWire, t reflect.Type) []reflect.Type {
	if w.goType != t {
		fs := gobFieldsOf(t)
		w.goType, w.goFields = t, make([]reflect.Type, len(w.fields))
		for i, f := range w.fields {
			w.goFields[i] = fs[string(c.data[f.at:f.at+f.n])]
		}
	}
	return w.goFields
}

// chargeCompile adds what the decoder allocates compiling its reading of
// struct type w once: for each field, an instruction and an error
// message naming it.
func (c *gobChecker) chargeCompile(w *gobWire) {
	var names uint64
	for _, f := range w.fields {
		names += uint64(f.n)
	}
	c.charge("compiling a struct type's fields", uint64(len(w.fields)), gobStructField)
	c.charge("compiling a struct type's field names", 2, names)
}

// compile adds what the decoder allocates compiling its reading of a
// value of wire type id into t (nil: skipped), which it does as a value
// (or an interface value) starts, before it reads it: for each field of
// every struct type reachable through the fields it sets and skips, an
// instruction and an error message naming it, once per Go type (a
// definition of many fields of a one-byte name, 6 bytes of the value a
// field, allocated 144 bytes a field). Where it would fail, the
// decoder's error is left to it.
func (c *gobChecker) compile(id int64, t reflect.Type, depth int) error {
	if c.total > MsgPackMaxAlloc || depth > 10000 { // the decoder's own bound
		return errGobFails
	}
	if t != nil {
		if t, _ = gobBase(t); gobExternal(t) >= 0 || t.Kind() == reflect.Interface {
			return nil
		}
	}
	w, err := c.wire(id)
	if err != nil || w == nil {
		return err // a basic type, or one the decoder fails on
	}
	switch {
	case w.kind == gobStructT:
		if t == nil && w.skipped || t != nil && slices.Contains(w.compiled, t) {
			return nil
		}
		if t == nil {
			w.skipped = true
		} else {
			w.compiled = append(w.compiled, t)
		}
		if c.chargeCompile(w); c.total > MsgPackMaxAlloc {
			return errGobFails // before the fields are looked up
		}
		var fields []reflect.Type
		if t != nil {
			if t.Kind() != reflect.Struct {
				return errGobFails
			}
			fields = c.goFields(w, t)
		}
		for i, f := range w.fields {
			var ft reflect.Type
			if fields != nil {
				ft = fields[i]
			}
			if err := c.compile(int64(f.id), ft, depth+1); err != nil {
				return err
			}
		}
		return nil
	case w.kind >= gobEncoderT:
		return nil
	case t == nil:
		if w.kind == gobMapT {
			if err := c.compile(w.key, nil, depth+1); err != nil {
				return err
			}
		}
		return c.compile(w.elem, nil, depth+1)
	case w.kind == gobMapT && t.Kind() == reflect.Map:
		if err := c.compile(w.key, t.Key(), depth+1); err != nil {
			return err
		}
		return c.compile(w.elem, t.Elem(), depth+1)
	case w.kind == gobSliceT && t.Kind() == reflect.Slice, w.kind == gobArrayT && t.Kind() == reflect.Array:
		return c.compile(w.elem, t.Elem(), depth+1)
	}
	return errGobFails
}

// skip walks a value of wire type id that nothing is decoded into.
func (c *gobChecker) skip(id int64, depth int) error {
	if depth > gobMaxDepth {
		return fmt.Errorf("gob: a value nested deeper than %d levels", gobMaxDepth)
	}
	switch id {
	case gobBool, gobInt, gobUint, gobFloat:
		_, err := c.uint()
		return err
	case gobComplex:
		if _, err := c.uint(); err != nil {
			return err
		}
		_, err := c.uint()
		return err
	case gobBytes, gobString:
		_, err := c.bytes()
		return err
	case gobInterface:
		return c.skipIface()
	}
	w, err := c.wire(id)
	if err != nil {
		return err
	}
	if w == nil {
		return errGobFails // "undefined type"
	}
	switch w.kind {
	case gobArrayT:
		if n, err := c.uint(); err != nil || n != uint64(w.len) {
			return errGobFails
		}
		return c.elems(uint64(w.len), w.elem, nil, depth)
	case gobSliceT:
		n, err := c.count("slice", 1)
		if err != nil {
			return err
		}
		return c.elems(n, w.elem, nil, depth)
	case gobMapT:
		// The decoder reads as many pairs as stated, though the data
		// ends: a pair of structs takes no byte then.
		n, err := c.count("map", 2)
		if err != nil {
			return err
		}
		for range n {
			if err := c.skip(w.key, depth+1); err != nil {
				return err
			}
			if err := c.skip(w.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case gobStructT:
		return c.fields(len(w.fields), func(f int) error {
			return c.skip(int64(w.fields[f].id), depth+1)
		})
	}
	_, err = c.bytes()
	return err
}

// skipIface walks an interface value nothing is decoded into, as
// Decoder.ignoreInterface (which reads a type and a value after a nil
// one's empty name too).
func (c *gobChecker) skipIface() error {
	if _, err := c.bytes(); err != nil {
		return err
	}
	if _, err := c.typeSequence(true); err != nil {
		return err
	}
	_, err := c.bytes()
	return err
}

// iface walks an interface value decoded into t, as
// Decoder.decodeInterface: the name of its type, the type's definitions,
// and the value, of the Go type registered under the name
// (concreteType).
func (c *gobChecker) iface(t reflect.Type, depth int) error {
	name, err := c.bytes()
	if err != nil || len(name) == 0 {
		return err // a nil interface
	}
	if len(name) > 1024 {
		return errGobFails
	}
	id, err := c.typeSequence(true)
	if err != nil {
		return err
	}
	if _, err := c.uint(); err != nil { // the value's byte count
		return err
	}
	ct, ok := c.concrete[string(name)]
	if !ok {
		if ct, err = c.concreteType(string(name), id); err != nil {
			return err
		}
		if c.concrete == nil {
			c.concrete = map[string]reflect.Type{}
		}
		c.concrete[string(name)] = ct
	}
	// Allocated, and copied to be set in the interface (a type that is
	// not a pointer).
	c.charge("an interface value", 2, uint64(ct.Size()))
	return c.decodeValue(id, ct, depth+1)
}

// gobConcreteTypes holds the types registered with gob that interface
// values named, by name. Only names gob resolved are kept, so it grows
// only with the program's own registered types.
var gobConcreteTypes sync.Map // string → reflect.Type

// gobBasicTypes are the types encoding/gob registers itself.
var gobBasicTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, v := range []any{int(0), int8(0), int16(0), int32(0), int64(0), uint(0), uint8(0), uint16(0), uint32(0), uint64(0),
		float32(0), float64(0), complex64(0), complex128(0), uintptr(0), false, "",
		[]byte(nil), []int(nil), []int8(nil), []int16(nil), []int32(nil), []int64(nil), []uint(nil), []uint16(nil), []uint32(nil), []uint64(nil),
		[]float32(nil), []float64(nil), []complex64(nil), []complex128(nil), []uintptr(nil), []bool(nil), []string(nil)} {
		t := reflect.TypeOf(v)
		m[t.String()] = t
	}
	return m
}()

// concreteType returns the Go type gob registered under name, of which
// an interface value of wire type id is. encoding/gob keeps its registry
// to itself, so the type is found by decoding a value of the same name
// and wire type, with no elements: the value's own bytes for a type that
// decodes itself (which the decoder is about to hand it anyway), a zero
// value otherwise. A name gob cannot decode so is refused.
func (c *gobChecker) concreteType(name string, id int64) (reflect.Type, error) {
	if t, ok := gobBasicTypes[name]; ok {
		return t, nil
	}
	if t, ok := gobConcreteTypes.Load(name); ok {
		return t.(reflect.Type), nil
	}
	var msg []byte
	msg = gobAppendInt(msg, gobInterface)
	msg = append(msg, 0) // a value that is not a struct: a zero delta
	msg = gobAppendUint(msg, uint64(len(name)))
	msg = append(msg, name...)
	msg = gobAppendInt(msg, id)
	msg = append(msg, 0) // the value's byte count, which the decoder skips
	w, err := c.wire(id)
	if err != nil {
		return nil, err
	}
	switch {
	case w != nil && w.kind >= gobEncoderT:
		// The value as it is: a zero delta and its bytes.
		probe := gobChecker{buf: c.buf}
		if z, err := probe.uint(); err != nil || z != 0 {
			return nil, errGobFails
		}
		if _, err := probe.bytes(); err != nil {
			return nil, errGobFails
		}
		msg = append(msg, c.buf[:len(c.buf)-len(probe.buf)]...)
	case w != nil && w.kind == gobStructT:
		msg = append(msg, 0) // no fields
	default:
		msg = append(msg, 0)
		if msg = c.appendZero(msg, id, 0); msg == nil {
			return nil, fmt.Errorf("gob: cannot tell what the interface value of type %q at offset %d decodes to", name, c.offset())
		}
	}
	var stream []byte
	for _, d := range c.defs {
		def := gobAppendInt(nil, -d)
		def = append(def, c.types[d].raw...)
		stream = gobAppendUint(stream, uint64(len(def)))
		stream = append(stream, def...)
	}
	stream = gobAppendUint(stream, uint64(len(msg)))
	stream = append(stream, msg...)
	var v any
	if err := gob.NewDecoder(bytes.NewReader(stream)).Decode(&v); err != nil || v == nil {
		return nil, fmt.Errorf("gob: cannot tell what the interface value of type %q at offset %d decodes to: %v", name, c.offset(), err)
	}
	t := reflect.TypeOf(v)
	gobConcreteTypes.Store(name, t)
	return t, nil
}

// appendZero appends the encoding of a zero value of wire type id, or
// returns nil for one that has none short enough (an array of many
// elements, a type that decodes itself).
func (c *gobChecker) appendZero(b []byte, id int64, depth int) []byte {
	if id == gobComplex {
		return append(b, 0, 0)
	}
	if id > 0 && id <= gobInterface {
		return append(b, 0) // nil for an interface
	}
	w := c.types[id]
	if w == nil || depth > 8 || len(b) > 4096 {
		return nil
	}
	switch w.kind {
	case gobSliceT, gobMapT, gobStructT:
		return append(b, 0) // no elements, no fields
	case gobArrayT:
		if w.len < 0 || w.len > 4096 {
			return nil
		}
		b = gobAppendUint(b, uint64(w.len))
		for range w.len {
			if b = c.appendZero(b, w.elem, depth+1); b == nil {
				return nil
			}
		}
		return b
	}
	return nil
}

// gobAppendUint appends x as gob encodes an unsigned integer.
func gobAppendUint(b []byte, x uint64) []byte {
	if x <= 0x7f {
		return append(b, byte(x))
	}
	var buf [8]byte
	n := 8
	for ; x > 0; x >>= 8 {
		n--
		buf[n] = byte(x)
	}
	b = append(b, byte(-(8 - n)))
	return append(b, buf[n:]...)
}

// gobAppendInt appends x as gob encodes a signed integer.
func gobAppendInt(b []byte, x int64) []byte {
	if x < 0 {
		return gobAppendUint(b, uint64(^x<<1)|1)
	}
	return gobAppendUint(b, uint64(x<<1))
}
