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
