package memcached_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/leakcheck"
	"github.com/memdict/memdict/internal/testserver"
)

func TestMain(m *testing.M) {
	// The parallel tests here mostly wait on memcached's clock, which
	// ticks once a second (the conformance suites' TTL subtests, four
	// suites of them): at the default -parallel (GOMAXPROCS, 2 in CI)
	// they queued behind each other for minutes with the CPUs idle.
	testserver.DefaultParallel(6)
	leakcheck.VerifyTestMain(m)
}

// newClient starts a memcached and opens a Client on it, closed at the end
// of the test.
func newClient(t *testing.T, opts ...memcached.Option) (*memcached.Client, *testserver.Process) {
	t.Helper()
	p := testserver.Memcached(t)
	c, err := memcached.New([]string{p.Addr}, append([]memcached.Option{memcached.WithTimeout(testTimeout)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

func TestBasics(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	if _, err := c.Get(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) || !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, "k")
	if err != nil || string(it.Value) != "v1" || it.CAS == 0 {
		t.Fatalf("Get = %+v, %v", it, err)
	}
	if err := c.Add(ctx, backend.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, backend.ErrNotStored) {
		t.Fatalf("Add existing: %v", err)
	}
	if err := c.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v2"), CAS: it.CAS}); err != nil {
		t.Fatalf("CAS: %v", err)
	}
	if err := c.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v3"), CAS: it.CAS}); !errors.Is(err, backend.ErrCASConflict) {
		t.Fatalf("stale CAS: %v", err)
	}
	if err := c.CompareAndSwap(ctx, backend.Item{Key: "absent", Value: []byte("v3"), CAS: 1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("CAS absent: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "n", Value: []byte("10")}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Increment(ctx, "n", 5); err != nil || v != 15 {
		t.Fatalf("incr = %d, %v", v, err)
	}
	if v, err := c.Increment(ctx, "n", -20); err != nil || v != 0 {
		t.Fatalf("decr below 0 = %d, %v", v, err)
	}
	if _, err := c.Increment(ctx, "k", 1); !errors.Is(err, backend.ErrNotNumeric) {
		t.Fatalf("incr non-numeric: %v", err)
	}
	if _, err := c.Increment(ctx, "absent", 1); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("incr absent: %v", err)
	}
	if err := c.Touch(ctx, "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch(ctx, "absent", time.Hour); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("touch absent: %v", err)
	}
	// memcached pads a number that a decrement shortened with spaces.
	m, err := c.GetMulti(ctx, []string{"k", "n", "absent"})
	if err != nil || len(m) != 2 || string(m["k"].Value) != "v2" || strings.TrimSpace(string(m["n"].Value)) != "0" {
		t.Fatalf("GetMulti = %v, %v", m, err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("delete absent: %v", err)
	}
}

func TestInvalidInput(t *testing.T) {
	c, _ := newClient(t, memcached.WithMaxValueSize(1000))
	ctx := context.Background()
	for _, key := range []string{"", "has space", "ctl\x01", "nl\n", strings.Repeat("k", 251), "del\x7f"} {
		if _, err := c.Get(ctx, key); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want invalid key", key, err)
		}
		if err := c.Set(ctx, backend.Item{Key: key, Value: []byte("v")}); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("Set(%q): %v, want invalid key", key, err)
		}
		if _, err := c.GetMulti(ctx, []string{"ok", key}); !errors.Is(err, backend.ErrInvalidKey) {
			t.Errorf("GetMulti(%q): %v, want invalid key", key, err)
		}
	}
	if _, err := c.Get(ctx, strings.Repeat("k", 250)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("250-byte key: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "big", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	err := c.Set(ctx, backend.Item{Key: "big", Value: make([]byte, 1001)})
	if !errors.Is(err, backend.ErrValueTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	t.Logf("oversized value: %v", err)
	if it, err := c.Get(ctx, "big"); err != nil || string(it.Value) != "old" {
		t.Errorf("after refused Set: %q, %v", it.Value, err)
	}
	if err := c.Set(ctx, backend.Item{Key: "big", Value: make([]byte, 1000)}); err != nil {
		t.Errorf("value at the limit: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "ttl", Value: []byte("v"), TTL: -time.Second}); !errors.Is(err, backend.ErrInvalidTTL) {
		t.Errorf("negative TTL: %v", err)
	}
}

// TestServerRefusesLargeValue: a server with a smaller -I than the Client's
// max_value_size refuses the value itself; that is ErrValueTooLarge too.
func TestServerRefusesLargeValue(t *testing.T) {
	p := testserver.Memcached(t, "-I", "1m")
	c, err := memcached.New([]string{p.Addr}, memcached.WithMaxValueSize(4<<20), memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Set(context.Background(), backend.Item{Key: "big", Value: make([]byte, 2<<20)})
	if !errors.Is(err, backend.ErrValueTooLarge) {
		t.Fatalf("Set 2 MiB on -I 1m: %v", err)
	}
	// The connection was dropped; the next call works.
	if err := c.Set(context.Background(), backend.Item{Key: "small", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	c, p := newClient(t)
	ctx := context.Background()
	// Sub-second TTLs round up to one second: the item is there at once,
	// unless memcached's clock ticked meanwhile (see serverClock).
	for attempt := 0; ; attempt++ {
		key := fmt.Sprint("short", attempt)
		before := serverClock(t, p.Addr)
		if err := c.Set(ctx, backend.Item{Key: key, Value: []byte("v"), TTL: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Get(ctx, key)
		if err == nil {
			break
		}
		if serverClock(t, p.Addr) == before || attempt == 4 {
			t.Fatalf("1ms TTL item gone at once (%d attempts): %v", attempt+1, err)
		}
	}
	// 45 days must mean 45 days, not an absolute time in 1970.
	for _, ttl := range []time.Duration{29 * 24 * time.Hour, 30 * 24 * time.Hour, 45 * 24 * time.Hour, 365 * 24 * time.Hour} {
		key := fmt.Sprint("long", ttl.Hours())
		if err := c.Set(ctx, backend.Item{Key: key, Value: []byte("v"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, key); err != nil {
			t.Errorf("TTL %v: item gone at once: %v", ttl, err)
		}
		if err := c.Touch(ctx, key, ttl); err != nil {
			t.Errorf("Touch %v: %v", ttl, err)
		}
		if _, err := c.Get(ctx, key); err != nil {
			t.Errorf("TTL %v after touch: item gone: %v", ttl, err)
		}
	}
	// Check what the server recorded with metadump: exp is absolute.
	want := time.Now().Add(45 * 24 * time.Hour).Unix()
	exp := metadumpExp(t, p.Addr, "long1080")
	if exp < want-5 || exp > want+5 {
		t.Errorf("45-day item expires at %d, want about %d", exp, want)
	}
	if err := c.Set(ctx, backend.Item{Key: "expires", Value: []byte("v"), TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := c.Get(ctx, "expires"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("1s item after 2.1s: %v", err)
	}
}

// metadumpExp returns the exp field memcached reports for key.
func metadumpExp(t *testing.T, addr, key string) int64 {
	t.Helper()
	// "metadump hash" walks the hash table: "all" walks the LRU lists and
	// misses an item the LRU maintainer moves meanwhile (the Gets and
	// Touches above bump these).
	out := rawCommand(t, addr, "lru_crawler metadump hash\r\n", "END\r\n")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "key="+key+" ") {
			var exp int64
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "exp="); ok {
					fmt.Sscan(v, &exp)
				}
			}
			return exp
		}
	}
	t.Fatalf("key %s not in metadump:\n%s", key, out)
	return 0
}

func TestBinaryValues(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	v := []byte("a\r\nEND\r\n\x00\xff")
	if err := c.Set(ctx, backend.Item{Key: "bin", Value: v}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, backend.Item{Key: "empty", Value: nil}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, "bin")
	if err != nil || !bytes.Equal(it.Value, v) {
		t.Fatalf("Get = %q, %v", it.Value, err)
	}
	it, err = c.Get(ctx, "empty")
	if err != nil || len(it.Value) != 0 {
		t.Fatalf("Get empty = %q, %v", it.Value, err)
	}
	// GetMulti reads through the text protocol's gets, which cannot tell
	// an empty value from a lease placeholder: it asks again with mg
	// (a placeholder is a miss: TestLeaseWinBusy).
	m, err := c.GetMulti(ctx, []string{"bin", "empty", "absent"})
	if err != nil || len(m) != 2 || !bytes.Equal(m["bin"].Value, v) || len(m["empty"].Value) != 0 || m["empty"].CAS == 0 {
		t.Fatalf("GetMulti(bin, empty, absent) = %v, %v", m, err)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := c.Set(ctx, backend.Item{Key: "1mib", Value: big}); err != nil {
		t.Fatalf("1 MiB value: %v", err)
	}
	it, err = c.Get(ctx, "1mib")
	if err != nil || !bytes.Equal(it.Value, big) {
		t.Fatalf("Get 1 MiB = %d bytes, %v", len(it.Value), err)
	}
}

func TestClose(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: "k"}); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
	if _, err := c.GetMulti(ctx, []string{"k"}); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("GetMulti after Close: %v", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Ping after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestFlagsInItemSize: memcached gives an item with client flags 4 more
// bytes (items.c, item_make_header), so the largest value that fits
// item_size_max with flags 0 is refused with flags before it is sent,
// leaving the stored value in place (memcached would drop it on a set
// too large), and one 4 bytes smaller is stored.
func TestFlagsInItemSize(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t, "-I", "1m")
	c, err := memcached.New([]string{p.Addr}, memcached.WithMaxValueSize(4<<20), memcached.WithTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const key = "k"
	// item_size_max less the item header (48), the key and its NUL, the
	// value's CRLF and the CAS field.
	largest := 1<<20 - 48 - (len(key) + 1) - 2 - 8
	if err := c.Set(ctx, backend.Item{Key: key, Value: make([]byte, largest)}); err != nil {
		t.Fatalf("the largest value without flags: %v", err)
	}
	if err := c.Set(ctx, backend.Item{Key: key, Value: []byte("old"), Flags: 1}); err != nil {
		t.Fatal(err)
	}
	err = c.Set(ctx, backend.Item{Key: key, Value: make([]byte, largest), Flags: 1})
	if !errors.Is(err, backend.ErrValueTooLarge) {
		t.Fatalf("the same value with flags: %v, want ErrValueTooLarge", err)
	}
	if it, err := c.Get(ctx, key); err != nil || string(it.Value) != "old" || it.Flags != 1 {
		t.Fatalf("after the refused Set: %q with flags %d, %v; want \"old\" with flags 1", it.Value, it.Flags, err)
	}
	if err := c.Set(ctx, backend.Item{Key: key, Value: make([]byte, largest-4), Flags: 1}); err != nil {
		t.Fatalf("4 bytes less with flags: %v", err)
	}
	if it, err := c.Get(ctx, key); err != nil || len(it.Value) != largest-4 || it.Flags != 1 {
		t.Fatalf("read back %d bytes with flags %d, %v", len(it.Value), it.Flags, err)
	}
}

// TestIncrementWideNumber: memcached before 1.6.22 refuses to count a
// number of 2^63 or more ("CLIENT_ERROR cannot increment or decrement
// non-numeric value") when the bytes after the item's data in its slab
// chunk, left there by an earlier item, hold a '-' before a NUL byte: it
// looks for a minus sign with strchr past the data. An item of the same
// size made of dashes, deleted, leaves them there for the next one. The
// driver counts such a number with a compare-and-swap, keeping the
// item's client flags and TTL.
func TestIncrementWideNumber(t *testing.T) {
	t.Parallel()
	c, p := newClient(t)
	ctx := context.Background()
	for i, tc := range []struct {
		value string
		delta int64
		want  uint64
	}{
		{"9223372036854775808", 1<<63 - 1, 1<<64 - 1},
		{"18446744073709551615", -(1 << 63), 1<<63 - 1},
		{"18446744073709551614", 1, 1<<64 - 1},
		{"18446744073709551615", 1, 0}, // wraps
		{"9223372036854775808", -1 << 63, 0},
	} {
		key := fmt.Sprint("wide", i)
		dashes := strings.Repeat("-", len(tc.value)+6)
		rawCommand(t, p.Addr, fmt.Sprintf("ms %s %d F7 T0 O1\r\n%s\r\nmd %s O2\r\n", key, len(dashes), dashes, key), "HD O2")
		if err := c.Set(ctx, backend.Item{Key: key, Value: []byte(tc.value), Flags: 7, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Does the server have the bug? (The driver must count right either way.)
			t.Logf("the server answers ma on %s: %q", tc.value, rawCommand(t, p.Addr, "ma "+key+" D0\r\nmn\r\n", "MN"))
		}
		got, err := c.Increment(ctx, key, tc.delta)
		if err != nil || got != tc.want {
			t.Fatalf("Increment(%s, %d) = %d, %v; want %d", tc.value, tc.delta, got, err, tc.want)
		}
		reply := rawCommand(t, p.Addr, "mg "+key+" v f t\r\nmn\r\n", "MN")
		lines := strings.Split(reply, "\r\n")
		var flags, ttl int64
		for _, f := range strings.Fields(lines[0])[2:] {
			switch f[0] {
			case 'f':
				fmt.Sscan(f[1:], &flags)
			case 't':
				fmt.Sscan(f[1:], &ttl)
			}
		}
		if strings.TrimRight(lines[1], " ") != fmt.Sprint(tc.want) || flags != 7 || ttl < 3590 || ttl > 3601 {
			t.Errorf("after Increment(%s, %d): %q; want the value %d, client flags 7 and a TTL of about 3600 s", tc.value, tc.delta, reply, tc.want)
		}
	}
	// A value that is no number stays refused.
	if err := c.Set(ctx, backend.Item{Key: "minus", Value: []byte("-9223372036854775808")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Increment(ctx, "minus", 1); !errors.Is(err, backend.ErrNotNumeric) {
		t.Errorf("Increment of -9223372036854775808: %v, want ErrNotNumeric", err)
	}
}
