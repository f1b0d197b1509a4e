package miniredistest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/testing/backendtest"
)

func open(t *testing.T, rawURL string) backend.Backend {
	t.Helper()
	be, err := backend.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// TestConformance runs the backend conformance suite on miniredis, with
// and without the driver's batching of single-key calls, with millisecond
// TTLs: the suite moves miniredis's clock instead of sleeping. (The Redis
// driver's own tests run it on a real server, with TTLs of half a second
// and more.)
func TestConformance(t *testing.T) {
	for _, params := range []string{"max_value_size=1048576", "max_value_size=1048576&batch=false"} {
		t.Run(params, func(t *testing.T) {
			t.Parallel()
			mr := miniredis.RunT(t)
			backendtest.Run(t, func(t *testing.T) backend.Backend { return open(t, "redis://"+mr.Addr()+"?"+params) },
				backendtest.Options{
					Advance:        mr.FastForward,
					TTLGranularity: time.Millisecond,
					MaxValueSize:   1 << 20,
					AnyKeyBytes:    true,
					NoFlags:        true,
					Concurrency:    16,
				})
		})
	}
}

// TestTracking: miniredis has no CLIENT TRACKING; the tracker finds out
// and says so, and never reports Live, so that a near cache relies on its
// MaxStale (as the README says).
func TestTracking(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	b := open(t, "redis://"+mr.Addr()).(*redis.Backend)
	tr, err := b.Track(context.Background(), "p:", func(backend.Invalidation) {})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	for deadline := time.Now().Add(10 * time.Second); tr.Supported(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Supported still true after 10s")
		}
	}
	if tr.Live() {
		t.Fatal("Live on miniredis")
	}
	_, err = b.Track(context.Background(), "q:", func(backend.Invalidation) {})
	if !errors.Is(err, backend.ErrNotSupported) {
		t.Fatalf("Track after the refusal: %v, want ErrNotSupported", err)
	}
	t.Logf("miniredis: %v", err)
}
