package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// synDropper returns the address of a loopback port that drops SYNs, as a
// host behind a firewall does: a listener with a backlog of 0 whose one
// queued connection is never accepted, so that the kernel drops every
// further SYN (and the client retransmits until its dial times out).
func synDropper(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// The filler's dial is set-up, not what is tested: the kernel
	// completes it at once, but on a loaded machine (load 12-16 on 2
	// cores) the dialing goroutine itself may run a second late, and a
	// 1s timeout failed the test.
	filler, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the full backlog accepted a connection: SYNs are not dropped")
	}
	return addr
}

// TestConnectWithinTimeout calls a server that drops SYNs. Before, a
// connect took go-redis's 5 s DialTimeout (and a dial_timeout above the
// timeout was used as is), while the error said that the server "did not
// answer within 500ms"; calls queued behind it waited longer still. Every
// call must end within the timeout.
func TestConnectWithinTimeout(t *testing.T) {
	t.Parallel()
	addr := synDropper(t)
	for _, params := range []string{"timeout=500ms", "timeout=500ms&dial_timeout=5s", "timeout=500ms&batch=false"} {
		b := mustOpen(t, "redis://"+addr+"?"+params)
		var (
			mu      sync.Mutex
			slowest time.Duration
			wg      sync.WaitGroup
		)
		for i := range 8 {
			wg.Go(func() {
				ctx := context.Background()
				start := time.Now()
				var err error
				switch i % 4 {
				case 0:
					_, err = b.Get(ctx, "k")
				case 1:
					err = b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")})
				case 2:
					_, err = b.GetMulti(ctx, []string{"k", "j"})
				case 3:
					err = b.Ping(ctx)
				}
				d := time.Since(start)
				if !errors.Is(err, backend.ErrUnavailable) {
					t.Errorf("%s: call %d: %v, want ErrUnavailable", params, i, err)
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			})
		}
		wg.Wait()
		t.Logf("%s: slowest call %v", params, slowest)
		if slowest > 500*time.Millisecond+noise {
			t.Errorf("%s: a call took %v", params, slowest)
		}
	}
}
