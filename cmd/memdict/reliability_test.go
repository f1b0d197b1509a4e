package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

// faultyStores holds the backends that test-faulty:// URLs name, so that
// in-process runs of the command reach a fault-injecting backend whose
// data outlives each run.
var faultyStores sync.Map // host -> *memdicttest.Faulty

func init() {
	backend.Register("test-faulty", func(_ context.Context, u *url.URL) (backend.Backend, error) {
		f, ok := faultyStores.Load(u.Host)
		if !ok {
			return nil, fmt.Errorf("no faulty store %q", u.Host)
		}
		return keepOpen{f.(*memdicttest.Faulty)}, nil
	})
}

// keepOpen is a Faulty that the command's Close does not close.
type keepOpen struct{ *memdicttest.Faulty }

func (keepOpen) Close() error { return nil }

// newFaulty returns a Faulty over an in-memory store and the URL that
// opens it in the command.
func newFaulty(t *testing.T) (*memdicttest.Faulty, string) {
	t.Helper()
	host := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	f := memdicttest.NewFaulty(memory.New())
	faultyStores.Store(host, f)
	t.Cleanup(func() { faultyStores.Delete(host) })
	return f, "test-faulty://" + host
}

// failing returns a FailKeys match that fails the backend key bk the
// first times calls (all of them if times < 0).
func failing(bk string, times int) func(string) bool {
	var left atomic.Int64
	left.Store(int64(times))
	return func(k string) bool {
		if k != bk {
			return false
		}
		return times < 0 || left.Add(-1) >= 0
	}
}

// readDump returns the keys of a dump file, failing the test on a line
// that is not a whole record.
func readDump(t *testing.T, name string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s ends in a cut line: %q", name, b[max(0, len(b)-40):])
	}
	keys := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("%s: bad line %q: %v", name, sc.Text(), err)
			continue
		}
		keys[r.Key]++
	}
	return keys
}

// dump retries a failed batch; on a failure that lasts it stops with whole
// records and their count, and --resume completes the file, dropping a cut
// last line.
func TestDumpRetriesAndResumes(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	d, err := memdict.New[string](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	const total = 250
	for i := range total {
		if err := d.Put(fmt.Sprintf("k%03d", i), fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	target := d.BackendKey("k123")
	file := filepath.Join(t.TempDir(), "p.jsonl")

	// Two failures of one batch: retried, the dump is whole.
	f.FailKeys(failing(target, 2), backend.ErrUnavailable)
	r := runIn(t, env, "", "dump", "--prefix", "p", "-o", file, "--retries", "3", "--retry-wait", "1ms")
	if r.code != exitOK {
		t.Fatalf("dump with transient failures:\n%v", r)
	}
	if keys := readDump(t, file); len(keys) != total {
		t.Errorf("dump wrote %d keys, want %d", len(keys), total)
	}
	if !strings.Contains(r.stderr, "failed (attempt 2 of 4), trying again in 2ms") ||
		!strings.Contains(r.stderr, fmt.Sprintf("memdict dump: %d records written to %s in ", total, file)) ||
		!strings.HasSuffix(r.stderr, ", after 2 retries\n") {
		t.Errorf("dump stderr lacks the retry notes or the summary:\n%s", r.stderr)
	}

	// A failure that lasts: an error with the count, whole records only.
	f.FailKeys(failing(target, -1), backend.ErrUnavailable)
	r = runIn(t, env, "", "dump", "--prefix", "p", "-o", file, "--retries", "2", "--retry-wait", "1ms")
	if r.code != exitError {
		t.Fatalf("dump with a lasting failure: want exit 3, got\n%v", r)
	}
	m := regexp.MustCompile(`gave up after 3 attempts\); (\d+) records written to ` + regexp.QuoteMeta(file) + `, each complete; run the same command with --resume to continue`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("dump error does not give the count and --resume:\n%s", r.stderr)
	}
	keys := readDump(t, file)
	if n, _ := strconv.Atoi(m[1]); n != len(keys) || n >= total || keys["k123"] != 0 {
		t.Errorf("the error says %s records, the file holds %d (k123: %d)", m[1], len(keys), keys["k123"])
	}
	if !strings.Contains(r.stderr, "server unavailable") {
		t.Errorf("dump error does not give the cause:\n%s", r.stderr)
	}

	// An interrupted write left a cut line; --resume drops it and adds
	// the missing keys, each once.
	fh, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"key":"k12`)
	fh.Close()
	f.ClearFaults()
	r = runIn(t, env, "", "dump", "--prefix", "p", "-o", file, "--resume")
	// The summary names the records the file held, unless it held none:
	// that happens when the listing, whose order is the store's, put k123
	// in the first batch.
	held := fmt.Sprintf(", after the %d it held", len(keys))
	if r.code != exitOK || (len(keys) > 0) != strings.Contains(r.stderr, held) || strings.Contains(r.stderr, "after the 0") {
		t.Fatalf("dump --resume (the file held %d records):\n%v", len(keys), r)
	}
	keys = readDump(t, file)
	if len(keys) != total {
		t.Errorf("after --resume the file holds %d keys, want %d", len(keys), total)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s written %d times", k, n)
		}
	}
}

// load retries a failed write; on a failure that lasts it names the line
// and the --skip that continues, and --skip does.
func TestLoadRetriesAndSkips(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	var in strings.Builder
	const total = 50
	for i := 1; i <= total; i++ {
		fmt.Fprintf(&in, `{"key":"k%02d","codec":"raw","value":"v%d"}`+"\n", i, i)
	}
	d, err := memdict.New[string](f, "p")
	if err != nil {
		t.Fatal(err)
	}
	stored := func() map[string]bool {
		m := map[string]bool{}
		for k, err := range d.Keys(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			m[k] = true
		}
		return m
	}

	f.FailKeys(failing(d.BackendKey("k10"), 2), backend.ErrUnavailable)
	r := runIn(t, env, in.String(), "load", "--prefix", "p", "--retries", "2", "--retry-wait", "1ms")
	if r.code != exitOK || len(stored()) != total || !strings.HasSuffix(r.stderr, fmt.Sprintf("memdict load: %d records stored in ", total)+r.stderr[strings.LastIndex(r.stderr, " in ")+4:]) ||
		!strings.Contains(r.stderr, `storing key k10 failed (attempt 1 of 3)`) || !strings.HasSuffix(r.stderr, ", after 2 retries\n") {
		t.Fatalf("load with transient failures (%d stored):\n%v", len(stored()), r)
	}

	d, _ = memdict.New[string](f, "q")
	f.FailKeys(failing(d.BackendKey("k30"), -1), backend.ErrUnavailable)
	r = runIn(t, env, in.String(), "load", "--prefix", "q", "--retries", "1", "--retry-wait", "1ms")
	if r.code != exitError || !strings.Contains(r.stderr, "memdict load: line 30: storing key k30: ") ||
		!strings.Contains(r.stderr, "29 lines done (29 records stored by this run), run the same command with --skip 29 to continue") {
		t.Fatalf("load with a lasting failure:\n%v", r)
	}
	if got := stored(); len(got) != 29 || got["k30"] || !got["k29"] {
		t.Errorf("after the failed load %d keys are stored", len(got))
	}
	f.ClearFaults()
	r = runIn(t, env, in.String(), "load", "--prefix", "q", "--skip", "29")
	if r.code != exitOK || !strings.Contains(r.stderr, "memdict load: 21 records stored in ") || !strings.Contains(r.stderr, "after skipping 29 lines") {
		t.Fatalf("load --skip 29:\n%v", r)
	}
	if got := stored(); len(got) != total {
		t.Errorf("after load --skip %d keys are stored, want %d", len(got), total)
	}
}

// A get whose server is down is an error naming the key and the cause,
// not a miss.
func TestGetServerDownIsError(t *testing.T) {
	f, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	if r := runIn(t, env, "", "put", "--prefix", "p", "k", "v"); r.code != exitOK {
		t.Fatal(r)
	}
	d, _ := memdict.New[string](f, "p")
	f.FailKeys(failing(d.BackendKey("k"), -1), backend.ErrUnavailable)
	r := runIn(t, env, "", "get", "--prefix", "p", "k")
	if r.code != exitError || !strings.HasPrefix(r.stderr, `memdict get: memdict: get "k": `) ||
		!strings.Contains(r.stderr, "server unavailable") {
		t.Errorf("get over a down server:\n%v", r)
	}
	f.ClearFaults()
	f.SetDown(true)
	r = runIn(t, env, "", "get", "--prefix", "p", "k")
	if r.code != exitError || !strings.HasPrefix(r.stderr, `memdict get: memdict: get "k": `) || strings.Contains(r.stderr, "generation") {
		t.Errorf("get over a down server:\n%v", r)
	}
}

// With nothing configured, the command names the in-memory backend it
// falls back to, and put, load and clear refuse to write there unless
// given --mem.
func TestInMemoryFallback(t *testing.T) {
	note := "memdict: no backend configured for plugin default (no --config, --url, $MEMDICT_CONFIG or $MEMDICT_URL): using the built-in in-memory backend mem://"
	r := runIn(t, nil, "", "get", "k")
	if r.code != exitMiss || !strings.Contains(r.stderr, note) {
		t.Errorf("get without configuration:\n%v", r)
	}
	for _, args := range [][]string{{"put", "k", "v"}, {"load"}, {"clear", "--yes"}} {
		r := runIn(t, nil, `{"key":"k","codec":"raw","value":"v"}`+"\n", args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, note) || !strings.Contains(r.stderr, "would store nothing that outlives this command") ||
			!strings.Contains(r.stderr, "--mem") {
			t.Errorf("memdict %q without configuration:\n%v", args, r)
		}
		r = runIn(t, nil, `{"key":"k","codec":"raw","value":"v"}`+"\n", append(args, "--mem")...)
		if r.code != exitOK {
			t.Errorf("memdict %q --mem:\n%v", args, r)
		}
	}
	// An explicit mem:// is no fallback, but is still refused for writes.
	env := map[string]string{"MEMDICT_URL": "mem://"}
	if r := runIn(t, env, "", "get", "k"); r.code != exitMiss || strings.Contains(r.stderr, "no backend configured") {
		t.Errorf("get with MEMDICT_URL=mem://:\n%v", r)
	}
	if r := runIn(t, env, "", "put", "k", "v"); r.code != exitUsage || !strings.Contains(r.stderr, "its URL is mem://") {
		t.Errorf("put with MEMDICT_URL=mem://:\n%v", r)
	}
	// A configuration that lacks the default plugin falls back for it.
	rd, _ := newRedis(t)
	cfg := filepath.Join(t.TempDir(), "app.yaml")
	os.WriteFile(cfg, []byte("plugins:\n  other:\n    url: redis://"+rd.Addr+"/0\n"), 0o600)
	if r := runIn(t, nil, "", "--config", cfg, "put", "k", "v"); r.code != exitUsage || !strings.Contains(r.stderr, "no backend configured for plugin default") {
		t.Errorf("put on the unconfigured default plugin:\n%v", r)
	}
	// It says that the file given lacks the plugin, not that none was
	// given (it said "no --config" after --config).
	for _, r := range []result{
		runIn(t, nil, "", "--config", cfg, "put", "k", "v"),
		runIn(t, map[string]string{"MEMDICT_CONFIG": cfg}, "", "get", "k"),
	} {
		if !strings.Contains(r.stderr, cfg+" names no plugin default") || strings.Contains(r.stderr, "no --config") {
			t.Errorf("the fallback note after a configuration file without the plugin:\n%v", r)
		}
	}
	if r := runIn(t, nil, "", "--config", cfg, "--plugin", "other", "put", "k", "v"); r.code != exitOK || r.stderr != "" {
		t.Errorf("put on a configured plugin:\n%v", r)
	}
}

// The habits of memccat and redis-cli: text by default, JSON as it is
// written, every key listed, other programs' keys readable.
func TestCLIHabits(t *testing.T) {
	rd, rc := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0", "MEMDICT_SITE_ID": "s1"}
	mustRun := func(code int, stdin string, args ...string) result {
		t.Helper()
		return mustRunIn(t, env, code, stdin, args...)
	}
	// put stores text by default; --typed stores JSON typed.
	mustRun(exitOK, "", "put", "--prefix", "shop", "motd", `{"a":1} <b>`)
	if r := mustRun(exitOK, "", "get", "--prefix", "shop", "motd", "--raw"); r.stdout != `{"a":1} <b>` {
		t.Errorf("get --raw of a text put: %q", r.stdout)
	}
	if r := mustRun(exitOK, "", "get", "--prefix", "shop", "motd", "--json"); strings.TrimSpace(r.stdout) != `{"key":"motd","codec":"raw","value":"{\"a\":1} <b>"}` {
		t.Errorf("get --json of a text put: %s", r.stdout)
	}
	mustRun(exitOK, "", "put", "--prefix", "shop", "--typed", "cart", `{"note":"<a&b>","n":2}`)
	if r := mustRun(exitOK, "", "get", "--prefix", "shop", "cart"); r.stdout != "{\n  \"n\": 2,\n  \"note\": \"<a&b>\"\n}\n" {
		t.Errorf("get of a typed put (HTML escaped?):\n%s", r.stdout)
	}
	if r := mustRun(exitOK, "", "dump", "--prefix", "shop"); !strings.Contains(r.stdout, `{"key":"cart","codec":"msgpack","value":{"n":2,"note":"<a&b>"}}`) {
		t.Errorf("dump (HTML escaped?):\n%s", r.stdout)
	}

	// keys without --prefix: every prefix's live keys, with the prefix.
	mustRun(exitOK, "", "put", "--prefix", "old", "gone", "x")
	mustRun(exitOK, "", "clear", "--prefix", "old", "--yes")
	mustRun(exitOK, "", "put", "--prefix", "old", "new", "x")
	mustRun(exitOK, "", "put", "--prefix", "", "k", "x")
	mustRun(exitOK, "", "put", "--prefix", "users", "a b\tc", "x")
	ctx := t.Context()
	if err := rc.MSet(ctx, "s2:shop:0:other-site", "x", "legacy:motd", "hello <world>").Err(); err != nil {
		t.Fatal(err)
	}
	r := mustRun(exitOK, "", "keys")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := []string{`""` + "\tk", "old\tnew", "shop\tcart", "shop\tmotd", "users\t" + `"a b\tc"`}
	if !sameLines(r.stdout, strings.Join(want, "\n")) {
		t.Errorf("keys without --prefix:\n%s\nwant\n%s", r.stdout, strings.Join(want, "\n"))
	}
	r = mustRun(exitOK, "", "keys", "--json", "--limit", "2")
	if n := strings.Count(r.stdout, "\n"); n != 2 || !strings.Contains(r.stdout, `{"key":`) {
		t.Errorf("keys --json --limit 2:\n%s (%d of %d lines)", r.stdout, n, len(lines))
	}
	if r := mustRun(exitOK, "", "keys", "--prefix", ""); strings.TrimSpace(r.stdout) != "k" {
		t.Errorf("keys --prefix '': %q", r.stdout)
	}
	if r := mustRun(exitOK, "", "--prefix", "old", "keys"); strings.TrimSpace(r.stdout) != "new" {
		t.Errorf("--prefix old keys: %q", r.stdout)
	}

	// --raw-key: backend keys as they are, for other programs' data.
	if r := mustRun(exitOK, "", "get", "--raw-key", "legacy:motd"); strings.TrimSpace(r.stdout) != `"hello <world>"` {
		t.Errorf("get --raw-key of redis-cli's value: %q", r.stdout)
	}
	if r := mustRun(exitOK, "", "get", "--raw-key", "legacy:motd", "--json"); strings.TrimSpace(r.stdout) != `{"key":"legacy:motd","codec":"none","value":"hello <world>"}` {
		t.Errorf("get --raw-key --json: %q", r.stdout)
	}
	mustRun(exitOK, "", "put", "--raw-key", "legacy:plain", "for memccat")
	if v, err := rc.Get(ctx, "legacy:plain").Result(); err != nil || v != "for memccat" {
		t.Errorf("put --raw-key stored %q (%v)", v, err)
	}
	if r := mustRun(exitOK, "", "keys", "--raw-key", "--prefix", "legacy:"); !sameLines(r.stdout, "legacy:motd\nlegacy:plain") {
		t.Errorf("keys --raw-key --prefix legacy: = %q", r.stdout)
	}
	mustRun(exitOK, "", "del", "--raw-key", "legacy:plain")
	mustRun(exitMiss, "", "del", "--raw-key", "legacy:plain")
	mustRun(exitMiss, "", "get", "--raw-key", "legacy:plain")
	// Its generation is a time (the first Dict of a prefix stores one).
	cart, err := rc.Keys(ctx, "s1:shop:*:cart").Result()
	if err != nil || len(cart) != 1 {
		t.Fatalf("the backend key of cart: %q, %v", cart, err)
	}
	if r := mustRun(exitOK, "", "get", "--raw-key", cart[0]); !strings.Contains(r.stdout, `"note": "<a&b>"`) {
		t.Errorf("get --raw-key of a memdict key: %q", r.stdout)
	}
}

// On a stderr that is not a terminal, progress comes as whole lines, and a
// summary line ends the command.
func TestProgressLines(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 0 // a line at every batch
	f, u := newFaulty(t)
	d, _ := memdict.New[string](f, "p")
	for i := range 250 {
		_ = d.Put(fmt.Sprintf("k%03d", i), "v")
	}
	r := runIn(t, map[string]string{"MEMDICT_URL": u}, "", "dump", "--prefix", "p")
	if r.code != exitOK {
		t.Fatal(r)
	}
	lines := strings.SplitAfter(r.stderr, "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Errorf("stderr ends in a line without a newline: %q", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != 4 || lines[0] != "memdict dump: 100 records written so far\n" || lines[1] != "memdict dump: 200 records written so far\n" ||
		lines[2] != "memdict dump: 250 records written so far\n" || !strings.HasPrefix(lines[3], "memdict dump: 250 records written to standard output in ") {
		t.Errorf("stderr lines:\n%s", r.stderr)
	}
	r = runIn(t, map[string]string{"MEMDICT_URL": u}, r.stdout, "load", "--prefix", "q")
	if r.code != exitOK || !strings.HasSuffix(r.stderr, "\n") || !strings.Contains(r.stderr, "memdict load: 1 record stored so far\n") ||
		!strings.Contains(r.stderr, "memdict load: 250 records stored in ") {
		t.Errorf("load stderr:\n%s", r.stderr)
	}
}

// --raw-key on Redis goes through the server's own commands; their errors
// still name the operation, the key and the server, and a server that is
// down is "server unavailable", as through the driver.
func TestRawKeyRedisErrors(t *testing.T) {
	rd, rc := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	if err := rc.LPush(t.Context(), "alist", "a").Err(); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, env, "", "get", "--raw-key", "alist")
	if r.code != exitError || !strings.Contains(r.stderr, `get "alist"`) || !strings.Contains(r.stderr, "not a string") {
		t.Errorf("get --raw-key of a Redis list:\n%v", r)
	}
	addr := rd.Addr
	rd.Stop(t)
	for _, args := range [][]string{
		{"put", "--raw-key", "k", "v"},
		{"del", "--raw-key", "k"},
		{"get", "--raw-key", "k"},
	} {
		r := runIn(t, env, "", args...)
		if r.code != exitError || !strings.Contains(r.stderr, `"k"`) || !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, "server unavailable") {
			t.Errorf("memdict %q over a stopped Redis:\n%v", args, r)
		}
	}
}

// A bad line stops load with an error that names the line, says how much
// was stored, and how to continue.
func TestLoadBadLineSaysHowToContinue(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	in := `{"key":"a","codec":"raw","value":"x"}` + "\n" + `{"key":"b","codec":"raw","value":"y"}` + "\nnot json\n" +
		`{"key":"c","codec":"raw","value":"z"}` + "\n"
	r := runIn(t, env, in, "load", "--prefix", "p")
	if r.code != exitError || !strings.Contains(r.stderr, "line 3: ") || !strings.Contains(r.stderr, "2 records stored") ||
		!strings.Contains(r.stderr, "--skip 2") || !strings.Contains(r.stderr, "--skip 3") {
		t.Fatalf("load of a bad line:\n%v", r)
	}
	if r := runIn(t, env, in, "load", "--prefix", "p", "--skip", "3"); r.code != exitOK || !strings.Contains(r.stderr, "1 record stored") {
		t.Errorf("load --skip 3 past the bad line:\n%v", r)
	}
}

// endlessLine yields prefix, then 'A's without a newline until it has
// given limit bytes, then an error; n counts what it gave.
type endlessLine struct {
	prefix string
	n      int64
	limit  int64
}

func (r *endlessLine) Read(p []byte) (int, error) {
	if r.n >= r.limit {
		return 0, errors.New("endlessLine: reader gave up")
	}
	if r.n < int64(len(r.prefix)) {
		k := copy(p, r.prefix[r.n:])
		r.n += int64(k)
		return k, nil
	}
	k := min(int64(len(p)), r.limit-r.n)
	for i := range k {
		p[i] = 'A'
	}
	r.n += k
	return int(k), nil
}

// boundedEnv returns the environment of a plugin on a Redis server with
// max_value_length 1000 (a dump line of at most 6*(250+1000)+1024 =
// 8524 bytes).
func boundedEnv(t *testing.T) map[string]string {
	t.Helper()
	rd, _ := newRedis(t)
	cfg := filepath.Join(t.TempDir(), "bounded.yaml")
	if err := os.WriteFile(cfg, []byte("plugins:\n  default:\n    url: redis://"+rd.Addr+"/0\n    max_value_length: 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"MEMDICT_CONFIG": cfg}
}

// TestInputBoundedByValueLimit guards against load and put reading
// operator input without a bound: a dump line that never ends, or a
// value on standard input longer than the plugin's max_value_length, is
// refused with an error naming the limit once the limit is passed, not
// read whole into memory (they read 64 MiB before).
func TestInputBoundedByValueLimit(t *testing.T) {
	env := boundedEnv(t)
	getenv := func(k string) string { return env[k] }
	for _, c := range []struct {
		name string
		args []string
		in   *endlessLine
		want string
	}{
		{"load", []string{"load", "--prefix", "p"}, &endlessLine{prefix: `{"key":"k","codec":"raw","base64":"`, limit: 64 << 20},
			"line 1 is longer than 8524 bytes, more than a record of a value of at most 1000 bytes (plugin default's max_value_length); 0 lines done"},
		{"put", []string{"put", "--prefix", "p", "k", "-"}, &endlessLine{limit: 64 << 20},
			"the value on standard input is longer than 1000 bytes (1000 bytes (plugin default's max_value_length)); raise the plugin's max_value_length"},
		{"put --typed", []string{"put", "--prefix", "p", "--typed", "k", "-"}, &endlessLine{prefix: `"`, limit: 64 << 20},
			"the JSON text on standard input is longer than 4000 bytes (4 times the value limit, 1000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runEnv(context.Background(), c.args, c.in, &out, &errb, getenv)
			if code != exitError || !strings.Contains(errb.String(), c.want) {
				t.Errorf("exit %d, stderr %s\nwant it to say %q", code, errb.String(), c.want)
			}
			if c.in.n > 1<<20 {
				t.Errorf("read %d KiB of one value before refusing it (the plugin's values are at most 1000 bytes)", c.in.n>>10)
			}
		})
	}
	// Up to the limits, values are read as before: a --typed value's JSON
	// text may be longer than the value (indented).
	mustRunIn(t, env, exitOK, strings.Repeat("x", 900), "put", "--prefix", "p", "k", "-")
	mustRunIn(t, env, exitOK, strings.Repeat(" ", 3900)+`"v"`, "put", "--prefix", "p", "--typed", "t", "-")
	if r := mustRunIn(t, env, exitOK, "", "get", "--prefix", "p", "t"); strings.TrimSpace(r.stdout) != `"v"` {
		t.Errorf("get t = %q", r.stdout)
	}
}

// TestLoadLongLines guards the bound on dump lines: a value near
// max_value_length whose JSON form is 6 times its size (control bytes)
// still goes through dump and load; a longer line stops load, which
// --skip passes over without reading it whole, and stops dump --resume,
// which leaves the file as it was.
func TestLoadLongLines(t *testing.T) {
	env := boundedEnv(t)
	mustRunIn(t, env, exitOK, strings.Repeat("\x01", 900), "put", "--prefix", "src", "ctl", "-")
	dir := t.TempDir()
	file := filepath.Join(dir, "d.jsonl")
	mustRunIn(t, env, exitOK, "", "dump", "--prefix", "src", "-o", file)
	b, err := os.ReadFile(file)
	if err != nil || len(b) < 6*900 || !bytes.Contains(b, []byte(`"value":"\u0001`)) {
		t.Fatalf("dump of 900 control bytes (%v): %.80q, %d bytes", err, b, len(b))
	}
	mustRunIn(t, env, exitOK, string(b), "load", "--prefix", "dst")
	if r := mustRunIn(t, env, exitOK, "", "get", "--prefix", "dst", "ctl", "--raw"); r.stdout != strings.Repeat("\x01", 900) {
		t.Errorf("loaded value: %q", r.stdout)
	}

	long := `{"key":"long","codec":"raw","value":"` + strings.Repeat("y", 9000) + `"}` + "\n"
	ok := `{"key":"ok","codec":"raw","value":"z"}` + "\n"
	r := mustRunIn(t, env, exitError, ok+long+ok, "load", "--prefix", "dst")
	for _, want := range []string{"line 2 is longer than 8524 bytes", "1 lines done (1 record stored by this run)", "--skip 1", "--skip 2"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("load of a long line: want %q in\n%v", want, r)
		}
	}
	if r := mustRunIn(t, env, exitOK, ok+long+ok, "load", "--prefix", "dst", "--skip", "2"); !strings.Contains(r.stderr, "1 record stored") {
		t.Errorf("load --skip 2 past the long line: %v", r)
	}

	held := string(b) + long
	if err := os.WriteFile(file, []byte(held), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mustRunIn(t, env, exitError, "", "dump", "--prefix", "src", "-o", file, "--resume")
	if !strings.Contains(r.stderr, "--resume: "+file+":2 is longer than 8524 bytes") {
		t.Errorf("dump --resume on a file with a long line: %v", r)
	}
	if got, _ := os.ReadFile(file); string(got) != held {
		t.Errorf("dump --resume changed the file it refused")
	}
}

// TestLoadReadErrorIsNotABadLine guards the report of a failed read: it
// is an I/O error, not the cut line that the reader left taken for a bad
// record ("not a dump record: unexpected EOF ... fix the line").
func TestLoadReadErrorIsNotABadLine(t *testing.T) {
	env := boundedEnv(t)
	in := io.MultiReader(strings.NewReader(`{"key":"a","codec":"raw","value":"x"}`+"\n"+`{"key":"b","co`),
		iotest.ErrReader(errors.New("disk on fire")))
	var out, errb bytes.Buffer
	code := runEnv(context.Background(), []string{"load", "--prefix", "p"}, in, &out, &errb, func(k string) string { return env[k] })
	msg := errb.String()
	if code != exitError || !strings.Contains(msg, "reading line 2 of the input: disk on fire; 1 lines done (1 record stored by this run)") ||
		!strings.Contains(msg, "--skip 1") || strings.Contains(msg, "not a dump record") || strings.Contains(msg, "fix the line") {
		t.Errorf("load over a failing reader: exit %d, stderr %s", code, msg)
	}
}

// With --retries 0, dump gives up after one attempt, and says so in
// English.
func TestDumpNoRetries(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	rd.Stop(t)
	r := runIn(t, env, "", "dump", "--prefix", "p", "--retries", "0")
	if r.code != exitError || !strings.Contains(r.stderr, "(gave up after 1 attempt)") || strings.Contains(r.stderr, "trying again") {
		t.Errorf("dump --retries 0 over a stopped server:\n%v", r)
	}
}

// dump --resume on a file that does not exist yet is a plain dump into it,
// and its summary does not speak of records the file held.
func TestDumpResumeNewFile(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	runIn(t, env, "", "put", "--prefix", "p", "k", "v")
	file := filepath.Join(t.TempDir(), "new.jsonl")
	r := runIn(t, env, "", "dump", "--prefix", "p", "-o", file, "--resume")
	if r.code != exitOK || !strings.Contains(r.stderr, "1 record written to "+file) || strings.Contains(r.stderr, "it held") {
		t.Errorf("dump --resume into a new file:\n%v", r)
	}
	if got := readDump(t, file); len(got) != 1 {
		t.Errorf("dump --resume into a new file wrote %v", got)
	}
}

// newRedis starts a Redis server for the test and returns it, with a
// client on it for the test's own reads and writes.
func newRedis(t *testing.T) (*testserver.Process, *goredis.Client) {
	t.Helper()
	rd := testserver.Redis(t)
	rc := goredis.NewClient(&goredis.Options{Addr: rd.Addr})
	t.Cleanup(func() { rc.Close() })
	return rd, rc
}

// A get that misses without --prefix hints at the prefixes that hold the
// key: "shop:greeting" read as prefix and key, and the key under every
// prefix of the site; with --prefix, or when nothing holds it, no prefix
// is suggested.
func TestGetHintsAtPrefixes(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0", "MEMDICT_SITE_ID": "s1"}
	mustRun := func(code int, args ...string) result {
		t.Helper()
		return mustRunIn(t, env, code, "", args...)
	}
	mustRun(exitOK, "put", "--prefix", "shop", "greeting", "hello")
	mustRun(exitOK, "put", "--prefix", "blog", "greeting", "hi")
	mustRun(exitOK, "put", "--prefix", "a b", "k", "x")

	r := mustRun(exitMiss, "get", "shop:greeting")
	if r.stdout != "" || !strings.Contains(r.stderr, "shop:greeting: not found") ||
		!strings.Contains(r.stderr, "hint: under --prefix shop: memdict get --prefix shop greeting\n") {
		t.Errorf("get shop:greeting:\n%v", r)
	}
	r = mustRun(exitMiss, "get", "greeting")
	for _, p := range []string{"blog", "shop"} {
		if !strings.Contains(r.stderr, "hint: under --prefix "+p+": memdict get --prefix "+p+" greeting\n") {
			t.Errorf("get greeting: no hint of prefix %s:\n%v", p, r)
		}
	}
	if r := mustRun(exitMiss, "get", "k"); !strings.Contains(r.stderr, `memdict get --prefix 'a b' k`) {
		t.Errorf("get k: the prefix with a space is not quoted for the shell:\n%v", r)
	}
	if r := mustRun(exitMiss, "get", "absent"); strings.Contains(r.stderr, "under --prefix") || !strings.Contains(r.stderr, "no prefix holds it either") {
		t.Errorf("get absent:\n%v", r)
	}
	if r := mustRun(exitMiss, "get", "--prefix", "other", "greeting"); strings.Contains(r.stderr, "hint") {
		t.Errorf("get --prefix other greeting hints although --prefix was given:\n%v", r)
	}
	if r := mustRun(exitMiss, "--prefix", "other", "get", "shop:greeting"); strings.Contains(r.stderr, "hint") {
		t.Errorf("--prefix other get hints although --prefix was given:\n%v", r)
	}
}

// The search for hints is bounded: on a site with more prefixes than it
// reads, it stops, and says that it did not look everywhere.
func TestGetHintsBounded(t *testing.T) {
	rd, rc := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	// hintMaxPrefixes+8 prefixes, each with one key (as memdict writes them).
	ctx := t.Context()
	for i := range hintMaxPrefixes + 8 {
		if err := rc.Set(ctx, fmt.Sprintf("p%02d:0:other", i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r := mustRunIn(t, env, exitMiss, "", "get", "k")
	if !strings.Contains(r.stderr, fmt.Sprintf("(%d looked at)", hintMaxPrefixes)) || !strings.Contains(r.stderr, "no other prefix tried holds it") {
		t.Errorf("get k on %d prefixes:\n%v", hintMaxPrefixes+8, r)
	}
}

// --raw-key on Redis sends GET, SET and DEL through go-redis's own client,
// which the driver does not bound: each command is still bounded by the
// URL's timeout, and a get that reads a value the driver did not frame
// (its GET, then the server's own) ends within one timeout in all, as a
// Dict call does. A server that stops answering made them take go-redis's
// own timeouts (5 s with timeout=300ms).
func TestRawKeyRedisBoundedByTimeout(t *testing.T) {
	rd, rc := newRedis(t)
	if err := rc.Set(t.Context(), "foreign", "plain", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p := hostile.Start(t, rd.Addr, hostile.RESPFramer)
	var plain atomic.Int64
	p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
		switch {
		case c.Replies == 0: // HELLO's
			return c.Write(reply)
		case string(reply) == "$5\r\nplain\r\n" && plain.Add(1) == 1:
			return c.Write(reply) // the driver's GET: a foreign value
		}
		return nil // no answer
	}))
	env := map[string]string{"MEMDICT_URL": "redis://" + p.Addr() + "/0?timeout=300ms"}
	for _, args := range [][]string{
		{"get", "--raw-key", "foreign"},
		{"put", "--raw-key", "k", "v"},
		{"del", "--raw-key", "k"},
	} {
		start := time.Now()
		r := runIn(t, env, "", args...)
		if took := time.Since(start); took > 1500*time.Millisecond || r.code != exitError || !strings.Contains(r.stderr, "server unavailable") {
			t.Errorf("memdict %q through a server that does not answer, timeout=300ms: %v\n%v", args, took, r)
		}
	}
	if plain.Load() < 2 {
		t.Errorf("get --raw-key did not read the foreign value again (%d reads)", plain.Load())
	}
}

// ping --timeout bounds the command: with --all, every plugin is pinged
// at once, each within the timeout, and the results print in the
// plugins' order. They were pinged one after the other: eight plugins
// whose server never answers took eight timeouts (2 s with --timeout
// 250ms).
func TestPingAllWithinTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts, reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	var cfg strings.Builder
	cfg.WriteString("plugins:\n")
	for i := range 8 {
		fmt.Fprintf(&cfg, "  p%d:\n    url: memcached://%s?timeout=10s\n", i, ln.Addr())
	}
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runIn(t, nil, "", "--config", path, "ping", "--all", "--timeout", "250ms")
	took := time.Since(start)
	if took > 1500*time.Millisecond || r.code != exitError {
		t.Errorf("ping --all --timeout 250ms of 9 plugins, 8 that never answer: exit %d after %v\n%v", r.code, took, r)
	}
	var order []string
	for line := range strings.Lines(r.stdout) {
		order = append(order, strings.Fields(line)[0])
	}
	if want := []string{"default", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}; !slices.Equal(order, want) {
		t.Errorf("ping --all printed the plugins in the order %q, want %q", order, want)
	}
}
