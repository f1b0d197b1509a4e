package codec

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPackMaxAlloc bounds what the msgpack codec allocates for the
// elements of the slices and maps a value decodes to, the maps' tables
// and what the elements' pointers point to. An element may take one byte
// of the value (a nil, an empty map) and a whole element of the Go type
// decoded into: without a bound, a value of 1 MiB of nils decoded into a
// []T of a 1 KiB T would allocate 1 GiB. The JSON and Gob codecs keep to
// the same bound (Gob counting pointers, interface values and the struct
// types its decoder compiles too).
const MsgPackMaxAlloc = 64 << 20

// anyType stands for an interface: what msgpack decodes into any.
var anyType = reflect.TypeFor[any]()

// What an element of []any costs (and a value set in a map[string]any,
// besides the map's slot for it: mapCost), and the most a byte of a
// value decoded into a type other than a slice, map or any can.
const (
	costAnyElem   = 16
	costAnyPair   = 64
	costInterface = costAnyPair
)

// mapAnyType is the map msgpack and encoding/json decode a map into when
// they decode into any.
var mapAnyType = reflect.TypeFor[map[string]any]()

// mapHeader is what a Go map allocates however few its pairs: its header
// (the runtime's maps.Map).
const mapHeader = 48

// mapSlot returns what a slot of a table of map type t takes (a key, a
// value, each a pointer beyond 128 bytes, and a control byte), and what a
// pair allocates besides: the key or value beyond 128 bytes.
func mapSlot(t reflect.Type) (slot, pair uint64) {
	slot = 1
	for _, s := range []uint64{uint64(t.Key().Size()), uint64(t.Elem().Size())} {
		if s > 128 {
			slot, pair = slot+8, pair+s
		} else {
			slot += s
		}
	}
	return slot, pair
}

// mapCost returns the most a map of type t made for n pairs allocates
// (msgpack makes a map of the size its header states): the header, and
// for n pairs 8 slots at least (a map's first group), 16/7 n at most (a
// table is at most 7/8 full and its size a power of 2), and each pair's
// own key and value, which the decoders allocate before they set the
// pair. encoding/json grows a map as it sets pairs instead (its walk
// charges twice the slots).
func mapCost(t reflect.Type, n uint64) uint64 {
	if n == 0 {
		return mapHeader
	}
	slot, pair := mapSlot(t)
	return mapHeader + slot*max(8, (16*n+6)/7) + n*(pair+uint64(t.Key().Size()+t.Elem().Size()))
}

var (
	structFields sync.Map // reflect.Type → map[string]reflect.Type: the fields of a struct, by msgpack name
	structLists  sync.Map // reflect.Type → []reflect.Type: the fields of a struct in order (fieldList)
)

// decoding is what the allocation bounds know of a codec's decoder: the
// interfaces of the types that decode themselves, and the costs of the
// types worked out so far.
type decoding struct {
	own     []reflect.Type
	costs   sync.Map // reflect.Type → uint64: the most an element of a value of the type costs
	targets sync.Map // reflect.Type → reflect.Type: target's answers
}

var (
	msgpackDecoding = &decoding{own: []reflect.Type{reflect.TypeFor[msgpack.CustomDecoder](), reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()}}
	jsonDecoding = &decoding{own: []reflect.Type{reflect.TypeFor[json.Unmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()}}
)

// target returns the type that decodes a value into t: t without its
// pointers, or anyType for an interface or a type with its own decoder
// (whose allocations are counted as an interface's). The walks ask it
// of every value they read: its answers are kept, as Implements searches
// the type's methods.
func (dc *decoding) target(t reflect.Type) reflect.Type {
	if tt, ok := dc.targets.Load(t); ok {
		return tt.(reflect.Type)
	}
	orig := t
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface {
		t = anyType
	} else {
		pt := reflect.PointerTo(t)
		for _, d := range dc.own {
			if pt.Implements(d) {
				t = anyType
				break
			}
		}
	}
	dc.targets.Store(orig, t)
	return t
}

// pointees returns what decoding a value other than nil into a value of
// type t allocates for t's pointers: the value each points to (a []*T of
// empty maps allocates a T for each). A type such as type P *P points to
// itself: 100 pointers deep are counted, as gob's chargePointers does.
func pointees(t reflect.Type) uint64 {
	var c uint64
	for i := 0; t.Kind() == reflect.Pointer && i < 100; i++ {
		t = t.Elem()
		c += uint64(t.Size())
	}
	return c
}

// maxCost returns the most one element of an array or map in a value
// decoded into t can make the decoder allocate, from t's type alone: an
// upper bound, over every field of a struct whatever its tags, and what
// t's pointers point to.
func (dc *decoding) maxCost(orig reflect.Type, path map[reflect.Type]bool) uint64 {
	if c, ok := dc.costs.Load(orig); ok {
		return c.(uint64)
	}
	t := dc.target(orig)
	ptrs := pointees(orig) // the value of one byte (an empty map) allocates them
	if path[t] {
		return ptrs // a recursive type: its elements counted where it starts
	}
	path[t] = true
	defer delete(path, t)
	c := uint64(costInterface)
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		c = max(uint64(t.Elem().Size()), dc.maxCost(t.Elem(), path))
	case reflect.Map:
		// A map of one pair, charged to one byte: a map's header and
		// first group take more than its pairs (200 bytes and more).
		c = max(mapCost(t, 1), dc.maxCost(t.Key(), path), dc.maxCost(t.Elem(), path))
	case reflect.Interface:
		c = max(c, mapCost(mapAnyType, 1)+costAnyElem)
	case reflect.Struct:
		for i := range t.NumField() {
			c = max(c, dc.maxCost(t.Field(i).Type, path))
		}
		if t.Size() > zeroValSize {
			c = max(c, 2*uint64(t.Size())) // a zero one, and the slot of the nil it is read from
		}
	}
	c += ptrs
	if len(path) == 1 {
		dc.costs.Store(orig, c) // the type's own: not cut short by a recursion
	}
	return c
}

// fieldList returns the types of the fields of struct t in the order a
// msgpack array holds them (a struct written as an array): embedded
// structs inlined in place, names already taken left out.
func fieldList(t reflect.Type) []reflect.Type {
	if fl, ok := structLists.Load(t); ok {
		return fl.([]reflect.Type)
	}
	var list []reflect.Type
	seen := map[string]bool{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !msgpackWrites(f) {
				continue
			}
			name := msgpackName(f)
			if ft := msgpackDecoding.target(f.Type); f.Anonymous && name == "" && ft.Kind() == reflect.Struct && ft != t {
				add(ft)
				continue
			}
			if name == "" {
				name = f.Name
			}
			if !seen[name] {
				seen[name] = true
				list = append(list, f.Type)
			}
		}
	}
	add(t)
	structLists.Store(t, list)
	return list
}

// msgpackName returns the name of field f in its tags, msgpack's or
// else json's (the codec reads json tags too), or "".
func msgpackName(f reflect.StructField) string {
	tag := f.Tag.Get("msgpack")
	if tag == "" {
		tag = f.Tag.Get("json")
	}
	name, _, _ := strings.Cut(tag, ",")
	return name
}

// msgpackWrites reports whether the msgpack codec writes and reads field
// f: an exported or embedded field not tagged "-".
func msgpackWrites(f reflect.StructField) bool {
	return msgpackName(f) != "-" && (f.IsExported() || f.Anonymous)
}

// fieldsOf returns the fields of struct t the decoder sets, by the names
// it reads: msgpack tag, json tag or Go name; embedded structs inlined.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if fs, ok := structFields.Load(t); ok {
		return fs.(map[string]reflect.Type)
	}
	fs := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !msgpackWrites(f) {
			continue
		}
		name := msgpackName(f)
		if ft := msgpackDecoding.target(f.Type); f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			for n, inner := range fieldsOf(ft) {
				if _, ok := fs[n]; !ok {
					fs[n] = inner
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs[name] = f.Type
	}
	structFields.Store(t, fs)
	return fs
}

// checkAlloc returns an error if decoding data, a value checkMsgPack
// accepted, into what v points to would allocate more than
// MsgPackMaxAlloc for the elements of slices and maps. A value too short
// to reach the bound with elements of the type's largest kind is not
// walked, nor one of fewer than 256 bytes (fewer elements than that).
func checkAlloc(data []byte, v any) error {
	if len(data) < 256 {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil // the decoder's error
	}
	t = t.Elem()
	if uint64(len(data))*msgpackDecoding.maxCost(t, map[reflect.Type]bool{})*sliceGrowth(len(data)) <= MsgPackMaxAlloc {
		return nil
	}
	var total uint64
	allocWalk(data, 0, t, &total)
	if total > MsgPackMaxAlloc {
		return fmt.Errorf("msgpack: a value of %d bytes would decode to slices and maps of %d bytes or more, beyond MsgPackMaxAlloc", len(data), total)
	}
	return nil
}

// allocWalk adds to *total what decoding the value at data[i:] into t
// allocates for elements, and returns the offset after the value. A nil t
// is a value the decoder skips.
func allocWalk(data []byte, i int, t reflect.Type, total *uint64) int {
	c := data[i]
	i++
	var n int // elements of an array, pairs of a map, or bytes of the rest
	isArray, isMap := false, false
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c <= 0x8f:
		n, isMap = int(c&0x0f), true
	case c <= 0x9f:
		n, isArray = int(c&0x0f), true
	case c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xc4 || c == 0xd9 || c == 0xc7:
		n, i = int(data[i]), i+1
	case c == 0xc5 || c == 0xda || c == 0xc8 || c == 0xdc || c == 0xde:
		n, i = int(binary.BigEndian.Uint16(data[i:])), i+2
	case c == 0xc6 || c == 0xdb || c == 0xc9 || c == 0xdd || c == 0xdf:
		n, i = int(binary.BigEndian.Uint32(data[i:])), i+4
	case c == 0xca:
		n = 4
	case c == 0xcb:
		n = 8
	case c >= 0xcc && c <= 0xcf:
		n = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		n = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8:
		n = 1 << (c - 0xd4)
	}
	isArray = isArray || c == 0xdc || c == 0xdd
	isMap = isMap || c == 0xde || c == 0xdf
	if c == 0xc7 || c == 0xc8 || c == 0xc9 || (c >= 0xd4 && c <= 0xd8) {
		n++ // the extension's type
	}
	if t != nil && c != 0xc0 {
		*total += pointees(t) // nil leaves a pointer nil; any other value allocates what it points to
	}
	if c == 0xc0 && t != nil && t.Kind() == reflect.Struct && t.Size() > zeroValSize && msgpackDecoding.target(t) == t {
		*total += uint64(t.Size()) // the decoder sets the struct to reflect.Zero's
	}
	if !isArray && !isMap {
		return i + n
	}
	if t != nil {
		t = msgpackDecoding.target(t)
	}
	var kt, et reflect.Type // what keys and elements decode into (nil: skipped)
	switch {
	case t == nil:
	case t == anyType && isArray:
		*total += uint64(n) * costAnyElem
		et = anyType
	case t == anyType:
		*total += mapCost(mapAnyType, uint64(n)) + uint64(n)*costAnyElem // and a value in each
		kt, et = anyType, anyType
	case isArray && t.Kind() == reflect.Slice:
		*total += uint64(n) * uint64(t.Elem().Size()) * sliceGrowth(n)
		et = t.Elem()
	case isArray && t.Kind() == reflect.Array:
		et = t.Elem()
	case isArray && t.Kind() == reflect.Struct:
		if n == 0 && t.Size() > zeroValSize {
			*total += uint64(t.Size()) // the decoder sets the struct to reflect.Zero's
		}
		// A struct written as an array: its fields in order.
		fl := fieldList(t)
		for k := range n {
			var ft reflect.Type // nil: beyond the fields, skipped
			if k < len(fl) {
				ft = fl[k]
			}
			i = allocWalk(data, i, ft, total)
		}
		return i
	case isMap && t.Kind() == reflect.Map:
		*total += mapCost(t, uint64(n))
		kt, et = t.Key(), t.Elem()
	case isMap && t.Kind() == reflect.Struct:
		fs := fieldsOf(t)
		for range n {
			k := i
			i = allocWalk(data, i, nil, total)
			ft, ok := fs[fieldName(data[k:i])]
			if !ok {
				ft = nil // skipped by the decoder
			}
			i = allocWalk(data, i, ft, total)
		}
		return i
	}
	for range n {
		if isMap {
			i = allocWalk(data, i, kt, total)
		}
		i = allocWalk(data, i, et, total)
	}
	return i
}

// zeroValSize is the size of the largest type reflect.Zero returns a
// shared zero value of: it allocates a larger one. The msgpack decoder
// sets a struct it reads a nil or an empty array into to reflect.Zero's,
// so a value of one byte read into an 8 KiB struct allocates 8 KiB besides
// the struct's place.
const zeroValSize = 1024

// sliceGrowth is how many times the elements of a slice of n elements
// the msgpack decoder allocates: twice, a slice of n appended to the nil
// one (msgpack v5.4.1's decodeSliceValue: its test of the flag that lifts
// its limit, flags&disableAllocLimitFlag != 1, is always true); a long
// one counted as one grown by append (by 1.25 times: five times the
// elements in all), as earlier versions grew it 10,000 at a time.
func sliceGrowth(n int) uint64 {
	if n <= 10000 {
		return 2
	}
	return 5
}

// fieldName returns the string the msgpack value b holds, or "".
func fieldName(b []byte) string {
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		return string(b[1:])
	case c == 0xd9:
		return string(b[2:])
	case c == 0xda:
		return string(b[3:])
	case c == 0xdb:
		return string(b[5:])
	}
	return ""
}
