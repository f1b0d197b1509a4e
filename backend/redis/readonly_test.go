package redis

import (
	"context"
	"errors"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// A write the server refuses to this client, to an ACL user that may only
// read (NOPERM) or on a replica (READONLY), wraps backend.ErrWriteRefused,
// which memdict's Dict takes as "this client may not write" (a reader of a
// namespace without a generation key); a refused read does not, nor does a
// wrong password.
func TestWriteRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testserver.Redis(t, "--user", "rw", "on", ">rwpw", "~*", "&*", "+@all",
		"--user", "ro", "on", ">ropw", "~*", "&*", "+@read", "+@connection",
		"--user", "wo", "on", ">wopw", "~*", "&*", "+@connection", "+set",
		"--user", "default", "off")
	rw := mustOpen(t, "redis://rw:rwpw@"+p.Addr)
	if err := rw.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	ro := mustOpen(t, "redis://ro:ropw@"+p.Addr)
	if it, err := ro.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("read-only user: get %q, %v", it.Value, err)
	}
	err := ro.Add(ctx, backend.Item{Key: "new", Value: []byte("v")})
	if !errors.Is(err, backend.ErrWriteRefused) || !errors.Is(err, ErrAuth) {
		t.Fatalf("read-only user: add: %v, want ErrWriteRefused and ErrAuth", err)
	}
	t.Logf("add as the read-only user: %v", err)
	if err := ro.Set(ctx, backend.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, backend.ErrWriteRefused) {
		t.Fatalf("read-only user: set: %v, want ErrWriteRefused", err)
	}

	// A refused read is not a refused write.
	wo := mustOpen(t, "redis://wo:wopw@"+p.Addr)
	if _, err := wo.Get(ctx, "k"); !errors.Is(err, ErrAuth) || errors.Is(err, backend.ErrWriteRefused) {
		t.Fatalf("user that may not read: get: %v, want ErrAuth, not ErrWriteRefused", err)
	}
	bad := mustOpen(t, "redis://rw:wrong@"+p.Addr)
	if err := bad.Add(ctx, backend.Item{Key: "new", Value: []byte("v")}); !errors.Is(err, ErrAuth) || errors.Is(err, backend.ErrWriteRefused) {
		t.Fatalf("wrong password: add: %v, want ErrAuth, not ErrWriteRefused", err)
	}

	// A replica answers writes with READONLY.
	// Its --dir takes the dump.rdb of a sync, should one happen.
	replica := testserver.Redis(t, "--dir", t.TempDir())
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
	t.Cleanup(func() { rc.Close() })
	if err := rc.Do(ctx, "replicaof", "127.0.0.1", p.Port).Err(); err != nil {
		t.Fatal(err)
	}
	rb := mustOpen(t, "redis://"+replica.Addr)
	err = rb.Add(ctx, backend.Item{Key: "new", Value: []byte("v")})
	if !errors.Is(err, backend.ErrWriteRefused) || errors.Is(err, ErrAuth) {
		t.Fatalf("replica: add: %v, want ErrWriteRefused", err)
	}
	t.Logf("add on a replica: %v", err)
}
