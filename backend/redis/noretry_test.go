package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
)

// TestRetryingClientAppliesOnce: on a client given to NewFromClient that
// retries (MaxRetries 3, as go-redis's default), a write whose reply is
// lost after the server ran it (the connection closed with a FIN, which
// go-redis retries) is not sent again: an Increment of 5 by 2 fails and
// leaves 7, a CompareAndSwap and an Add fail and leave their values, a
// Delete and a DeleteMulti fail and the key is gone. go-redis resent them: the Increment
// returned 9 and stored 9 (the delta added twice), the CompareAndSwap
// reported a conflict and the Add ErrNotStored although both had stored
// their values, and the Delete and DeleteMulti ErrNotFound.
func TestRetryingClientAppliesOnce(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	proxy := hostile.Start(t, p.Addr, hostile.RESPFramer)
	client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), MaxRetries: 3, ContextTimeoutEnabled: true,
		Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { client.Close() })
	b, err := NewFromClient(client, WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	// lose closes the connection, with a FIN, instead of the next reply.
	lose := func() {
		var once atomic.Bool
		proxy.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
			if once.CompareAndSwap(false, true) {
				c.Close()
				return nil
			}
			return c.Write(reply)
		}))
	}
	raw := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	t.Cleanup(func() { raw.Close() })

	// The scripts in the server's cache, so that the lost replies are the
	// writes' (not NOSCRIPT's).
	if err := b.Set(ctx, backend.Item{Key: "n", Value: []byte("5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Increment(ctx, "n", 0); err != nil {
		t.Fatal(err)
	}
	it, err := b.Get(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, backend.Item{Key: "n", Value: []byte("5"), CAS: it.CAS}); err != nil {
		t.Fatal(err)
	}
	lose() // connected: the next reply is the Increment's
	n, err := b.Increment(ctx, "n", 2)
	if err == nil {
		t.Errorf("increment whose reply was lost: %d, no error", n)
	}
	if it, err := b.Get(ctx, "n"); err != nil || string(it.Value) != "7" {
		t.Errorf("after an increment of 5 by 2 whose reply was lost: %q, %v; want 7 (applied once)", it.Value, err)
	}

	it, err = b.Get(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	lose() // the Get connected: the next reply is the CAS's
	err = b.CompareAndSwap(ctx, backend.Item{Key: "n", Value: []byte("cas"), CAS: it.CAS})
	if err == nil || errors.Is(err, backend.ErrCASConflict) {
		t.Errorf("cas whose reply was lost: %v, want an error of the lost reply, not a conflict", err)
	}
	if it, err := b.Get(ctx, "n"); err != nil || string(it.Value) != "cas" {
		t.Errorf("after a cas whose reply was lost: %q, %v; want cas", it.Value, err)
	}

	lose() // the Get connected: the next reply is the Add's
	err = b.Add(ctx, backend.Item{Key: "a", Value: []byte("x")})
	if err == nil || errors.Is(err, backend.ErrNotStored) {
		t.Errorf("add whose reply was lost: %v, want an error of the lost reply, not ErrNotStored", err)
	}

	if it, err := b.Get(ctx, "a"); err != nil || string(it.Value) != "x" {
		t.Errorf("after an add whose reply was lost: %q, %v; want x", it.Value, err)
	}
	lose() // the Get connected: the next reply is the DEL's
	err = b.Delete(ctx, "a")
	if err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Errorf("delete whose reply was lost: %v, want an error of the lost reply, not ErrNotFound", err)
	}
	if n, err := raw.Exists(ctx, "a").Result(); err != nil || n != 0 {
		t.Errorf("after a delete whose reply was lost: exists %d, %v", n, err)
	}

	if err := b.Set(ctx, backend.Item{Key: "d", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	lose() // the Set connected: the next reply is the DeleteMulti's
	err = b.DeleteMulti(ctx, []string{"d"})
	if _, perKey := backend.KeyErrors(err); err == nil || perKey {
		t.Errorf("deletemulti whose reply was lost: %v, want an error of the lost reply (outcome unknown), not ErrNotFound", err)
	}
	if n, err := raw.Exists(ctx, "d").Result(); err != nil || n != 0 {
		t.Errorf("after a deletemulti whose reply was lost: exists %d, %v", n, err)
	}
}
