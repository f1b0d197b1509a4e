package memory_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/testing/backendtest"
)

// TestConformance runs the shared backend suite twice: on a FakeClock that
// the suite advances, and on the system clock with real sleeps.
func TestConformance(t *testing.T) {
	t.Run("FakeClock", func(t *testing.T) {
		clock := memory.NewFakeClock(t0)
		backendtest.Run(t, func(t *testing.T) backend.Backend {
			return memory.New(memory.WithClock(clock))
		}, backendtest.Options{Advance: clock.Advance})
	})
	t.Run("RealClock", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backend.Backend {
			be, err := backend.Open(t.Context(), "mem://?max_bytes=67108864")
			if err != nil {
				t.Fatal(err)
			}
			return be
		}, backendtest.Options{TTLGranularity: 20 * time.Millisecond})
	})
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// newStore returns a Store on a FakeClock, closed at the end of the test.
func newStore(t testing.TB, opts ...memory.Option) (*memory.Store, *memory.FakeClock) {
	t.Helper()
	clock := memory.NewFakeClock(t0)
	s := memory.New(append([]memory.Option{memory.WithClock(clock)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s, clock
}

func mustSet(t testing.TB, s *memory.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(context.Background(), backend.Item{Key: key, Value: []byte(value), TTL: ttl}); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustGet(t testing.TB, s *memory.Store, key string) backend.Item {
	t.Helper()
	it, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return it
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func stat(t testing.TB, s *memory.Store, name string) int64 {
	t.Helper()
	ns, err := s.ServerStats(context.Background())
	if err != nil || len(ns) != 1 {
		t.Fatalf("ServerStats: %v, %d nodes", err, len(ns))
	}
	v, ok := ns[0].Stats[name]
	if !ok {
		t.Fatalf("no stat %q in %v", name, ns[0].Stats)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("stat %s=%q: %v", name, v, err)
	}
	return n
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ttl     time.Duration
		advance time.Duration
		live    bool
	}{
		{"no TTL after a year", 0, 365 * 24 * time.Hour, true},
		{"just before expiry", 10 * time.Second, 10*time.Second - time.Nanosecond, true},
		{"exactly at expiry", 10 * time.Second, 10 * time.Second, false},
		{"after expiry", 10 * time.Second, time.Hour, false},
		{"one nanosecond TTL", time.Nanosecond, time.Nanosecond, false},
		{"huge TTL", time.Duration(math.MaxInt64), 100 * 365 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, op := range []string{"set", "add", "touch"} {
				s, clock := newStore(t)
				var err error
				switch op {
				case "set":
					err = s.Set(ctx, backend.Item{Key: "k", Value: []byte("v"), TTL: tt.ttl})
				case "add":
					err = s.Add(ctx, backend.Item{Key: "k", Value: []byte("v"), TTL: tt.ttl})
				case "touch":
					mustSet(t, s, "k", "v", time.Second)
					err = s.Touch(ctx, "k", tt.ttl)
				}
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				clock.Advance(tt.advance)
				_, err = s.Get(ctx, "k")
				if tt.live && err != nil {
					t.Errorf("%s: Get after %v: %v, want the item", op, tt.advance, err)
				}
				if !tt.live && !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("%s: Get after %v: %v, want ErrNotFound", op, tt.advance, err)
				}
				if got, want := s.Len(), map[bool]int{true: 1, false: 0}[tt.live]; got != want {
					t.Errorf("%s: Len = %d, want %d", op, got, want)
				}
			}
		})
	}
}

func TestExpiredKeyIsAbsentForEveryOperation(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	setup := func() uint64 {
		mustSet(t, s, "k", "5", time.Second)
		cas := mustGet(t, s, "k").CAS
		clock.Advance(time.Second)
		return cas
	}
	setup()
	if err := s.Add(ctx, backend.Item{Key: "k", Value: []byte("new")}); err != nil {
		t.Fatalf("Add on expired key: %v", err)
	}
	if got := string(mustGet(t, s, "k").Value); got != "new" {
		t.Fatalf("after Add on expired key: %q", got)
	}
	cas := setup()
	wantErr(t, "CompareAndSwap on expired key", s.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("x"), CAS: cas}), backend.ErrNotFound)
	setup()
	wantErr(t, "Delete on expired key", s.Delete(ctx, "k"), backend.ErrNotFound)
	setup()
	wantErr(t, "Touch on expired key", s.Touch(ctx, "k", time.Hour), backend.ErrNotFound)
	setup()
	_, err := s.Increment(ctx, "k", 1)
	wantErr(t, "Increment on expired key", err, backend.ErrNotFound)
	setup()
	m, err := s.GetMulti(ctx, []string{"k"})
	if err != nil || len(m) != 0 {
		t.Fatalf("GetMulti on expired key: %v, %v", m, err)
	}
}

func TestNegativeTTL(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mustSet(t, s, "k", "old", 0)
	it := backend.Item{Key: "k", Value: []byte("new"), TTL: -time.Second, CAS: mustGet(t, s, "k").CAS}
	wantErr(t, "Set", s.Set(ctx, it), backend.ErrInvalidTTL)
	wantErr(t, "Add", s.Add(ctx, backend.Item{Key: "other", TTL: -1}), backend.ErrInvalidTTL)
	wantErr(t, "CompareAndSwap", s.CompareAndSwap(ctx, it), backend.ErrInvalidTTL)
	wantErr(t, "Touch", s.Touch(ctx, "k", -1), backend.ErrInvalidTTL)
	if got := string(mustGet(t, s, "k").Value); got != "old" {
		t.Fatalf("value changed by rejected writes: %q", got)
	}
}

func TestCASTokens(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	seen := map[uint64]string{}
	record := func(what, key string) uint64 {
		t.Helper()
		c := mustGet(t, s, key).CAS
		if c == 0 {
			t.Fatalf("%s: CAS token is 0", what)
		}
		if prev, dup := seen[c]; dup {
			t.Fatalf("%s: CAS token %d already given after %s", what, c, prev)
		}
		seen[c] = what
		return c
	}
	mustSet(t, s, "a", "1", 0)
	c := record("set a", "a")
	mustSet(t, s, "b", "1", 0)
	record("set b", "b")
	mustSet(t, s, "a", "1", 0) // same value: still a new version
	c2 := record("set a again", "a")
	wantErr(t, "CAS with stale token", s.CompareAndSwap(ctx, backend.Item{Key: "a", Value: []byte("2"), CAS: c}), backend.ErrCASConflict)
	if err := s.CompareAndSwap(ctx, backend.Item{Key: "a", Value: []byte("2"), CAS: c2}); err != nil {
		t.Fatalf("CAS with fresh token: %v", err)
	}
	c3 := record("cas a", "a")
	if _, err := s.Increment(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	c4 := record("incr a", "a")
	wantErr(t, "CAS after Increment", s.CompareAndSwap(ctx, backend.Item{Key: "a", Value: []byte("x"), CAS: c3}), backend.ErrCASConflict)

	// Touch changes only the expiry, as in memcached 1.6.
	if err := s.Touch(ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "a").CAS; got != c4 {
		t.Fatalf("Touch changed the CAS token from %d to %d", c4, got)
	}
	// Delete and re-add: a new version.
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, backend.Item{Key: "a", Value: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	record("re-add a", "a")
	wantErr(t, "CAS after delete and re-add", s.CompareAndSwap(ctx, backend.Item{Key: "a", Value: []byte("x"), CAS: c4}), backend.ErrCASConflict)
	wantErr(t, "CAS on missing key", s.CompareAndSwap(ctx, backend.Item{Key: "nope", Value: []byte("x"), CAS: c4}), backend.ErrNotFound)

	// A CAS write keeps its own TTL.
	c5 := mustGet(t, s, "a").CAS
	if err := s.CompareAndSwap(ctx, backend.Item{Key: "a", Value: []byte("4"), CAS: c5, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	_, err := s.Get(ctx, "a")
	wantErr(t, "Get after CAS TTL", err, backend.ErrNotFound)
}

func TestAddAndDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.Add(ctx, backend.Item{Key: "k", Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second Add", s.Add(ctx, backend.Item{Key: "k", Value: []byte("second")}), backend.ErrNotStored)
	if got := string(mustGet(t, s, "k").Value); got != "first" {
		t.Fatalf("Add on live key changed the value to %q", got)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second Delete", s.Delete(ctx, "k"), backend.ErrNotFound)
	_, err := s.Get(ctx, "k")
	wantErr(t, "Get after Delete", err, backend.ErrNotFound)
	wantErr(t, "Touch missing", s.Touch(ctx, "k", 0), backend.ErrNotFound)
}

func TestIncrement(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		value   string
		delta   int64
		want    uint64
		wantErr error
	}{
		{"0", 1, 1, nil},
		{"41", 1, 42, nil},
		{"10", -3, 7, nil},
		{"10", -10, 0, nil},
		{"5", -10, 0, nil}, // floor at 0
		{"5", math.MinInt64, 0, nil},
		{"18446744073709551615", 1, 0, nil}, // wrap at 2^64
		{"18446744073709551615", 2, 1, nil},
		{"18446744073709551615", -1, 18446744073709551614, nil},
		{"18446744073709551614", 0, 18446744073709551614, nil},
		{"9223372036854775808", math.MaxInt64, 18446744073709551615, nil},
		{"00000000000000000007", 1, 8, nil}, // 20 digits, leading zeros
		{"007", 0, 7, nil},
		{"18446744073709551616", 1, 0, backend.ErrNotNumeric}, // > max uint64
		{"99999999999999999999", 1, 0, backend.ErrNotNumeric},
		{"000000000000000000001", 1, 0, backend.ErrNotNumeric}, // 21 digits
		{"", 1, 0, backend.ErrNotNumeric},
		{"abc", 1, 0, backend.ErrNotNumeric},
		{"-1", 1, 0, backend.ErrNotNumeric},
		{"+1", 1, 0, backend.ErrNotNumeric},
		{" 1", 1, 0, backend.ErrNotNumeric},
		{"1 ", 1, 0, backend.ErrNotNumeric},
		{"1.5", 1, 0, backend.ErrNotNumeric},
		{"0x10", 1, 0, backend.ErrNotNumeric},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q%+d", tt.value, tt.delta), func(t *testing.T) {
			s, _ := newStore(t)
			mustSet(t, s, "n", tt.value, 0)
			before := mustGet(t, s, "n")
			got, err := s.Increment(ctx, "n", tt.delta)
			if tt.wantErr != nil {
				wantErr(t, "Increment", err, tt.wantErr)
				after := mustGet(t, s, "n")
				if string(after.Value) != tt.value || after.CAS != before.CAS {
					t.Fatalf("failed Increment changed the item: %q cas %d -> %q cas %d", tt.value, before.CAS, after.Value, after.CAS)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Increment = %d, %v; want %d", got, err, tt.want)
			}
			after := mustGet(t, s, "n")
			if want := strconv.FormatUint(tt.want, 10); string(after.Value) != want {
				t.Fatalf("stored value %q, want %q", after.Value, want)
			}
			if after.CAS == before.CAS {
				t.Fatal("Increment did not change the CAS token")
			}
			if string(before.Value) != tt.value {
				t.Fatalf("Increment modified the slice an earlier Get returned: %q", before.Value)
			}
			if want := int64(len("n")+len(after.Value)) + memory.ItemOverhead; s.Bytes() != want {
				t.Fatalf("Bytes = %d, want %d", s.Bytes(), want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		s, _ := newStore(t)
		_, err := s.Increment(ctx, "nope", 1)
		wantErr(t, "Increment", err, backend.ErrNotFound)
		_, err = s.Increment(ctx, "nope", -1)
		wantErr(t, "Decrement", err, backend.ErrNotFound)
	})
	t.Run("keeps TTL", func(t *testing.T) {
		s, clock := newStore(t)
		mustSet(t, s, "n", "1", 10*time.Second)
		clock.Advance(9 * time.Second)
		if _, err := s.Increment(ctx, "n", 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		_, err := s.Increment(ctx, "n", 1)
		wantErr(t, "Increment after original TTL", err, backend.ErrNotFound)
	})
}

func TestKeyValidation(t *testing.T) {
	ctx := context.Background()
	long := func(n int) string { return strings.Repeat("k", n) }
	tests := []struct {
		name  string
		opts  []memory.Option
		key   string
		valid bool
	}{
		{"plain", nil, "user:42", true},
		{"utf-8", nil, "ключ", true},
		{"punctuation", nil, "a/b?c=d&e#f~!", true},
		{"250 bytes", nil, long(250), true},
		{"251 bytes", nil, long(251), false},
		{"empty", nil, "", false},
		{"space", nil, "a b", false},
		{"tab", nil, "a\tb", false},
		{"newline", nil, "a\nb", false},
		{"carriage return", nil, "a\r", false},
		{"NUL", nil, "\x00a", false},
		{"DEL", nil, "a\x7f", false},
		{"max 10, 10 bytes", []memory.Option{memory.WithMaxKeyLen(10)}, long(10), true},
		{"max 10, 11 bytes", []memory.Option{memory.WithMaxKeyLen(10)}, long(11), false},
		{"unlimited, 10000 bytes", []memory.Option{memory.WithMaxKeyLen(-1)}, long(10000), true},
		{"unlimited, space", []memory.Option{memory.WithMaxKeyLen(-1)}, "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, tt.opts...)
			item := backend.Item{Key: tt.key, Value: []byte("1")}
			errs := map[string]error{
				"Set": s.Set(ctx, item),
				"Add": s.Add(ctx, backend.Item{Key: tt.key, Value: []byte("1")}),
			}
			_, errs["Get"] = s.Get(ctx, tt.key)
			_, errs["GetMulti"] = s.GetMulti(ctx, []string{"fine", tt.key})
			_, errs["Increment"] = s.Increment(ctx, tt.key, 1)
			errs["Touch"] = s.Touch(ctx, tt.key, 0)
			errs["CompareAndSwap"] = s.CompareAndSwap(ctx, backend.Item{Key: tt.key, Value: []byte("2"), CAS: 1})
			errs["Delete"] = s.Delete(ctx, tt.key)
			for op, err := range errs {
				if tt.valid && errors.Is(err, backend.ErrInvalidKey) {
					t.Errorf("%s: %v for a valid key", op, err)
				}
				if !tt.valid {
					if !errors.Is(err, backend.ErrInvalidKey) {
						t.Errorf("%s: error %v, want ErrInvalidKey", op, err)
					} else if len(err.Error()) > 300 {
						t.Errorf("%s: error message is %d bytes long", op, len(err.Error()))
					}
				}
			}
			if !tt.valid && s.Len() != 0 {
				t.Errorf("an invalid key was stored")
			}
		})
	}
}

func TestMaxItemSize(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts []memory.Option
		max  int // -1: no limit
	}{
		{"default", nil, memory.DefaultMaxItemSize},
		{"zero means default", []memory.Option{memory.WithMaxItemSize(0)}, 1 << 20},
		{"small", []memory.Option{memory.WithMaxItemSize(10)}, 10},
		{"unlimited", []memory.Option{memory.WithMaxItemSize(-1)}, -1},
		{"default by the new name", nil, memory.DefaultMaxValueLen},
		{"small by the new name", []memory.Option{memory.WithMaxValueLen(10)}, 10},
		{"unlimited by the new name", []memory.Option{memory.WithMaxValueLen(-1)}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, tt.opts...)
			mustSet(t, s, "k", "previous", 0)
			if tt.max < 0 {
				if err := s.Set(ctx, backend.Item{Key: "k", Value: make([]byte, 3<<20)}); err != nil {
					t.Fatalf("3 MiB value with no limit: %v", err)
				}
				return
			}
			for _, write := range []func(backend.Item) error{
				func(it backend.Item) error { return s.Set(ctx, it) },
				func(it backend.Item) error { return s.Add(ctx, it) },
				func(it backend.Item) error { it.CAS = mustGet(t, s, "k").CAS; return s.CompareAndSwap(ctx, it) },
			} {
				wantErr(t, "value one byte too large", write(backend.Item{Key: "k", Value: make([]byte, tt.max+1)}), backend.ErrValueTooLarge)
				if got := string(mustGet(t, s, "k").Value); got != "previous" {
					t.Fatalf("too large write replaced the value with %d bytes", len(got))
				}
			}
			if err := s.Set(ctx, backend.Item{Key: "k", Value: make([]byte, tt.max)}); err != nil {
				t.Fatalf("value of exactly the limit: %v", err)
			}
			if got := len(mustGet(t, s, "k").Value); got != tt.max {
				t.Fatalf("stored %d bytes, want %d", got, tt.max)
			}
		})
	}
}

func TestLRUEviction(t *testing.T) {
	ctx := context.Background()
	size := func(key, value string) int64 { return int64(len(key)+len(value)) + memory.ItemOverhead }
	// Room for exactly three items of 1-byte key and 10-byte value.
	s, _ := newStore(t, memory.WithMaxBytes(3*size("a", "0123456789")))
	v := "0123456789"
	mustSet(t, s, "a", v, 0)
	mustSet(t, s, "b", v, 0)
	mustSet(t, s, "c", v, 0)
	mustGet(t, s, "a")                           // a is now the most recently used; b the least
	mustSet(t, s, "d", v, 0)                     // evicts b
	if err := s.Touch(ctx, "c", 0); err != nil { // c becomes recent: order a, d, c
		t.Fatal(err)
	}
	mustSet(t, s, "e", v, 0) // evicts a
	for key, want := range map[string]bool{"a": false, "b": false, "c": true, "d": true, "e": true} {
		_, err := s.Get(ctx, key)
		if got := err == nil; got != want {
			t.Errorf("key %s present = %v, want %v (%v)", key, got, want, err)
		}
	}
	if got := stat(t, s, "evictions"); got != 2 {
		t.Errorf("evictions = %d, want 2", got)
	}
	if got, want := s.Bytes(), 3*size("a", v); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
	}
	// A bigger item evicts as many of the oldest as it needs.
	mustGet(t, s, "c")
	mustGet(t, s, "d")
	mustGet(t, s, "e") // order, oldest first: c, d, e
	bigValue := strings.Repeat("x", int(2*size("a", v)-size("big", "")))
	mustSet(t, s, "big", bigValue, 0)
	for key, want := range map[string]bool{"c": false, "d": false, "e": true, "big": true} {
		_, err := s.Get(ctx, key)
		if got := err == nil; got != want {
			t.Errorf("after big write: key %s present = %v, want %v (%v)", key, got, want, err)
		}
	}
	if got, want := s.Bytes(), 3*size("a", v); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
	}
	// An item larger than the whole bound is refused and evicts nothing.
	before := s.Len()
	wantErr(t, "item over the bound", s.Set(ctx, backend.Item{Key: "huge", Value: make([]byte, 4*size("a", v))}), backend.ErrValueTooLarge)
	if s.Len() != before {
		t.Errorf("refused item changed Len from %d to %d", before, s.Len())
	}
}

func TestLRUEvictionOrderAcrossShards(t *testing.T) {
	// With many keys spread over every shard, eviction must still follow
	// global recency: the first 100 of 200 written keys, except the 10 read
	// again, are the ones to go.
	per := int64(len("key-000")+len("v")) + memory.ItemOverhead
	s, _ := newStore(t, memory.WithMaxBytes(100*per))
	for i := range 100 {
		mustSet(t, s, fmt.Sprintf("key-%03d", i), "v", 0)
	}
	for i := range 10 {
		mustGet(t, s, fmt.Sprintf("key-%03d", i*10))
	}
	for i := 100; i < 190; i++ {
		mustSet(t, s, fmt.Sprintf("key-%03d", i), "v", 0)
	}
	for i := range 190 {
		_, err := s.Get(context.Background(), fmt.Sprintf("key-%03d", i))
		want := i >= 100 || i%10 == 0
		if got := err == nil; got != want {
			t.Fatalf("key-%03d present = %v, want %v", i, got, want)
		}
	}
}

func TestByteAccounting(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	size := func(key string, n int) int64 { return int64(len(key)+n) + memory.ItemOverhead }
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"set", func() error { return s.Set(ctx, backend.Item{Key: "k1", Value: make([]byte, 100)}) }, size("k1", 100)},
		{"grow", func() error { return s.Set(ctx, backend.Item{Key: "k1", Value: make([]byte, 300)}) }, size("k1", 300)},
		{"shrink", func() error { return s.Set(ctx, backend.Item{Key: "k1", Value: make([]byte, 7)}) }, size("k1", 7)},
		{"add", func() error { return s.Add(ctx, backend.Item{Key: "key2", Value: []byte("99"), TTL: time.Second}) }, size("k1", 7) + size("key2", 2)},
		{"incr", func() error { _, err := s.Increment(ctx, "key2", 1); return err }, size("k1", 7) + size("key2", 3)},
		{"expire and read", func() error {
			clock.Advance(time.Second)
			_, err := s.Get(ctx, "key2")
			if errors.Is(err, backend.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("Get: %v", err)
		}, size("k1", 7)},
		{"delete", func() error { return s.Delete(ctx, "k1") }, 0},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.Bytes(); got != st.want {
			t.Fatalf("after %s: Bytes = %d, want %d", st.name, got, st.want)
		}
		if got := stat(t, s, "bytes"); got != st.want {
			t.Fatalf("after %s: stat bytes = %d, want %d", st.name, got, st.want)
		}
	}
}

func TestExpiredItemsAreSweptByWrites(t *testing.T) {
	s, clock := newStore(t)
	for i := range 100 {
		mustSet(t, s, fmt.Sprintf("old-%d", i), "v", time.Second)
	}
	clock.Advance(time.Second)
	// Never read the old keys again; writes to other keys reclaim them.
	for i := range 2000 {
		mustSet(t, s, fmt.Sprintf("new-%d", i), "v", 0)
	}
	if got := stat(t, s, "curr_items"); got != 2000 {
		t.Errorf("curr_items = %d, want 2000 (expired items not swept)", got)
	}
	if got := stat(t, s, "reclaimed"); got != 100 {
		t.Errorf("reclaimed = %d, want 100", got)
	}
}

// everyOp calls each operation of s once with ctx, on key "k", and
// returns the error of each by name (Keys: its last) and how many pairs
// Keys yielded.
func everyOp(ctx context.Context, s *memory.Store) (map[string]error, int) {
	item := backend.Item{Key: "k", Value: []byte("1")}
	_, getErr := s.Get(ctx, "k")
	_, multiErr := s.GetMulti(ctx, []string{"k"})
	_, incrErr := s.Increment(ctx, "k", 1)
	_, statsErr := s.ServerStats(ctx)
	var keysErr error
	n := 0
	for _, err := range s.Keys(ctx, "") {
		keysErr = err
		n++
	}
	return map[string]error{
		"Get": getErr, "GetMulti": multiErr, "Increment": incrErr,
		"Set": s.Set(ctx, item), "Add": s.Add(ctx, item), "CompareAndSwap": s.CompareAndSwap(ctx, item),
		"Delete": s.Delete(ctx, "k"), "Touch": s.Touch(ctx, "k", 0), "Flush": s.Flush(ctx), "Ping": s.Ping(ctx),
		"ServerStats": statsErr, "Keys": keysErr,
	}, n
}

func TestContextDone(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs, _ := everyOp(ctx, s)
	for op, err := range errs {
		wantErr(t, op, err, context.Canceled)
	}
	if s.Len() != 0 {
		t.Fatal("a write with a cancelled context stored something")
	}
}

func TestClose(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustSet(t, s, "k", "1", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	errs, n := everyOp(ctx, s)
	if n != 1 {
		t.Errorf("Keys yielded %d pairs after Close, want 1 (the error)", n)
	}
	for op, err := range errs {
		wantErr(t, op, err, backend.ErrClosed)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Errorf("closed store holds %d items, %d bytes", s.Len(), s.Bytes())
	}
}

func TestGetMulti(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	mustSet(t, s, "a", "1", 0)
	mustSet(t, s, "b", "2", time.Second)
	mustSet(t, s, "c", "", 0)
	clock.Advance(time.Second)
	m, err := s.GetMulti(ctx, []string{"a", "b", "c", "d", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || string(m["a"].Value) != "1" || m["a"].Key != "a" || m["a"].CAS == 0 {
		t.Fatalf("GetMulti = %v", m)
	}
	if it, ok := m["c"]; !ok || len(it.Value) != 0 {
		t.Fatalf("empty value missing from GetMulti: %v", m)
	}
	m, err = s.GetMulti(ctx, nil)
	if err != nil || m == nil || len(m) != 0 {
		t.Fatalf("GetMulti(nil) = %v, %v; want an empty map", m, err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	want := map[string]bool{}
	for i := range 50 {
		k := fmt.Sprintf("p:%d", i)
		mustSet(t, s, k, "v", 0)
		want[k] = true
		mustSet(t, s, fmt.Sprintf("q:%d", i), "v", 0)
	}
	mustSet(t, s, "p:expired", "v", time.Second)
	clock.Advance(time.Second)
	got := map[string]bool{}
	for k, err := range s.Keys(ctx, "p:") {
		if err != nil {
			t.Fatal(err)
		}
		if got[k] {
			t.Fatalf("key %q yielded twice", k)
		}
		got[k] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Keys(p:) = %v, want %v", got, want)
	}
	n := 0
	for range s.Keys(ctx, "") {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("early break: %d", n)
	}
}

func TestFlushAndStats(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, memory.WithMaxBytes(1<<20))
	mustSet(t, s, "a", "1", 0)
	mustSet(t, s, "b", "2", 0)
	mustGet(t, s, "a")
	_, _ = s.Get(ctx, "missing")
	_, _ = s.Increment(ctx, "a", 1)
	_, _ = s.Increment(ctx, "a", -1)
	_ = s.Touch(ctx, "zzz", 0)
	_ = s.CompareAndSwap(ctx, backend.Item{Key: "b", Value: []byte("x"), CAS: 1 << 60})
	want := map[string]int64{
		"curr_items": 2, "total_items": 2, "cmd_set": 2, "cmd_get": 2, "get_hits": 1, "get_misses": 1,
		"incr_hits": 1, "decr_hits": 1, "touch_misses": 1, "cas_badval": 1, "limit_maxbytes": 1 << 20,
		"item_size_max": 1 << 20, "time": t0.Unix(), "uptime": 0,
	}
	for name, n := range want {
		if got := stat(t, s, name); got != n {
			t.Errorf("stat %s = %d, want %d", name, got, n)
		}
	}
	ns, _ := s.ServerStats(ctx)
	if ns[0].Addr != "memory" {
		t.Errorf("Addr = %q", ns[0].Addr)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 || stat(t, s, "curr_items") != 0 {
		t.Fatalf("after Flush: Len %d, Bytes %d", s.Len(), s.Bytes())
	}
	mustSet(t, s, "a", "after flush", 0)
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		url     string
		wantErr string
	}{
		{"mem://", ""},
		{"mem:///", ""},
		{"MEM://", ""},
		{"mem://?max_bytes=67108864&max_item_size=1000&max_key_len=100", ""},
		{"mem://?max_bytes=0", ""},
		{"mem://?max_bytes=-1", "non-negative"},
		{"mem://?max_item_size=lots", "non-negative"},
		{"mem://?maxbytes=1", "unknown parameter"},
		{"mem://somehost", "no host"},
		{"mem://u:secret@", "no host"},
		{"mem:opaque", "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			be, err := backend.Open(ctx, tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			if _, ok := be.(*memory.Store); !ok {
				t.Fatalf("Open returned %T", be)
			}
		})
	}
	t.Run("options apply", func(t *testing.T) {
		be, err := backend.Open(ctx, "mem://?max_item_size=10&max_key_len=5")
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		wantErr(t, "11-byte value", be.Set(ctx, backend.Item{Key: "k", Value: make([]byte, 11)}), backend.ErrValueTooLarge)
		wantErr(t, "6-byte key", be.Set(ctx, backend.Item{Key: "kkkkkk"}), backend.ErrInvalidKey)
	})
	t.Run("independent stores", func(t *testing.T) {
		a, _ := backend.Open(ctx, "mem://")
		b, _ := backend.Open(ctx, "mem://")
		defer a.Close()
		defer b.Close()
		if err := a.Set(ctx, backend.Item{Key: "k", Value: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		_, err := b.Get(ctx, "k")
		wantErr(t, "Get from the other store", err, backend.ErrNotFound)
	})
}

func TestFakeClock(t *testing.T) {
	c := memory.NewFakeClock(t0)
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after Advance: %v", got)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("after Set: %v", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now().Sub(t0); got != 800*time.Second {
		t.Fatalf("concurrent Advance: %v", got)
	}
}

// TestConcurrency hammers a bounded store from many goroutines; run with
// -race. Increments must not be lost.
func TestConcurrency(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.WithMaxBytes(64 << 10))
	defer s.Close()
	const workers, rounds = 16, 500
	mustSet(t, s, "counter", "0", 0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("k%d", (w*rounds+i)%300)
				_ = s.Set(ctx, backend.Item{Key: key, Value: []byte(strings.Repeat("x", i%400)), TTL: time.Duration(i%3) * time.Second})
				if it, err := s.Get(ctx, key); err == nil {
					_ = s.CompareAndSwap(ctx, backend.Item{Key: key, Value: []byte(strings.Repeat("y", 300)), CAS: it.CAS})
				}
				_, _ = s.GetMulti(ctx, []string{key, "k1", "k2"})
				_ = s.Touch(ctx, key, time.Second)
				if i%50 == 0 {
					_ = s.Delete(ctx, key)
					for range s.Keys(ctx, "k1") {
					}
				}
				mustGet(t, s, "counter") // keep it recent so it is never evicted
				if _, err := s.Increment(ctx, "counter", 1); err != nil {
					t.Errorf("Increment: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := string(mustGet(t, s, "counter").Value); got != strconv.Itoa(workers*rounds) {
		t.Fatalf("counter = %s, want %d", got, workers*rounds)
	}
	if s.Bytes() > 64<<10 {
		t.Fatalf("Bytes %d over the bound", s.Bytes())
	}
	if stat(t, s, "evictions") == 0 {
		t.Fatal("no evictions: the test did not exercise the bound")
	}
}

func TestNilFakeClockIsTheSystemClock(t *testing.T) {
	var fc *memory.FakeClock
	s := memory.New(memory.WithClock(fc))
	ctx := context.Background()
	if err := s.Set(ctx, backend.Item{Key: "k", Value: []byte("v"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if it, err := s.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %q, %v", it.Value, err)
	}
}

// TestURLParameterNames checks the current names of the limits and their
// deprecated aliases, max_item_size and max_key_len: both open a Store
// with the limits they say, and a URL with an old and a new name of one
// limit is an error naming both, from Open and from Validate.
func TestURLParameterNames(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{
		"mem://?max_value_length=10&max_key_length=5",
		"mem://?max_item_size=10&max_key_len=5",
		"mem://?max_value_length=10&max_key_len=5",
	} {
		if err := backend.Validate(u); err != nil {
			t.Errorf("Validate(%q): %v", u, err)
		}
		be, err := backend.Open(ctx, u)
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		wantErr(t, u+": 11-byte value", be.Set(ctx, backend.Item{Key: "k", Value: make([]byte, 11)}), backend.ErrValueTooLarge)
		wantErr(t, u+": 6-byte key", be.Set(ctx, backend.Item{Key: "kkkkkk"}), backend.ErrInvalidKey)
		if err := be.Set(ctx, backend.Item{Key: "kkkkk", Value: make([]byte, 10)}); err != nil {
			t.Errorf("%s: a value and a key at the limits: %v", u, err)
		}
		be.Close()
	}
	for _, tc := range []struct{ url, old, new string }{
		{"mem://?max_item_size=10&max_value_length=10", "max_item_size", "max_value_length"},
		{"mem://?max_key_length=5&max_key_len=5", "max_key_len", "max_key_length"},
	} {
		_, oerr := backend.Open(ctx, tc.url)
		for what, err := range map[string]error{"Open": oerr, "Validate": backend.Validate(tc.url)} {
			if err == nil || !strings.Contains(err.Error(), tc.old) || !strings.Contains(err.Error(), tc.new) || !strings.Contains(err.Error(), "both given") {
				t.Errorf("%s(%q) = %v, want an error naming %s and %s", what, tc.url, err, tc.old, tc.new)
			}
		}
	}
	// A malformed value is reported under the name the URL used.
	if err := backend.Validate("mem://?max_key_len=short"); err == nil || !strings.Contains(err.Error(), "max_key_len=") {
		t.Errorf("Validate with max_key_len=short: %v, want an error naming max_key_len", err)
	}
}
