package codec

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
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

var nestInfos sync.Map // reflect.Type → *nestInfo

var (
	customEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// nestInfoOf returns t's nestInfo, working it out once per type.
func nestInfoOf(t reflect.Type) *nestInfo {
	if ni, ok := nestInfos.Load(t); ok {
		return ni.(*nestInfo)
	}
	return findNests(t, map[reflect.Type]bool{})
}

// findNests works out t's nestInfo; path holds the types being worked
// out, of which meeting one again is a recursive type.
func findNests(t reflect.Type, path map[reflect.Type]bool) *nestInfo {
	if ni, ok := nestInfos.Load(t); ok {
		return ni.(*nestInfo)
	}
	if path[t] {
		return &nestInfo{nests: true}
	}
	ni := &nestInfo{}
	pt := reflect.PointerTo(t)
	for _, m := range []reflect.Type{customEncoderType, marshalerType, binaryMarshalerType, textMarshalerType} {
		if t.Implements(m) || pt.Implements(m) {
			nestInfos.Store(t, ni) // encoded by its own method: not walked
			return ni
		}
	}
	path[t] = true
	switch t.Kind() {
	case reflect.Interface:
		ni.nests = true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		ni.nests = findNests(t.Elem(), path).nests
	case reflect.Map:
		ni.nests = findNests(t.Key(), path).nests || findNests(t.Elem(), path).nests
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("msgpack")
			if tag == "" {
				tag = f.Tag.Get("json")
			}
			name, _, _ := strings.Cut(tag, ",")
			if (!f.IsExported() && !f.Anonymous) || name == "-" {
				continue // not written by the encoder
			}
			if findNests(f.Type, path).nests {
				ni.fields = append(ni.fields, i)
			}
		}
		ni.nests = len(ni.fields) > 0
	}
	delete(path, t)
	nestInfos.Store(t, ni)
	return ni
}

// checkEncodeDepth returns an error if v, encoded, would nest arrays and
// maps deeper than MsgPackMaxDepth (which no reader decodes), as a value
// that holds itself would without end. The encoder recurses once per
// level: a cycle would overflow the writer's stack, a crash no recover
// catches. Only values of types that can nest so are walked.
func checkEncodeDepth(v any) error {
	return walkAny(v, 0, 0)
}

// walkAny walks v, which depth arrays and maps hold, reached through hops
// pointers and interfaces since the innermost: the values of JSON's shapes
// (map[string]any, []any, scalars) without reflection, others with
// walkDepth.
func walkAny(v any, depth, hops int) error {
	switch x := v.(type) {
	case nil, string, bool, int, int64, uint64, float64, []byte:
		return nil
	case map[string]any:
		if len(x) > 0 && depth >= MsgPackMaxDepth {
			return errTooDeep
		}
		for _, e := range x {
			if err := walkAny(e, depth+1, 0); err != nil {
				return err
			}
		}
		return nil
	case []any:
		if len(x) > 0 && depth >= MsgPackMaxDepth {
			return errTooDeep
		}
		for _, e := range x {
			if err := walkAny(e, depth+1, 0); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if !nestInfoOf(rv.Type()).nests {
		return nil
	}
	return walkDepth(rv, depth, hops)
}

// errTooDeep is checkEncodeDepth's error.
var errTooDeep = fmt.Errorf("msgpack: value nested deeper than %d arrays and maps, or holding itself", MsgPackMaxDepth)

// walkDepth is walkAny of a reflect.Value.
func walkDepth(v reflect.Value, depth, hops int) error {
	for ; v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface; hops++ {
		if v.IsNil() {
			return nil
		}
		if hops >= maxPointerHops {
			return errTooDeep
		}
		if v.Kind() == reflect.Interface && v.CanInterface() {
			return walkAny(v.Interface(), depth, hops+1) // no copy: v holds an interface
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
	default:
		return nil // a scalar
	}
	ni := nestInfoOf(v.Type())
	if !ni.nests {
		return nil
	}
	if depth >= MsgPackMaxDepth && (v.Kind() == reflect.Struct || v.Len() > 0) {
		return errTooDeep // as checkMsgPack counts: non-empty arrays and maps
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := walkDepth(v.Index(i), depth+1, 0); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := nestInfoOf(v.Type().Key()).nests
		for it := v.MapRange(); it.Next(); {
			if keys {
				if err := walkDepth(it.Key(), depth+1, 0); err != nil {
					return err
				}
			}
			if err := walkDepth(it.Value(), depth+1, 0); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for _, i := range ni.fields {
			if err := walkDepth(v.Field(i), depth+1, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
