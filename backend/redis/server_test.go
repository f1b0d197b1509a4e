package redis

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

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
	b := mustOpen(t, "redis://"+p.Addr+"/0")
	smoke(t, b, "p/", time.Sleep)
}

func TestSmokeTLS(t *testing.T) {
	t.Parallel()
	p, files := testserver.RedisTLS(t)
	b := mustOpen(t, "rediss://"+p.Addr+"?tls_ca="+files.CAFile)
	smoke(t, b, "p/", time.Sleep)
}
