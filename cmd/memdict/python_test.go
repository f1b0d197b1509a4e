package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/pyinterop"
	"github.com/memdict/memdict/internal/testserver"
)

// The command against Python's memcached clients and ERP5's Memcached
// Tool on a real memcached.

// pyConfig writes a configuration with the plugins erp5 (format erp5,
// site id erp5_site) and py (format python) on the memcached at addr.
func pyConfig(t *testing.T, addr string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "memdict.yaml")
	cfg := "site_id: erp5_site\nplugins:\n  erp5:\n    url: " + addr + "\n    format: erp5\n  py:\n    url: " + addr + "\n    format: python\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPythonValues: what python-memcached and pymemcache store, get shows
// decoded by its client flags, under --raw-key and through a plugin of
// format python; put on such a plugin stores what they read back.
func TestPythonValues(t *testing.T) {
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.Clients...)
	cfg := pyConfig(t, mc.Addr)
	var ops []pyinterop.Op
	for _, lib := range pyinterop.Clients {
		ops = append(ops,
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":str", Expr: "'héllo'"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":int", Expr: "42"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":bytes", Expr: "b'raw bytes'"},
			pyinterop.Op{Op: "set", Lib: lib, Key: "svc:" + lib + ":dict", Expr: "{'name': 'Ada', 'tags': ['a'], 'visits': 3, 'email': None}"})
	}
	for i, r := range py.Batch(t, mc.Addr, ops...) {
		if r.Error != "" {
			t.Fatalf("%v: %s", ops[i], r.Error)
		}
	}
	for _, lib := range pyinterop.Clients {
		for _, c := range []struct{ key, json string }{
			{"str", `"codec":"python","flags":16,"value":"héllo"}`},
			{"int", `"codec":"python","flags":2,"value":42}`},
			{"bytes", `"codec":"none","value":"raw bytes"}`},
			{"dict", `"codec":"python","flags":1,"value":{"email":null,"name":"Ada","tags":["a"],"visits":3}}`},
		} {
			key := "svc:" + lib + ":" + c.key
			want := `{"key":"` + key + `",` + c.json
			if r := mustRunIn(t, nil, exitOK, "", "--config", cfg, "get", "--plugin", "py", "--raw-key", key, "--json"); strings.TrimSpace(r.stdout) != want {
				t.Errorf("get --raw-key %s: %s, want %s", key, r.stdout, want)
			}
			want = `{"key":"` + lib + ":" + c.key + `",` + c.json
			if r := mustRunIn(t, nil, exitOK, "", "--config", cfg, "get", "--plugin", "py", "--prefix", "svc:", lib+":"+c.key, "--json"); strings.TrimSpace(r.stdout) != want {
				t.Errorf("get on format python %s: %s, want %s", key, r.stdout, want)
			}
		}
	}
	if r := mustRunIn(t, nil, exitOK, "", "--config", cfg, "get", "--plugin", "py", "--prefix", "svc:", "memcache:dict"); r.stdout != "{\n  \"email\": null,\n  \"name\": \"Ada\",\n  \"tags\": [\n    \"a\"\n  ],\n  \"visits\": 3\n}\n" {
		t.Errorf("get of a dict:\n%s", r.stdout)
	}

	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "go:text", "wörld")
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "--typed", "go:dict", `{"a":[1,2.5,null,true],"n":-7}`)
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "--typed", "go:int", `12345678901234567890`)
	ops = ops[:0]
	for _, lib := range pyinterop.Clients {
		ops = append(ops,
			pyinterop.Op{Op: "get", Lib: lib, Key: "svc:go:text"}, pyinterop.Op{Op: "canon", Expr: "'wörld'"},
			pyinterop.Op{Op: "get", Lib: lib, Key: "svc:go:dict"}, pyinterop.Op{Op: "canon", Expr: "{'a': [1, 2.5, None, True], 'n': -7}"},
			pyinterop.Op{Op: "get", Lib: lib, Key: "svc:go:int"}, pyinterop.Op{Op: "canon", Expr: "12345678901234567890"})
	}
	res := py.Batch(t, mc.Addr, ops...)
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("%s read %s as %s %s (%s); want %s %s", ops[i].Lib, ops[i].Key, got.Type, got.Repr, got.Error, want.Type, want.Repr)
		}
	}
	if r := runIn(t, nil, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "--codec", "json", "k", "1"); r.code != exitUsage || !strings.Contains(r.stderr, "--codec does not apply") {
		t.Errorf("put --codec on format python: %v", r)
	}
}

// TestERP5Dict: get prints as JSON the entry ERP5's Memcached Tool wrote,
// put --typed writes one that the Tool reads as a dict, and the commands
// that need memdict's own layout say that they are not available.
func TestERP5Dict(t *testing.T) {
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.PythonMemcached)
	cfg := pyConfig(t, mc.Addr)
	set := pyinterop.Op{Op: "erp5set", Site: "erp5_site", Prefix: "my_app", Key: "user/é 1",
		Expr: "{'name': 'Ada', 'visits': 3, 'roles': ['Assignor'], 'last': None}"}
	if r := py.Batch(t, mc.Addr, set)[0]; r.Error != "" {
		t.Fatal(r.Error)
	}
	r := mustRunIn(t, nil, exitOK, "", "--config", cfg, "get", "--plugin", "erp5", "--prefix", "my_app", "user/é 1", "--json")
	if want := `{"key":"user/é 1","codec":"python","flags":1,"value":{"last":null,"name":"Ada","roles":["Assignor"],"visits":3}}`; strings.TrimSpace(r.stdout) != want {
		t.Errorf("get of the Tool's entry: %s, want %s", r.stdout, want)
	}
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "erp5", "--prefix", "my_app", "--typed", "user/2", `{"name":"Bob","visits":1,"roles":[]}`)
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "erp5", "--prefix", "my_app", "motd", "hello, ERP5")
	res := py.Batch(t, mc.Addr,
		pyinterop.Op{Op: "erp5get", Site: "erp5_site", Prefix: "my_app", Key: "user/2"},
		pyinterop.Op{Op: "canon", Expr: "{'name': 'Bob', 'visits': 1, 'roles': []}"},
		pyinterop.Op{Op: "erp5get", Site: "erp5_site", Prefix: "my_app", Key: "motd"},
		pyinterop.Op{Op: "canon", Expr: "'hello, ERP5'"})
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("the Tool read %s %s (%s); want %s %s", got.Type, got.Repr, got.Error, want.Type, want.Repr)
		}
	}
	for _, args := range [][]string{{"keys"}, {"clear", "--yes"}, {"dump"}} {
		r := runIn(t, nil, "", append([]string{"--config", cfg, "--plugin", "erp5", "--prefix", "my_app"}, args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, "not available on a format: erp5 plugin") {
			t.Errorf("%s on a format: erp5 plugin: %v", args[0], r)
		}
	}
	if r := mustRunIn(t, nil, exitOK, "", "--config", cfg, "plugins"); !strings.Contains(r.stdout, "format:        erp5") {
		t.Errorf("plugins does not show the format:\n%s", r.stdout)
	}
}

// TestPutTypedBigIntIsPythonInt: put --typed on a plugin of a Python
// format stores a JSON integer beyond 64 bits, as any other, as a Python
// int ("an integer as an int"), not the nearest float: 2**70 was read by
// Python as 1.1805916207174113e+21.
func TestPutTypedBigIntIsPythonInt(t *testing.T) {
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.Clients...)
	cfg := pyConfig(t, mc.Addr)
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "--typed", "big", `1180591620717411303424`)
	mustRunIn(t, nil, exitOK, "", "--config", cfg, "put", "--plugin", "py", "--prefix", "svc:", "--typed", "nested", `{"n":[-1180591620717411303424, 1.5, 1e3]}`)
	ops := []pyinterop.Op{
		{Op: "get", Lib: pyinterop.PythonMemcached, Key: "svc:big"}, {Op: "canon", Expr: "2**70"},
		{Op: "get", Lib: pyinterop.PythonMemcached, Key: "svc:nested"}, {Op: "canon", Expr: "{'n': [-2**70, 1.5, 1000.0]}"},
	}
	res := py.Batch(t, mc.Addr, ops...)
	for i := 0; i < len(res); i += 2 {
		if got, want := res[i], res[i+1]; got.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("%s read as %s %s (%s); want %s %s", ops[i].Key, got.Type, got.Repr, got.Error, want.Type, want.Repr)
		}
	}
}
