//go:build unix

package redis

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// TestRetryingClientBounded: a Backend on a client that retries a command
// that timed out (go-redis's MaxRetries: 3 by default on a client given
// to NewFromClient, or set) ends a single-key call on a stopped server
// within its timeout. The flush's context was never done (only its
// deadline was on the socket), and go-redis slept its retry backoff on
// it: with a 300 ms timeout a Get took 4.4 s on a Ring with MaxRetries
// 10, and 0.5 to 0.73 s on a client with a backoff of 100 ms to 1 s.
func TestRetryingClientBounded(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, kind := range []string{"ring", "client"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := testserver.Redis(t)
			var uc goredis.UniversalClient
			if kind == "ring" {
				uc = goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": p.Addr},
					HeartbeatFrequency:    time.Hour, // no heartbeat in the test
					ContextTimeoutEnabled: true, DialTimeout: timeout, PoolTimeout: timeout, MaxRetries: 10})
			} else {
				uc = goredis.NewClient(&goredis.Options{Addr: p.Addr,
					ContextTimeoutEnabled: true, DialTimeout: timeout, PoolTimeout: timeout, MaxRetries: 3,
					MinRetryBackoff: 400 * time.Millisecond, MaxRetryBackoff: 2 * time.Second})
			}
			t.Cleanup(func() { uc.Close() })
			b, err := NewFromClient(uc, WithTimeout(timeout), WithFailureLimit(0))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			ctx := context.Background()
			if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Signal(syscall.SIGCONT) })
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for _, c := range []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := b.Get(ctx, "k"); return err }},
				{"Set", func() error { return b.Set(ctx, backend.Item{Key: "k", Value: []byte("x")}) }},
				{"Get with a context that can be cancelled", func() error { _, err := b.Get(cctx, "k"); return err }},
			} {
				start := time.Now()
				err := c.call()
				took := time.Since(start)
				t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
				if !errors.Is(err, backend.ErrUnavailable) || took > timeout+noise {
					t.Errorf("%s on a stopped server: %v after %v, want an error wrapping ErrUnavailable within the timeout %v (+%v)", c.name, err, took, timeout, noise)
				}
			}
		})
	}
}

// TestRetriesNeedDoneContext: only a client that retries makes flushes
// derive a context (TestRetryingClientBounded); New's clients, without
// retries unless max_retries is set, keep the flush without one.
func TestRetriesNeedDoneContext(t *testing.T) {
	for u, want := range map[string]bool{
		"redis://127.0.0.1:1/0":                            false,
		"redis://127.0.0.1:1/0?max_retries=2":              true,
		"redis://127.0.0.1:1,127.0.0.1:2/0?cluster=true":   false,
		"redis://127.0.0.1:1/0?cluster=true&max_retries=2": true,
	} {
		if b := mustOpen(t, u); b.doneCtx != want {
			t.Errorf("%s: flushes derive a context that can be done: %v, want %v", u, b.doneCtx, want)
		}
	}
}
