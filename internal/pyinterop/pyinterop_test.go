package pyinterop

import (
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

func TestConnSetGet(t *testing.T) {
	mc := testserver.Memcached(t)
	c := Dial(t, mc.Addr)
	if _, _, ok := c.Get(t, "absent"); ok {
		t.Fatal("Get of an absent key: ok")
	}
	c.Set(t, "k", []byte("a\r\nb"), 4242)
	v, f, ok := c.Get(t, "k")
	if !ok || string(v) != "a\r\nb" || f != 4242 {
		t.Fatalf("Get = %q, %d, %v; want %q, 4242, true", v, f, ok, "a\r\nb")
	}
	c.Set(t, "empty", nil, 0)
	if v, f, ok := c.Get(t, "empty"); !ok || len(v) != 0 || f != 0 {
		t.Fatalf("Get(empty) = %q, %d, %v", v, f, ok)
	}
}

// Both libraries see what the other wrote, and the flags they write are
// the ones the package documents.
func TestBatchClients(t *testing.T) {
	mc := testserver.Memcached(t)
	py := Find(t, Clients...)
	res := py.Batch(t, mc.Addr,
		Op{Op: "set", Lib: PythonMemcached, Key: "a", Expr: "'héllo'"},
		Op{Op: "set", Lib: Pymemcache, Key: "b", Expr: "42"},
		Op{Op: "get", Lib: Pymemcache, Key: "a"},
		Op{Op: "get", Lib: PythonMemcached, Key: "b"},
		Op{Op: "canon", Expr: "{'b': 1, 'a': (2,)}"},
		Op{Op: "get", Lib: "nope", Key: "a"},
	)
	want := []Result{{}, {}, {Repr: "'héllo'", Type: "str"}, {Repr: "42", Type: "int"}, {Repr: "{'a': (2,), 'b': 1}", Type: "dict"}}
	for i, w := range want {
		if res[i] != w {
			t.Errorf("op %d: %+v, want %+v", i, res[i], w)
		}
	}
	if res[5].Error == "" {
		t.Errorf("an unknown library gave no error: %+v", res[5])
	}
	c := Dial(t, mc.Addr)
	if v, f, _ := c.Get(t, "a"); string(v) != "héllo" || f != 16 {
		t.Errorf("python-memcached's str: %q flags %d; want UTF-8 and 16", v, f)
	}
	if v, f, _ := c.Get(t, "b"); string(v) != "42" || f != 2 {
		t.Errorf("pymemcache's int: %q flags %d; want \"42\" and 2", v, f)
	}
}
