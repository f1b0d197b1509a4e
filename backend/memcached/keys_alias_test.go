//go:build unix

package memcached_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// TestGetMultiKeysReusedAfterContextEnds: the keys slice of a GetMulti on
// one server is the caller's again once the call has returned, even when
// ctx ended with the request still in flight (abandoned, its reply read
// later by the connection's reader). A caller that then reuses it (a
// buffer of its own) does not change what the reader matches the reply
// against: else the reply no longer fits the keys, the connection is
// closed as a protocol error, and another caller's Get queued on it
// fails. Run with -race, the reuse is a data race too.
func TestGetMultiKeysReusedAfterContextEnds(t *testing.T) {
	procs, addrs := startMemcacheds(t, 1)
	c, err := memcached.New(addrs, memcached.WithTimeout(5*time.Second), memcached.WithConns(1), memcached.WithFailureLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if err := c.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := procs[0].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { procs[0].Signal(syscall.SIGCONT) })
	waitStopped(t, procs[0].Pid())
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.GetMulti(cctx, keys)
	cancel()
	if err == nil {
		t.Fatal("getmulti of a stopped server: no error")
	}
	keys[0], keys[1], keys[2] = "x", "y", "z" // the caller's buffer, reused
	// A Get queued behind the abandoned request on the one connection.
	got := make(chan error, 1)
	go func() {
		it, err := c.Get(ctx, "a")
		if err == nil && string(it.Value) != "a" {
			err = errWrongValue(it.Value)
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := procs[0].Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("get queued behind a getmulti whose caller reused its keys: %v", err)
	}
}

type errWrongValue []byte

func (e errWrongValue) Error() string { return "wrong value " + string(e) }
