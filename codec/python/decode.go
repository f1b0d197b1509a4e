package python

import (
	"encoding"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
)

var (
	bigIntType          = reflect.TypeFor[big.Int]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// costNode is charged for every Python value made into a Go value, so
// that a pickle referring to one object many times (a DAG that would
// expand into a huge tree) stays within the budget in time as in memory.
const costNode = 16

// pathElem is one step into a value: a dict key or a sequence index.
type pathElem struct {
	key string
	idx int
}

// decoder puts a Python value of the unpickler into a Go value.
type decoder struct {
	b     *budget
	depth int
	path  []pathElem
}

// assign puts py into the value v points to.
func assign(py any, v any, b *budget) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Unmarshal needs a non-nil pointer, not %T", ErrDecode, v)
	}
	d := &decoder{b: b}
	return d.value(py, rv.Elem())
}

// where formats the path, as ` at ["items"][2]`, or "" at the top.
func (d *decoder) where() string {
	if len(d.path) == 0 {
		return ""
	}
	var s strings.Builder
	s.WriteString(" at ")
	for i, p := range d.path {
		// Of a deep path, the first and last steps.
		if n := len(d.path); n > 16 && i >= 8 && i < n-8 {
			if i == 8 {
				fmt.Fprintf(&s, "...(%d more)...", n-16)
			}
			continue
		}
		if p.idx >= 0 {
			fmt.Fprintf(&s, "[%d]", p.idx)
		} else {
			fmt.Fprintf(&s, "[%q]", p.key)
		}
	}
	return s.String()
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s%s", ErrDecode, fmt.Sprintf(format, args...), d.where())
}

// mismatch is the error of a Python value that has no form in Go type t.
func (d *decoder) mismatch(py any, t reflect.Type) error {
	return d.errorf("Python %s cannot go into Go %v", pyTypeName(py), t)
}

func (d *decoder) charge(n int) error {
	if err := d.b.charge(n); err != nil {
		return fmt.Errorf("%w: %w%s", ErrDecode, err, d.where())
	}
	return nil
}

func (d *decoder) enter(p pathElem) { d.path = append(d.path, p) }
func (d *decoder) leave()           { d.path = d.path[:len(d.path)-1] }

// value puts py into rv, which is settable.
func (d *decoder) value(py any, rv reflect.Value) error {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > MaxDepth {
		return d.errorf("the value nests deeper than %d levels (a self-referencing object?)", MaxDepth)
	}
	if err := d.charge(costNode); err != nil {
		return err
	}
	t := rv.Type()
	if _, ok := py.(pyNone); ok {
		rv.SetZero()
		return nil
	}
	if t == bigIntType {
		switch n := py.(type) {
		case int64:
			rv.Set(reflect.ValueOf(*big.NewInt(n)))
			return nil
		case *big.Int:
			rv.Set(reflect.ValueOf(*new(big.Int).Set(n)))
			return nil
		}
		return d.mismatch(py, t)
	}
	if t.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv.Set(reflect.New(t.Elem()))
		}
		return d.value(py, rv.Elem())
	}
	if s, ok := textOrBytes(py); ok && t.Kind() != reflect.Interface && rv.CanAddr() && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if err := d.charge(len(s)); err != nil {
			return err
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return d.errorf("Go %v refuses Python %s %q: %s", t, pyTypeName(py), truncate(s), truncateTo(err.Error(), 256))
		}
		return nil
	}

	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.mismatch(py, t)
		}
		x, err := d.toAny(py)
		if err != nil {
			return err
		}
		if x == nil {
			rv.SetZero()
		} else {
			rv.Set(reflect.ValueOf(x))
		}
		return nil
	case reflect.Bool:
		if b, ok := py.(bool); ok {
			rv.SetBool(b)
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch n := py.(type) {
		case int64:
			if rv.OverflowInt(n) {
				return d.errorf("Python int %d overflows Go %v", n, t)
			}
			rv.SetInt(n)
			return nil
		case *big.Int:
			return d.errorf("Python int %s overflows Go %v", intText(n), t)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch n := py.(type) {
		case int64:
			if n < 0 || rv.OverflowUint(uint64(n)) {
				return d.errorf("Python int %d overflows Go %v", n, t)
			}
			rv.SetUint(uint64(n))
			return nil
		case *big.Int:
			if n.Sign() < 0 || !n.IsUint64() || rv.OverflowUint(n.Uint64()) {
				return d.errorf("Python int %s overflows Go %v", intText(n), t)
			}
			rv.SetUint(n.Uint64())
			return nil
		}
	case reflect.Float32, reflect.Float64:
		var f float64
		switch n := py.(type) {
		case float64:
			f = n
		case int64:
			f = float64(n)
		case *big.Int:
			f, _ = new(big.Float).SetInt(n).Float64()
		default:
			return d.mismatch(py, t)
		}
		if rv.OverflowFloat(f) || math.IsInf(f, 0) && !isFloat(py) {
			if n, ok := py.(*big.Int); ok {
				return d.errorf("Python int %s overflows Go %v", intText(n), t)
			}
			return d.errorf("Python %s %v overflows Go %v", pyTypeName(py), py, t)
		}
		rv.SetFloat(f)
		return nil
	case reflect.String:
		if s, ok := textOrBytes(py); ok {
			if err := d.charge(len(s)); err != nil {
				return err
			}
			rv.SetString(s)
			return nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if s, ok := textOrBytes(py); ok {
				if err := d.charge(len(s)); err != nil {
					return err
				}
				rv.SetBytes([]byte(s))
				return nil
			}
		}
		if items, ok := items(py); ok {
			if err := d.charge(len(items) * int(t.Elem().Size())); err != nil {
				return err
			}
			s := reflect.MakeSlice(t, len(items), len(items))
			for i, it := range items {
				d.enter(pathElem{idx: i})
				err := d.value(it, s.Index(i))
				d.leave()
				if err != nil {
					return err
				}
			}
			rv.Set(s)
			return nil
		}
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if s, ok := textOrBytes(py); ok {
				if len(s) != t.Len() {
					return d.errorf("Python %s of %d bytes cannot go into Go %v", pyTypeName(py), len(s), t)
				}
				for i := 0; i < len(s); i++ { // the element type may be a named byte type
					rv.Index(i).SetUint(uint64(s[i]))
				}
				return nil
			}
		}
		if items, ok := items(py); ok {
			if len(items) != t.Len() {
				return d.errorf("Python %s of %d items cannot go into Go %v", pyTypeName(py), len(items), t)
			}
			for i, it := range items {
				d.enter(pathElem{idx: i})
				err := d.value(it, rv.Index(i))
				d.leave()
				if err != nil {
					return err
				}
			}
			return nil
		}
	case reflect.Map:
		if dict, ok := py.(*pyDict); ok {
			return d.mapValue(dict, rv)
		}
	case reflect.Struct:
		if dict, ok := py.(*pyDict); ok {
			return d.structValue(dict, rv)
		}
	}
	return d.mismatch(py, t)
}

// intText describes a Python int for errors: its digits, shortened, or
// for an int of more than 256 bits (a pickle's LONG4 may hold millions
// of digits, which take superlinear time and memory to find), its size
// and sign.
func intText(n *big.Int) string {
	if n.BitLen() <= 256 {
		return truncate(n.String())
	}
	if n.Sign() < 0 {
		return fmt.Sprintf("(a negative int of %d bits)", n.BitLen())
	}
	return fmt.Sprintf("(an int of %d bits)", n.BitLen())
}

func isFloat(py any) bool { _, ok := py.(float64); return ok }

// mapValue puts dict into the map rv, making it if it is nil; keys
// already in the map stay unless the dict sets them.
func (d *decoder) mapValue(dict *pyDict, rv reflect.Value) error {
	t := rv.Type()
	kt, et := t.Key(), t.Elem()
	switch kt.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64, reflect.Interface,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	default:
		if !reflect.PointerTo(kt).Implements(textUnmarshalerType) {
			return d.errorf("Python dict cannot go into Go %v: its key type is not text, a number or a bool", t)
		}
	}
	if kt.Kind() == reflect.Interface && kt.NumMethod() != 0 {
		return d.errorf("Python dict cannot go into Go %v: its key type is not text, a number or a bool", t)
	}
	if err := d.charge(len(dict.keys) * 2 * int(kt.Size()+et.Size())); err != nil {
		return err
	}
	if err := d.keyClash(dict); err != nil {
		return err
	}
	if rv.IsNil() {
		rv.Set(reflect.MakeMapWithSize(t, len(dict.keys)))
	}
	for i, pk := range dict.keys {
		k := reflect.New(kt).Elem()
		d.enter(pathElem{key: keyString(pk), idx: -1})
		var err error
		if _, none := pk.(pyNone); none && kt.Kind() != reflect.Interface {
			err = d.errorf("a dict key None cannot go into Go %v", kt)
		} else if kt.Kind() == reflect.Interface {
			var x any
			if x, err = d.keyAny(pk); err == nil && x != nil {
				k.Set(reflect.ValueOf(x))
			}
		} else {
			err = d.value(pk, k)
		}
		if err == nil {
			v := reflect.New(et).Elem()
			if err = d.value(dict.vals[i], v); err == nil {
				rv.SetMapIndex(k, v)
			}
		}
		d.leave()
		if err != nil {
			return err
		}
	}
	return nil
}

// keyClash returns an error if dict holds a bytes key and a text key of
// the same contents (Python 3's {b"k": 1, "k": 2}): two keys in Python,
// one in Go, where bytes keys become strings, so that one entry would be
// dropped unseen, and dropped from Python's dict too by a write back.
// (Python 2's str and unicode keys of the same ASCII text are one key in
// Python 2 too.)
func (d *decoder) keyClash(dict *pyDict) error {
	var hasBytes, hasText bool
	for _, k := range dict.keys {
		switch k.(type) {
		case pyBytes:
			hasBytes = true
		case string, str8:
			hasText = true
		}
	}
	if !hasBytes || !hasText {
		return nil // the common case: no set to build
	}
	if err := d.charge(len(dict.keys) * costSetEntry); err != nil {
		return err
	}
	texts := make(map[string]struct{}, len(dict.keys))
	for _, k := range dict.keys {
		switch v := k.(type) {
		case string:
			texts[v] = struct{}{}
		case str8:
			texts[string(v)] = struct{}{}
		}
	}
	for _, k := range dict.keys {
		if b, ok := k.(pyBytes); ok {
			if _, clash := texts[string(b)]; clash {
				return d.errorf("Python dict has the keys b%q and %q, which would be one Go map key", truncate(string(b)), truncate(string(b)))
			}
		}
	}
	return nil
}

// costSetEntry is what keyClash charges per key for its set of text keys.
const costSetEntry = 48

// structValue puts the dict's values into the fields of the struct rv
// that their keys name; other keys are ignored.
func (d *decoder) structValue(dict *pyDict, rv reflect.Value) error {
	fields := fieldsOf(rv.Type())
	for i, pk := range dict.keys {
		name, ok := textOrBytes(pk)
		if !ok {
			continue
		}
		f, ok := fields.lookup(name)
		if !ok {
			continue
		}
		d.enter(pathElem{key: name, idx: -1})
		err := d.value(dict.vals[i], rv.FieldByIndex(f.index))
		d.leave()
		if err != nil {
			return err
		}
	}
	return nil
}

// toAny returns py as a Go value of its natural type (see Unmarshal).
func (d *decoder) toAny(py any) (any, error) {
	switch v := py.(type) {
	case pyNone:
		return nil, nil
	case bool, int64, float64, string:
		return v, nil
	case *big.Int:
		return new(big.Int).Set(v), d.charge(len(v.Bits()) * 8)
	case str8:
		return string(v), nil
	case pyBytes:
		return []byte(v), d.charge(len(v))
	case pyByteArray:
		return []byte(v), d.charge(len(v))
	case *pyDict:
		return d.dictAny(v)
	}
	if items, ok := items(py); ok {
		if err := d.charge(len(items) * costSlot); err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			d.enter(pathElem{idx: i})
			err := d.value(it, reflect.ValueOf(&out[i]).Elem())
			d.leave()
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, d.errorf("Python %s has no Go form", pyTypeName(py))
}

// dictAny returns dict as map[string]any if all its keys are text, else
// as map[any]any.
func (d *decoder) dictAny(dict *pyDict) (any, error) {
	allText := true
	for _, k := range dict.keys {
		if _, ok := text(k); !ok {
			allText = false
			break
		}
	}
	if allText {
		m := make(map[string]any, len(dict.keys))
		return m, d.mapValue(dict, reflect.ValueOf(&m).Elem())
	}
	m := make(map[any]any, len(dict.keys))
	return m, d.mapValue(dict, reflect.ValueOf(&m).Elem())
}

// keyAny returns a dict key as a key of a map[any]any: None, bool,
// int64, float64 or string (bytes keys become strings).
func (d *decoder) keyAny(py any) (any, error) {
	switch v := py.(type) {
	case pyNone:
		return nil, nil
	case bool, int64, float64, string:
		return v, nil
	}
	if s, ok := textOrBytes(py); ok {
		return s, nil
	}
	return nil, d.errorf("a dict key of type %s cannot be a Go map key", pyTypeName(py))
}

// keyString describes a dict key for paths.
func keyString(py any) string {
	if s, ok := textOrBytes(py); ok {
		return truncate(s)
	}
	switch v := py.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64, bool:
		return fmt.Sprint(v)
	}
	return pyTypeName(py)
}

// textOrBytes returns the contents of a str, Python 2 str, bytes or
// bytearray.
func textOrBytes(py any) (string, bool) {
	switch v := py.(type) {
	case string:
		return v, true
	case str8:
		return string(v), true
	case pyBytes:
		return string(v), true
	case pyByteArray:
		return string(v), true
	}
	return "", false
}

// items returns the items of a list, tuple, set or frozenset.
func items(py any) ([]any, bool) {
	switch v := py.(type) {
	case *pyList:
		return v.items, true
	case pyTuple:
		return v, true
	case *pySet:
		return v.items, true
	}
	return nil, false
}

// truncate shortens s for error messages.
func truncate(s string) string { return truncateTo(s, 64) }

// truncateTo shortens s to max bytes and "...": what an error quotes of
// a value, which may be of any size, as may the error a Go type's
// UnmarshalText makes of it.
func truncateTo(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
