package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// hasControl reports whether s holds a byte a terminal acts on: C0
// controls but newline, DEL, and C1 controls (as bytes or as UTF-8).
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return strings.IndexByte(s, 0x9b) >= 0 || strings.IndexByte(s, 0x9d) >= 0 // CSI, OSC as bytes
}

// A get that misses without --prefix hints at prefixes found in the
// server's key space, which other programs write: a prefix holding
// terminal escapes (a window title, a cursor move) must not reach the
// terminal as they are, and the hint stays a command that a shell runs
// as it reads.
func TestGetHintQuotesHostilePrefix(t *testing.T) {
	_, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	hostile := "\x1b]0;owned\x07\x1b[2J"
	mustRunIn(t, env, exitOK, "", "put", "--prefix", hostile, "greeting", "hello")
	r := mustRunIn(t, env, exitMiss, "", "get", "greeting")
	if hasControl(r.stderr) {
		t.Errorf("get greeting printed the prefix's control bytes to the terminal:\n%q", r.stderr)
	}
	want := `memdict get --prefix $'\x1b]0;owned\x07\x1b[2J' greeting`
	if !strings.Contains(r.stderr, want) {
		t.Errorf("get greeting: want a hint with %s, got\n%q", want, r.stderr)
	}
}

// shellQuote quotes a word with characters that do not print in bash's
// $'...', whose escapes give back its very bytes.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"shop":       "shop",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"":           "''",
		"é":          "'é'",
		"a\nb":       `$'a\nb'`,
		"\x1b[1m'\\": `$'\x1b[1m\'\\'`,
		"\xff\xfe":   `$'\xff\xfe'`,
		"a\u009bb":   `$'a\xc2\x9bb'`,
		"a\u202eb":   `$'a\xe2\x80\xaeb'`,
		"tab\there":  `$'tab\there'`,
		"del\x7f":    `$'del\x7f'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
		if _, err := exec.LookPath("bash"); err != nil {
			continue
		}
		out, err := exec.Command("bash", "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("bash reads shellQuote(%q) = %s back as %q (%v)", in, shellQuote(in), out, err)
		}
	}
}

// A server's statistics are the server's words: stats prints a name or a
// value that holds terminal escapes (a broken or hostile server, a proxy)
// quoted, never as they are.
func TestStatsQuotesHostileServer(t *testing.T) {
	mc := testserver.Memcached(t)
	p := hostile.Start(t, mc.Addr, hostile.MemcachedFramer)
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if bytes.HasPrefix(reply, []byte("STAT ")) {
			reply = bytes.Replace(reply, []byte("STAT version "), []byte("STAT version \x1b]0;owned\x07"), 1)
			reply = bytes.Replace(reply, []byte("END\r\n"), []byte("STAT x\x1b[2J 1\r\nEND\r\n"), 1)
		}
		return c.Write(reply)
	}))
	env := map[string]string{"MEMDICT_URL": "memcached://" + p.Addr()}
	for _, args := range [][]string{{"stats"}, {"stats", "--all"}} {
		r := mustRunIn(t, env, exitOK, "", args...)
		if hasControl(r.stdout) || hasControl(r.stderr) {
			t.Errorf("memdict %q printed the server's control bytes as they are:\n%q", args, r)
		}
		if args[len(args)-1] == "--all" && !strings.Contains(r.stdout, `\x1b]0;owned\a1.`) {
			t.Errorf("memdict %q: the version is not shown quoted:\n%s", args, r.stdout)
		}
	}
}

// An error a server sends is the server's words too: a command that
// fails on it prints the message without its control bytes.
func TestErrorQuotesHostileServer(t *testing.T) {
	rd := testserver.Redis(t)
	p := hostile.Start(t, rd.Addr, hostile.RESPFramer)
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if bytes.HasPrefix(reply, []byte("_")) || bytes.HasPrefix(reply, []byte("$-1")) { // a miss
			reply = []byte("-ERR boom\x1b]0;owned\x07\x1b[2J\r\n")
		}
		return c.Write(reply)
	}))
	env := map[string]string{"MEMDICT_URL": "redis://" + p.Addr() + "/0"}
	for _, args := range [][]string{{"get", "k"}, {"get", "--raw-key", "k"}, {"ping"}} {
		r := runIn(t, env, "", args...)
		if hasControl(r.stdout) || hasControl(r.stderr) {
			t.Errorf("memdict %q printed the server's control bytes as they are:\n%q", args, r)
		}
	}
}

// dump's note of a failed batch that it tries again quotes the error as
// the final error does.
func TestRetryNoteQuotesServerError(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	d, err := memdict.New[string](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", "v"); err != nil {
		t.Fatal(err)
	}
	f.FailKeys(failing(d.BackendKey("k"), 1), fmt.Errorf("%w: boom\x1b]0;owned\x07", backend.ErrUnavailable))
	r := mustRunIn(t, env, exitOK, "", "dump", "--prefix", "p", "--retry-wait", "1ms")
	if !strings.Contains(r.stderr, "trying again") || hasControl(r.stderr) {
		t.Errorf("dump's retry note:\n%q", r.stderr)
	}
}

// A value's text is printed as JSON, whose encoder escapes the C0
// controls but leaves the C1 controls (U+0080 to U+009F) as they are,
// which a terminal takes for controls too (U+009B is CSI, U+009D OSC):
// get, get --json, keys and dump escape them, and load reads the same
// value back.
func TestJSONEscapesC1Controls(t *testing.T) {
	_, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	val := "a\u009b2J\u009d0;owned\u009cb"
	key := "k\u009b"
	mustRunIn(t, env, exitOK, "", "put", "--prefix", "p", key, val)
	var dump string
	for _, args := range [][]string{
		{"get", "--prefix", "p", key},
		{"get", "--prefix", "p", "--json", key},
		{"keys", "--prefix", "p", "--json"},
		{"keys", "--json"},
		{"dump", "--prefix", "p"},
	} {
		r := mustRunIn(t, env, exitOK, "", args...)
		if hasControl(r.stdout) || hasControl(r.stderr) {
			t.Errorf("memdict %q printed C1 controls as they are:\n%q", args, r)
		}
		if args[0] == "dump" {
			dump = r.stdout
		}
	}
	if !strings.Contains(dump, `a\u009b2J\u009d0;owned\u009cb`) {
		t.Errorf("dump: %q", dump)
	}
	mustRunIn(t, env, exitOK, dump, "load", "--prefix", "q")
	if r := mustRunIn(t, env, exitOK, "", "get", "--prefix", "q", "--raw", key); r.stdout != val {
		t.Errorf("after dump and load: %q, want %q", r.stdout, val)
	}
}

// dump writes every key so that load stores it under the very same bytes:
// a key that is not UTF-8 (another program's bytes; a Dict's key may be
// any bytes) must not come back as another key.
func TestDumpLoadKeepsKeyBytes(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	d, err := memdict.New[string](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k\xff", "k\xfe", "\xc3(", "plain"}
	for _, k := range keys {
		if err := d.Put(k, "v:"+k); err != nil {
			t.Fatal(err)
		}
	}
	r := mustRunIn(t, env, exitOK, "", "dump", "--prefix", "p")
	mustRunIn(t, env, exitOK, r.stdout, "load", "--prefix", "q")
	// --resume finds every key in the file: it adds none twice.
	file := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(file, []byte(r.stdout), 0o666); err != nil {
		t.Fatal(err)
	}
	mustRunIn(t, env, exitOK, "", "dump", "--prefix", "p", "-o", file, "--resume")
	if b, _ := os.ReadFile(file); string(b) != r.stdout {
		t.Errorf("dump --resume on a whole dump:\n%s\nwant\n%s", b, r.stdout)
	}
	q, err := memdict.New[string](f, "q")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, err := range q.Keys(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if v, ok, err := q.Lookup(t.Context(), k); !ok || err != nil || v != "v:"+k {
			t.Errorf("after dump and load, key %q holds %q (%v, %v)", k, v, ok, err)
		}
	}
	for _, k := range keys {
		if _, ok, err := q.Lookup(t.Context(), k); !ok || err != nil {
			t.Errorf("after dump and load, key %q is missing (%v)", k, err)
		}
	}
	if n != len(keys) {
		t.Errorf("after dump and load, %d keys, want %d\ndump:\n%s", n, len(keys), r.stdout)
	}
}

// failingWriter takes n bytes, then fails every write, as a file on a
// full disk does.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("write /out: no space left on device")
	}
	w.n -= len(p)
	return len(p), nil
}

// A command whose output cannot be written (a full disk, a closed pipe)
// fails, with status 3 and the write's error, instead of exiting 0 on a
// cut listing.
func TestOutputWriteErrorIsError(t *testing.T) {
	_, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	for i := range 50 {
		mustRunIn(t, env, exitOK, "", "put", "--prefix", "p", fmt.Sprintf("key-%02d", i), "v")
	}
	for _, args := range [][]string{
		{"keys", "--prefix", "p"},
		{"keys", "--prefix", "p", "--json"},
		{"keys"},
		{"keys", "--raw-key"},
		{"plugins"},
		{"stats"},
		{"ping"},
	} {
		var errb bytes.Buffer
		code := runEnv(context.Background(), args, strings.NewReader(""), &failingWriter{n: 20}, &errb, func(k string) string { return env[k] })
		if code != exitError || !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("memdict %q with a failing output: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// keys --json prints a key that is not UTF-8 so that its bytes can be told
// apart and read back: encoding/json wrote each bad byte as U+FFFD, so
// that "k\xff" and "k\xfe" printed the same line. Such a key prints as
// dump writes it, with "key_base64".
func TestKeysJSONKeepsKeyBytes(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	d, err := memdict.New[string](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k\xff", "k\xfe", "plain"}
	for _, k := range keys {
		if err := d.Put(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	type line struct {
		Prefix       string `json:"prefix"`
		PrefixBase64 string `json:"prefix_base64"`
		Key          string `json:"key"`
		KeyBase64    string `json:"key_base64"`
	}
	decode := func(s string) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("bad base64 %q: %v", s, err)
		}
		return string(b)
	}
	for _, args := range [][]string{{"keys", "--prefix", "p", "--json"}, {"keys", "--json"}, {"keys", "--raw-key", "--json"}} {
		r := mustRunIn(t, env, exitOK, "", args...)
		got := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var k string
			if strings.HasPrefix(l, `"`) {
				if err := json.Unmarshal([]byte(l), &k); err != nil {
					t.Fatalf("memdict %q: line %s: %v", args, l, err)
				}
			} else {
				var x line
				if err := json.Unmarshal([]byte(l), &x); err != nil {
					t.Fatalf("memdict %q: line %s: %v", args, l, err)
				}
				k = x.Key
				if x.KeyBase64 != "" {
					k = decode(x.KeyBase64)
				}
			}
			got[k] = true
		}
		for _, k := range keys {
			found := got[k]
			if args[1] == "--raw-key" {
				found = got[d.BackendKey(k)]
			}
			if !found {
				t.Errorf("memdict %q does not list the key %q as such:\n%s", args, k, r.stdout)
			}
		}
	}
}

// hasBidi reports whether s holds a bidirectional control (U+061C,
// U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), which reorders the
// text around it on a terminal.
func hasBidi(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }) >= 0
}

// The bidirectional controls in a key or value (other programs' text)
// reorder what a terminal shows around them: a key "report\u202etxt.exe"
// shows as "reportexe.txt". The JSON that get, get --json, keys --json and
// dump print left them as they are; they are escaped as the C1 controls
// are (TestJSONEscapesC1Controls), plain output quotes them, and load
// reads the same value back.
func TestJSONEscapesBidiControls(t *testing.T) {
	_, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	val := "a\u202egnp.exe\u2066x\u2069\u200e\u200f\u061cb\u202a\u202b\u202c\u202d\u2067\u2068"
	key := "report\u202etxt.exe"
	mustRunIn(t, env, exitOK, "", "put", "--prefix", "p", key, val)
	var dump string
	for _, args := range [][]string{
		{"get", "--prefix", "p", key},
		{"get", "--prefix", "p", "--json", key},
		{"keys", "--prefix", "p"},
		{"keys", "--prefix", "p", "--json"},
		{"keys"},
		{"keys", "--json"},
		{"keys", "--raw-key", "--json"},
		{"dump", "--prefix", "p"},
	} {
		r := mustRunIn(t, env, exitOK, "", args...)
		if hasBidi(r.stdout) || hasBidi(r.stderr) {
			t.Errorf("memdict %q printed bidirectional controls as they are:\n%q", args, r)
		}
		if args[0] == "dump" {
			dump = r.stdout
		}
	}
	if !strings.Contains(dump, `a\u202egnp.exe\u2066x\u2069\u200e\u200f\u061cb`) {
		t.Errorf("dump: %q", dump)
	}
	mustRunIn(t, env, exitOK, dump, "load", "--prefix", "q")
	if r := mustRunIn(t, env, exitOK, "", "get", "--prefix", "q", "--raw", key); r.stdout != val {
		t.Errorf("after dump and load: %q, want %q", r.stdout, val)
	}
}

// A Redis Cluster's nodes are the addresses its servers give (CLUSTER
// SLOTS): stats printed each as "server ADDR" as it was, so that a
// hostile or broken server, or a proxy, sent terminal escapes (a window
// title, a cleared screen) to the operator's terminal. The address is
// quoted as the statistics and errors are.
func TestStatsQuotesHostileClusterAddress(t *testing.T) {
	rd := testserver.Redis(t)
	p := hostile.Start(t, rd.Addr, hostile.RESPFramer)
	const evil = "\x1b]0;owned\x07\x1b[2J"
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		if bytes.Contains(reply, []byte("cluster support disabled")) { // CLUSTER SLOTS: one node, evil:6379
			reply = fmt.Appendf(nil, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$%d\r\n%s\r\n:6379\r\n", len(evil), evil)
		}
		return c.Write(reply)
	}))
	env := map[string]string{"MEMDICT_URL": "redis://" + p.Addr() + "?cluster=true"}
	for _, args := range [][]string{{"stats"}, {"stats", "--all"}, {"stats", "--json"}} {
		r := runIn(t, env, "", args...)
		if hasControl(r.stdout) || hasControl(r.stderr) {
			t.Errorf("memdict %q printed the cluster's node address as it is:\n%q", args, r)
		}
		if args[len(args)-1] != "--json" && !strings.Contains(r.stdout, `server \x1b]0;owned\a\x1b[2J:6379`) {
			t.Errorf("memdict %q: the node's address is not shown quoted:\n%q", args, r.stdout)
		}
	}
}
