package codec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The JSON codec's bound on what a value decodes to, as checkAlloc is the
// msgpack codec's: an element may take two bytes of the value ("0,", "{}")
// and a whole element of the Go type decoded into, so a value of empty
// objects read as a []T of a large T allocated far more than its size.

// jsonFieldMap holds the fields of the structs seen (jsonFields).
var jsonFieldMap sync.Map // reflect.Type → *jsonFieldSet

// jsonSliceGrowth is how many times the elements of a slice encoding/json
// allocates in all: it appends them one by one, reallocating the slice as
// it grows (by 1.25 times once large).
const jsonSliceGrowth = 5

// jsonFieldSet is the fields of a struct that encoding/json sets: by exact
// name, and by folded name for a key in another case, the costliest of
// the fields whose names fold alike (encoding/json prefers the exact
// name; the walk must not charge less than it allocates). Of fields of
// the same name, the costliest is kept too.
type jsonFieldSet struct {
	exact, folded map[string]reflect.Type
}

// lookup returns the type of the field a key names, or nil.
func (fs *jsonFieldSet) lookup(key string) reflect.Type {
	if ft, ok := fs.exact[key]; ok {
		return ft
	}
	return fs.folded[foldJSONName(key)]
}

// lookupBytes is lookup of a key given as bytes, which it copies only
// when no field has the name exactly.
func (fs *jsonFieldSet) lookupBytes(key []byte) reflect.Type {
	if ft, ok := fs.exact[string(key)]; ok {
		return ft
	}
	return fs.folded[foldJSONName(string(key))]
}

// plainASCII reports whether b, a JSON string without its quotes, is the
// string it stands for: printable ASCII, no escapes.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// jsonFields returns the fields of struct t that encoding/json sets (json
// tag or Go name; embedded structs inlined).
func jsonFields(t reflect.Type) *jsonFieldSet {
	if fs, ok := jsonFieldMap.Load(t); ok {
		return fs.(*jsonFieldSet)
	}
	fs := &jsonFieldSet{exact: map[string]reflect.Type{}, folded: map[string]reflect.Type{}}
	costlier := func(a, b reflect.Type) bool {
		return jsonDecoding.maxCost(a, map[reflect.Type]bool{}) > jsonDecoding.maxCost(b, map[reflect.Type]bool{})
	}
	put := func(name string, ft reflect.Type) {
		// Of fields named alike (an embedded struct's and the outer's),
		// the costliest: which one encoding/json sets is its to choose.
		if old, ok := fs.exact[name]; !ok || costlier(ft, old) {
			fs.exact[name] = ft
		}
		k := foldJSONName(name)
		if old, ok := fs.folded[k]; !ok || costlier(ft, old) {
			fs.folded[k] = ft
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := cutComma(f.Tag.Get("json"))
		if f.Tag.Get("json") == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if ft := jsonDecoding.target(f.Type); f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			for n, inner := range jsonFields(ft).exact {
				put(n, inner)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		put(name, f.Type)
	}
	jsonFieldMap.Store(t, fs)
	return fs
}

// cutComma is strings.Cut(s, ",").
func cutComma(s string) (before, after string, found bool) {
	for i := range len(s) {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// foldJSONName folds name as encoding/json does to match an object's key
// to a field whatever its case: ASCII letters upper-cased, other runes the
// smallest of their fold set.
func foldJSONName(name string) string {
	out := make([]byte, 0, len(name))
	for _, r := range name {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// checkJSONAlloc returns an error if decoding data into what v points to
// would allocate more than MsgPackMaxAlloc for the elements of slices and
// maps. A value too short to reach the bound with elements of the type's
// largest kind is not walked, nor one of fewer than 256 bytes. A value
// that is not JSON is left to the decoder's error.
func checkJSONAlloc(data []byte, v any) error {
	if len(data) < 256 {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	t = t.Elem()
	if uint64(len(data))*jsonDecoding.maxCost(t, map[reflect.Type]bool{})*jsonSliceGrowth <= MsgPackMaxAlloc {
		return nil
	}
	w := jsonWalker{data: data}
	w.value(t, 0)
	if w.total > MsgPackMaxAlloc {
		return fmt.Errorf("json: a value of %d bytes would decode to slices and maps of %d bytes or more, beyond MsgPackMaxAlloc", len(data), w.total)
	}
	return nil
}

// jsonWalker adds up what decoding a JSON value allocates for the
// elements of slices and maps. It stops at the first byte that is not
// JSON (bad), leaving the error to the decoder, and once over the bound.
type jsonWalker struct {
	data  []byte
	i     int
	total uint64
	bad   bool
}

func (w *jsonWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether a byte is left, marking the
// value bad if not.
func (w *jsonWalker) next() bool {
	w.space()
	if w.i >= len(w.data) {
		w.bad = true
	}
	return !w.bad
}

// str skips the string at w.i and returns it with its quotes.
func (w *jsonWalker) str() []byte {
	start := w.i
	w.i++ // the opening quote
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case '\\':
			w.i += 2
		case '"':
			w.i++
			return w.data[start:w.i]
		default:
			w.i++
		}
	}
	w.bad = true
	return nil
}

// value walks the value at w.i, decoded into t (nil: skipped).
func (w *jsonWalker) value(t reflect.Type, depth int) {
	if !w.next() || w.total > MsgPackMaxAlloc {
		return
	}
	if depth > 10000 { // encoding/json's own limit
		w.bad = true
		return
	}
	if t != nil && w.data[w.i] != 'n' {
		// null leaves a pointer nil; any other value allocates what it
		// points to, even one encoding/json then refuses (a number read
		// into a struct) and goes on past.
		w.total += pointees(t)
	}
	if t != nil {
		t = jsonDecoding.target(t)
	}
	switch w.data[w.i] {
	case '[':
		w.i++
		var per uint64
		var et reflect.Type
		switch {
		case t == nil:
		case t == anyType:
			per, et = costAnyElem*jsonSliceGrowth, anyType
		case t.Kind() == reflect.Slice:
			per, et = uint64(t.Elem().Size())*jsonSliceGrowth, t.Elem()
		case t.Kind() == reflect.Array:
			et = t.Elem()
		}
		if w.next() && w.data[w.i] == ']' {
			w.i++
			return
		}
		for !w.bad && w.total <= MsgPackMaxAlloc {
			w.total += per
			w.value(et, depth+1)
			if !w.next() {
				return
			}
			switch w.data[w.i] {
			case ',':
				w.i++
			case ']':
				w.i++
				return
			default:
				w.bad = true
			}
		}
	case '{':
		w.i++
		var per, first uint64
		var et reflect.Type
		var fields *jsonFieldSet
		switch {
		case t == nil:
		case t == anyType:
			t = mapAnyType
			fallthrough
		case t.Kind() == reflect.Map:
			// The map's header, its first group with its first pair,
			// and then twice the slots of mapCost a pair (the map
			// grows as pairs are set): about 5 slots.
			slot, pair := mapSlot(t)
			w.total += mapHeader
			first = 8 * slot
			per, et = 5*slot+pair+uint64(t.Key().Size()+t.Elem().Size()), t.Elem()
			if et == anyType {
				per += costAnyElem // a value in each
			}
		case t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		}
		if w.next() && w.data[w.i] == '}' {
			w.i++
			return
		}
		w.total += first
		for !w.bad && w.total <= MsgPackMaxAlloc {
			if !w.next() || w.data[w.i] != '"' {
				w.bad = true
				return
			}
			key := w.str()
			if !w.next() || w.data[w.i] != ':' {
				w.bad = true
				return
			}
			w.i++
			ft := et
			if fields != nil {
				if raw := key[1 : len(key)-1]; plainASCII(raw) {
					// The name as it is: looked up without a copy (the
					// walk reads every key of a []*T of many).
					ft = fields.lookupBytes(raw)
				} else {
					var name string
					if json.Unmarshal(key, &name) != nil {
						w.bad = true
						return
					}
					ft = fields.lookup(name) // nil: skipped
				}
			}
			w.total += per
			w.value(ft, depth+1)
			if !w.next() {
				return
			}
			switch w.data[w.i] {
			case ',':
				w.i++
			case '}':
				w.i++
				return
			default:
				w.bad = true
			}
		}
	case '"':
		w.str()
	default: // a number, true, false or null
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return
			}
			w.i++
		}
	}
}
