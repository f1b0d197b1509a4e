package redis

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/internal/leakcheck"
	"github.com/memdict/memdict/internal/testserver"
)

// TestMain routes go-redis's log through logs (so that tests can check
// that no password is ever logged) and fails the package's tests if any
// goroutine (a batcher worker, a go-redis pool reaper, ...) outlives them.
// In the child process of TestGoRedisLogIsNotPrinted, go-redis's log is
// left as this package routes it.
func TestMain(m *testing.M) {
	if os.Getenv(logChildEnv) == "" {
		goredis.SetLogger(logs)
	}
	// Many parallel tests here wait (on expiry, on a server's timeout).
	testserver.DefaultParallel(6)
	leakcheck.VerifyTestMain(m)
}

// logs records what go-redis logs, and echoes it to stderr.
var logs = &logRecorder{}

type logRecorder struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logRecorder) Printf(_ context.Context, format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.sb.WriteString(s + "\n")
	l.mu.Unlock()
	fmt.Fprintln(os.Stderr, "go-redis:", s)
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}
