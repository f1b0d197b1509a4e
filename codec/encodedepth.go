package codec

import (
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// maxPointerHops bounds the pointers and interfaces followed in a row,
// with no array or map between them, when checking a value's depth.
const maxPointerHops = 64

// nestInfo says whether the values of a type can nest without a bound
// the type sets (it holds an interface, or it is recursive), and, for a
// struct, which of its fields the encoder writes and can nest so.
type nestInfo struct {
	nests  bool
	fields []int
}

// A walker checks the depth of values for an encoder: msgpack's (the
// fields its tags name), or gob's (every exported field).
type walker struct {
	gob      bool
	maxDepth int
	opaque   []reflect.Type // types encoded by these methods are not walked
	tooDeep  error
	infos    sync.Map // reflect.Type → *nestInfo
}

var (
	msgpackWalk = &walker{maxDepth: MsgPackMaxDepth, opaque: []reflect.Type{
		reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.Marshaler](),
		binaryMarshalerType, textMarshalerType},
		tooDeep: fmt.Errorf("msgpack: value nested deeper than %d arrays and maps, or holding itself", MsgPackMaxDepth)}
	gobWalk = &walker{gob: true, maxDepth: gobMaxDepth, opaque: []reflect.Type{
		reflect.TypeFor[gob.GobEncoder](), binaryMarshalerType, textMarshalerType},
		tooDeep: fmt.Errorf("gob: value nested deeper than %d levels, or holding itself", gobMaxDepth)}
)

// gobMaxDepth bounds the nesting of a value the Gob codec encodes.
const gobMaxDepth = 100000

var (
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// nestInfoOf returns t's nestInfo, working it out once per type.
func (enc *walker) nestInfoOf(t reflect.Type) *nestInfo {
	if ni, ok := enc.infos.Load(t); ok {
		return ni.(*nestInfo)
	}
	return enc.findNests(t, map[reflect.Type]bool{})
}

// findNests works out t's nestInfo; path holds the types being worked
// out, of which meeting one again is a recursive type.
func (enc *walker) findNests(t reflect.Type, path map[reflect.Type]bool) *nestInfo {
	if ni, ok := enc.infos.Load(t); ok {
		return ni.(*nestInfo)
	}
	if path[t] {
		return &nestInfo{nests: true}
	}
	ni := &nestInfo{}
	pt := reflect.PointerTo(t)
	for _, m := range enc.opaque {
		if t.Implements(m) || pt.Implements(m) {
			enc.infos.Store(t, ni) // encoded by its own method: not walked
			return ni
		}
	}
	path[t] = true
	switch t.Kind() {
	case reflect.Interface:
		ni.nests = true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		ni.nests = enc.findNests(t.Elem(), path).nests
	case reflect.Map:
		ni.nests = enc.findNests(t.Key(), path).nests || enc.findNests(t.Elem(), path).nests
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if enc.gob && !f.IsExported() || !enc.gob && !msgpackWrites(f) {
				continue // not written by the encoder
			}
			if enc.findNests(f.Type, path).nests {
				ni.fields = append(ni.fields, i)
			}
		}
		ni.nests = len(ni.fields) > 0
	}
	delete(path, t)
	enc.infos.Store(t, ni)
	return ni
}

// checkEncodeDepth returns an error if v, encoded, would nest arrays and
// maps deeper than MsgPackMaxDepth (which no reader decodes), as a value
// that holds itself would without end. The encoder recurses once per
// level: a cycle would overflow the writer's stack, a crash no recover
// catches. Only values of types that can nest so are walked.
func checkEncodeDepth(v any) error {
	return msgpackWalk.walkAny(v, 0, 0)
}

// walkAny walks v, which depth arrays and maps hold, reached through hops
// pointers and interfaces since the innermost: the values of JSON's shapes
// (map[string]any, []any, scalars) without reflection, others with
// walkDepth.
func (enc *walker) walkAny(v any, depth, hops int) error {
	switch x := v.(type) {
	case nil, string, bool, int, int64, uint64, float64, []byte:
		return nil
	case map[string]any:
		if len(x) > 0 && depth >= enc.maxDepth {
			return enc.tooDeep
		}
		for _, e := range x {
			if err := enc.walkAny(e, depth+1, 0); err != nil {
				return err
			}
		}
		return nil
	case []any:
		if len(x) > 0 && depth >= enc.maxDepth {
			return enc.tooDeep
		}
		for _, e := range x {
			if err := enc.walkAny(e, depth+1, 0); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if !enc.nestInfoOf(rv.Type()).nests {
		return nil
	}
	return enc.walkDepth(rv, depth, hops)
}

// walkDepth is walkAny of a reflect.Value.
func (enc *walker) walkDepth(v reflect.Value, depth, hops int) error {
	for ; v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface; hops++ {
		if v.IsNil() {
			return nil
		}
		if hops >= maxPointerHops {
			return enc.tooDeep
		}
		if v.Kind() == reflect.Interface && v.CanInterface() {
			return enc.walkAny(v.Interface(), depth, hops+1) // no copy: v holds an interface
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
	default:
		return nil // a scalar
	}
	ni := enc.nestInfoOf(v.Type())
	if !ni.nests {
		return nil
	}
	if depth >= enc.maxDepth && (v.Kind() == reflect.Struct || v.Len() > 0) {
		return enc.tooDeep // as checkMsgPack counts: non-empty arrays and maps
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := enc.walkDepth(v.Index(i), depth+1, 0); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := enc.nestInfoOf(v.Type().Key()).nests
		for it := v.MapRange(); it.Next(); {
			if keys {
				if err := enc.walkDepth(it.Key(), depth+1, 0); err != nil {
					return err
				}
			}
			if err := enc.walkDepth(it.Value(), depth+1, 0); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for _, i := range ni.fields {
			if err := enc.walkDepth(v.Field(i), depth+1, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
