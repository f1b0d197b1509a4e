package python

import (
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/pyinterop"
	"github.com/memdict/memdict/internal/testserver"
)

// pyWrites are values Python programs store, and what Unmarshal reads of
// them in an empty interface.
var pyWrites = []struct {
	expr  string
	flags uint32
	want  any
}{
	{"'héllo wörld'", FlagText, "héllo wörld"},
	{"''", FlagText, ""},
	{"42", FlagInt, int64(42)},
	{"-7", FlagInt, int64(-7)},
	{"2**70", FlagInt, bigInt("1180591620717411303424")},
	{"b'\\x00\\xffraw'", FlagBytes, []byte("\x00\xffraw")},
	{"True", FlagPickle, true},
	{"1.5", FlagPickle, 1.5},
	{"None", FlagPickle, nil},
	{"[1, 'two', 3.0]", FlagPickle, []any{int64(1), "two", 3.0}},
	{"{'name': 'Ada', 'tags': ['a', 'b'], 'visits': 3, 'ratio': 0.5, 'admin': True, 'email': None, 'raw': b'\\x01', 'nested': {'k': (1, 2)}, 'big': 2**64}",
		FlagPickle, map[string]any{"name": "Ada", "tags": []any{"a", "b"}, "visits": int64(3), "ratio": 0.5, "admin": true, "email": nil,
			"raw": []byte{1}, "nested": map[string]any{"k": []any{int64(1), int64(2)}}, "big": bigInt("18446744073709551616")}},
}

// The ways Python services write: python-memcached as ERP5 sets it up
// (pickleProtocol=-1) and with its own default (0), pymemcache with its
// python-memcached serde (the highest protocol) and with protocol 2.
var pyWriters = []struct {
	lib      string
	protocol *int
}{
	{pyinterop.PythonMemcached, nil},
	{pyinterop.PythonMemcached, pyinterop.Protocol(0)},
	{pyinterop.Pymemcache, nil},
	{pyinterop.Pymemcache, pyinterop.Protocol(2)},
}

func interop(t *testing.T) (*pyinterop.Python, string, *pyinterop.Conn) {
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.Clients...)
	return py, mc.Addr, pyinterop.Dial(t, mc.Addr)
}

// TestPythonWritesGoReads: str, int, bytes and pickles that
// python-memcached and pymemcache store read as the same values in Go.
func TestPythonWritesGoReads(t *testing.T) {
	py, addr, conn := interop(t)
	var ops []pyinterop.Op
	key := func(w, i int) string { return fmt.Sprintf("w%d_%d", w, i) }
	for w, wr := range pyWriters {
		for i, v := range pyWrites {
			ops = append(ops, pyinterop.Op{Op: "set", Lib: wr.lib, Protocol: wr.protocol, Key: key(w, i), Expr: v.expr})
		}
	}
	// python-memcached's compression (min_compress_len).
	ops = append(ops, pyinterop.Op{Op: "set", Lib: pyinterop.PythonMemcached, Key: "zipped", Expr: "{'page': 'x' * 5000}", MinCompressLen: 100})
	for i, r := range py.Batch(t, addr, ops...) {
		if r.Error != "" {
			t.Fatalf("%v: %s", ops[i], r.Error)
		}
	}
	for w, wr := range pyWriters {
		for i, v := range pyWrites {
			data, flags, ok := conn.Get(t, key(w, i))
			if !ok {
				t.Fatalf("%s: %s was not stored", wr.lib, v.expr)
			}
			if flags != v.flags {
				t.Errorf("%s (protocol %v) stored %s with flags %d, want %d", wr.lib, deref(wr.protocol), v.expr, flags, v.flags)
			}
			var got any
			if err := Unmarshal(data, flags, &got); err != nil {
				t.Errorf("%s (protocol %v) %s: %v", wr.lib, deref(wr.protocol), v.expr, err)
			} else if !equal(got, v.want) {
				t.Errorf("%s (protocol %v) %s: read %#v, want %#v", wr.lib, deref(wr.protocol), v.expr, got, v.want)
			}
		}
	}
	data, flags, _ := conn.Get(t, "zipped")
	var page struct{ Page string }
	if err := Unmarshal(data, flags, &page); err != nil || flags != FlagPickle|FlagZlib || page.Page != strings.Repeat("x", 5000) {
		t.Errorf("compressed by python-memcached: flags %d, %d bytes, %v", flags, len(page.Page), err)
	}

	// Into a struct too, from every writer.
	type user struct {
		Name   string   `pickle:"name"`
		Tags   []string `pickle:"tags"`
		Visits int      `pickle:"visits"`
		Email  *string  `pickle:"email"`
		Raw    []byte   `pickle:"raw"`
		Big    *big.Int `pickle:"big"`
	}
	for w := range pyWriters {
		data, flags, _ := conn.Get(t, key(w, len(pyWrites)-1))
		var u user
		if err := Unmarshal(data, flags, &u); err != nil || u.Name != "Ada" || len(u.Tags) != 2 || u.Visits != 3 || u.Email != nil || string(u.Raw) != "\x01" || u.Big.String() != "18446744073709551616" {
			t.Errorf("%s: struct %+v, %v", pyWriters[w].lib, u, err)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return "default"
	}
	return *p
}

// TestGoWritesPythonReads: what Marshal writes, stored with its flags,
// python-memcached and pymemcache read as the same Python values.
func TestGoWritesPythonReads(t *testing.T) {
	py, addr, conn := interop(t)
	values := append([]struct {
		in     any
		python string
		back   any
	}{
		{"héllo", "'héllo'", nil},
		{42, "42", nil},
		{uint64(1) << 63, "2**63", nil},
		{bigInt("-1180591620717411303424"), "-2**70", nil},
		{[]byte("\x00\xff"), "b'\\x00\\xff'", nil},
	}, goValues...)
	var ops []pyinterop.Op
	var what []string
	n := 0
	for _, c := range []Codec{{}, {Protocol: 1}, {Protocol: HighestProtocol}, {MinCompressLen: 1}} {
		for _, v := range values {
			data, flags, err := c.Marshal(v.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, lib := range pyinterop.Clients {
				if flags&FlagZlib != 0 && lib == pyinterop.Pymemcache {
					continue // pymemcache 3 does not decompress
				}
				key := fmt.Sprintf("g%d", n)
				n++
				conn.Set(t, key, data, flags)
				ops = append(ops, pyinterop.Op{Op: "get", Lib: lib, Key: key}, pyinterop.Op{Op: "canon", Expr: v.python})
				what = append(what, fmt.Sprintf("%s reading %#v (flags %d, %+v)", lib, v.in, flags, c))
			}
		}
	}
	res := py.Batch(t, addr, ops...)
	for i := 0; i < len(res); i += 2 {
		got, want := res[i], res[i+1]
		if got.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("%s: %s %s (%s); want %s %s", what[i/2], got.Type, got.Repr, got.Error, want.Type, want.Repr)
		}
	}
}

// TestERP5Entry: an entry written as ERP5's Memcached Tool writes it
// (site id, key_prefix, quoted-printable key, python-memcached with
// pickleProtocol=-1) is found by ERP5Key, read, updated from Go, and read
// back by the Tool's code.
func TestERP5Entry(t *testing.T) {
	py, addr, conn := interop(t)
	const site, prefix = "erp5_site", "my_app"
	keys := []string{"user/é 1", "report/" + strings.Repeat("x", 80)} // the second gets a soft line break
	var ops []pyinterop.Op
	for _, k := range keys {
		ops = append(ops, pyinterop.Op{Op: "erp5set", Site: site, Prefix: prefix, Key: k,
			Expr: "{'name': 'Ada', 'visits': 3, 'roles': ['Assignor'], 'last': None}"})
	}
	res := py.Batch(t, addr, ops...)

	type entry struct {
		Name   string   `pickle:"name"`
		Visits int      `pickle:"visits"`
		Roles  []string `pickle:"roles"`
		Last   *string  `pickle:"last"`
	}
	ops = ops[:0]
	for i, k := range keys {
		if res[i].Error != "" {
			t.Fatalf("erp5set: %s", res[i].Error)
		}
		bkey, err := keyspace.ERP5Key(site, prefix, k, 250)
		if err != nil || bkey != res[i].Key {
			t.Fatalf("ERP5Key(%q) = %q, %v; the Tool used %q", k, bkey, err, res[i].Key)
		}
		data, flags, ok := conn.Get(t, bkey)
		if !ok || flags != FlagPickle {
			t.Fatalf("%q: found %v, flags %d", bkey, ok, flags)
		}
		var e entry
		if err := Unmarshal(data, flags, &e); err != nil {
			t.Fatal(err)
		}
		if e.Name != "Ada" || e.Visits != 3 || len(e.Roles) != 1 || e.Roles[0] != "Assignor" || e.Last != nil {
			t.Fatalf("read %+v", e)
		}
		e.Visits++
		e.Roles = append(e.Roles, "Auditor")
		last := "2024-05-06"
		e.Last = &last
		if data, flags, err = Marshal(e); err != nil {
			t.Fatal(err)
		}
		conn.Set(t, bkey, data, flags)
		ops = append(ops, pyinterop.Op{Op: "erp5get", Site: site, Prefix: prefix, Key: k},
			pyinterop.Op{Op: "canon", Expr: "{'name': 'Ada', 'visits': 4, 'roles': ['Assignor', 'Auditor'], 'last': '2024-05-06'}"})
	}
	res = py.Batch(t, addr, ops...)
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != "dict" {
			t.Errorf("the Tool read back %s %s (%s); want dict %s", got.Type, got.Repr, got.Error, want.Repr)
		}
	}
}
