package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

// deadAddr is a loopback port nothing listens on: connecting to it is
// refused at once.
const deadAddr = "127.0.0.1:1"

// genKey is the backend key of the namespace generation of prefix (no
// site id, the default key length).
func genKey(prefix string) string { return keyspace.MetaKey("", prefix, "gen", 250) }

// dataKey is the backend key of key under prefix at generation 0.
func dataKey(prefix, key string) string {
	k, _ := keyspace.Key(keyspace.Namespace("", prefix, 0, 250), key, 250)
	return k
}

// checkNoInternalKey fails if msg shows the generation key.
func checkNoInternalKey(t *testing.T, what, msg string) {
	t.Helper()
	if strings.Contains(msg, "#!gen") {
		t.Errorf("%s: %q shows the internal generation key", what, msg)
	}
}

// A Dict over a memcached server that is down: the first error leads with
// the operation, the key and the server, and neither shows the internal
// generation key nor talks of the generation (with one server, the server
// is the problem).
func TestGenerationErrorOneDownServer(t *testing.T) {
	ctx := context.Background()
	be, err := memcached.New([]string{deadAddr}, memcached.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d := newDict[string](t, be, "foo")

	_, _, err = d.Lookup(ctx, "foo")
	if err == nil {
		t.Fatal("Lookup over a down server: no error")
	}
	msg := err.Error()
	want := `memdict: get "foo": server ` + deadAddr + ` unavailable: `
	if !strings.HasPrefix(msg, want) {
		t.Errorf("Lookup error %q: want it to start %q", msg, want)
	}
	checkNoInternalKey(t, "Lookup", msg)
	if strings.Contains(msg, "generation") {
		t.Errorf("Lookup error %q talks of the generation, which is not the problem", msg)
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Lookup error %v does not wrap ErrUnavailable", err)
	}
	var oe *memdict.OpError
	if !errors.As(err, &oe) || oe.Op != "get" || oe.Key != "foo" {
		t.Errorf("Lookup error %v: errors.As to *OpError gives %+v", err, oe)
	}

	err = d.Store(ctx, "bar", "v")
	if err == nil || !strings.HasPrefix(err.Error(), `memdict: put "bar": server `+deadAddr+` unavailable`) {
		t.Errorf("Store error %v", err)
	} else {
		checkNoInternalKey(t, "Store", err.Error())
	}

	_, err = d.Generation(ctx)
	want = `memdict: namespace generation of prefix "foo": server ` + deadAddr + ` unavailable: `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Generation error %v: want it to start %q", err, want)
	} else {
		checkNoInternalKey(t, "Generation", err.Error())
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Generation error %v does not wrap ErrUnavailable", err)
	}
	if !errors.As(err, &oe) || oe.Op != "generation" || oe.Key != "" {
		t.Errorf("Generation error %v: errors.As to *OpError gives %+v, want Op generation", err, oe)
	}

	err = d.Clear(ctx)
	want = `memdict: clear "foo": server ` + deadAddr + ` unavailable: `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Clear error %v: want it to start %q", err, want)
	} else {
		checkNoInternalKey(t, "Clear", err.Error())
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Clear error %v does not wrap ErrUnavailable", err)
	}
}

// twoServers returns a Client over a live memcached and deadAddr, a prefix
// whose generation key is on deadAddr, a key of that prefix on the live
// server and one on deadAddr (at generation 0).
func twoServers(t *testing.T) (c *memcached.Client, live, prefix, okKey, downKey string) {
	t.Helper()
	mc := testserver.Memcached(t)
	c, err := memcached.New([]string{mc.Addr, deadAddr}, memcached.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 0; prefix == ""; i++ {
		if p := fmt.Sprintf("two%d", i); c.ServerFor(genKey(p)) == deadAddr {
			prefix = p
		}
	}
	for i := 0; okKey == "" || downKey == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		switch c.ServerFor(dataKey(prefix, k)) {
		case mc.Addr:
			okKey = cmp(okKey, k)
		case deadAddr:
			downKey = cmp(downKey, k)
		}
	}
	return c, mc.Addr, prefix, okKey, downKey
}

// cmp returns old unless it is "".
func cmp(old, k string) string {
	if old != "" {
		return old
	}
	return k
}

// With two servers, the generation key's down and the data key's up, the
// error says that the generation could not be read, and where; for a key
// on the down server, the server is the problem.
func TestGenerationErrorNamedWhenItIsTheProblem(t *testing.T) {
	ctx := context.Background()
	c, _, prefix, okKey, downKey := twoServers(t)
	d := newDict[string](t, c, prefix)

	err := d.Store(ctx, okKey, "v")
	want := fmt.Sprintf(`memdict: put %q: the namespace generation of prefix %q (on %s) could not be read: server unavailable`, okKey, prefix, deadAddr)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Store of a key on the live server: %v; want it to start %q", err, want)
	} else {
		checkNoInternalKey(t, "Store", err.Error())
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Store error %v does not wrap ErrUnavailable", err)
	}

	_, _, err = d.Lookup(ctx, downKey)
	want = fmt.Sprintf(`memdict: get %q: server %s unavailable: `, downKey, deadAddr)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Lookup of a key on the down server: %v; want it to start %q", err, want)
	} else {
		checkNoInternalKey(t, "Lookup", err.Error())
	}

	// A PutMulti of both: each key is worded by its own server.
	err = d.PutMulti(ctx, map[string]string{okKey: "a", downKey: "b"})
	var me *memdict.MultiError
	if !errors.As(err, &me) || len(me.Failed) != 2 {
		t.Fatalf("PutMulti: %v, want a MultiError of 2 keys", err)
	}
	msg := err.Error()
	checkNoInternalKey(t, "PutMulti", msg)
	for _, w := range []string{
		fmt.Sprintf(`put %q: the namespace generation of prefix %q (on %s) could not be read: server unavailable`, okKey, prefix, deadAddr),
		fmt.Sprintf(`put %q: server %s unavailable`, downKey, deadAddr),
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("PutMulti error %q: want it to contain %q", msg, w)
		}
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("PutMulti error %v does not wrap ErrUnavailable", err)
	}
}

// The same through a fault backend: both memcached servers answer, but
// the generation key's reads fail. The error names the generation, the
// server that holds it (found through Faulty's Unwrap) and the injected
// cause, never the key.
func TestGenerationErrorFaultyGenerationKey(t *testing.T) {
	ctx := context.Background()
	mc1, mc2 := testserver.Memcached(t), testserver.Memcached(t)
	c, err := memcached.New([]string{mc1.Addr, mc2.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := memdicttest.NewFaulty(c)
	const prefix = "faulty"
	gk := genKey(prefix)
	f.FailKeys(func(k string) bool { return k == gk }, nil)
	genAt := c.ServerFor(gk)
	var okKey string
	for i := 0; okKey == ""; i++ {
		if k := fmt.Sprintf("k%d", i); c.ServerFor(dataKey(prefix, k)) != genAt {
			okKey = k
		}
	}
	d := newDict[string](t, f, prefix)
	_, _, err = d.Lookup(ctx, okKey)
	want := fmt.Sprintf(`memdict: get %q: the namespace generation of prefix %q (on %s) could not be read: server unavailable: memdicttest: injected fault in get`, okKey, prefix, genAt)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Lookup: %v; want it to start %q", err, want)
	} else {
		checkNoInternalKey(t, "Lookup", err.Error())
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Lookup error %v does not wrap ErrUnavailable", err)
	}
	// Once the fault is gone the Dict works.
	f.ClearFaults()
	if err := d.Store(ctx, okKey, "v"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := d.Lookup(ctx, okKey); err != nil || !ok || v != "v" {
		t.Errorf("Lookup after the fault = %q, %v, %v", v, ok, err)
	}
}

// Over a backend that cannot say where keys live, a failed generation
// read is worded as the server's failure, with the driver's cause and
// without the internal key, even where the driver's message names it.
func TestGenerationErrorNoLocator(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	const prefix = "nl"
	gk := genKey(prefix)
	cause := fmt.Errorf("store: get %q: %w: connection reset", gk, backend.ErrUnavailable)
	f.FailKeys(func(k string) bool { return k == gk }, cause)
	d := newDict[string](t, f, prefix)
	_, _, err := d.Lookup(ctx, "a")
	want := `memdict: get "a": server unavailable: `
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), ": connection reset") {
		t.Errorf("Lookup: %v; want it to start %q and end with the cause", err, want)
	} else {
		checkNoInternalKey(t, "Lookup", err.Error())
	}
	if !errors.Is(err, memdict.ErrUnavailable) || !errors.Is(err, cause) {
		t.Errorf("Lookup error %v does not wrap ErrUnavailable and the cause", err)
	}
}
