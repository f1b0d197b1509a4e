package browsertest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

// The memdict command's exit codes (cmd/memdict/run.go).
const (
	exitOK   = 0
	exitMiss = 1
)

var (
	buildsMu sync.Mutex
	builds   = map[string]string{} // import path -> built program
	buildDir string
)

// build builds the program pkg (an import path of the repository's
// workspace, as a user's "go build" would) once per test binary and
// returns its path.
func build(t *testing.T, pkg string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command to build %s: %v", pkg, err)
	}
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if bin, ok := builds[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "memdict-browsertest-"); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(buildDir, filepath.Base(pkg))
	if out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds[pkg] = bin
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// environ is this process's environment without its MEMDICT_ variables,
// plus extra.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEMDICT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// result is what a run of the memdict command gave.
type result struct {
	code           int
	stdout, stderr string
}

// runMemdict runs the memdict command with args in the environment env
// (see environ) and fails the test unless it exits with code.
func runMemdict(t *testing.T, env []string, code int, args ...string) result {
	t.Helper()
	cmd := exec.Command(build(t, "github.com/memdict/memdict/cmd/memdict"), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("memdict %q: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	if r.code != code {
		t.Fatalf("memdict %s: want exit %d, got %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, r.code, r.stdout, r.stderr)
	}
	return r
}
