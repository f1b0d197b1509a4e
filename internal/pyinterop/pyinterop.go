// Package pyinterop lets tests check memdict against Python: it finds a
// python3 with the memcached clients Python services and ERP5 use
// (python-memcached, pymemcache; Debian's python3-memcache and
// python3-pymemcache, which .ci/setup installs), runs batches of
// operations through them against a memcached started by
// internal/testserver, and reads and writes that memcached's raw items,
// client flags included, with meta commands.
//
//	mc := testserver.Memcached(t)
//	py := pyinterop.Find(t, pyinterop.Clients...)
//	py.Batch(t, mc.Addr, pyinterop.Op{Op: "set", Lib: "memcache", Key: "k", Expr: "{'a': 1}"})
//	value, flags, ok := pyinterop.Dial(t, mc.Addr).Get(t, "k")
//
// When no python3 has the modules a test asks for, Find skips the test,
// or fails it under MEMDICT_REQUIRE_SERVERS=1 (testserver.SkipOrFail).
package pyinterop

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/testserver"
)

// EnvPython names a python3 to use before the ones Find looks for.
const EnvPython = "MEMDICT_PYTHON"

// Python client libraries, by module name, as Op.Lib names them.
const (
	// PythonMemcached is python-memcached (Debian: python3-memcache), the
	// client of ERP5's Memcached Tool.
	PythonMemcached = "memcache"
	// Pymemcache is pymemcache (Debian: python3-pymemcache), used with its
	// python-memcached-compatible serializer (pymemcache.serde.pickle_serde).
	Pymemcache = "pymemcache"
)

// Clients are the modules of both client libraries.
var Clients = []string{PythonMemcached, Pymemcache}

//go:embed clients.py
var clientsPy string

// Python is a python3 interpreter.
type Python struct {
	// Path is the interpreter's path.
	Path string
}

var (
	findMu sync.Mutex
	found  = map[string]string{} // modules -> path ("" if none)
)

// Find returns a python3 that imports every module in modules, looked for
// as $MEMDICT_PYTHON, then /usr/bin/python3 (where Debian's packages
// install modules; a python3 earlier on PATH, such as pyenv's, may not see
// them), then python3 on PATH. Without one, the test is skipped, or fails
// under MEMDICT_REQUIRE_SERVERS=1.
func Find(t testing.TB, modules ...string) *Python {
	t.Helper()
	want := strings.Join(modules, ",")
	findMu.Lock()
	defer findMu.Unlock()
	path, ok := found[want]
	if !ok {
		path = lookup(modules)
		found[want] = path
	}
	if path == "" {
		testserver.SkipOrFail(t, "pyinterop: no python3 imports %v (on Debian: apt-get install python3 python3-memcache python3-pymemcache, or run bash .ci/setup as root; or set %s)", modules, EnvPython)
	}
	return &Python{Path: path}
}

func lookup(modules []string) string {
	var candidates []string
	if p := os.Getenv(EnvPython); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	check := "import sys"
	for _, m := range modules {
		check += "; import " + m
	}
	for _, p := range candidates {
		if err := exec.Command(p, "-c", check).Run(); err == nil {
			return p
		}
	}
	return ""
}

// Run runs the Python program src with args and stdin, and returns what
// it prints. A failure (or a run longer than a minute) fails the test,
// with what the program printed to stderr.
func (p *Python) Run(t testing.TB, src string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(p.Path, append([]string{"-c", src}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("pyinterop: %s: %v", p.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pyinterop: %s: %v; stderr:\n%s", p.Path, err, stderr.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("pyinterop: %s ran for more than a minute; stderr:\n%s", p.Path, stderr.String())
	}
	return stdout.Bytes()
}

// Op is one operation of a Batch: see clients.py for the list.
type Op struct {
	// Op is the operation: "set", "get", "erp5set", "erp5get",
	// "erp5key", "canon", "loads", "dumps" or "int".
	Op string `json:"op"`
	// Lib is the client library of set and get: PythonMemcached or
	// Pymemcache.
	Lib string `json:"lib,omitempty"`
	// Key is the memcached key of set and get; the Dict key of the erp5
	// operations.
	Key string `json:"key,omitempty"`
	// Site and Prefix are the ERP5 site id and key_prefix of the erp5
	// operations.
	Site   string `json:"site,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// Expr is a Python expression for the value of set, erp5set, canon
	// and dumps (OrderedDict and datetime are in scope).
	Expr string `json:"expr,omitempty"`
	// Hex is the input of loads and int, in hexadecimal.
	Hex string `json:"hex,omitempty"`
	// Protocol is the pickle protocol of set and dumps; nil for the
	// library's default (python-memcached's as ERP5 sets it: -1).
	Protocol *int `json:"protocol,omitempty"`
	// MinCompressLen makes python-memcached's set compress.
	MinCompressLen int `json:"min_compress_len,omitempty"`
}

// Result is the result of one Op.
type Result struct {
	// Repr is the value read, in a canonical repr: Python's repr, with
	// dict items and set members sorted.
	Repr string `json:"repr"`
	// Type is the name of the value's Python type.
	Type string `json:"type"`
	// Key is the memcached key of the erp5 operations.
	Key string `json:"key"`
	// Hex is the output of dumps.
	Hex string `json:"hex"`
	// Error is the Python exception the operation raised, if any.
	Error string `json:"error"`
}

// Protocol returns a pointer to p, for Op.Protocol.
func Protocol(p int) *int { return &p }

// Batch runs ops, in order, in one Python process, against the memcached
// at addr ("" when no op needs one), and returns their results.
func (p *Python) Batch(t testing.TB, addr string, ops ...Op) []Result {
	t.Helper()
	in, err := json.Marshal(ops)
	if err != nil {
		t.Fatalf("pyinterop: %v", err)
	}
	out := p.Run(t, clientsPy, in, addr)
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(ops) {
		t.Fatalf("pyinterop: %d results for %d operations (%v) in %q", len(res), len(ops), err, out)
	}
	return res
}

// String describes an Op for test messages.
func (o Op) String() string {
	b, _ := json.Marshal(o)
	return string(b)
}
