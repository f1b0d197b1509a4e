//go:build unix

package redis

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestGetMultiKeysReusedAfterContextEnds: the keys slice of a GetMulti is
// the caller's again once the call has returned, even when ctx ended with
// the read still running (bounded's goroutine, which finishes on its
// own): the read does not use it after the call (run with -race).
func TestGetMultiKeysReusedAfterContextEnds(t *testing.T) {
	p := testserver.Redis(t)
	b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=2s&failure_limit=0", p.Addr))
	ctx := context.Background()
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGCONT) })
	cctx, cancel := context.WithCancel(ctx)
	stop := time.AfterFunc(50*time.Millisecond, cancel)
	defer stop.Stop()
	if _, err := b.GetMulti(cctx, keys); err == nil {
		t.Fatal("getmulti of a stopped server: no error")
	}
	keys[0], keys[1], keys[2] = "x", "y", "z" // the caller's buffer, reused
	// The server answers the read, which ends after the call returned.
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
}
