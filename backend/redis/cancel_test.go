package redis

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestCancelOnHungServer cancels (without a deadline) calls stuck on a
// frozen server: they must return promptly with context.Canceled.
func TestCancelOnHungServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?read_timeout=10s&write_timeout=10s")
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGCONT)
	for _, op := range []string{"get", "set", "getmulti"} {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		var err error
		switch op {
		case "get":
			_, err = b.Get(cctx, "k")
		case "set":
			err = b.Set(cctx, backend.Item{Key: "k", Value: []byte("v")})
		case "getmulti":
			_, err = b.GetMulti(cctx, []string{"k", "j"})
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled on a hung server: %v, want context.Canceled", op, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s cancelled on a hung server took %v", op, d)
		}
	}
}
