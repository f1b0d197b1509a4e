// Package leakcheck fails a test binary whose tests leave goroutines
// behind. It is the part of go.uber.org/goleak that memdict's tests use,
// kept here so that goleak, a test-only dependency, is not in the module
// graph of every program that imports memdict. Only tests import it.
//
//	func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Wait is how long Find waits for goroutines to end before it reports
// them: a connection's reader or a pool's reaper may take a moment to see
// that its Close happened, more so on a loaded machine.
const Wait = 10 * time.Second

// VerifyTestMain runs the tests of m and, if they passed, exits with a
// failure when goroutines other than the test binary's own are still
// running after Wait (their stacks are printed); otherwise it exits with
// m's result. Call it from TestMain.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Find(Wait); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Find returns nil once no goroutine is left but the calling one and
// those of the runtime, the testing package and os/signal, or, after
// wait, an error listing the stacks of the goroutines that are left.
func Find(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		left := Leaked()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutine(s) still running after %v:\n\n%s", len(left), wait, strings.Join(left, "\n\n"))
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Leaked returns the stacks of the goroutines running now, but the
// calling one and those Find ignores.
func Leaked() []string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// The first stack is the calling goroutine's.
	stacks := strings.Split(strings.TrimSpace(string(buf)), "\n\n")
	var left []string
	for _, s := range stacks[1:] {
		if !ignored(s) {
			left = append(left, s)
		}
	}
	return left
}

// ignoredFuncs are functions in whose stacks a goroutine is not a leak:
// the testing package's own goroutines (a test's among them), the signal handler os/signal
// starts once, and the runtime's tracer.
var ignoredFuncs = []string{
	"testing.RunTests(",
	"testing.(*T).Run(",
	"testing.(*T).Parallel(",
	"testing.tRunner(", // a test's own goroutine, also while it winds down after its body returned
	"testing.(*M).",
	"testing.runFuzzTests(",
	"testing.runFuzzing(",
	"os/signal.signal_recv(",
	"os/signal.loop(",
	"runtime.ensureSigM(",
	"runtime.ReadTrace(",
	"runtime/trace.Start",
}

func ignored(stack string) bool {
	return slices.ContainsFunc(ignoredFuncs, func(f string) bool { return strings.Contains(stack, "\n"+f) })
}
