package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

func TestACL(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-s3cret-pw"
	p := testserver.Redis(t, "--user", "alice", "on", ">"+pw, "~*", "&*", "+@all", "--user", "default", "off")
	ctx := context.Background()

	b := mustOpen(t, "redis://alice:"+pw+"@"+p.Addr+"/0")
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	if it, err := b.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("right credentials: get %q, %v", it.Value, err)
	}

	for _, c := range []struct{ name, url, secret string }{
		{"wrong password", "redis://alice:Wr0ng-pw-xyz@" + p.Addr, "Wr0ng-pw-xyz"},
		{"wrong user", "redis://mallory:" + pw + "@" + p.Addr, pw},
		{"password only", "redis://:" + pw + "@" + p.Addr, pw},
		{"no credentials", "redis://" + p.Addr, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := mustOpen(t, c.url)
			_, err := b.Get(ctx, "k")
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("get: %v, want ErrAuth", err)
			}
			t.Logf("error: %v", err)
			if c.secret != "" && strings.Contains(err.Error(), c.secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if err := b.Ping(ctx); !errors.Is(err, ErrAuth) {
				t.Fatalf("ping: %v, want ErrAuth", err)
			}
			if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, ErrAuth) {
				t.Fatalf("set: %v, want ErrAuth", err)
			}
		})
	}
	if strings.Contains(logs.String(), pw) || strings.Contains(logs.String(), "Wr0ng-pw-xyz") {
		t.Fatalf("go-redis logged a password:\n%s", logs.String())
	}

	// A malformed URL with a password: the error must not show it.
	_, err := backend.Open(ctx, "redis://alice:"+pw+"@"+p.Addr+"/0?bogus=1")
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("open with an unknown option: %v", err)
	}
}

func TestTLSErrors(t *testing.T) {
	t.Parallel()
	p, files := testserver.RedisTLS(t)
	ctx := context.Background()
	other := testserver.WriteTLSFiles(t) // a CA that did not sign the server's certificate

	b := mustOpen(t, "rediss://"+p.Addr+"?tls_ca="+other.CAFile+"&dial_timeout=2s")
	_, err := b.Get(ctx, "k")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong CA: %v, want a certificate error", err)
	}
	t.Logf("wrong CA: %v", err)

	b = mustOpen(t, "rediss://"+p.Addr+"?tls_insecure_skip_verify=true")
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("insecure skip verify: %v", err)
	}
	b = mustOpen(t, "rediss://localhost:"+fmt.Sprint(p.Port)+"?tls_ca="+files.CAFile)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("verified by host name: %v", err)
	}
	// Plain text to a TLS port fails, and does not hang.
	b = mustOpen(t, "redis://"+p.Addr+"?read_timeout=500ms&dial_timeout=500ms&max_retries=0")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Ping(cctx); err == nil {
		t.Fatal("plain text to a TLS port worked")
	}
}

// TestServerRestart kills the server under load, checks that calls fail
// promptly with ErrUnavailable meanwhile and work again after a restart.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?dial_timeout=300ms&read_timeout=300ms&write_timeout=300ms&max_retries=1")
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var failures int
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = b.Get(cctx, "k")
				} else {
					err = b.Set(cctx, backend.Item{Key: fmt.Sprintf("g%d", g), Value: []byte("v")})
				}
				cancel()
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				if err != nil && !errors.Is(err, backend.ErrNotFound) {
					failures++
					if !errors.Is(err, backend.ErrUnavailable) {
						t.Errorf("while the server is down: %v, want ErrUnavailable", err)
					}
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	p.Stop(t)
	time.Sleep(700 * time.Millisecond)
	_, err := b.Get(ctx, "k")
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("server down: %v, want ErrUnavailable", err)
	}
	t.Logf("server down: %v", err)
	p.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v2")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 5s after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if it, err := b.Get(ctx, "k"); err != nil || string(it.Value) != "v2" {
		t.Fatalf("after restart: %q, %v", it.Value, err)
	}
	close(stop)
	wg.Wait()
	if failures == 0 {
		t.Error("no call failed while the server was down")
	}
	if slowest > 3*time.Second {
		t.Errorf("slowest call took %v", slowest)
	}
	t.Logf("%d failed calls, slowest %v", failures, slowest)
}

// TestHungServer freezes the server: calls must give up at their
// context's deadline.
func TestHungServer(t *testing.T) {
	t.Parallel()
	b := frozenServer(t)
	hungCalls(t, b, []string{"get", "set", "incr"}, func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 300*time.Millisecond)
	}, context.DeadlineExceeded, "on a hung server")
}

// TestCancelOnHungServer cancels (without a deadline) calls stuck on a
// frozen server: they must return promptly with context.Canceled.
func TestCancelOnHungServer(t *testing.T) {
	t.Parallel()
	b := frozenServer(t)
	hungCalls(t, b, []string{"get", "set", "getmulti"}, func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		return ctx, cancel
	}, context.Canceled, "cancelled on a hung server")
}

// frozenServer returns a Backend (10s socket timeouts) on a redis-server
// that holds "k" and is frozen (SIGSTOP) until the test ends.
func frozenServer(t *testing.T) *Backend {
	t.Helper()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?read_timeout=10s&write_timeout=10s")
	if err := b.Set(context.Background(), backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGCONT) })
	return b
}

// hungCalls makes each call of ops (get, set, getmulti, incr) on b with a
// context from newCtx: each must fail with want within 2s.
func hungCalls(t *testing.T, b *Backend, ops []string, newCtx func() (context.Context, context.CancelFunc), want error, what string) {
	t.Helper()
	for _, op := range ops {
		cctx, cancel := newCtx()
		start := time.Now()
		var err error
		switch op {
		case "get":
			_, err = b.Get(cctx, "k")
		case "set":
			err = b.Set(cctx, backend.Item{Key: "k", Value: []byte("v")})
		case "getmulti":
			_, err = b.GetMulti(cctx, []string{"k", "j"})
		case "incr":
			_, err = b.Increment(cctx, "k", 1)
		}
		cancel()
		if !errors.Is(err, want) {
			t.Errorf("%s %s: %v, want %v", op, what, err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s %s took %v", op, what, d)
		}
	}
}

// TestForeignValues writes values under the Backend's keys with a plain
// client: every call gives a clear error (or, for writes, overwrites).
func TestForeignValues(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	foreignValues(t, b)
}

func foreignValues(t *testing.T, b *Backend) {
	ctx := context.Background()
	rc := b.Client()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rc.Set(ctx, "f/text", "hello from redis-cli", 0).Err())
	must(rc.Set(ctx, "f/short", magic+"abc", 0).Err())
	must(rc.Set(ctx, "f/empty", "", 0).Err())
	must(rc.HSet(ctx, "f/hash", "a", "b").Err())
	must(rc.RPush(ctx, "f/list", "x").Err())
	must(b.Set(ctx, backend.Item{Key: "f/ours", Value: []byte("ok")}))

	for _, k := range []string{"f/text", "f/short", "f/empty", "f/hash", "f/list"} {
		if _, err := b.Get(ctx, k); !errors.Is(err, ErrForeignValue) {
			t.Errorf("get %s: %v, want ErrForeignValue", k, err)
		} else {
			t.Logf("get %s: %v", k, err)
		}
		if err := b.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("x"), CAS: 1}); !errors.Is(err, ErrForeignValue) {
			t.Errorf("cas %s: %v, want ErrForeignValue", k, err)
		}
		if err := b.Touch(ctx, k, time.Hour); !errors.Is(err, ErrForeignValue) {
			t.Errorf("touch %s: %v, want ErrForeignValue", k, err)
		}
		if _, err := b.Increment(ctx, k, 1); !errors.Is(err, ErrForeignValue) {
			t.Errorf("increment %s: %v, want ErrForeignValue", k, err)
		}
	}
	m, err := b.GetMulti(ctx, []string{"f/text", "f/ours", "f/hash", "f/none"})
	if !errors.Is(err, ErrForeignValue) || len(m) != 1 || string(m["f/ours"].Value) != "ok" {
		t.Errorf("getmulti: %v, %v", m, err)
	}
	// Concurrent Gets batched with a foreign key: only its caller fails.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				if _, err := b.Get(ctx, "f/text"); !errors.Is(err, ErrForeignValue) {
					t.Errorf("batched get f/text: %v", err)
				}
			case 1:
				if it, err := b.Get(ctx, "f/ours"); err != nil || string(it.Value) != "ok" {
					t.Errorf("batched get f/ours: %q, %v", it.Value, err)
				}
			case 2:
				if _, err := b.Get(ctx, "f/none"); !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("batched get f/none: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// Writes replace foreign values; Delete removes them.
	must(b.Set(ctx, backend.Item{Key: "f/hash", Value: []byte("mine")}))
	if it, err := b.Get(ctx, "f/hash"); err != nil || string(it.Value) != "mine" {
		t.Errorf("after set over a hash: %q, %v", it.Value, err)
	}
	must(b.Delete(ctx, "f/list"))
	if err := b.Add(ctx, backend.Item{Key: "f/text", Value: []byte("x")}); !errors.Is(err, backend.ErrNotStored) {
		t.Errorf("add over a foreign value: %v", err)
	}
}

func TestClosed(t *testing.T) {
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	ctx := context.Background()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("get after close: %v", err)
	}
	if err := b.Set(ctx, backend.Item{Key: "k"}); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("set after close: %v", err)
	}
	for _, err := range b.Keys(ctx, "") {
		if !errors.Is(err, backend.ErrClosed) {
			t.Errorf("keys after close: %v", err)
		}
	}
	// A Backend on a caller's client leaves the client open.
	rc := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer rc.Close()
	b2, err := NewFromClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	b2.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Errorf("caller's client after Close: %v", err)
	}
}

// TestCloseUnderLoad closes the Backend while goroutines use it with
// cancellable contexts: calls succeed or fail with ErrClosed, nothing
// panics, and no goroutine is left behind (TestMain checks).
func TestCloseUnderLoad(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout="+loadedTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("k%d", (g+i)%20)
				var err error
				switch i % 4 {
				case 0:
					err = b.Set(ctx, backend.Item{Key: k, Value: []byte("1")})
				case 1:
					_, err = b.Get(ctx, k)
				case 2:
					_, err = b.Increment(ctx, k, 1)
				case 3:
					_, err = b.GetMulti(ctx, []string{k, "x"})
				}
				if errors.Is(err, backend.ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, backend.ErrNotNumeric) {
					t.Errorf("before close: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
