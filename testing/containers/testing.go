package containers

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Memcached starts a memcached container for the test t (see
// StartMemcached) and registers its removal with t.Cleanup. It skips the
// test when no container engine can be reached, or fails it when
// MEMDICT_REQUIRE_SERVERS=1. Any other failure fails the test.
func Memcached(t testing.TB, opts ...Option) *Container {
	t.Helper()
	return start(t, "memcached", StartMemcached, opts)
}

// Redis starts a Redis container for the test t (see StartRedis) and
// registers its removal with t.Cleanup. It skips the test when no container
// engine can be reached, or fails it when MEMDICT_REQUIRE_SERVERS=1. Any
// other failure fails the test.
func Redis(t testing.TB, opts ...Option) *Container {
	t.Helper()
	return start(t, "redis", StartRedis, opts)
}

func start(t testing.TB, kind string, fn func(context.Context, ...Option) (*Container, error), opts []Option) *Container {
	t.Helper()
	ctx := context.Background()
	if err := EngineAvailable(ctx); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("containers: cannot start %s: %v; %s (%s=1: container tests are required)", kind, err, engineHint(os.Getenv("DOCKER_HOST")), EnvRequire)
		}
		t.Skipf("containers: skipping, cannot start %s: %v; %s (set %s=1 to make this a failure)", kind, err, engineHint(os.Getenv("DOCKER_HOST")), EnvRequire)
	}
	// Route testcontainers-go's own log lines to the test's log, and apply
	// it first so that every later step logs there.
	opts = append([]Option{WithCustomizers(testcontainers.WithLogger(tclog.TestLogger(t)))}, opts...)
	begin := time.Now()
	c, err := fn(ctx, opts...)
	// Register the cleanup before checking the error, so that a container
	// that was created but did not get ready is removed too.
	t.Cleanup(func() {
		if c == nil {
			return
		}
		id := shortID(c.GetContainerID())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The data is disposable: do not wait the engine's 10s for a
		// clean exit.
		if err := c.Terminate(ctx, testcontainers.StopTimeout(time.Second)); err != nil {
			t.Errorf("containers: %v", err)
			return
		}
		t.Logf("containers: removed %s container %s", kind, id)
	})
	if err != nil {
		if c != nil {
			t.Logf("containers: %s container %s logs:\n%s", kind, shortID(c.GetContainerID()), logs(c))
		}
		t.Fatalf("%v", err)
	}
	t.Logf("containers: %s container %s serving at %s (started in %v)", kind, shortID(c.GetContainerID()), c.Addr(), time.Since(begin).Round(time.Millisecond))
	return c
}

// engineHint says, in the user's terms, what would make a container
// engine reachable, given the value of DOCKER_HOST.
func engineHint(dockerHost string) string {
	if dockerHost != "" {
		return "DOCKER_HOST is " + dockerHost + ": check that a Docker API answers there (docker version), or unset it to use the local Docker daemon"
	}
	return "start Docker, or podman's Docker API socket (systemctl --user start podman.socket) and set DOCKER_HOST to it " +
		"(DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock)"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// logs returns the container's output, for failure messages.
func logs(c *Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Logs(ctx)
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer r.Close()
	var b []byte
	buf := make([]byte, 32<<10)
	for len(b) < 1<<20 {
		n, err := r.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b)
}
