package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// TestWrapCallersDeadline: an error of a read that bounded ran under the
// caller's deadline (sooner than the timeout) is that deadline's, as when
// bounded stops waiting for it first: it wraps context.DeadlineExceeded,
// not backend.ErrUnavailable, and does not say the server failed to
// answer within the timeout. Under the driver's own timeout it stays the
// server's failure.
func TestWrapCallersDeadline(t *testing.T) {
	b := &Backend{cfg: config{timeout: time.Hour}}
	dctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()

	err := b.wrap(boundCtx{dctx, true}, "getmulti", "k", context.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, backend.ErrUnavailable) || strings.Contains(err.Error(), "did not answer within") {
		t.Errorf("the caller's deadline ran out: %v; want it wrapping context.DeadlineExceeded, not ErrUnavailable", err)
	}
	err = b.wrap(boundCtx{dctx, false}, "getmulti", "k", context.DeadlineExceeded)
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 1h0m0s") {
		t.Errorf("the driver's timeout ran out: %v; want ErrUnavailable, naming the timeout", err)
	}
}
