package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// result is what one in-process run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// mustRunIn is runIn that fails t unless the command exits with code.
func mustRunIn(t *testing.T, env map[string]string, code int, stdin string, args ...string) result {
	t.Helper()
	r := runIn(t, env, stdin, args...)
	if r.code != code {
		t.Fatalf("memdict %q: want exit %d, got\n%v", args, code, r)
	}
	return r
}

// runIn runs the command in-process with env (nil: none) and stdin.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := runEnv(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return "exit " + string(rune('0'+r.code)) + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"no command", nil, exitUsage, "", "Commands:"},
		{"unknown command", []string{"bogus"}, exitUsage, "", `unknown command "bogus"`},
		{"top help", []string{"--help"}, exitOK, "Exit status:", ""},
		{"help command", []string{"help", "dump"}, exitOK, "JSON Lines", ""},
		{"get help", []string{"get", "--help"}, exitOK, "Examples:", ""},
		{"get -h", []string{"get", "-h"}, exitOK, "Exit status: 0 success, 1 miss", ""},
		{"get no key", []string{"get"}, exitUsage, "", "want 1 argument(s)"},
		{"get two keys", []string{"get", "a", "b"}, exitUsage, "", "want 1 argument(s)"},
		{"unknown flag", []string{"get", "--nope", "k"}, exitUsage, "", "flag provided but not defined"},
		{"put no args", []string{"put"}, exitUsage, "", "want KEY [VALUE]"},
		{"put bad json", []string{"put", "--typed", "k", "{oops"}, exitUsage, "", "leave out --typed"},
		{"put typed string", []string{"put", "--typed", "--string", "k", "1"}, exitUsage, "", "--string"},
		{"put raw key typed", []string{"put", "--raw-key", "--codec", "json", "k", "1"}, exitUsage, "", "--raw-key"},
		{"put in memory", []string{"put", "k", "v"}, exitUsage, "", "in-memory backend"},
		{"load in memory", []string{"load"}, exitUsage, "", "in-memory backend"},
		{"clear in memory", []string{"clear", "--yes"}, exitUsage, "", "in-memory backend"},
		{"put mem", []string{"put", "--mem", "k", "v"}, exitOK, "", "built-in in-memory backend mem://"},
		{"dump resume without file", []string{"dump", "--resume"}, exitUsage, "", "-o FILE"},
		{"load negative skip", []string{"load", "--skip", "-1"}, exitUsage, "", "--skip"},
		{"negative retries", []string{"dump", "--retries", "-1"}, exitUsage, "", "--retries"},
		{"put bad codec", []string{"put", "--codec", "zip", "k", "1"}, exitUsage, "", `unknown codec "zip"`},
		{"put raw number", []string{"put", "--codec", "raw", "k", "1"}, exitUsage, "", "raw codec stores strings only"},
		{"put negative ttl", []string{"put", "--ttl", "-1s", "k", "1"}, exitUsage, "", "--ttl"},
		{"clear without yes", []string{"clear", "--prefix", "p"}, exitUsage, "", "--yes"},
		{"load two files", []string{"load", "a", "b"}, exitUsage, "", "at most one FILE"},
		{"serve short token", []string{"serve", "--token", "abc"}, exitUsage, "", "at least 8"},
		{"version", []string{"version"}, exitOK, "memdict ", ""},
		{"bad config", []string{"--config", "/nonexistent/memdict.yaml", "ping"}, exitError, "", "memdict ping:"},
		{"unknown plugin", []string{"get", "--plugin", "nope", "k"}, exitError, "", "unknown plugin"},
		{"bad url", []string{"ping", "--url", "nope://x"}, exitError, "", "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(t, nil, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.inStdout) || !strings.Contains(r.stderr, tt.inStderr) {
				t.Errorf("memdict %q: want exit %d, stdout with %q, stderr with %q; got\n%v", tt.args, tt.code, tt.inStdout, tt.inStderr, r)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"k"}, []string{"k"}, false},
		{[]string{"k", "--json"}, []string{"k"}, true},
		{[]string{"--json", "k", "v"}, []string{"k", "v"}, true},
		{[]string{"k", "--", "-5"}, []string{"k", "-5"}, false},
		{[]string{"--", "--json"}, []string{"--json"}, false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.pos) || *j != tt.json {
			t.Errorf("parseInterspersed(%q) = %q, json %v, %v; want %q, json %v", tt.args, pos, *j, err, tt.pos, tt.json)
		}
	}
}

// TestCommandsInProcess runs every data command in-process against a
// Redis server, so that they are checked without building the command.
func TestCommandsInProcess(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	mustRun := func(code int, stdin string, args ...string) result {
		t.Helper()
		return mustRunIn(t, env, code, stdin, args...)
	}
	mustRun(exitOK, "", "put", "--prefix", "shop", "--typed", "cart:42", `{"items":[1,2,3],"total":9.5}`)
	mustRun(exitOK, "", "put", "--prefix", "shop", "greeting", "--string", "héllo")
	mustRun(exitOK, `"from stdin"`, "put", "--prefix", "shop", "--codec", "json", "stdin")
	mustRun(exitOK, "", "put", "--prefix", "shop", "--typed", "neg", "--", "-5")
	mustRun(exitOK, "", "put", "--prefix", "shop", "bin", "--codec", "gob", "[1,2]")
	mustRun(exitOK, "", "put", "--prefix", "other", "--typed", "cart:42", "1")

	r := mustRun(exitOK, "", "get", "--prefix", "shop", "cart:42")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["total"] != 9.5 {
		t.Errorf("get cart:42 = %q (%v)", r.stdout, err)
	}
	r = mustRun(exitOK, "", "get", "--prefix", "shop", "greeting", "--json")
	if got, want := strings.TrimSpace(r.stdout), `{"key":"greeting","codec":"raw","value":"héllo"}`; got != want {
		t.Errorf("get --json greeting = %s, want %s", got, want)
	}
	r = mustRun(exitOK, "", "get", "--prefix", "shop", "greeting", "--raw")
	if r.stdout != "héllo" {
		t.Errorf("get --raw greeting = %q", r.stdout)
	}
	r = mustRun(exitOK, "", "get", "--prefix", "shop", "stdin", "--json")
	if !strings.Contains(r.stdout, `"codec":"json","value":"from stdin"`) {
		t.Errorf("get stdin = %s", r.stdout)
	}
	r = mustRun(exitOK, "", "get", "--prefix", "shop", "bin")
	if !strings.Contains(r.stderr, "base64") {
		t.Errorf("get of a gob value: no note on stderr: %v", r)
	}
	r = mustRun(exitMiss, "", "get", "--prefix", "shop", "absent")
	if r.stdout != "" || !strings.Contains(r.stderr, "absent: not found") {
		t.Errorf("get absent: %v", r)
	}

	r = mustRun(exitOK, "", "keys", "--prefix", "shop")
	keys := strings.Fields(r.stdout)
	sort.Strings(keys)
	if want := []string{"bin", "cart:42", "greeting", "neg", "stdin"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}

	dump := mustRun(exitOK, "", "dump", "--prefix", "shop").stdout
	if n := strings.Count(dump, "\n"); n != 5 {
		t.Errorf("dump has %d lines:\n%s", n, dump)
	}
	if !strings.Contains(dump, `{"key":"neg","codec":"msgpack","value":-5}`) {
		t.Errorf("dump lacks neg:\n%s", dump)
	}
	// Load into another prefix, dump it, compare.
	mustRun(exitOK, dump, "load", "--prefix", "copy")
	if got := mustRun(exitOK, "", "dump", "--prefix", "copy").stdout; !sameLines(got, dump) {
		t.Errorf("dump of the loaded copy differs:\n%s\nwant\n%s", got, dump)
	}
	exact := mustRun(exitOK, "", "dump", "--prefix", "shop", "--exact").stdout
	if strings.Contains(exact, `"value"`) {
		t.Errorf("dump --exact has JSON values:\n%s", exact)
	}
	f := filepath.Join(t.TempDir(), "exact.jsonl")
	if err := os.WriteFile(f, []byte(exact), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(exitOK, "", "load", "--prefix", "copy2", f)
	if got := mustRun(exitOK, "", "dump", "--prefix", "copy2", "--exact").stdout; !sameLines(got, exact) {
		t.Errorf("exact copy differs:\n%s\nwant\n%s", got, exact)
	}
	r = mustRun(exitError, "{\"key\":\"a\",\"codec\":\"msgpack\",\"value\":1}\nnot json\n", "load", "--prefix", "bad")
	if !strings.Contains(r.stderr, "line 2") {
		t.Errorf("load of a bad line: %v", r)
	}

	mustRun(exitOK, "", "del", "--prefix", "shop", "greeting")
	mustRun(exitMiss, "", "del", "--prefix", "shop", "greeting")
	mustRun(exitMiss, "", "get", "--prefix", "shop", "greeting")

	mustRun(exitOK, "", "clear", "--prefix", "shop", "--yes")
	if r := mustRun(exitOK, "", "keys", "--prefix", "shop"); r.stdout != "" {
		t.Errorf("keys after clear: %q", r.stdout)
	}
	if r := mustRun(exitOK, "", "get", "--prefix", "other", "cart:42"); strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("clear touched another prefix: %v", r)
	}
	r = mustRun(exitOK, "", "ping", "--json")
	var p pingResult
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || !p.OK {
		t.Errorf("ping --json = %q (%v)", r.stdout, err)
	}
	r = mustRun(exitOK, "", "plugins")
	if !strings.Contains(r.stdout, "redis://"+rd.Addr) {
		t.Errorf("plugins: %v", r)
	}
}

// sameLines reports whether a and b hold the same lines in any order.
func sameLines(a, b string) bool {
	la, lb := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	sort.Strings(la)
	sort.Strings(lb)
	return reflect.DeepEqual(la, lb)
}

func TestUnreachableAndSecrets(t *testing.T) {
	const pw = "s3cr3t-pw"
	url := "redis://user:" + pw + "@127.0.0.1:1/0"
	for _, args := range [][]string{
		{"ping", "--url", url},
		{"get", "--url", url, "k"},
		{"stats", "--url", url},
		{"plugins", "--url", url},
		{"put", "--url", url, "k", "1"},
	} {
		r := runIn(t, nil, "", args...)
		if args[0] != "plugins" && r.code != exitError {
			t.Errorf("memdict %q on a dead server: want exit 3, got\n%v", args, r)
		}
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("memdict %q shows the password:\n%v", args, r)
		}
	}
}

func TestConfigFile(t *testing.T) {
	rd, rc := newRedis(t)
	cfg := filepath.Join(t.TempDir(), "app.yaml")
	os.WriteFile(cfg, []byte("site_id: shop\nplugins:\n  persistent_memcached_plugin:\n    url: redis://"+rd.Addr+"/0\n    order: 1\n"), 0o600)
	r := runIn(t, map[string]string{"MEMDICT_CONFIG": cfg}, "", "plugins", "--json")
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	var names []string
	for sc.Scan() {
		var p struct {
			Name   string `json:"name"`
			SiteID string `json:"site_id"`
		}
		json.Unmarshal(sc.Bytes(), &p)
		names = append(names, p.Name+"/"+p.SiteID)
	}
	if want := []string{"default/shop", "persistent_memcached_plugin/shop"}; r.code != 0 || !reflect.DeepEqual(names, want) {
		t.Errorf("plugins from $MEMDICT_CONFIG = %q, want %q\n%v", names, want, r)
	}
	if r := runIn(t, nil, "", "--config", cfg, "put", "--plugin", "portal_memcached/persistent_memcached_plugin", "--typed", "k", `"v"`); r.code != 0 {
		t.Fatal(r)
	}
	if r := runIn(t, nil, "", "get", "--config", cfg, "--plugin", "persistent_memcached_plugin", "k"); r.code != 0 || strings.TrimSpace(r.stdout) != `"v"` {
		t.Errorf("get through --config: %v", r)
	}
	keys, err := rc.Keys(t.Context(), "*").Result()
	slices.Sort(keys)
	if err != nil || len(keys) == 0 || !strings.HasPrefix(keys[len(keys)-1], "shop:") {
		t.Errorf("the site id is not in the stored keys: %q", keys)
	}
}

func TestSummarize(t *testing.T) {
	mc := summarize(backend.NodeStats{Addr: "a:1", Stats: map[string]string{
		"curr_items": "7", "bytes": "2048", "limit_maxbytes": "67108864", "get_hits": "3", "get_misses": "1", "evictions": "2", "uptime": "3700",
	}})
	if mc.Items != 7 || mc.MemoryText() != "2.0 KiB / 64.0 MiB" || mc.HitRatioText() != "75.0% (3/4)" || mc.EvictionsText() != "2" || mc.UptimeText() != "1h1m40s" {
		t.Errorf("memcached summary: %+v %s %s", mc, mc.MemoryText(), mc.UptimeText())
	}
	rd := summarize(backend.NodeStats{Addr: "b:2", Stats: map[string]string{
		"redis_version": "7.0", "db0": "keys=5,expires=0,avg_ttl=0", "db3": "keys=2,expires=1,avg_ttl=9", "used_memory": "1000",
		"maxmemory": "0", "keyspace_hits": "0", "keyspace_misses": "0", "evicted_keys": "0", "uptime_in_seconds": "5",
	}})
	if rd.Items != 7 || rd.MemoryText() != "1000 B" || rd.HitRatioText() != "-" || rd.UptimeText() != "5s" {
		t.Errorf("redis summary: %+v", rd)
	}
	unknown := summarize(backend.NodeStats{Addr: "c", Stats: map[string]string{}})
	if unknown.ItemsText() != "-" || unknown.MemoryText() != "-" {
		t.Errorf("empty summary: %+v", unknown)
	}
}

// A bad URL in $MEMDICT_URL is an error that names the variable, the
// plugin and the parameter, as tool.FromEnv's does.
func TestBadEnvURL(t *testing.T) {
	r := runIn(t, map[string]string{"MEMDICT_URL": "redis://127.0.0.1:1/0?nope=1"}, "", "get", "k")
	if r.code != exitError || !strings.Contains(r.stderr, "$MEMDICT_URL") ||
		!strings.Contains(r.stderr, `plugin "default"`) || !strings.Contains(r.stderr, "nope") {
		t.Errorf("get with a bad $MEMDICT_URL:\n%v", r)
	}
}

// plugins prints its settings in one column.
func TestPluginsAligned(t *testing.T) {
	r := runIn(t, map[string]string{"MEMDICT_URL": "mem://", "MEMDICT_SITE_ID": "shop"}, "", "plugins")
	col := -1
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("plugins: line %q has no colon:\n%s", line, r.stdout)
		}
		c := len(line) - len(strings.TrimLeft(rest, " "))
		if col >= 0 && c != col {
			t.Errorf("plugins: values do not line up:\n%s", r.stdout)
			break
		}
		col = c
	}
}

// The null device is a character device but no terminal: put reading
// from it prints no prompt, and progress lines are not redrawn.
func TestNullIsNoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("isTerminal(%s) = true", os.DevNull)
	}
}

// plugins shows each plugin's near cache, in text and in JSON.
func TestPluginsNearCache(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "app.yaml")
	os.WriteFile(cfg, []byte("plugins:\n  near:\n    url: mem://\n    near_cache:\n      max_entries: 500\n      max_stale: 2s\n"), 0o600)
	r := runIn(t, map[string]string{"MEMDICT_CONFIG": cfg}, "", "plugins")
	if r.code != 0 || !strings.Contains(r.stdout, "near cache:    500 entries, at most 2s stale\n") || !strings.Contains(r.stdout, "near cache:    none\n") {
		t.Errorf("plugins:\n%v", r)
	}
	r = runIn(t, map[string]string{"MEMDICT_CONFIG": cfg}, "", "plugins", "--json")
	var got []string
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var p struct {
			Name      string `json:"name"`
			NearCache *struct {
				MaxEntries int     `json:"max_entries"`
				MaxStale   float64 `json:"max_stale_seconds"`
			} `json:"near_cache"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.NearCache != nil {
			got = append(got, fmt.Sprintf("%s %d %v", p.Name, p.NearCache.MaxEntries, p.NearCache.MaxStale))
		} else {
			got = append(got, p.Name+" none")
		}
	}
	if want := []string{"default none", "near 500 2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plugins --json near caches %q, want %q\n%v", got, want, r)
	}
}

// A JSON number out of range and a TTL too large are refused, on the
// command line as in the library (tool.ParseJSON, tool.ParseTTL): put
// --typed 1e999 stored +Inf, and --ttl 9223372036.854775807 was called
// negative.
func TestPutRefusesOutOfRange(t *testing.T) {
	mc := testserver.Memcached(t)
	env := map[string]string{"MEMDICT_URL": "memcached://" + mc.Addr}
	if r := runIn(t, env, "", "put", "--prefix", "p", "--typed", "k", "1e999"); r.code != exitUsage || !strings.Contains(r.stderr, "out of range") {
		t.Errorf("put --typed k 1e999: %+v; want a usage error naming the number", r)
	}
	if r := runIn(t, env, "", "put", "--prefix", "p", "--ttl", "9223372036.854775807", "k", "v"); r.code != exitUsage || !strings.Contains(r.stderr, "too large") {
		t.Errorf("put --ttl 9223372036.854775807: %+v; want a usage error saying the TTL is too large", r)
	}
}
