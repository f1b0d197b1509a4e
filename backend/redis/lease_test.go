package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

func TestLocksServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	locks(t, mustOpen(t, "redis://"+p.Addr+"/0?timeout="+loadedTimeout), "l/", nil)
}

func TestLocksServerUnbatched(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	locks(t, mustOpen(t, "redis://"+p.Addr+"/0?batch=false&timeout="+loadedTimeout), "l/", nil)
}

// locks checks the backend.Locker of b, whose keys are prefixed with
// prefix. advance moves the server's clock forward (a fake's); nil means
// a real server, on which expiry is waited for by bounded polling.
func locks(t *testing.T, b *Backend, prefix string, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	k := func(s string) string { return prefix + s }
	try := func(t *testing.T, key, token string, ttl time.Duration) bool {
		t.Helper()
		ok, err := b.TryLock(ctx, key, token, ttl)
		if err != nil {
			t.Fatalf("trylock %s with %s: %v", key, token, err)
		}
		return ok
	}
	unlock := func(t *testing.T, key, token string) bool {
		t.Helper()
		ok, err := b.Unlock(ctx, key, token)
		if err != nil {
			t.Fatalf("unlock %s with %s: %v", key, token, err)
		}
		return ok
	}
	// holder returns the token stored under key ("" if none): a lock is a
	// value like any other, which Get reads.
	holder := func(t *testing.T, key string) string {
		t.Helper()
		it, err := b.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return string(it.Value)
	}

	// heldThenUnlock checks that key's lock is held by token (when, as
	// it is at that point of the test), that another token cannot take
	// it, and that token's Unlock frees it.
	heldThenUnlock := func(t *testing.T, key, token, when string) {
		t.Helper()
		if h := holder(t, key); h != token {
			t.Fatalf("%s the lock holds %q, want %s", when, h, token)
		}
		if try(t, key, "C", time.Minute) {
			t.Fatalf("%s trylock won the lock held by %s", when, token)
		}
		if !unlock(t, key, token) {
			t.Fatalf("%s the holder %s's unlock returned false", when, token)
		}
	}

	t.Run("OneWinner", func(t *testing.T) {
		// Concurrent callers with their own tokens: exactly one wins each
		// round; the winner's Unlock frees the lock for the next round.
		// The rounds' keys differ, so on a cluster they span masters.
		for r := range 6 {
			key := k(fmt.Sprintf("race/%d", r))
			const n = 32
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []string
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					tok := fmt.Sprintf("r%d-g%d", r, i)
					ok, err := b.TryLock(ctx, key, tok, time.Minute)
					if err != nil {
						t.Errorf("trylock %s: %v", key, err)
						return
					}
					if ok {
						mu.Lock()
						winners = append(winners, tok)
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners among %d callers: %v", r, len(winners), n, winners)
			}
			if h := holder(t, key); h != winners[0] {
				t.Fatalf("round %d: lock holds %q, winner %q", r, h, winners[0])
			}
			if try(t, key, "late", time.Minute) {
				t.Fatalf("round %d: a late TryLock won a held lock", r)
			}
			if try(t, key, winners[0], time.Minute) {
				t.Fatalf("round %d: the holder's own token won its held lock again", r)
			}
			if !unlock(t, key, winners[0]) {
				t.Fatalf("round %d: the winner's Unlock returned false", r)
			}
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		key := k("tokens")
		if !try(t, key, "A", time.Minute) {
			t.Fatal("trylock of a free key returned false")
		}
		if unlock(t, key, "B") {
			t.Fatal("unlock with the wrong token returned true")
		}
		if unlock(t, key, "a") || unlock(t, key, "AA") || unlock(t, key, "A\x00") {
			t.Fatal("unlock with a near token returned true")
		}
		heldThenUnlock(t, key, "A", "after a wrong unlock")
		if h := holder(t, key); h != "" {
			t.Fatalf("after unlock the key holds %q", h)
		}
		if unlock(t, key, "A") {
			t.Fatal("a second unlock returned true")
		}
		if !try(t, key, "C", time.Minute) {
			t.Fatal("trylock of an unlocked key returned false")
		}
		if !unlock(t, key, "C") {
			t.Fatal("unlock C returned false")
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		// A lock expires after its TTL; another token then takes it, and
		// the first holder's late Unlock leaves the new lock alone.
		key := k("expiry")
		ttl := 100 * time.Millisecond
		if advance == nil {
			ttl = time.Second // outlives the next call on a loaded machine
		}
		taken := time.Now()
		if !try(t, key, "A", ttl) {
			t.Fatal("trylock of a free key returned false")
		}
		if try(t, key, "B", ttl) {
			t.Fatal("trylock won a held lock")
		}
		if advance != nil {
			advance(ttl - time.Millisecond)
			if try(t, key, "B", ttl) {
				t.Fatal("trylock won a lock 1ms before its expiry")
			}
			advance(2 * time.Millisecond)
			if !try(t, key, "B", time.Minute) {
				t.Fatal("trylock lost a lock past its expiry")
			}
		} else {
			for deadline := time.Now().Add(10 * time.Second); !try(t, key, "B", time.Minute); {
				if time.Now().After(deadline) {
					t.Fatalf("a %v lock still held 10s later", ttl)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if d := time.Since(taken); d < ttl {
				t.Fatalf("a %v lock was free %v after it was taken", ttl, d)
			}
		}
		if unlock(t, key, "A") {
			t.Fatal("the expired holder's unlock returned true")
		}
		heldThenUnlock(t, key, "B", "after the expired holder's unlock")
	})

	t.Run("TTL", func(t *testing.T) {
		// Rounded up to a millisecond, as PX takes it.
		key := k("ttl")
		if !try(t, key, "A", 10*time.Second+time.Nanosecond) {
			t.Fatal("trylock returned false")
		}
		pttl, err := b.Client().PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if pttl > 10001*time.Millisecond || pttl <= 5*time.Second || advance != nil && pttl != 10001*time.Millisecond {
			t.Fatalf("PTTL of a lock taken for 10s+1ns: %v, want 10.001s", pttl)
		}
		if !unlock(t, key, "A") {
			t.Fatal("unlock returned false")
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		key := k("invalid")
		for _, ttl := range []time.Duration{0, -time.Second} {
			if ok, err := b.TryLock(ctx, key, "A", ttl); ok || !errors.Is(err, backend.ErrInvalidTTL) {
				t.Errorf("trylock with TTL %v: %v, %v, want ErrInvalidTTL", ttl, ok, err)
			} else if !strings.Contains(err.Error(), key) {
				t.Errorf("trylock with TTL %v: %v does not name the key", ttl, err)
			}
		}
		if ok, err := b.TryLock(ctx, key, "", time.Minute); ok || err == nil || !strings.Contains(err.Error(), "token") {
			t.Errorf("trylock with an empty token: %v, %v", ok, err)
		}
		if ok, err := b.Unlock(ctx, key, ""); ok || err == nil || !strings.Contains(err.Error(), "token") {
			t.Errorf("unlock with an empty token: %v, %v", ok, err)
		}
		if ok, err := b.TryLock(ctx, "", "A", time.Minute); ok || !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("trylock of an empty key: %v, %v", ok, err)
		}
		if ok, err := b.Unlock(ctx, "", "A"); ok || !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("unlock of an empty key: %v, %v", ok, err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if ok, err := b.TryLock(cctx, key, "A", time.Minute); ok || !errors.Is(err, context.Canceled) {
			t.Errorf("trylock with a cancelled context: %v, %v", ok, err)
		}
		if ok, err := b.Unlock(cctx, key, "A"); ok || !errors.Is(err, context.Canceled) {
			t.Errorf("unlock with a cancelled context: %v, %v", ok, err)
		}
		if h := holder(t, key); h != "" {
			t.Fatalf("invalid calls left %q under the key", h)
		}
	})

	t.Run("ForeignValues", func(t *testing.T) {
		// A key another program wrote is not a lock: TryLock does not take
		// it, Unlock leaves it even when it equals the token.
		rc := b.Client()
		key := k("foreign")
		if err := rc.Set(ctx, key, "A", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if try(t, key, "A", time.Minute) {
			t.Fatal("trylock took a key holding a foreign string")
		}
		if unlock(t, key, "A") {
			t.Fatal("unlock deleted a foreign string")
		}
		if v, err := rc.Get(ctx, key).Result(); err != nil || v != "A" {
			t.Fatalf("foreign string after unlock: %q, %v", v, err)
		}
		hkey := k("foreign-hash")
		if err := rc.HSet(ctx, hkey, "a", "b").Err(); err != nil {
			t.Fatal(err)
		}
		if try(t, hkey, "A", time.Minute) {
			t.Fatal("trylock took a key holding a hash")
		}
		if ok, err := b.Unlock(ctx, hkey, "A"); ok || !errors.Is(err, ErrForeignValue) {
			t.Fatalf("unlock of a hash: %v, %v, want ErrForeignValue", ok, err)
		}
		if n, err := rc.Exists(ctx, hkey).Result(); err != nil || n != 1 {
			t.Fatalf("hash after unlock: exists %d, %v", n, err)
		}
	})

	t.Run("Helpers", func(t *testing.T) {
		// backend.TryLock and backend.Unlock use the Locker.
		key := k("helpers")
		tok := backend.NewLockToken()
		if ok, err := backend.TryLock(ctx, b, key, tok, time.Minute); !ok || err != nil {
			t.Fatalf("backend.TryLock: %v, %v", ok, err)
		}
		if ok, err := backend.TryLock(ctx, b, key, backend.NewLockToken(), time.Minute); ok || err != nil {
			t.Fatalf("backend.TryLock of a held lock: %v, %v", ok, err)
		}
		if ok, err := backend.Unlock(ctx, b, key, backend.NewLockToken()); ok || err != nil {
			t.Fatalf("backend.Unlock with another token: %v, %v", ok, err)
		}
		if ok, err := backend.Unlock(ctx, b, key, tok); !ok || err != nil {
			t.Fatalf("backend.Unlock: %v, %v", ok, err)
		}
	})

	t.Run("Pipelined", func(t *testing.T) {
		// Many callers at once, on keys of their own: the calls share
		// pipelines, the scripts among them loaded again after SCRIPT
		// FLUSH (NOSCRIPT), and each caller gets its own answers.
		if err := b.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 48 {
			wg.Go(func() {
				key := k(fmt.Sprintf("pipe/%d", g))
				for i := range 10 {
					mine, other := fmt.Sprintf("g%d-%d", g, i), fmt.Sprintf("x%d-%d", g, i)
					steps := []struct {
						what string
						want bool
						fn   func() (bool, error)
					}{
						{"trylock", true, func() (bool, error) { return b.TryLock(ctx, key, mine, time.Minute) }},
						{"trylock by another", false, func() (bool, error) { return b.TryLock(ctx, key, other, time.Minute) }},
						{"unlock by another", false, func() (bool, error) { return b.Unlock(ctx, key, other) }},
						{"unlock", true, func() (bool, error) { return b.Unlock(ctx, key, mine) }},
						{"unlock again", false, func() (bool, error) { return b.Unlock(ctx, key, mine) }},
					}
					for _, s := range steps {
						if ok, err := s.fn(); ok != s.want || err != nil {
							t.Errorf("%s %s (%d): %v, %v, want %v", s.what, key, i, ok, err, s.want)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestLocksKilledServer kills the server: TryLock and Unlock fail as every
// call does (ErrUnavailable naming the server, bounded by the timeout, at
// once once it is marked down), and work again after a restart, whose
// server has lost its scripts.
func TestLocksKilledServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=%v&retry_interval=%v", p.Addr, hungTimeout, hungRetry))
	ctx := context.Background()
	if ok, err := b.TryLock(ctx, "lock", "A", time.Minute); !ok || err != nil {
		t.Fatalf("trylock: %v, %v", ok, err)
	}
	p.Stop(t)
	calls := []struct {
		op string
		fn func() (bool, error)
	}{
		{"trylock", func() (bool, error) { return b.TryLock(ctx, "lock", "B", time.Minute) }},
		{"unlock", func() (bool, error) { return b.Unlock(ctx, "lock", "A") }},
	}
	down := 0
	for i := 0; i < 40 && down < 4; i++ {
		c := calls[i%2]
		start := time.Now()
		ok, err := c.fn()
		d := time.Since(start)
		if ok || !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("%s on a killed server: %v, %v, want ErrUnavailable", c.op, ok, err)
		}
		if !strings.Contains(err.Error(), c.op+` "lock"`) {
			t.Errorf("%s on a killed server: %v does not name the call", c.op, err)
		}
		if d > hungTimeout+noise {
			t.Errorf("%s on a killed server took %v, timeout %v", c.op, d, hungTimeout)
		}
		if strings.Contains(err.Error(), "marked down") {
			down++
			if got := backend.ServerOf(err); got != p.Addr {
				t.Errorf("backend.ServerOf(%v) = %q, want %q", err, got, p.Addr)
			}
			if d > fast {
				t.Errorf("%s refused as marked down after %v", c.op, d)
			}
			if down == 1 {
				t.Logf("%s while marked down, after %d calls: %v", c.op, i+1, err)
			}
		}
	}
	if down < 4 {
		t.Fatalf("the killed server was not marked down (%d calls refused as marked down)", down)
	}

	p.Restart(t)
	waitServing(t, "trylock after restart", 5*time.Second, func() error {
		_, err := b.TryLock(ctx, "other", "A", time.Minute)
		return err
	})
	// The restarted server lost its data and its scripts.
	if ok, err := b.Unlock(ctx, "lock", "A"); ok || err != nil {
		t.Fatalf("unlock of a lock the restart dropped: %v, %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "lock", "B", time.Minute); !ok || err != nil {
		t.Fatalf("trylock after restart: %v, %v", ok, err)
	}
	if ok, err := b.Unlock(ctx, "lock", "B"); !ok || err != nil {
		t.Fatalf("unlock after restart: %v, %v", ok, err)
	}
}
