package python

import (
	"reflect"
	"strings"
	"sync"
)

// field is a struct field as a dict key.
type field struct {
	name      string
	index     []int
	omitEmpty bool
}

// structFields are the fields of a struct type, in declaration order,
// with the fields of embedded structs in place of those structs.
type structFields struct {
	list   []field
	byName map[string]int // exact name -> index in list
	byFold map[string]int // lower-case name -> first field of that name
}

var fieldCache sync.Map // reflect.Type -> *structFields

// fieldsOf returns the fields of struct type t. A field is named by its
// `pickle` tag, else its `json` tag, else its Go name; "-" leaves it out,
// ",omitempty" leaves it out of Marshal's dict when empty. Unexported
// fields are left out. The exported fields of an embedded struct (not a
// pointer) without a tag name count as fields of the outer struct; a
// name taken at a shallower level wins, then the first one.
func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	sf := &structFields{byName: map[string]int{}, byFold: map[string]int{}}
	type level struct {
		t     reflect.Type
		index []int
	}
	current := []level{{t: t}}
	visited := map[reflect.Type]bool{}
	for len(current) > 0 {
		var next []level
		taken := map[string]bool{} // names given at this depth
		for _, lv := range current {
			if visited[lv.t] {
				continue
			}
			visited[lv.t] = true
			for i := 0; i < lv.t.NumField(); i++ {
				f := lv.t.Field(i)
				tag, ok := f.Tag.Lookup("pickle")
				if !ok {
					tag = f.Tag.Get("json")
				}
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(append([]int(nil), lv.index...), i)
				if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
					next = append(next, level{t: f.Type, index: index})
					continue
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, dup := sf.byName[name]; dup || taken[name] {
					continue
				}
				taken[name] = true
				sf.list = append(sf.list, field{name: name, index: index, omitEmpty: hasOption(opts, "omitempty")})
			}
		}
		for i, f := range sf.list {
			if _, ok := sf.byName[f.name]; !ok {
				sf.byName[f.name] = i
			}
			if _, ok := sf.byFold[strings.ToLower(f.name)]; !ok {
				sf.byFold[strings.ToLower(f.name)] = i
			}
		}
		current = next
	}
	f, _ := fieldCache.LoadOrStore(t, sf)
	return f.(*structFields)
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// lookup returns the field named name: exactly, else without regard to
// case.
func (sf *structFields) lookup(name string) (*field, bool) {
	if i, ok := sf.byName[name]; ok {
		return &sf.list[i], true
	}
	if i, ok := sf.byFold[strings.ToLower(name)]; ok {
		return &sf.list[i], true
	}
	return nil, false
}
