package memcached_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// TestTextCallerDeadlineServerHung: a call through the text protocol to a
// server that hangs (the proxy holds what the client sends), whose
// caller's deadline (100ms) comes before the timeout, fails with an error
// wrapping context.DeadlineExceeded, and is not counted as the server's
// failure, as on the meta protocol. The connection's deadline is the
// caller's (timedConn), and it often passed before ctx's timer fired: the
// call failed with the connection's "i/o timeout" as backend.ErrUnavailable
// (3 of 3 GetMulti, SetMulti and DeleteMulti in TestTextMultiServerHung),
// counted as a failure of the server: with a failure limit of 1, a
// caller's short deadline marked a healthy but slow server down.
func TestTextCallerDeadlineServerHung(t *testing.T) {
	t.Parallel()
	_, p, c := behindProxy(t, memcached.WithFailureLimit(1), memcached.WithRetryInterval(time.Minute))
	p.SetMutator(textOnly)
	ctx := context.Background()
	storeKeys(t, c, "k")
	p.Hold()
	t.Cleanup(p.Heal)
	for i := range 6 {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := c.Get(cctx, "k")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Get %d past the caller's deadline: %v; want an error wrapping context.DeadlineExceeded, not backend.ErrUnavailable", i, err)
		}
	}
}
