package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/testserver"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
	buildDir  string
)

// TestMain removes the binary built by memdictBinary.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// memdictBinary builds the command once per test run, as a user's
// "go install" would, and returns its path.
func memdictBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command to build memdict: %v", err)
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "memdict-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "memdict")
		cmd := exec.Command(goTool, "build", "-o", buildPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// cli runs the built command with an environment of its own.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

func newCLI(t *testing.T, env ...string) *cli {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEMDICT_") {
			base = append(base, kv)
		}
	}
	return &cli{t: t, bin: memdictBinary(t), env: append(base, env...)}
}

// run runs memdict with args and stdin and returns its exit code and
// output.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("memdict %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

// must runs memdict and fails the test unless it exits with code.
func (c *cli) must(code int, stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != code {
		c.t.Fatalf("memdict %s: want exit %d, got\n%v", strings.Join(args, " "), code, r)
	}
	return r
}

// TestBinaryAgainstServers runs the built command against a real memcached
// and a real redis-server, as an operator would: store, read, list, look
// at the servers, and move a namespace from memcached to Redis.
func TestBinaryAgainstServers(t *testing.T) {
	mc := testserver.Memcached(t)
	rd := testserver.Redis(t)
	memcachedURL, redisURL := "memcached://"+mc.Addr, "redis://"+rd.Addr+"/0"
	c := newCLI(t, "MEMDICT_URL="+memcachedURL)

	longKey := strings.Repeat("k", 300) // stored under a hash in memcached
	c.must(exitOK, "", "put", "--prefix", "shop", "--typed", "cart:42", `{"items":[1,2,3],"total":9.5}`)
	c.must(exitOK, "", "put", "--prefix", "shop", "greeting", "--string", "hello, world")
	c.must(exitOK, "", "put", "--prefix", "shop", "--ttl", "1h", "--typed", "count", "42")
	c.must(exitOK, "", "put", "--prefix", "shop", "--codec", "json", longKey, `["long"]`)
	c.must(exitOK, "", "put", "--prefix", "shop", "--codec", "gob", "gob", `"x"`)
	c.must(exitOK, "", "put", "--prefix", "elsewhere", "--typed", "cart:42", "0")

	if r := c.must(exitOK, "", "get", "--prefix", "shop", "cart:42"); r.stdout != "{\n  \"items\": [\n    1,\n    2,\n    3\n  ],\n  \"total\": 9.5\n}\n" {
		t.Errorf("get cart:42:\n%s", r.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "shop", "greeting", "--raw"); r.stdout != "hello, world" {
		t.Errorf("get --raw greeting: %q", r.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "shop", "count", "--json"); strings.TrimSpace(r.stdout) != `{"key":"count","codec":"msgpack","value":42}` {
		t.Errorf("get --json count: %s", r.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "shop", longKey); strings.TrimSpace(r.stdout) != "[\n  \"long\"\n]" {
		t.Errorf("get of a long key: %q", r.stdout)
	}
	if r := c.must(exitMiss, "", "get", "--prefix", "shop", "absent"); r.stdout != "" || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get absent: %v", r)
	}

	// memcached lists keys with a crawl of its LRUs ("lru_crawler metadump
	// all"), which misses items that its LRU maintainer moves during the
	// crawl, as it does with items written a moment ago: wait until they
	// settle.
	settled := func(args ...string) result {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second) // generous for a loaded machine
		for attempt := 1; ; attempt++ {
			r := c.must(exitOK, "", args...)
			if strings.Count(r.stdout, "\n") == 5 || time.Now().After(deadline) {
				if attempt > 1 {
					t.Logf("memdict %s listed every key at attempt %d", strings.Join(args, " "), attempt)
				}
				return r
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r := settled("keys", "--prefix", "shop")
	keys := strings.Fields(r.stdout)
	sort.Strings(keys)
	if want := []string{"cart:42", "count", "gob", "greeting", longKey}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}

	// Six values, and the generation keys of shop and elsewhere.
	r = c.must(exitOK, "", "stats")
	if !strings.Contains(r.stdout, "server "+mc.Addr) || !strings.Contains(r.stdout, "items:     8") || !strings.Contains(r.stdout, "/ 64.0 MiB") {
		t.Errorf("stats:\n%s", r.stdout)
	}
	r = c.must(exitOK, "", "stats", "--json")
	var sums []summary
	if err := json.Unmarshal([]byte(r.stdout), &sums); err != nil || len(sums) != 1 || sums[0].Items != 8 || sums[0].Hits <= 0 {
		t.Errorf("stats --json: %s (%v)", r.stdout, err)
	}
	if r := c.must(exitOK, "", "stats", "--all"); !strings.Contains(r.stdout, "curr_connections") {
		t.Errorf("stats --all lacks memcached's own names:\n%s", r.stdout)
	}
	// A memcached cluster: statistics per node.
	mc2 := testserver.Memcached(t)
	r = c.must(exitOK, "", "stats", "--url", "memcached://"+mc.Addr+","+mc2.Addr)
	if !strings.Contains(r.stdout, "server "+mc.Addr) || !strings.Contains(r.stdout, "server "+mc2.Addr) {
		t.Errorf("stats of a two-node cluster:\n%s", r.stdout)
	}
	if r := c.must(exitOK, "", "ping"); !strings.Contains(r.stdout, "default ("+memcachedURL+"): ok") {
		t.Errorf("ping: %s", r.stdout)
	}
	if r := c.must(exitError, "", "ping", "--url", "memcached://127.0.0.1:1"); !strings.Contains(r.stdout, "FAILED") {
		t.Errorf("ping of a dead server: %v", r)
	}
	// The error leads with the operation and the key, and names the server.
	if r := c.must(exitError, "", "get", "--url", "memcached://127.0.0.1:1", "k"); !strings.HasPrefix(r.stderr, `memdict get: memdict: get "k": server 127.0.0.1:1 unavailable: `) ||
		strings.Contains(r.stderr, "generation") || strings.Contains(r.stderr, "#!gen") {
		t.Errorf("get from a dead server: %q", r.stderr)
	}

	// Move the namespace from memcached to Redis.
	dump := settled("dump", "--prefix", "shop")
	if !regexp.MustCompile(`^memdict dump: 5 records written to standard output in \S+\n$`).MatchString(dump.stderr) {
		t.Errorf("dump on a stderr that is not a terminal: %q, want one summary line", dump.stderr)
	}
	if n := strings.Count(dump.stdout, "\n"); n != 5 {
		t.Errorf("dump has %d lines:\n%s", n, dump.stdout)
	}
	file := filepath.Join(t.TempDir(), "shop.jsonl")
	if err := os.WriteFile(file, []byte(dump.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.must(exitOK, "", "load", "--prefix", "shop", "--url", redisURL, file); !regexp.MustCompile(`^memdict load: 5 records stored in \S+\n$`).MatchString(r.stderr) {
		t.Errorf("load on a stderr that is not a terminal: %q, want one summary line", r.stderr)
	}
	fromRedis := c.must(exitOK, "", "dump", "--prefix", "shop", "--url", redisURL)
	if !sameLines(fromRedis.stdout, dump.stdout) {
		t.Errorf("Redis holds\n%s\nmemcached held\n%s", fromRedis.stdout, dump.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "shop", "--url", redisURL, "greeting", "--raw"); r.stdout != "hello, world" {
		t.Errorf("greeting in Redis: %q", r.stdout)
	}
	if r := c.must(exitOK, "", "stats", "--url", redisURL); !strings.Contains(r.stdout, "server "+rd.Addr) || !strings.Contains(r.stdout, "items:     ") {
		t.Errorf("redis stats:\n%s", r.stdout)
	}
	// The exact form, through a pipe, into another Redis prefix.
	exact := settled("dump", "--prefix", "shop", "--exact").stdout
	c.must(exitOK, exact, "load", "--prefix", "shop2", "--url", redisURL)
	if got := c.must(exitOK, "", "dump", "--prefix", "shop2", "--url", redisURL, "--exact").stdout; !sameLines(got, exact) {
		t.Errorf("exact copy differs:\n%s\nwant\n%s", got, exact)
	}

	c.must(exitOK, "", "del", "--prefix", "shop", "greeting")
	c.must(exitMiss, "", "del", "--prefix", "shop", "greeting")
	c.must(exitMiss, "", "get", "--prefix", "shop", "greeting")
	c.must(exitUsage, "", "clear", "--prefix", "shop")
	c.must(exitOK, "", "clear", "--prefix", "shop", "--yes")
	if r := c.must(exitOK, "", "keys", "--prefix", "shop"); r.stdout != "" {
		t.Errorf("keys after clear: %q", r.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "elsewhere", "cart:42"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("clear reached another prefix: %v", r)
	}
	if r := c.must(exitOK, "", "version"); !strings.HasPrefix(r.stdout, "memdict ") {
		t.Errorf("version: %q", r.stdout)
	}
}

// lookTool returns the path of a server's client program, skipping the
// test (failing it under MEMDICT_REQUIRE_SERVERS=1) if it is missing.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testserver.SkipOrFail(t, "%s not installed: %v", name, err)
	}
	return p
}

// TestBinaryHabits checks, through the built command and real servers,
// that it works with the servers' own tools: text values by default, other
// programs' keys with --raw-key (memccat, redis-cli), JSON as it is
// written, and every prefix's keys.
func TestBinaryHabits(t *testing.T) {
	memccat, rediscli := lookTool(t, "memccat"), lookTool(t, "redis-cli")
	mc := testserver.Memcached(t)
	rd := testserver.Redis(t)
	redisURL := "redis://" + rd.Addr + "/0"
	c := newCLI(t, "MEMDICT_URL=memcached://"+mc.Addr)

	c.must(exitOK, "", "put", "--raw-key", "motd", "hello <memccat>")
	out, err := exec.Command(memccat, "--servers="+mc.Addr, "motd").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello <memccat>" {
		t.Errorf("memccat of a put --raw-key: %q (%v)", out, err)
	}
	if r := c.must(exitOK, "", "get", "--raw-key", "motd"); strings.TrimSpace(r.stdout) != `"hello <memccat>"` {
		t.Errorf("get --raw-key motd: %q", r.stdout)
	}
	host, port, _ := strings.Cut(rd.Addr, ":")
	if out, err := exec.Command(rediscli, "-h", host, "-p", port, "set", "legacy", "from redis-cli").CombinedOutput(); err != nil {
		t.Fatalf("redis-cli set: %v %s", err, out)
	}
	if r := c.must(exitOK, "", "get", "--url", redisURL, "--raw-key", "legacy", "--json"); strings.TrimSpace(r.stdout) != `{"key":"legacy","codec":"none","value":"from redis-cli"}` {
		t.Errorf("get --raw-key of redis-cli's value: %q", r.stdout)
	}
	c.must(exitOK, "", "put", "--url", redisURL, "--raw-key", "back", "to redis-cli")
	if out, err := exec.Command(rediscli, "-h", host, "-p", port, "get", "back").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "to redis-cli" {
		t.Errorf("redis-cli get of a put --raw-key: %q (%v)", out, err)
	}

	c.must(exitOK, "", "put", "--prefix", "a", "x", "text <as is>")
	c.must(exitOK, "", "put", "--prefix", "b", "--typed", "y", `{"h":"<i>"}`)
	if r := c.must(exitOK, "", "get", "--prefix", "a", "x"); r.stdout != "\"text <as is>\"\n" {
		t.Errorf("get of a text value: %q", r.stdout)
	}
	if r := c.must(exitOK, "", "get", "--prefix", "b", "y"); r.stdout != "{\n  \"h\": \"<i>\"\n}\n" {
		t.Errorf("get of a typed value: %q", r.stdout)
	}
	// memcached's key crawl may miss keys written a moment ago: poll.
	deadline := time.Now().Add(10 * time.Second)
	var r result
	for {
		r = c.must(exitOK, "", "keys")
		if sameLines(r.stdout, "a\tx\nb\ty") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sameLines(r.stdout, "a\tx\nb\ty") {
		t.Errorf("keys without --prefix: %q", r.stdout)
	}
}

// TestBinaryDumpLoadServerDown stops a real Redis under dump and load: each
// gives up after its retries with whole records and a count, and goes on
// with --resume and --skip once the server is back.
func TestBinaryDumpLoadServerDown(t *testing.T) {
	rd := testserver.Redis(t)
	c := newCLI(t, "MEMDICT_URL=redis://"+rd.Addr+"/0?dial_timeout=200ms")
	in := `{"key":"a","codec":"raw","value":"1"}` + "\n" + `{"key":"b","codec":"raw","value":"2"}` + "\n" + `{"key":"c","codec":"raw","value":"3"}` + "\n"
	c.must(exitOK, in, "load", "--prefix", "p")
	file := filepath.Join(t.TempDir(), "p.jsonl")

	rd.Stop(t)
	r := c.must(exitError, "", "dump", "--prefix", "p", "-o", file, "--retries", "1", "--retry-wait", "10ms")
	if !strings.Contains(r.stderr, "0 records written to "+file+", each complete; run the same command with --resume") ||
		!strings.Contains(r.stderr, "failed (attempt 1 of 2), trying again") {
		t.Errorf("dump of a stopped server:\n%v", r)
	}
	r = c.must(exitError, in, "load", "--prefix", "p", "--retries", "1", "--retry-wait", "10ms")
	if !strings.Contains(r.stderr, "line 1: storing key a: ") || !strings.Contains(r.stderr, "--skip 0 to continue") {
		t.Errorf("load into a stopped server:\n%v", r)
	}

	rd.Restart(t) // empty again
	c.must(exitOK, in, "load", "--prefix", "p", "--skip", "1")
	c.must(exitOK, "", "dump", "--prefix", "p", "-o", file, "--resume")
	if got, want := readDumpKeys(t, file), "b,c"; got != want {
		t.Errorf("dump --resume after load --skip 1: keys %s, want %s", got, want)
	}
}

// readDumpKeys returns the sorted keys of a dump file, comma-separated.
func readDumpKeys(t *testing.T, name string) string {
	t.Helper()
	var keys []string
	for k := range readDump(t, name) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}
