package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/memdicttest"
)

// readOnlyRefresh is the generation refresh of the read-only Dicts below:
// short, so that they follow a writer's generation quickly.
const readOnlyRefresh = 20 * time.Millisecond

// checkReadOnly checks a read-only Dict ro on a namespace without a
// generation key, whose keys the writer w (on the same data) then stores:
// ro reads misses and lists nothing, not errors (before, every Lookup and
// Keys failed with the refused add of the generation); its writes fail,
// naming the prefix and the refusal, and store nothing (raw counts the
// server's keys); once w stores a value, ro reads it within a refresh.
func checkReadOnly(t *testing.T, ro, w *memdict.Dict[string], prefix string, raw func() int) {
	t.Helper()
	ctx := context.Background()
	if v, ok, err := ro.Lookup(ctx, "k"); err != nil || ok {
		t.Fatalf("read-only Lookup = %q, %v, %v; want a miss", v, ok, err)
	}
	for k, err := range ro.Keys(ctx) {
		t.Fatalf("read-only Keys: %q, %v; want none", k, err)
	}
	err := ro.Store(ctx, "k", "lost")
	if !errors.Is(err, memdict.ErrWriteRefused) || !strings.Contains(err.Error(), fmt.Sprintf("%q", prefix)) {
		t.Fatalf("read-only Store: %v; want ErrWriteRefused naming prefix %q", err, prefix)
	}
	t.Logf("read-only Store: %v", err)
	checkNoInternalKey(t, "Store", err.Error())
	if _, err := ro.Add(ctx, "k", "lost"); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("read-only Add: %v; want ErrWriteRefused", err)
	}
	if err := ro.PutMulti(ctx, map[string]string{"k": "lost"}); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("read-only PutMulti: %v; want ErrWriteRefused", err)
	}
	if n := raw(); n != 0 {
		t.Fatalf("the server holds %d keys after the read-only Dict's writes, want none", n)
	}

	if err := w.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok, err := ro.Lookup(ctx, "k")
		if err != nil {
			t.Fatalf("read-only Lookup after the write: %v", err)
		}
		if ok && v == "v" {
			break
		}
		if ok || time.Now().After(deadline) {
			t.Fatalf("read-only Lookup after the write = %q, %v; want the writer's %q", v, ok, "v")
		}
		time.Sleep(readOnlyRefresh)
	}
	var keys []string
	for k, err := range ro.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("read-only Keys after the write: %q, want [k]", keys)
	}
	g, _ := ro.Generation(ctx)
	if wg, _ := w.Generation(ctx); g != wg {
		t.Fatalf("read-only Dict's generation %d, the writer's %d", g, wg)
	}
}

// A Redis ACL user that may only read (NOPERM on the add of the
// generation), on a namespace without a generation key.
func TestGenerationReadOnlyUser(t *testing.T) {
	p := testserver.Redis(t, "--user", "rw", "on", ">rwpw", "~*", "&*", "+@all",
		"--user", "ro", "on", ">ropw", "~*", "&*", "+@read", "+@connection",
		"--user", "default", "off")
	rc := goredis.NewClient(&goredis.Options{Addr: p.Addr, Username: "rw", Password: "rwpw"})
	t.Cleanup(func() { rc.Close() })
	ro := newDict[string](t, openURL(t, "redis://ro:ropw@"+p.Addr+"/0"), "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	w := newDict[string](t, openURL(t, "redis://rw:rwpw@"+p.Addr+"/0"), "p")
	checkReadOnly(t, ro, w, "p", func() int { return int(rc.DBSize(context.Background()).Val()) })
}

// A Dict on a Redis replica (READONLY on the add of the generation), on a
// namespace without a generation key, whose writer uses the primary.
func TestGenerationReadOnlyReplica(t *testing.T) {
	ctx := context.Background()
	// No delay before the replica's first sync (5s by default); the
	// replica writes the primary's data to a dump.rdb in its --dir, which
	// a server started later in the same directory would load.
	primary := testserver.Redis(t, "--repl-diskless-sync-delay", "0", "--dir", t.TempDir())
	replica := testserver.Redis(t, "--dir", t.TempDir())
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
	t.Cleanup(func() { rc.Close() })
	if err := rc.Do(ctx, "replicaof", "127.0.0.1", primary.Port).Err(); err != nil {
		t.Fatal(err)
	}
	ro := newDict[string](t, openURL(t, "redis://"+replica.Addr+"/0"), "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	w := newDict[string](t, openURL(t, "redis://"+primary.Addr+"/0"), "p")
	checkReadOnly(t, ro, w, "p", func() int { return int(rc.DBSize(ctx).Val()) })
}

// An ACL that lets a client write data keys but not the generation key:
// the Dict reads the namespace as empty, and its writes fail rather than
// go to a generation no other Dict reads. A failure of another kind (the
// server unavailable) still fails the read, as TestGenerationAddFailsNoGenerationZero
// checks.
func TestGenerationAddRefusedWritesFail(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	defer mem.Close()
	f := memdicttest.NewFaulty(mem)
	f.FailOp(memdicttest.OpAdd, fmt.Errorf("add: %w: NOPERM", backend.ErrWriteRefused))
	ro := newDict[string](t, f, "p", memdict.WithGenerationRefresh(readOnlyRefresh))
	count := func() int {
		n := 0
		for _, err := range backend.Keys(ctx, mem, "") {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	c, err := memdict.NewCounters(f, "c")
	if err != nil {
		t.Fatal(err)
	}
	if n, found, err := c.Get(ctx, "n"); err != nil || found {
		t.Fatalf("counter Get = %d, %v, %v; want none", n, found, err)
	}
	if _, err := c.Add(ctx, "n", 1); !errors.Is(err, memdict.ErrWriteRefused) {
		t.Fatalf("counter Add: %v; want ErrWriteRefused", err)
	}
	v, err := ro.GetOrLoad(ctx, "g", func(context.Context, string) (string, error) { return "loaded", nil })
	if err != nil || v != "loaded" {
		t.Fatalf("GetOrLoad = %q, %v; want the loaded value", v, err)
	}
	checkReadOnly(t, ro, newDict[string](t, mem, "p"), "p", count)
}
