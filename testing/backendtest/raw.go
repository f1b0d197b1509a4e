package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// rawTest is one subtest of the Raw group.
type rawTest struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// runRaw runs the subtests that use backend.Backend's methods directly.
func runRaw(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	groups := []struct {
		name  string
		tests []rawTest
		// timed groups sleep on a real clock: their subtests run in
		// parallel then, and one at a time with Advance.
		timed bool
	}{
		{"Basic", []rawTest{
			{"SetGet", testSetGet},
			{"Overwrite", testOverwrite},
			{"Miss", testMiss},
			{"Delete", testDelete},
		}, false},
		{"Add", []rawTest{
			{"Absent", testAddAbsent},
			{"Existing", testAddExisting},
			{"AfterDelete", testAddAfterDelete},
		}, false},
		{"CAS", []rawTest{
			{"Success", testCASSuccess},
			{"Conflict", testCASConflict},
			{"NotFound", testCASNotFound},
			{"DeleteAndReAdd", testCASDeleteReAdd},
			{"TokenChangesOnEveryWrite", testCASTokenChanges},
		}, false},
		{"Touch", []rawTest{
			{"Missing", testTouchMissing},
			{"KeepsValue", testTouchKeepsValue},
		}, false},
		{"Increment", []rawTest{
			{"Increment", testIncrement},
			{"Decrement", testDecrement},
			{"DecrementFloorsAtZero", testDecrementFloor},
			{"Largest", testIncrementLargest},
			{"WrapsAt2To64", testIncrementWrap},
			{"NotNumeric", testIncrementNotNumeric},
			{"Missing", testIncrementMissing},
		}, false},
		{"GetMulti", []rawTest{
			{"PartialHits", testGetMultiPartial},
			{"NoKeys", testGetMultiNoKeys},
			{"AllMissing", testGetMultiAllMissing},
		}, false},
		{"Values", []rawTest{
			{"Empty", testValueEmpty},
			{"AllByteValues", testValueAllBytes},
			{"ProtocolLookalike", testValueProtocolLookalike},
			{"MaxSize", testValueMaxSize},
			{"TooLarge", testValueTooLarge},
		}, false},
		{"Flags", []rawTest{
			{"Writes", testFlagsWrites},
			{"KeptByTouchAndIncrement", testFlagsKept},
		}, false},
		{"Keys", []rawTest{
			{"SpacesAndControlBytes", testKeyBytes},
			{"Length", testKeyLength},
			{"Empty", testKeyEmpty},
			{"NonASCII", testKeyNonASCII},
		}, false},
		{"TTL", []rawTest{
			{"NegativeIsInvalid", testTTLNegative},
			{"Set", testTTLSet},
			{"NotBeforeTTL", testTTLNotEarly},
			{"Add", testTTLAdd},
			{"AddAfterExpiry", testTTLAddAfterExpiry},
			{"CompareAndSwap", testTTLCAS},
			{"TouchExtends", testTTLTouchExtends},
			{"TouchToNever", testTTLTouchNever},
			{"TouchShortens", testTTLTouchShortens},
			{"IncrementKeepsTTL", testTTLIncrement},
			{"Huge", testTTLHuge},
		}, true},
		{"Context", []rawTest{
			{"Canceled", testContextCanceled},
			{"DeadlineExceeded", testContextDeadline},
		}, false},
		{"Close", []rawTest{
			{"EveryMethodReturnsErrClosed", testClose},
		}, false},
		{"Concurrency", []rawTest{
			{"Increment", testConcurrentIncrement},
			{"CompareAndSwap", testConcurrentCAS},
			{"Add", testConcurrentAdd},
			{"SetGet", testConcurrentSetGet},
		}, false},
		{"Optional", []rawTest{
			{"Lister", testLister},
			{"StatsReporter", testStatsReporter},
			{"Pinger", testPinger},
			{"Flusher", testFlusher},
			{"TTLReader", testTTLReader},
			{"StaleMark", testStaleMark},
		}, false},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					if g.timed && opts.Advance == nil {
						t.Parallel()
					}
					tt.fn(t, newHarness(t, newBackend, opts))
				})
			}
		})
	}
}

// Basic.

func testSetGet(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("hello"), 0)
	it := h.get(k)
	if it.Key != k || string(it.Value) != "hello" || it.CAS == 0 || it.TTL != 0 {
		t.Fatalf("Get(%q) = {Key %q, Value %s, CAS %d, TTL %v}; want {Key %q, Value \"hello\", CAS non-zero, TTL 0}",
			k, it.Key, show(it.Value), it.CAS, it.TTL, k)
	}
}

func testOverwrite(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("a longer first value"), 0)
	h.set(k, []byte("short"), 0)
	h.wantValue(k, []byte("short"))
	h.set(k, []byte("a value longer than both before it"), 0)
	h.wantValue(k, []byte("a value longer than both before it"))
}

func testMiss(t *testing.T, h *harness) {
	h.wantMissing(h.key("never-written"))
}

func testDelete(t *testing.T, h *harness) {
	k, other := h.key("k"), h.key("other")
	h.set(k, []byte("v"), 0)
	h.set(other, []byte("w"), 0)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	h.wantMissing(k)
	h.wantValue(other, []byte("w"))
	wantErr(t, "second Delete", h.be.Delete(h.ctx(), k), backend.ErrNotFound)
	wantErr(t, "Delete of a never-written key", h.be.Delete(h.ctx(), h.key("never")), backend.ErrNotFound)
}

// Add.

func testAddAbsent(t *testing.T, h *harness) {
	k := h.key("k")
	noErr(t, "Add of an absent key", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("first")}))
	h.wantValue(k, []byte("first"))
}

func testAddExisting(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("first"), 0)
	before := h.get(k)
	wantErr(t, "Add of an existing key", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("second")}), backend.ErrNotStored)
	after := h.get(k)
	if string(after.Value) != "first" || after.CAS != before.CAS {
		t.Fatalf("failed Add changed the item: value %s, CAS %d -> %d", show(after.Value), before.CAS, after.CAS)
	}
}

func testAddAfterDelete(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("first"), 0)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	noErr(t, "Add after Delete", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("second")}))
	h.wantValue(k, []byte("second"))
}

// CAS.

func testCASSuccess(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("v1"), 0)
	it := h.get(k)
	noErr(t, "CompareAndSwap with a fresh token", h.cas(k, "v2", it.CAS))
	after := h.get(k)
	if string(after.Value) != "v2" {
		t.Fatalf("after CompareAndSwap: value %s, want \"v2\"", show(after.Value))
	}
	if after.CAS == it.CAS || after.CAS == 0 {
		t.Fatalf("after CompareAndSwap: CAS token %d, want a new non-zero one (was %d)", after.CAS, it.CAS)
	}
	// The old token is now stale.
	wantErr(t, "second CompareAndSwap with the same token", h.cas(k, "v3", it.CAS), backend.ErrCASConflict)
	h.wantValue(k, []byte("v2"))
}

func testCASConflict(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("v1"), 0)
	it := h.get(k)
	h.set(k, []byte("someone else"), 0)
	wantErr(t, "CompareAndSwap after another write", h.cas(k, "mine", it.CAS), backend.ErrCASConflict)
	h.wantValue(k, []byte("someone else"))
}

func testCASNotFound(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("v1"), 0)
	it := h.get(k)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	wantErr(t, "CompareAndSwap after Delete", h.cas(k, "v2", it.CAS), backend.ErrNotFound)
	h.wantMissing(k)
	wantErr(t, "CompareAndSwap of a never-written key", h.cas(h.key("never"), "v", it.CAS), backend.ErrNotFound)
}

func testCASDeleteReAdd(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("v1"), 0)
	it := h.get(k)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	noErr(t, "Add", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("v1")})) // same value, new version
	wantErr(t, "CompareAndSwap with a token from before Delete and Add", h.cas(k, "v2", it.CAS), backend.ErrCASConflict)
	h.wantValue(k, []byte("v1"))
}

// testCASTokenChanges checks that every write gives a new token. Whether
// Touch changes the token is left open: memcached's touch does not, while
// the Redis driver's does.
func testCASTokenChanges(t *testing.T, h *harness) {
	k := h.key("k")
	var tokens []uint64
	var steps []string
	record := func(step string) {
		t.Helper()
		c := h.get(k).CAS
		if c == 0 {
			t.Fatalf("after %s: CAS token is 0", step)
		}
		if i := slices.Index(tokens, c); i >= 0 {
			t.Fatalf("after %s: CAS token %d is the one given after %s", step, c, steps[i])
		}
		tokens, steps = append(tokens, c), append(steps, step)
	}
	h.set(k, []byte("1"), 0)
	record("Set")
	h.set(k, []byte("1"), 0)
	record("Set of the same value")
	noErr(t, "CompareAndSwap", h.be.CompareAndSwap(h.ctx(), backend.Item{Key: k, Value: []byte("1"), CAS: tokens[len(tokens)-1]}))
	record("CompareAndSwap")
	_, err := h.be.Increment(h.ctx(), k, 1)
	noErr(t, "Increment", err)
	record("Increment")
	_, err = h.be.Increment(h.ctx(), k, -1)
	noErr(t, "decrement", err)
	record("decrement")
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	noErr(t, "Add", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("1")}))
	record("Delete and Add")
}

// Touch.

func testTouchMissing(t *testing.T, h *harness) {
	wantErr(t, "Touch of a never-written key", h.be.Touch(h.ctx(), h.key("never"), h.longTTL()), backend.ErrNotFound)
	k := h.key("k")
	h.set(k, []byte("v"), 0)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k))
	wantErr(t, "Touch after Delete", h.be.Touch(h.ctx(), k, 0), backend.ErrNotFound)
	h.wantMissing(k)
}

func testTouchKeepsValue(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("value"), 0)
	noErr(t, "Touch", h.be.Touch(h.ctx(), k, h.longTTL()))
	h.wantValue(k, []byte("value"))
	noErr(t, "Touch to 0", h.be.Touch(h.ctx(), k, 0))
	h.wantValue(k, []byte("value"))
}

// Increment.

func (h *harness) incr(key string, delta int64, want uint64) {
	h.t.Helper()
	got, err := h.be.Increment(h.ctx(), key, delta)
	if err != nil || got != want {
		h.t.Fatalf("Increment(%q, %d) = %d, %v; want %d", key, delta, got, err, want)
	}
	h.wantNumber(key, want)
}

func testIncrement(t *testing.T, h *harness) {
	k := h.key("n")
	h.set(k, []byte("41"), 0)
	h.incr(k, 1, 42)
	h.incr(k, 0, 42)
	h.incr(k, 958, 1000) // grows by a digit
	h.set(k, []byte("0"), 0)
	h.incr(k, 1<<62, 1<<62)
}

func testDecrement(t *testing.T, h *harness) {
	k := h.key("n")
	h.set(k, []byte("1000"), 0)
	h.incr(k, -1, 999) // shrinks by a digit
	h.incr(k, -990, 9)
	h.incr(k, -9, 0)
}

func testDecrementFloor(t *testing.T, h *harness) {
	k := h.key("n")
	h.set(k, []byte("5"), 0)
	h.incr(k, -10, 0)
	h.incr(k, -1, 0)
	h.set(k, []byte("18446744073709551615"), 0)
	h.incr(k, -(1 << 63), 1<<63-1)
	h.set(k, []byte("7"), 0)
	h.incr(k, -(1 << 63), 0) // the most negative delta
}

func testIncrementLargest(t *testing.T, h *harness) {
	k := h.key("n")
	h.set(k, []byte("18446744073709551614"), 0)
	h.incr(k, 1, 18446744073709551615)
	h.set(k, []byte("9223372036854775808"), 0)
	h.incr(k, 1<<63-1, 18446744073709551615)
}

func testIncrementWrap(t *testing.T, h *harness) {
	k := h.key("n")
	h.set(k, []byte("18446744073709551615"), 0)
	h.incr(k, 1, 0)
	h.set(k, []byte("18446744073709551610"), 0)
	h.incr(k, 10, 4)
}

func testIncrementNotNumeric(t *testing.T, h *harness) {
	for i, v := range []string{"abc", "", "1.5", "-1", "12abc", "0x10", "18446744073709551616", "99999999999999999999"} {
		k := h.key("n" + strconv.Itoa(i))
		h.set(k, []byte(v), 0)
		for _, delta := range []int64{1, -1} {
			_, err := h.be.Increment(h.ctx(), k, delta)
			wantErr(t, fmt.Sprintf("Increment(%d) of %q", delta, v), err, backend.ErrNotNumeric)
			h.wantValue(k, []byte(v))
		}
	}
}

func testIncrementMissing(t *testing.T, h *harness) {
	k := h.key("never")
	for _, delta := range []int64{1, -1, 0} {
		_, err := h.be.Increment(h.ctx(), k, delta)
		wantErr(t, fmt.Sprintf("Increment(%d) of a never-written key", delta), err, backend.ErrNotFound)
	}
	h.wantMissing(k)
}

// GetMulti.

func testGetMultiPartial(t *testing.T, h *harness) {
	a, b, c, missing := h.key("a"), h.key("b"), h.key("c"), h.key("missing")
	h.set(a, []byte("1"), 0)
	h.set(b, []byte("2"), 0)
	h.set(c, []byte{}, 0)
	m, err := h.be.GetMulti(h.ctx(), []string{a, missing, b, c})
	noErr(t, "GetMulti", err)
	if len(m) != 3 {
		t.Fatalf("GetMulti returned %d items (%v), want 3", len(m), slices.Collect(maps.Keys(m)))
	}
	for k, want := range map[string]string{a: "1", b: "2", c: ""} {
		it, ok := m[k]
		if !ok {
			t.Fatalf("GetMulti: %q missing", k)
		}
		if string(it.Value) != want || it.Key != k || it.CAS == 0 {
			t.Fatalf("GetMulti[%q] = {Key %q, Value %s, CAS %d}; want value %q and a non-zero CAS", k, it.Key, show(it.Value), it.CAS, want)
		}
		if single := h.get(k); single.CAS != it.CAS {
			t.Fatalf("GetMulti[%q].CAS = %d, Get gives %d", k, it.CAS, single.CAS)
		}
	}
	if _, ok := m[missing]; ok {
		t.Fatalf("GetMulti holds the missing key")
	}
	// A backend that can also answer in order (backend.OrderedGetter)
	// finds the same items, each at its key's index.
	if og, ok := h.be.(backend.OrderedGetter); ok {
		keys := []string{a, missing, b, c, a}
		found := make([]backend.Item, len(keys))
		noErr(t, "GetMultiOrdered", og.GetMultiOrdered(h.ctx(), keys, found))
		for i, k := range keys {
			want, ok := m[k]
			got := found[i]
			if !ok && got.Key != "" || ok && (got.Key != k || string(got.Value) != string(want.Value) || got.CAS != want.CAS) {
				t.Fatalf("GetMultiOrdered: found[%d] = {Key %q, Value %s, CAS %d} for %q; GetMulti gives %v (%v)",
					i, got.Key, show(got.Value), got.CAS, k, ok, show(want.Value))
			}
		}
	}
}

func testGetMultiNoKeys(t *testing.T, h *harness) {
	for _, keys := range [][]string{nil, {}} {
		m, err := h.be.GetMulti(h.ctx(), keys)
		if err != nil || len(m) != 0 {
			t.Fatalf("GetMulti(%#v) = %v, %v; want no items and no error", keys, m, err)
		}
	}
}

func testGetMultiAllMissing(t *testing.T, h *harness) {
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = h.key("missing" + strconv.Itoa(i))
	}
	m, err := h.be.GetMulti(h.ctx(), keys)
	if err != nil || len(m) != 0 {
		t.Fatalf("GetMulti of 50 missing keys = %d items, %v; want none and no error", len(m), err)
	}
}

// Values.

func testValueEmpty(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte{}, 0)
	h.wantValue(k, nil)
	h.set(k, nil, 0)
	h.wantValue(k, nil)
}

func testValueAllBytes(t *testing.T, h *harness) {
	v := make([]byte, 512)
	for i := range v {
		v[i] = byte(i)
	}
	k := h.key("k")
	h.set(k, v, 0)
	h.wantValue(k, bytes.Clone(v))
}

func testValueProtocolLookalike(t *testing.T, h *harness) {
	k := h.key("k")
	for _, v := range []string{"\r\nEND\r\n", "VALUE x 0 1 1\r\nx\r\nEND\r\n", "$-1\r\n", "*1\r\n$3\r\nfoo\r\n", "\x00\x00\x00", " leading and trailing "} {
		h.set(k, []byte(v), 0)
		h.wantValue(k, []byte(v))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(b)
	return b
}

func testValueMaxSize(t *testing.T, h *harness) {
	if h.opts.MaxValueSize < 0 {
		t.Skip("Options.MaxValueSize < 0: no value size limit to test")
	}
	k := h.key("k")
	v := randomBytes(h.opts.MaxValueSize)
	h.set(k, v, 0)
	h.wantValue(k, randomBytes(h.opts.MaxValueSize))
}

func testValueTooLarge(t *testing.T, h *harness) {
	if h.opts.MaxValueSize < 0 {
		t.Skip("Options.MaxValueSize < 0: no value size limit to test")
	}
	k, absent := h.key("k"), h.key("absent")
	h.set(k, []byte("previous"), 0)
	big := func() []byte { return make([]byte, h.opts.MaxValueSize+1) }
	wantErr(t, fmt.Sprintf("Set of %d bytes", h.opts.MaxValueSize+1),
		h.be.Set(h.ctx(), backend.Item{Key: k, Value: big()}), backend.ErrValueTooLarge)
	h.wantValue(k, []byte("previous"))
	wantErr(t, fmt.Sprintf("CompareAndSwap of %d bytes", h.opts.MaxValueSize+1),
		h.be.CompareAndSwap(h.ctx(), backend.Item{Key: k, Value: big(), CAS: h.get(k).CAS}), backend.ErrValueTooLarge)
	h.wantValue(k, []byte("previous"))
	wantErr(t, fmt.Sprintf("Add of %d bytes", h.opts.MaxValueSize+1),
		h.be.Add(h.ctx(), backend.Item{Key: absent, Value: big()}), backend.ErrValueTooLarge)
	h.wantMissing(absent)
}

// Flags.

// flagValues are client flags of Python's clients (1 pickle, 16 text, 8|1
// compressed pickle) and the extremes.
var flagValues = []uint32{1, 16, 9, 1 << 31, 1<<32 - 1}

// wantFlags fails the test unless it has value and flags.
func (h *harness) wantFlags(what string, it backend.Item, value string, flags uint32) {
	h.t.Helper()
	if string(it.Value) != value || it.Flags != flags {
		h.t.Fatalf("%s = %s with flags %d, want %q with flags %d", what, show(it.Value), it.Flags, value, flags)
	}
}

func testFlagsWrites(t *testing.T, h *harness) {
	k := h.key("k")
	if h.opts.NoFlags {
		h.set(k, []byte("kept"), 0)
		for _, w := range []struct {
			name string
			fn   func(backend.Item) error
		}{
			{"Set", func(it backend.Item) error { return h.be.Set(h.ctx(), it) }},
			{"Add", func(it backend.Item) error {
				return h.be.Add(h.ctx(), backend.Item{Key: h.key("absent"), Value: it.Value, Flags: it.Flags})
			}},
			{"CompareAndSwap", func(it backend.Item) error { it.CAS = h.get(k).CAS; return h.be.CompareAndSwap(h.ctx(), it) }},
			{"SetMulti", func(it backend.Item) error { return backend.SetMulti(h.ctx(), h.be, []backend.Item{it}) }},
		} {
			err := w.fn(backend.Item{Key: k, Value: []byte("flagged"), Flags: 16})
			wantErr(t, w.name+" with client flags", err, backend.ErrNotSupported)
		}
		h.wantFlags("Get after the refused writes", h.get(k), "kept", 0)
		h.wantMissing(h.key("absent"))
		return
	}
	for _, f := range flagValues {
		noErr(t, "Set", h.be.Set(h.ctx(), backend.Item{Key: k, Value: []byte("set"), Flags: f}))
		h.wantFlags("Get after Set", h.get(k), "set", f)
	}
	// A write without flags clears them.
	h.set(k, []byte("plain"), 0)
	h.wantFlags("Get after a Set without flags", h.get(k), "plain", 0)

	a := h.key("added")
	noErr(t, "Add", h.be.Add(h.ctx(), backend.Item{Key: a, Value: []byte("added"), Flags: 16}))
	h.wantFlags("Get after Add", h.get(a), "added", 16)
	wantErr(t, "Add of an existing key", h.be.Add(h.ctx(), backend.Item{Key: a, Value: []byte("again"), Flags: 1}), backend.ErrNotStored)
	h.wantFlags("Get after a failed Add", h.get(a), "added", 16)

	noErr(t, "CompareAndSwap", h.be.CompareAndSwap(h.ctx(), backend.Item{Key: k, Value: []byte("swapped"), Flags: 2, CAS: h.get(k).CAS}))
	h.wantFlags("Get after CompareAndSwap", h.get(k), "swapped", 2)

	m1, m2 := h.key("m1"), h.key("m2")
	noErr(t, "SetMulti", backend.SetMulti(h.ctx(), h.be, []backend.Item{
		{Key: m1, Value: []byte("one"), Flags: 1},
		{Key: m2, Value: []byte("two"), Flags: 0},
	}))
	items, err := h.be.GetMulti(h.ctx(), []string{k, a, m1, m2})
	noErr(t, "GetMulti", err)
	for key, want := range map[string]struct {
		v string
		f uint32
	}{k: {"swapped", 2}, a: {"added", 16}, m1: {"one", 1}, m2: {"two", 0}} {
		it, ok := items[key]
		if !ok {
			t.Fatalf("GetMulti did not return %q", key)
		}
		h.wantFlags("GetMulti's "+key, it, want.v, want.f)
	}
}

func testFlagsKept(t *testing.T, h *harness) {
	// Without flags (Options.NoFlags), items have none before and after.
	pickle, number := uint32(1), uint32(2)
	if h.opts.NoFlags {
		pickle, number = 0, 0
	}
	k, n := h.key("k"), h.key("n")
	noErr(t, "Set", h.be.Set(h.ctx(), backend.Item{Key: k, Value: []byte("v"), Flags: pickle}))
	noErr(t, "Touch", h.be.Touch(h.ctx(), k, h.longTTL()))
	h.wantFlags("Get after Touch", h.get(k), "v", pickle)
	noErr(t, "Set", h.be.Set(h.ctx(), backend.Item{Key: n, Value: []byte("41"), Flags: number}))
	h.incr(n, 1, 42)
	h.wantFlags("Get after Increment", h.get(n), "42", number)
}

// Keys.

// keyCalls returns every call that takes a key, as closures on key.
func (h *harness) keyCalls() map[string]func(key string) error {
	ctx := h.ctx()
	return map[string]func(string) error{
		"Set": func(k string) error { return h.be.Set(ctx, backend.Item{Key: k, Value: []byte("1")}) },
		"Add": func(k string) error { return h.be.Add(ctx, backend.Item{Key: k, Value: []byte("1")}) },
		"CompareAndSwap": func(k string) error {
			return h.be.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("1"), CAS: 1})
		},
		"Get":       func(k string) error { _, err := h.be.Get(ctx, k); return err },
		"Delete":    func(k string) error { return h.be.Delete(ctx, k) },
		"Touch":     func(k string) error { return h.be.Touch(ctx, k, 0) },
		"Increment": func(k string) error { _, err := h.be.Increment(ctx, k, 1); return err },
	}
}

func testKeyBytes(t *testing.T, h *harness) {
	for _, name := range []string{"has space", "has\nnewline", "has\r\nCRLF", "has\ttab", "has\x00NUL", "has\x01control", "has\x7fDEL", " leading", "trailing "} {
		k := h.key(name)
		if h.opts.AnyKeyBytes {
			clean := h.key(strings.Map(func(r rune) rune {
				if r <= ' ' || r == 0x7f {
					return '_'
				}
				return r
			}, name))
			h.set(clean, []byte("clean"), 0)
			h.set(k, []byte(name), 0)
			h.wantValue(k, []byte(name))
			h.wantValue(clean, []byte("clean"))
			continue
		}
		for op, call := range h.keyCalls() {
			wantErr(t, fmt.Sprintf("%s(%q)", op, k), call(k), backend.ErrInvalidKey)
		}
		m, err := h.be.GetMulti(h.ctx(), []string{k})
		if err != nil && !errors.Is(err, backend.ErrInvalidKey) {
			t.Fatalf("GetMulti([%q]): error %v, want none or one wrapping ErrInvalidKey", k, err)
		}
		if len(m) != 0 {
			t.Fatalf("GetMulti([%q]) found %d items", k, len(m))
		}
	}
}

func testKeyLength(t *testing.T, h *harness) {
	n := h.opts.MaxKeyLen
	if n < 0 {
		t.Skip("Options.MaxKeyLen < 0: no key length limit to test")
	}
	if n <= len(h.prefix)+1 {
		t.Fatalf("Options.MaxKeyLen %d leaves no room for the %d-byte key prefix", n, len(h.prefix))
	}
	longest := h.key(strings.Repeat("k", n-len(h.prefix)))
	h.set(longest, []byte("longest"), 0)
	h.wantValue(longest, []byte("longest"))

	tooLong := h.key(strings.Repeat("k", n+1-len(h.prefix)))
	if h.opts.AnyKeyBytes {
		h.set(tooLong, []byte("too long"), 0)
		h.wantValue(tooLong, []byte("too long"))
		h.wantValue(longest, []byte("longest"))
		return
	}
	for op, call := range h.keyCalls() {
		wantErr(t, fmt.Sprintf("%s of a %d-byte key", op, n+1), call(tooLong), backend.ErrInvalidKey)
	}
	h.wantValue(longest, []byte("longest"))
}

// testKeyEmpty expects little of an empty key, which memdict never sends:
// Get must fail (with any error) rather than find something.
func testKeyEmpty(t *testing.T, h *harness) {
	it, err := h.be.Get(h.ctx(), "")
	if err == nil {
		t.Fatalf("Get(\"\") = %s, want an error", show(it.Value))
	}
}

func testKeyNonASCII(t *testing.T, h *harness) {
	k := h.key("ключ-鍵-\xff\xfe")
	h.set(k, []byte("v"), 0)
	h.wantValue(k, []byte("v"))
}

// TTL.

func testTTLNegative(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("v"), 0)
	cas := h.get(k).CAS
	ctx := h.ctx()
	wantErr(t, "Set with TTL -1s", h.be.Set(ctx, backend.Item{Key: k, Value: []byte("x"), TTL: -time.Second}), backend.ErrInvalidTTL)
	wantErr(t, "Add with TTL -1s", h.be.Add(ctx, backend.Item{Key: h.key("absent"), Value: []byte("x"), TTL: -time.Second}), backend.ErrInvalidTTL)
	wantErr(t, "CompareAndSwap with TTL -1s", h.be.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("x"), CAS: cas, TTL: -time.Second}), backend.ErrInvalidTTL)
	wantErr(t, "Touch with TTL -1ns", h.be.Touch(ctx, k, -1), backend.ErrInvalidTTL)
	h.wantValue(k, []byte("v"))
	h.wantMissing(h.key("absent"))
}

// expireChecking lets items with TTL ttl, written just now, expire. With
// Advance it first checks that keys are still there after half of ttl; on a
// real clock a short TTL may end at any moment, so it cannot.
func (h *harness) expireChecking(ttl time.Duration, keys ...string) {
	h.t.Helper()
	if h.realTime() {
		h.expire(ttl)
		return
	}
	h.pass(ttl / 2)
	for _, k := range keys {
		if _, err := h.be.Get(h.ctx(), k); err != nil {
			h.t.Fatalf("Get(%q) after half its TTL of %v: %v", k, ttl, err)
		}
	}
	h.expire(ttl - ttl/2)
}

func testTTLSet(t *testing.T, h *harness) {
	short, never, long := h.key("short"), h.key("never"), h.key("long")
	ttl := h.shortTTL()
	h.set(short, []byte("v"), ttl)
	h.set(never, []byte("v"), 0)
	h.set(long, []byte("v"), h.longTTL())
	h.expireChecking(ttl, short)
	h.wantMissing(short)
	h.wantValue(never, []byte("v"))
	h.wantValue(long, []byte("v"))
}

// testTTLNotEarly checks that an item written with a TTL (by Set, Add or
// Touch) lives at least that TTL: every read that ends before the TTL has
// passed since the writes began finds it. A server that counts whole
// seconds expires an item at a tick of its clock, which may come at once:
// a driver must allow for it.
func testTTLNotEarly(t *testing.T, h *harness) {
	set, added, touched := h.key("set"), h.key("added"), h.key("touched")
	ttl := h.shortTTL()
	h.set(touched, []byte("v"), 0)
	start := time.Now()
	h.set(set, []byte("v"), ttl)
	noErr(t, "Add", h.be.Add(h.ctx(), backend.Item{Key: added, Value: []byte("v"), TTL: ttl}))
	noErr(t, "Touch", h.be.Touch(h.ctx(), touched, ttl))
	if !h.realTime() {
		h.pass(ttl - h.opts.TTLGranularity)
		for _, k := range []string{set, added, touched} {
			h.wantValue(k, []byte("v"))
		}
		return
	}
	for {
		for _, k := range []string{set, added, touched} {
			_, err := h.be.Get(h.ctx(), k)
			if took := time.Since(start); err != nil && took < ttl {
				t.Fatalf("Get(%q) %v after it was written with TTL %v: %v", k, took, ttl, err)
			}
		}
		if time.Since(start) >= ttl {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testTTLAdd(t *testing.T, h *harness) {
	k := h.key("k")
	ttl := h.shortTTL()
	noErr(t, "Add", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("v"), TTL: ttl}))
	h.expireChecking(ttl, k)
	h.wantMissing(k)
}

func testTTLAddAfterExpiry(t *testing.T, h *harness) {
	k := h.key("k")
	ttl := h.shortTTL()
	h.set(k, []byte("old"), ttl)
	h.expire(ttl)
	noErr(t, "Add of an expired key", h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte("new")}))
	h.wantValue(k, []byte("new"))
}

func testTTLCAS(t *testing.T, h *harness) {
	k, gone := h.key("k"), h.key("gone")
	ttl := h.survivingTTL()
	h.set(k, []byte("v1"), 0)
	noErr(t, "CompareAndSwap with a TTL", h.be.CompareAndSwap(h.ctx(), backend.Item{Key: k, Value: []byte("v2"), CAS: h.get(k).CAS, TTL: ttl}))
	h.set(gone, []byte("v"), ttl)
	cas := h.get(gone).CAS
	h.expireChecking(ttl, k, gone)
	h.wantMissing(k)
	wantErr(t, "CompareAndSwap of an expired key", h.cas(gone, "x", cas), backend.ErrNotFound)
}

func testTTLTouchExtends(t *testing.T, h *harness) {
	k, untouched := h.key("k"), h.key("untouched")
	ttl := h.survivingTTL()
	h.set(k, []byte("v"), ttl)
	h.set(untouched, []byte("v"), ttl)
	noErr(t, "Touch", h.be.Touch(h.ctx(), k, h.longTTL()))
	h.expire(ttl)
	h.wantMissing(untouched) // time did pass
	h.wantValue(k, []byte("v"))
}

func testTTLTouchNever(t *testing.T, h *harness) {
	k := h.key("k")
	ttl := h.survivingTTL()
	h.set(k, []byte("v"), ttl)
	noErr(t, "Touch to 0", h.be.Touch(h.ctx(), k, 0))
	h.expire(ttl)
	h.wantValue(k, []byte("v"))
}

func testTTLTouchShortens(t *testing.T, h *harness) {
	k := h.key("k")
	ttl := h.shortTTL()
	h.set(k, []byte("v"), 0)
	noErr(t, "Touch", h.be.Touch(h.ctx(), k, ttl))
	h.expire(ttl)
	h.wantMissing(k)
	wantErr(t, "Touch of an expired key", h.be.Touch(h.ctx(), k, 0), backend.ErrNotFound)
}

func testTTLIncrement(t *testing.T, h *harness) {
	k := h.key("n")
	ttl := h.survivingTTL()
	h.set(k, []byte("1"), ttl)
	h.incr(k, 1, 2)
	h.incr(k, -1, 1)
	h.expireChecking(ttl, k)
	h.wantMissing(k)
	_, err := h.be.Increment(h.ctx(), k, 1)
	wantErr(t, "Increment of an expired key", err, backend.ErrNotFound)
}

// testTTLHuge checks the TTL of the longest time.Duration, which callers
// write for "as good as never": every write either keeps the item (for a
// very long time) or fails with ErrInvalidTTL (memcached's expiration
// ends in 2038), but never succeeds with an item already gone or an error
// of the server's.
func testTTLHuge(t *testing.T, h *harness) {
	const huge = time.Duration(math.MaxInt64)
	ctx := h.ctx()
	set, added, swapped, touched := h.key("set"), h.key("added"), h.key("swapped"), h.key("touched")
	h.set(swapped, []byte("v"), 0)
	h.set(touched, []byte("v"), 0)
	cas := h.get(swapped).CAS
	for _, w := range []struct {
		name, key string
		err       error
	}{
		{"Set", set, h.be.Set(ctx, backend.Item{Key: set, Value: []byte("v"), TTL: huge})},
		{"Add", added, h.be.Add(ctx, backend.Item{Key: added, Value: []byte("v"), TTL: huge})},
		{"CompareAndSwap", swapped, h.be.CompareAndSwap(ctx, backend.Item{Key: swapped, Value: []byte("v"), CAS: cas, TTL: huge})},
		{"Touch", touched, h.be.Touch(ctx, touched, huge)},
	} {
		switch {
		case errors.Is(w.err, backend.ErrInvalidTTL):
		case w.err != nil:
			t.Errorf("%s with TTL %v: %v, want nil or an error wrapping ErrInvalidTTL", w.name, huge, w.err)
		default:
			if _, err := h.be.Get(ctx, w.key); err != nil {
				t.Errorf("Get after a %s with TTL %v that succeeded: %v", w.name, huge, err)
			}
		}
	}
}

// Context and Close.

// call is one method call for the Context and Close subtests.
type call struct {
	name string
	do   func(ctx context.Context) error
}

// allCalls returns a call of every method, optional ones included when the
// backend has them (but never Flush, which would empty a shared server),
// that would succeed on key, which holds "1", if nothing prevented it.
func (h *harness) allCalls(key string) []call {
	be := h.be
	absent := h.key("absent")
	calls := []call{
		{"Get", func(ctx context.Context) error { _, err := be.Get(ctx, key); return err }},
		{"GetMulti", func(ctx context.Context) error { _, err := be.GetMulti(ctx, []string{key}); return err }},
		{"Set", func(ctx context.Context) error { return be.Set(ctx, backend.Item{Key: key, Value: []byte("2")}) }},
		{"Add", func(ctx context.Context) error { return be.Add(ctx, backend.Item{Key: absent, Value: []byte("2")}) }},
		{"CompareAndSwap", func(ctx context.Context) error {
			return be.CompareAndSwap(ctx, backend.Item{Key: key, Value: []byte("2"), CAS: h.casOf(key)})
		}},
		{"Delete", func(ctx context.Context) error { return be.Delete(ctx, key) }},
		{"Touch", func(ctx context.Context) error { return be.Touch(ctx, key, h.longTTL()) }},
		{"Increment", func(ctx context.Context) error { _, err := be.Increment(ctx, key, 1); return err }},
	}
	if h.supports(backend.OpKeys) {
		calls = append(calls, call{"Keys", func(ctx context.Context) error {
			for _, err := range backend.Keys(ctx, be, h.prefix) {
				if err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if h.supports(backend.OpServerStats) {
		calls = append(calls, call{"ServerStats", func(ctx context.Context) error { _, err := backend.ServerStats(ctx, be); return err }})
	}
	if h.supports(backend.OpPing) {
		calls = append(calls, call{"Ping", func(ctx context.Context) error { return backend.Ping(ctx, be) }})
	}
	return calls
}

// cas is the backend's CompareAndSwap of value under key with token.
func (h *harness) cas(key, value string, token uint64) error {
	return h.be.CompareAndSwap(h.ctx(), backend.Item{Key: key, Value: []byte(value), CAS: token})
}

// casOf returns key's CAS token, or 1 if it cannot be read.
func (h *harness) casOf(key string) uint64 {
	it, err := h.be.Get(context.Background(), key)
	if err != nil {
		return 1
	}
	return it.CAS
}

func testContext(t *testing.T, h *harness, ctx context.Context, want error) {
	k := h.key("k")
	h.set(k, []byte("1"), 0)
	before := h.get(k)
	for _, c := range h.allCalls(k) {
		wantErr(t, c.name+" with a done context", c.do(ctx), want)
		after := h.get(k)
		if string(after.Value) != "1" || after.CAS != before.CAS {
			t.Fatalf("%s with a done context changed the item: value %s, CAS %d -> %d", c.name, show(after.Value), before.CAS, after.CAS)
		}
	}
	h.wantMissing(h.key("absent"))
}

func testContextCanceled(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	testContext(t, h, ctx, context.Canceled)
}

func testContextDeadline(t *testing.T, h *harness) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	testContext(t, h, ctx, context.DeadlineExceeded)
}

func testClose(t *testing.T, h *harness) {
	k := h.key("k")
	h.set(k, []byte("1"), 0)
	noErr(t, "Delete", h.be.Delete(h.ctx(), k)) // leave nothing behind on a shared server
	calls := h.allCalls(k)
	lists := h.supports(backend.OpKeys)
	noErr(t, "Close", h.be.Close())
	noErr(t, "second Close", h.be.Close())
	for _, c := range calls {
		wantErr(t, c.name+" after Close", c.do(h.ctx()), backend.ErrClosed)
	}
	if lists {
		n := 0
		for key, err := range backend.Keys(h.ctx(), h.be, h.prefix) {
			n++
			if key != "" || !errors.Is(err, backend.ErrClosed) {
				t.Fatalf("Keys after Close yielded (%q, %v), want (\"\", ErrClosed)", key, err)
			}
		}
		if n != 1 {
			t.Fatalf("Keys after Close yielded %d pairs, want 1", n)
		}
	}
}

// Concurrency.

func testConcurrentIncrement(t *testing.T, h *harness) {
	k := h.key("counter")
	h.set(k, []byte("0"), 0)
	const rounds = 50
	n := h.opts.Concurrency
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range rounds {
				if _, err := h.be.Increment(h.ctx(), k, 1); err != nil {
					t.Errorf("Increment: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	h.wantNumber(k, uint64(n*rounds))
}

func testConcurrentCAS(t *testing.T, h *harness) {
	k := h.key("counter")
	h.set(k, []byte("0"), 0)
	const rounds = 20
	n := h.opts.Concurrency
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range rounds {
				for {
					it, err := h.be.Get(h.ctx(), k)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					v, err := strconv.ParseUint(string(it.Value), 10, 64)
					if err != nil {
						t.Errorf("value %s: %v", show(it.Value), err)
						return
					}
					err = h.be.CompareAndSwap(h.ctx(), backend.Item{Key: k, Value: []byte(strconv.FormatUint(v+1, 10)), CAS: it.CAS})
					if errors.Is(err, backend.ErrCASConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Errorf("CompareAndSwap: %v", err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	h.wantNumber(k, uint64(n*rounds))
	t.Logf("%d CAS conflicts retried", conflicts.Load())
}

func testConcurrentAdd(t *testing.T, h *harness) {
	n := h.opts.Concurrency
	for round := range 10 {
		k := h.key("k" + strconv.Itoa(round))
		var winners atomic.Int64
		var winner atomic.Int64
		var wg sync.WaitGroup
		for g := range n {
			wg.Go(func() {
				err := h.be.Add(h.ctx(), backend.Item{Key: k, Value: []byte(strconv.Itoa(g))})
				switch {
				case err == nil:
					winners.Add(1)
					winner.Store(int64(g))
				case !errors.Is(err, backend.ErrNotStored):
					t.Errorf("Add: %v", err)
				}
			})
		}
		wg.Wait()
		if w := winners.Load(); w != 1 {
			t.Fatalf("round %d: %d concurrent Adds of one key succeeded, want 1", round, w)
		}
		h.wantValue(k, []byte(strconv.Itoa(int(winner.Load()))))
	}
}

// testConcurrentSetGet writes uniform values (one byte repeated, its
// length set by the byte) to a few keys from many goroutines, and checks
// that every read sees one whole value, never a mix.
func testConcurrentSetGet(t *testing.T, h *harness) {
	keys := []string{h.key("a"), h.key("b"), h.key("c")}
	uniform := func(c byte) []byte { return bytes.Repeat([]byte{c}, 100+int(c-'A')*37) }
	n := h.opts.Concurrency
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			c := byte('A' + g%26)
			for i := range 50 {
				k := keys[(g+i)%len(keys)]
				if err := h.be.Set(h.ctx(), backend.Item{Key: k, Value: uniform(c)}); err != nil {
					t.Errorf("Set: %v", err)
					return
				}
				it, err := h.be.Get(h.ctx(), keys[(g+2*i)%len(keys)])
				if errors.Is(err, backend.ErrNotFound) {
					continue // not written yet
				}
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				if len(it.Value) == 0 || !bytes.Equal(it.Value, uniform(it.Value[0])) {
					t.Errorf("Get returned a value no one wrote: %s", show(it.Value))
					return
				}
			}
		})
	}
	wg.Wait()
}

// Optional interfaces.

func testLister(t *testing.T, h *harness) {
	if !h.supports(backend.OpKeys) {
		t.Skip("backend does not implement backend.Lister")
	}
	l := listerOf{h.be}
	want := []string{h.key("list/a"), h.key("list/b"), h.key("list/c"), h.key("list/sub/x")}
	for _, k := range want {
		h.set(k, []byte("v"), 0)
	}
	deleted := h.key("list/deleted")
	h.set(deleted, []byte("v"), 0)
	noErr(t, "Delete", h.be.Delete(h.ctx(), deleted))
	h.set(h.key("other"), []byte("v"), 0)
	h.set(h.key("lis"), []byte("v"), 0)
	var got []string
	for k, err := range l.Keys(h.ctx(), h.prefix+"list/") {
		noErr(t, "Keys", err)
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Keys(%q) = %q, want %q", h.prefix+"list/", got, want)
	}
	// Stopping early must be allowed.
	n := 0
	for range l.Keys(h.ctx(), h.prefix+"list/") {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("Keys with an early break yielded %d keys", n)
	}
}

func testStatsReporter(t *testing.T, h *harness) {
	if !h.supports(backend.OpServerStats) {
		t.Skip("backend does not implement backend.StatsReporter")
	}
	nodes, err := backend.ServerStats(h.ctx(), h.be)
	noErr(t, "ServerStats", err)
	if len(nodes) == 0 {
		t.Fatal("ServerStats returned no nodes")
	}
	for _, n := range nodes {
		if n.Addr == "" {
			t.Errorf("node with empty Addr: %+v", n)
		}
		if n.Err == nil && len(n.Stats) == 0 {
			t.Errorf("node %s: no stats and no error", n.Addr)
		}
	}
}

func testPinger(t *testing.T, h *harness) {
	if !h.supports(backend.OpPing) {
		t.Skip("backend does not implement backend.Pinger")
	}
	noErr(t, "Ping", backend.Ping(h.ctx(), h.be))
}

func testFlusher(t *testing.T, h *harness) {
	if _, ok := h.be.(backend.Flusher); !ok {
		t.Skip("backend does not implement backend.Flusher")
	}
	t.Skip("backend implements backend.Flusher; the suite does not call Flush, since it would empty a server other tests share")
}

// testTTLReader: GetTTL reads the value, CAS, client flags and remaining
// TTL of an item (0 for one that does not expire), ErrNotFound for a missing key
// and, over a backend with leases, for a lease placeholder and an item
// marked stale.
func testTTLReader(t *testing.T, h *harness) {
	ctx := h.ctx()
	k, never, missing := h.key("ttl"), h.key("never"), h.key("missing")
	h.set(k, []byte("v"), time.Hour)
	h.set(never, []byte("w"), 0)
	it, err := backend.GetTTL(ctx, h.be, k)
	if backend.NotSupported(err) {
		t.Skip("backend does not implement backend.TTLReader")
	}
	noErr(t, "GetTTL", err)
	if string(it.Value) != "v" || it.CAS == 0 || it.Key != k {
		t.Errorf("GetTTL = %+v, want value v and a CAS", it)
	}
	if g := h.opts.TTLGranularity; it.TTL <= time.Hour-time.Minute || it.TTL > time.Hour+g {
		t.Errorf("GetTTL of an item written with TTL 1h: TTL %v", it.TTL)
	}
	it, err = backend.GetTTL(ctx, h.be, never)
	noErr(t, "GetTTL", err)
	if string(it.Value) != "w" || it.TTL != 0 {
		t.Errorf("GetTTL of an item without expiry = %+v, want value w and TTL 0", it)
	}
	if _, err := backend.GetTTL(ctx, h.be, missing); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetTTL of a missing key: %v, want ErrNotFound", err)
	}
	if !h.opts.NoFlags {
		flagged := h.key("flagged")
		noErr(t, "Set", h.be.Set(ctx, backend.Item{Key: flagged, Value: []byte("f"), Flags: 7}))
		if it, err := backend.GetTTL(ctx, h.be, flagged); err != nil || it.Flags != 7 {
			t.Errorf("GetTTL of an item with client flags 7 = %+v, %v", it, err)
		}
	}
	if !h.supports(backend.OpGetLease) {
		return
	}
	held := h.key("placeholder")
	if _, err := backend.GetLease(ctx, h.be, held, backend.LeaseOptions{TTL: time.Minute}); err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	if _, err := backend.GetTTL(ctx, h.be, held); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetTTL of a lease placeholder: %v, want ErrNotFound", err)
	}
	noErr(t, "MarkStale", backend.MarkStale(ctx, h.be, k, 0))
	if _, err := backend.GetTTL(ctx, h.be, k); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetTTL of an item marked stale: %v, want ErrNotFound", err)
	}
}

// listerOf lists the keys of a backend with backend.Keys.
type listerOf struct{ be backend.Backend }

func (l listerOf) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return backend.Keys(ctx, l.be, prefix)
}

// testStaleMark: Get reports an item marked stale by a Leaser's MarkStale
// (Item.Stale) until the item is written; Touch keeps the mark. A backend
// that cannot lease never reports one.
func testStaleMark(t *testing.T, h *harness) {
	ctx := h.ctx()
	k := h.key("k")
	h.set(k, []byte("v"), 0)
	if it := h.get(k); it.Stale {
		t.Fatalf("Get of an item never marked stale = %+v, want Stale false", it)
	}
	if !h.supports(backend.OpGetLease) {
		return
	}
	noErr(t, "MarkStale", backend.MarkStale(ctx, h.be, k, 0))
	if it := h.get(k); !it.Stale || string(it.Value) != "v" {
		t.Fatalf("Get after MarkStale = %+v, want the value v, Stale", it)
	}
	noErr(t, "Touch", h.be.Touch(ctx, k, h.longTTL()))
	it := h.get(k)
	if !it.Stale {
		t.Fatalf("Get after MarkStale and Touch = %+v, want Stale", it)
	}
	noErr(t, "CompareAndSwap", h.be.CompareAndSwap(ctx, backend.Item{Key: k, Value: []byte("w"), CAS: it.CAS}))
	if it := h.get(k); it.Stale || string(it.Value) != "w" {
		t.Fatalf("Get after a write of an item marked stale = %+v, want the value w, not Stale", it)
	}
}
