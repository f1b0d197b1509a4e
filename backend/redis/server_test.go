package redis

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// loadedTimeout is the timeout (URL parameter) of the tests that check
// semantics rather than deadlines: long, so that a loaded CI machine cannot
// make a call time out (and its server be marked down) by starving it.
const loadedTimeout = "10s"

func mustOpen(t *testing.T, rawURL string) *Backend {
	t.Helper()
	be, err := backend.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be.(*Backend)
}

func TestSmokeServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout)
	smoke(t, b, "p/", time.Sleep)
}

func TestSmokeTLS(t *testing.T) {
	t.Parallel()
	p, files := testserver.RedisTLS(t)
	b := mustOpen(t, "rediss://"+p.Addr+"?tls_ca="+files.CAFile+"&timeout="+loadedTimeout)
	smoke(t, b, "p/", time.Sleep)
}
