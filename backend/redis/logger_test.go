package redis

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// logChildEnv marks the child process of TestGoRedisLogIsNotPrinted.
const logChildEnv = "MEMDICT_TEST_GOREDIS_LOG_CHILD"

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// outage makes calls to a server that is down, which go-redis logs.
func outage(t *testing.T) {
	t.Helper()
	b, err := New(&goredis.Options{Addr: deadAddr(t)}, WithTimeout(2*time.Second), WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 3 {
		if _, err := b.Get(context.Background(), "k"); !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Get from a server that is down: %v", err)
		}
	}
}

// Nothing memdict's Redis driver does writes to the standard error or the
// standard logger: go-redis's own log lines (a failed dial, during an
// outage) go to log/slog at level Debug, which slog's default handler
// drops. The check runs in a child process, where go-redis's log is left
// as this package's initialisation routes it.
func TestGoRedisLogIsNotPrinted(t *testing.T) {
	if os.Getenv(logChildEnv) != "" {
		outage(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoRedisLogIsNotPrinted$", "-test.count=1")
	cmd.Env = append(os.Environ(), logChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "PASS" {
		t.Fatalf("the child printed (error %v):\n%s", err, out)
	}
}

// SetLogger's logger receives go-redis's lines.
func TestSetLogger(t *testing.T) {
	var buf bytes.Buffer
	SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	goredis.SetLogger(slogAdapter{})
	defer func() {
		goredis.SetLogger(logs)
		SetLogger(nil)
	}()
	outage(t)
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "failed to dial") ||
		!strings.Contains(out, "component=go-redis") {
		t.Fatalf("the logger got:\n%s", out)
	}
}

// messages is a slog.Handler that keeps the messages it is given.
type messages struct {
	mu   sync.Mutex
	msgs []string
}

func (*messages) Enabled(context.Context, slog.Level) bool { return true }
func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, r.Message)
	return nil
}
func (m *messages) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m *messages) WithGroup(string) slog.Handler      { return m }

// go-redis formats into its lines what servers sent, such as the error a
// sentinel answered: the message a handler is given is one line (a
// handler that writes it as it is, as slog's default handler does, would
// print the forged line that followed a newline, and the terminal escape)
// of bounded size. A 1 MiB error made a message of 1 MiB.
func TestGoRedisLogMessageIsOneBoundedLine(t *testing.T) {
	m := &messages{}
	SetLogger(slog.New(m))
	defer SetLogger(nil)
	said := "ERR no\n2026/12/06 12:00:00 ERROR forged \x1b[2J\xff" + strings.Repeat("s", 1<<20)
	slogAdapter{}.Printf(context.Background(), "sentinel: GetMasterAddrByName name=%q failed: %s", "mymaster", errors.New(said))
	slogAdapter{}.Printf(context.Background(), "redis: recovered panic: %v\n%s", "boom", "goroutine 1 [running]:\n\tmain.main()\n")
	if len(m.msgs) != 2 {
		t.Fatalf("%d messages", len(m.msgs))
	}
	got := m.msgs[0]
	if len(got) > 9<<10 || strings.ContainsAny(got, "\n\x1b") || !strings.Contains(got, `ERR no\n2026/12/06 12:00:00 ERROR forged \x1b[2J\xffsss`) ||
		!strings.HasSuffix(got, "(1048675 bytes)") {
		t.Errorf("message of %d bytes: %.200q ... %q", len(got), got, got[max(0, len(got)-40):])
	}
	if want := "go-redis: recovered panic: boom\ngoroutine 1 [running]:\n\tmain.main()"; m.msgs[1] != want {
		t.Errorf("panic message %q, want %q: its stack keeps its lines", m.msgs[1], want)
	}
}
