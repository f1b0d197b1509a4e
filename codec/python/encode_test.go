package python

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/pyinterop"
)

// TestMarshalScalars: the values python-memcached stores without a
// pickle get its flags and bytes.
func TestMarshalScalars(t *testing.T) {
	type name string
	s := "ptr"
	tests := []struct {
		in    any
		data  string
		flags uint32
	}{
		{"héllo", "héllo", FlagText},
		{name("named"), "named", FlagText},
		{&s, "ptr", FlagText},
		{"", "", FlagText},
		{[]byte("\x00\xff"), "\x00\xff", FlagBytes},
		{[]byte(nil), "", FlagBytes},
		{[3]byte{1, 2, 3}, "\x01\x02\x03", FlagBytes},
		{42, "42", FlagInt},
		{int8(-8), "-8", FlagInt},
		{uint64(math.MaxUint64), "18446744073709551615", FlagInt},
		{big.NewInt(-5), "-5", FlagInt},
		{*bigInt("123456789012345678901234567890"), "123456789012345678901234567890", FlagInt},
		{time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "2024-05-06T07:08:09Z", FlagText},
		{net.IPv4(10, 0, 0, 1), "10.0.0.1", FlagText}, // a TextMarshaler before a []byte
	}
	for _, tt := range tests {
		data, flags, err := Marshal(tt.in)
		if err != nil || string(data) != tt.data || flags != tt.flags {
			t.Errorf("Marshal(%#v) = %q, %d, %v; want %q, %d", tt.in, data, flags, err, tt.data, tt.flags)
		}
	}
	for _, in := range []any{nil, (*int)(nil), true, 1.5, []int{1}, map[string]int{}, struct{}{}, []string(nil)} {
		if _, flags, err := Marshal(in); err != nil || flags != FlagPickle {
			t.Errorf("Marshal(%#v): flags %d, %v; want a pickle", in, flags, err)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	type node struct{ Next *node }
	loop := &node{}
	loop.Next = loop
	tests := []struct {
		in  any
		err string
	}{
		{make(chan int), "Go chan int has no Python form"},
		{[]any{func() {}}, "Go func() has no Python form at [0]"},
		{complex(1, 2), "Go complex128 has no Python form"},
		{"\xff", "not valid UTF-8"},
		{map[string]string{"k": "\xff"}, `(store bytes as []byte) at ["k"]`},
		{map[string]any{"k\xff": 1}, "not valid UTF-8"},
		{map[[2]int]int{{1, 2}: 3}, "a map key of Go type [2]int"},
		{cyclic, "deeper than 1000"},
		{loop, "deeper than 1000"},
		{new(big.Int).Exp(big.NewInt(10), big.NewInt(4300), nil), "4301 digits"},
		{[]any{new(big.Int).Exp(big.NewInt(10), big.NewInt(4300), nil)}, "4301 digits"},
	}
	for _, tt := range tests {
		_, _, err := Marshal(tt.in)
		if !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Marshal(%T): err = %v, want ErrEncode with %q", tt.in, err, tt.err)
		}
	}
	for _, p := range []int{-2, 6} {
		if _, _, err := (Codec{Protocol: p}).Marshal(1.5); !errors.Is(err, ErrEncode) {
			t.Errorf("protocol %d: err = %v, want ErrEncode", p, err)
		}
	}
}

// goValues are Go values, the Python values they are as Python
// expressions, and what Unmarshal makes of them in an empty interface.
var goValues = []struct {
	in     any
	python string
	back   any
}{
	{nil, "None", nil},
	{true, "True", true},
	{1.5, "1.5", 1.5},
	{math.Inf(-1), "float('-inf')", math.Inf(-1)},
	{[]any{1, "é", []byte("b"), nil, false, 2.5, uint64(math.MaxUint64), big.NewInt(1 << 40), *bigInt("-123456789012345678901234567890")},
		"[1, 'é', b'b', None, False, 2.5, 18446744073709551615, 1099511627776, -123456789012345678901234567890]",
		[]any{int64(1), "é", []byte("b"), nil, false, 2.5, bigInt("18446744073709551615"), int64(1 << 40), bigInt("-123456789012345678901234567890")}},
	{[]string(nil), "[]", []any{}},
	{map[string]int(nil), "{}", map[string]any{}},
	{map[string]any{"a": map[int]string{1: "x"}, "b": []int{1, 2}, "": 0}, "{'a': {1: 'x'}, 'b': [1, 2], '': 0}",
		map[string]any{"a": map[any]any{int64(1): "x"}, "b": []any{int64(1), int64(2)}, "": int64(0)}},
	{map[float64]bool{0.5: true}, "{0.5: True}", map[any]any{0.5: true}},
	{struct {
		Name string   `pickle:"name"`
		Tags []string `json:"tags,omitempty"`
		Skip int      `pickle:"-"`
		When time.Time
		Big  [3]byte
	}{Name: "Ada", Skip: 1, When: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Big: [3]byte{1, 2, 3}},
		"{'name': 'Ada', 'When': '2024-05-06T07:08:09Z', 'Big': b'\\x01\\x02\\x03'}",
		map[string]any{"name": "Ada", "When": "2024-05-06T07:08:09Z", "Big": []byte{1, 2, 3}}},
	{[]byte(strings.Repeat("z", 300)), "b'z'*300", []byte(strings.Repeat("z", 300))},
}

// TestMarshalRoundTrip: what Marshal writes, in every protocol, Unmarshal
// reads back.
func TestMarshalRoundTrip(t *testing.T) {
	for p := 1; p <= HighestProtocol; p++ {
		c := Codec{Protocol: p}
		for _, v := range goValues {
			data, flags, err := c.Marshal(v.in)
			if err != nil {
				t.Fatalf("protocol %d: Marshal(%#v): %v", p, v.in, err)
			}
			var back any
			if err := c.Unmarshal(data, flags, &back); err != nil {
				t.Errorf("protocol %d: Unmarshal of %#v: %v", p, v.in, err)
			} else if !equal(back, v.back) {
				t.Errorf("protocol %d: %#v came back as %#v, want %#v", p, v.in, back, v.back)
			}
		}
	}
}

// TestMarshalReadByPython: Python's pickle.loads reads Marshal's pickles,
// of every protocol, as the Python values they stand for.
func TestMarshalReadByPython(t *testing.T) {
	py := pyinterop.Find(t)
	var ops []pyinterop.Op
	var what []string
	for _, p := range []int{0, 1, 2, 3, 4, 5, -1} {
		for _, v := range goValues {
			data, flags, err := (Codec{Protocol: p}).Marshal(v.in)
			if err != nil {
				t.Fatal(err)
			}
			if flags != FlagPickle {
				continue
			}
			ops = append(ops, pyinterop.Op{Op: "loads", Hex: hex.EncodeToString(data)}, pyinterop.Op{Op: "canon", Expr: v.python})
			what = append(what, fmt.Sprintf("protocol %d: %#v", p, v.in))
		}
	}
	res := py.Batch(t, "", ops...)
	for i := 0; i < len(res); i += 2 {
		got, want := res[i], res[i+1]
		if got.Error != "" || want.Error != "" || got.Repr != want.Repr || got.Type != want.Type {
			t.Errorf("%s: Python read %s %s (%s); want %s %s (%s)", what[i/2], got.Type, got.Repr, got.Error, want.Type, want.Repr, want.Error)
		}
	}
}

func TestMarshalCompress(t *testing.T) {
	c := Codec{MinCompressLen: 10}
	long := strings.Repeat("abc", 100)
	data, flags, err := c.Marshal(long)
	if err != nil || flags != FlagText|FlagZlib || len(data) >= len(long) {
		t.Fatalf("Marshal(300 bytes): %d bytes, flags %d, %v; want compressed, FlagText|FlagZlib", len(data), flags, err)
	}
	var back string
	if err := c.Unmarshal(data, flags, &back); err != nil || back != long {
		t.Fatalf("Unmarshal: %v", err)
	}
	if _, flags, _ := c.Marshal("short"); flags != FlagText {
		t.Errorf("a 5-byte value: flags %d, want FlagText (not compressed)", flags)
	}
	if _, flags, _ := c.Marshal("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"); flags != FlagText {
		t.Errorf("a value compression makes longer: flags %d, want FlagText", flags)
	}
	if _, flags, _ := c.Marshal(int64(math.MinInt64)); flags != FlagInt {
		t.Errorf("an int: flags %d, want FlagInt: python-memcached never compresses ints", flags)
	}
	if _, flags, _ := c.Marshal(map[string]string{"k": long}); flags != FlagPickle|FlagZlib {
		t.Errorf("a long pickle: flags %d, want FlagPickle|FlagZlib", flags)
	}
}

// TestPicklerMatchesPython: the pickles of ints (every opcode Python
// picks by size, the two's complement bytes of LONG1 and LONG4), floats,
// bools and None are byte for byte those of Python's pickle.dumps, which
// memoizes none of them (protocol 4's frames start at larger pickles).
func TestPicklerMatchesPython(t *testing.T) {
	py := pyinterop.Find(t)
	pow := func(b int64, e uint) *big.Int { return new(big.Int).Exp(big.NewInt(b), big.NewInt(int64(e)), nil) }
	values := []struct {
		in     any
		python string
	}{
		{0, "0"}, {255, "255"}, {256, "256"}, {65535, "65535"}, {65536, "65536"},
		{-1, "-1"}, {-128, "-128"}, {-129, "-129"}, {-255, "-255"}, {-256, "-256"},
		{int64(math.MinInt32), "-2**31"}, {int64(math.MaxInt32), "2**31-1"},
		{int64(math.MaxInt32) + 1, "2**31"}, {int64(math.MinInt32) - 1, "-2**31-1"},
		{int64(math.MaxInt64), "2**63-1"}, {int64(math.MinInt64), "-2**63"},
		{uint64(math.MaxUint64), "2**64-1"}, {uint32(math.MaxUint32), "2**32-1"},
		{pow(2, 64), "2**64"}, {new(big.Int).Neg(pow(2, 64)), "-2**64"},
		{new(big.Int).Neg(pow(2, 63)), "-2**63"}, {pow(2, 127), "2**127"},
		{new(big.Int).Neg(pow(2, 127)), "-2**127"}, {pow(10, 40), "10**40"},
		{pow(2, 2100), "2**2100"}, {new(big.Int).Neg(pow(3, 1400)), "-3**1400"},
		{1.5, "1.5"}, {math.Copysign(0, -1), "-0.0"}, {math.Inf(1), "float('inf')"}, {float32(0.25), "0.25"},
		{true, "True"}, {false, "False"}, {nil, "None"},
	}
	var ops []pyinterop.Op
	var what []string
	var ours []string
	for _, proto := range []int{1, 2, 3} {
		for _, v := range values {
			data, err := pickle(reflect.ValueOf(v.in), proto)
			if err != nil {
				t.Fatalf("protocol %d: pickle(%v): %v", proto, v.in, err)
			}
			ops = append(ops, pyinterop.Op{Op: "dumps", Expr: v.python, Protocol: pyinterop.Protocol(proto)})
			what = append(what, fmt.Sprintf("protocol %d: %s", proto, v.python))
			ours = append(ours, hex.EncodeToString(data))
		}
	}
	for i, r := range py.Batch(t, "", ops...) {
		if r.Error != "" || r.Hex != ours[i] {
			t.Errorf("%s: ours %s, Python's %s %s", what[i], ours[i], r.Hex, r.Error)
		}
	}
}
