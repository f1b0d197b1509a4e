package redis

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a batcher worker, a
// go-redis pool reaper, ...) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
