package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

// goBlocks returns the README's fenced Go code blocks that are whole
// files (they start with a package clause).
func goBlocks(readme []byte) []string {
	var out []string
	re := regexp.MustCompile("(?s)```go\n(.*?)```")
	for _, m := range re.FindAllSubmatch(readme, -1) {
		if bytes.HasPrefix(m[1], []byte("package ")) {
			out = append(out, string(m[1]))
		}
	}
	return out
}

// TestREADMECode compiles the README's quick start program and testing
// file as they are written, by overlaying them as files of this module
// (go build -overlay), vets them, runs the program and checks that it
// prints what the README says, and runs the tests.
func TestREADMECode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command to build the README's code: %v", err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(readme)
	var program, testFile string
	for _, b := range blocks {
		switch {
		case strings.HasPrefix(b, "package main\n"):
			program = b
		case strings.Contains(b, "\nfunc Test"):
			testFile = b
		}
	}
	if program == "" || testFile == "" {
		t.Fatalf("the README has %d whole Go files; want the quick start's package main and the testing section's test file", len(blocks))
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	const (
		programDir = "docs/internal/readme/quickstart"
		testDir    = "docs/internal/readme/visits"
	)
	overlay := map[string]string{
		filepath.Join(root, programDir, "main.go"):     filepath.Join(tmp, "main.go"),
		filepath.Join(root, testDir, "visits_test.go"): filepath.Join(tmp, "visits_test.go"),
	}
	for dst, src := range overlay {
		text := program
		if strings.HasSuffix(dst, "_test.go") {
			text = testFile
		}
		if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oj, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, oj, 0o644); err != nil {
		t.Fatal(err)
	}
	// The README's program reads the environment as a service does: run it
	// with none of memdict's configuration variables set.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEMDICT_URL=") && !strings.HasPrefix(kv, "MEMDICT_CONFIG=") && !strings.HasPrefix(kv, "MEMDICT_SITE_ID=") {
			env = append(env, kv)
		}
	}
	goCmd := func(args ...string) (string, error) {
		cmd := exec.Command(goTool, args...)
		cmd.Dir = root
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := goCmd("vet", "-overlay", ovPath, "./"+programDir, "./"+testDir); err != nil {
		t.Fatalf("go vet of the README's code: %v\n%s", err, out)
	}
	out, err := goCmd("run", "-overlay", ovPath, "./"+programDir)
	if err != nil {
		t.Fatalf("go run of the README's quick start: %v\n%s", err, out)
	}
	m := regexp.MustCompile("It prints `([^`]+)`").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README does not say what the quick start prints (It prints `...`)")
	}
	if got := strings.TrimSpace(out); got != string(m[1]) {
		t.Errorf("the quick start prints %q; the README says %q", got, m[1])
	}
	out, err = goCmd("test", "-overlay", ovPath, "-count=1", "-v", "./"+testDir)
	if err != nil {
		t.Fatalf("go test of the README's test file: %v\n%s", err, out)
	}
	for _, name := range []string{"TestWithTheFake", "TestWithMemcached"} {
		if !strings.Contains(out, "--- PASS: "+name) && !strings.Contains(out, "--- SKIP: "+name) {
			t.Errorf("the README's %s did not run:\n%s", name, out)
		}
	}
	t.Logf("the README's tests:\n%s", out)
}

// TestREADMECommands checks the set-up commands the project promises, and
// that every example the README runs exists.
func TestREADMECommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, promised := range []string{"`go run ./examples/counter`", "`bash .ci/test`"} {
		if !bytes.Contains(readme, []byte(promised)) {
			t.Errorf("the README no longer promises %s", promised)
		}
	}
	runs := regexp.MustCompile(`go run \./(examples/[a-z]+)`).FindAllSubmatch(readme, -1)
	if len(runs) < 3 {
		t.Errorf("the README runs %d examples, want counter, tool, adminpage at least", len(runs))
	}
	for _, m := range runs {
		if _, err := os.Stat(filepath.Join("..", string(m[1]), "main.go")); err != nil {
			t.Errorf("the README runs ./%s: %v", m[1], err)
		}
	}
	for _, doc := range regexp.MustCompile(`\]\((docs/[a-z0-9_]+\.(?:md|go))\)`).FindAllSubmatch(readme, -1) {
		if _, err := os.Stat(filepath.Join("..", string(doc[1]))); err != nil {
			t.Errorf("the README links %s: %v", doc[1], err)
		}
	}
}

// TestREADMENearCacheSnippet checks that the README's near-cache snippet
// is taken from ExampleWithNearCache, which is compiled and run with its
// output checked: every line of the snippet is a line of the example.
func TestREADMENearCacheSnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../nearcache_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(example, []byte("func ExampleWithNearCache()")) {
		t.Fatal("nearcache_example_test.go has no ExampleWithNearCache")
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(example), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	var snippet string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1) {
		if bytes.Contains(m[1], []byte("memdict.WithNearCache(")) {
			snippet = string(m[1])
		}
	}
	if snippet == "" {
		t.Fatal("the README has no Go block using memdict.WithNearCache")
	}
	for _, l := range strings.Split(snippet, "\n") {
		if l = strings.TrimSpace(l); l != "" && !lines[l] {
			t.Errorf("the README's near-cache snippet has %q, which ExampleWithNearCache does not", l)
		}
	}
}
