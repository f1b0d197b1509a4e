package memdict_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	_ "github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/pyinterop"
	"github.com/memdict/memdict/internal/testserver"
)

// The Python formats against Python itself: python-memcached (ERP5's
// client, set up as MemcachedTool.py does) and pymemcache (with its
// python-memcached serde) on a real memcached.

// pyUser is the dict the tests share with Python.
type pyUser struct {
	Name   string   `pickle:"name"`
	Tags   []string `pickle:"tags"`
	Visits int      `pickle:"visits"`
	Email  *string  `pickle:"email"`
}

const pyUserExpr = "{'name': 'Ada', 'tags': ['a', 'b'], 'visits': 3, 'email': None}"

// pyServer starts a memcached and a python3 with both clients, and opens
// the memcached driver on it.
func pyServer(t *testing.T) (*pyinterop.Python, string, backend.Backend) {
	t.Helper()
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.Clients...)
	be, err := backend.Open(context.Background(), "memcached://"+mc.Addr+"?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return py, mc.Addr, be
}

// pyOK fails t if a Python operation failed.
func pyOK(t *testing.T, ops []pyinterop.Op, res []pyinterop.Result) {
	t.Helper()
	for i, r := range res {
		if r.Error != "" {
			t.Fatalf("%v: %s", ops[i], r.Error)
		}
	}
}

// TestFormatPythonWithPython: str, int, bytes and a pickled dict that
// python-memcached and pymemcache store read in Dicts of format python,
// under the keys the Python programs use; and what those Dicts store,
// both read back as the same Python values.
func TestFormatPythonWithPython(t *testing.T) {
	ctx := context.Background()
	py, addr, be := pyServer(t)
	opt := memdict.WithFormat(memdict.FormatPython)
	strs := newDict[string](t, be, "svc:", opt)
	ints := newDict[int](t, be, "svc:", opt)
	raws := newDict[[]byte](t, be, "svc:", opt)
	users := newDict[pyUser](t, be, "svc:", opt)
	anys := newDict[any](t, be, "svc:", opt)

	// Python writes, Go reads.
	var ops []pyinterop.Op
	for _, lib := range pyinterop.Clients {
		ops = append(ops,
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":str", Expr: "'héllo'"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":int", Expr: "-42"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":bytes", Expr: "b'\\x00\\xffraw'"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":dict", Expr: pyUserExpr})
	}
	pyOK(t, ops, py.Batch(t, addr, ops...))
	for _, lib := range pyinterop.Clients {
		if v, ok, err := strs.Lookup(ctx, lib+":str"); err != nil || !ok || v != "héllo" {
			t.Errorf("%s's str: %q, %v, %v", lib, v, ok, err)
		}
		if v, ok, err := ints.Lookup(ctx, lib+":int"); err != nil || !ok || v != -42 {
			t.Errorf("%s's int: %d, %v, %v", lib, v, ok, err)
		}
		if v, ok, err := raws.Lookup(ctx, lib+":bytes"); err != nil || !ok || string(v) != "\x00\xffraw" {
			t.Errorf("%s's bytes: %q, %v, %v", lib, v, ok, err)
		}
		if v, ok, err := users.Lookup(ctx, lib+":dict"); err != nil || !ok || v.Name != "Ada" || len(v.Tags) != 2 || v.Visits != 3 || v.Email != nil {
			t.Errorf("%s's dict: %+v, %v, %v", lib, v, ok, err)
		}
		got, err := anys.GetMulti(ctx, []string{lib + ":str", lib + ":int", lib + ":dict"})
		if m, _ := got[lib+":dict"].(map[string]any); err != nil || got[lib+":str"] != "héllo" || got[lib+":int"] != int64(-42) || m["name"] != "Ada" {
			t.Errorf("%s's values into any: %#v, %v", lib, got, err)
		}
	}

	// Go writes, Python reads.
	email := "ada@example.com"
	writes := []struct {
		key, python string
		store       func(key string) error
	}{
		{"go:str", "'wörld'", func(k string) error { return strs.Store(ctx, k, "wörld") }},
		{"go:int", "7", func(k string) error { return ints.Store(ctx, k, 7) }},
		{"go:bytes", "b'\\x01\\x02'", func(k string) error { return raws.Store(ctx, k, []byte{1, 2}) }},
		{"go:dict", "{'name': 'Bob', 'tags': [], 'visits': 1, 'email': 'ada@example.com'}",
			func(k string) error { return users.Store(ctx, k, pyUser{Name: "Bob", Visits: 1, Email: &email}) }},
		{"go:map", "{'a': [1, 2.5, None, True], 'b': {'c': 'd'}}",
			func(k string) error {
				return anys.Store(ctx, k, map[string]any{"a": []any{1, 2.5, nil, true}, "b": map[string]string{"c": "d"}})
			}},
	}
	ops = ops[:0]
	for _, w := range writes {
		if err := w.store(w.key); err != nil {
			t.Fatalf("Store(%q): %v", w.key, err)
		}
		for _, lib := range pyinterop.Clients {
			ops = append(ops, pyinterop.Op{Op: "get", Lib: lib, Key: "svc:" + w.key}, pyinterop.Op{Op: "canon", Expr: w.python})
		}
	}
	res := py.Batch(t, addr, ops...)
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("%s read %s as %s %s (%s); want %s %s", ops[i].Lib, ops[i].Key, got.Type, got.Repr, got.Error, want.Type, want.Repr)
		}
	}
}

// TestFormatERP5WithERP5: an entry written as ERP5's Memcached Tool
// writes it is read and updated from Go through a Dict of format erp5,
// and the Tool's code reads the update; an entry Go adds, the Tool reads
// as a dict.
func TestFormatERP5WithERP5(t *testing.T) {
	ctx := context.Background()
	py, addr, be := pyServer(t)
	const site, prefix = "erp5_site", "my_app"
	keys := []string{"user/é 1", fmt.Sprintf("report/%080d", 1)} // the second keeps a soft line break's "="
	var ops []pyinterop.Op
	for _, k := range keys {
		ops = append(ops, pyinterop.Op{Op: "erp5set", Site: site, Prefix: prefix, Key: k,
			Expr: "{'name': 'Ada', 'visits': 3, 'roles': ['Assignor'], 'last': None}"})
	}
	res := py.Batch(t, addr, ops...)
	pyOK(t, ops, res)
	d := newDict[erp5Entry](t, be, prefix, memdict.WithFormat(memdict.FormatERP5), memdict.WithSiteID(site))
	ops = ops[:0]
	for i, k := range keys {
		if got := d.BackendKey(k); got != res[i].Key {
			t.Fatalf("BackendKey(%q) = %q; the Tool used %q", k, got, res[i].Key)
		}
		e, err := d.Update(ctx, k, func(e erp5Entry, found bool) (erp5Entry, error) {
			if !found || e.Name != "Ada" || e.Visits != 3 || len(e.Roles) != 1 || e.Last != nil {
				return e, fmt.Errorf("read %+v, %v", e, found)
			}
			e.Visits++
			e.Roles = append(e.Roles, "Auditor")
			last := "2024-05-06"
			e.Last = &last
			return e, nil
		})
		if err != nil {
			t.Fatalf("Update(%q): %v", k, err)
		}
		if e.Visits != 4 {
			t.Fatalf("Update(%q) = %+v", k, e)
		}
		ops = append(ops, pyinterop.Op{Op: "erp5get", Site: site, Prefix: prefix, Key: k},
			pyinterop.Op{Op: "canon", Expr: "{'name': 'Ada', 'visits': 4, 'roles': ['Assignor', 'Auditor'], 'last': '2024-05-06'}"})
	}
	if err := d.Store(ctx, "new", erp5Entry{Name: "Bob", Roles: []string{}}); err != nil {
		t.Fatal(err)
	}
	ops = append(ops, pyinterop.Op{Op: "erp5get", Site: site, Prefix: prefix, Key: "new"},
		pyinterop.Op{Op: "canon", Expr: "{'name': 'Bob', 'visits': 0, 'roles': [], 'last': None}"})
	res = py.Batch(t, addr, ops...)
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != "dict" {
			t.Errorf("the Tool read %s back as %s %s (%s); want dict %s", ops[i].Key, got.Type, got.Repr, got.Error, want.Repr)
		}
	}
}
