package memcached_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// A multi-key write on a ring where one server cannot be connected to
// (nothing is sent to it) names that server's keys, as GetMulti does, and
// stores the others: it failed as a whole with the dial's error, so that
// a Dict's PutMulti reported every key as not stored, those stored on the
// live servers too.
func TestMultiWritesServerRefusingConnections(t *testing.T) {
	_, addrs := startMemcacheds(t, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c, err := memcached.New(append(addrs, dead), memcached.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("dial:%d", i)
	}
	check := func(what string, err error) {
		t.Helper()
		failed := failedKeys(t, err)
		for _, k := range keys {
			onDead := c.ServerFor(k) == dead
			switch {
			case onDead && (!errors.Is(failed[k], backend.ErrUnavailable) || !strings.Contains(failed[k].Error(), dead)):
				t.Errorf("%s: key %q on the dead server: %v, want unavailable naming %s", what, k, failed[k], dead)
			case !onDead && failed[k] != nil:
				t.Errorf("%s: key %q on a live server named as failed: %v", what, k, failed[k])
			}
		}
	}
	check("SetMulti", c.SetMulti(ctx, itemsOf(keys)))
	var live []string
	for _, k := range keys {
		if c.ServerFor(k) != dead {
			live = append(live, k)
		}
	}
	got, _ := c.GetMulti(ctx, live)
	if len(got) != len(live) {
		t.Errorf("GetMulti of the live servers' keys: %d of %d found", len(got), len(live))
	}
	check("DeleteMulti", c.DeleteMulti(ctx, keys))
}
