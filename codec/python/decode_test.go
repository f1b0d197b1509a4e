package python

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/internal/pyinterop"
)

func zlibOf(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// intoAny asks decodeAs to decode into an empty interface.
type intoAny struct{ v any }

// decodeAs decodes into a new value of the type of want and returns it.
func decodeAs(c Codec, data []byte, flags uint32, want any) (any, error) {
	if _, ok := want.(intoAny); ok {
		var v any
		err := c.Unmarshal(data, flags, &v)
		return intoAny{v}, err
	}
	p := reflect.New(reflect.TypeOf(want))
	err := c.Unmarshal(data, flags, p.Interface())
	return p.Elem().Interface(), err
}

// TestUnmarshalByFlags reads values as python-memcached stores them,
// into the Go types they fit, and refuses the others.
func TestUnmarshalByFlags(t *testing.T) {
	type kase struct {
		name  string
		data  string
		flags uint32
		want  any    // a value of the type to decode into
		err   string // a part of the error, or "" for success
	}
	tests := []kase{
		{"text", "héllo", FlagText, "héllo", ""},
		{"text into bytes", "héllo", FlagText, []byte("héllo"), ""},
		{"text into any", "héllo", FlagText, intoAny{"héllo"}, ""},
		{"text not utf-8", "\xff", FlagText, "", "not valid UTF-8"},
		{"text into int", "42", FlagText, 0, "Python str cannot go into Go int"},
		{"text into time", "2024-05-06T07:08:09Z", FlagText, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), ""},
		{"text time refused", "tomorrow", FlagText, time.Time{}, "Go time.Time refuses Python str"},
		{"int", "42", FlagInt, 42, ""},
		{"int into any", "-42", FlagInt, intoAny{int64(-42)}, ""},
		{"int as python reads it", " \t-4_2\n", FlagInt, int64(-42), ""},
		{"int leading zeros", "0042", FlagInt, 42, ""},
		{"int into int8", "300", FlagInt, int8(0), "overflows Go int8"},
		{"int into uint", "-1", FlagInt, uint(0), "overflows Go uint"},
		{"int into float", "3", FlagInt, 3.0, ""},
		{"int into string", "3", FlagInt, "", "Python int cannot go into Go string"},
		{"int big", "123456789012345678901234567890", FlagInt, *bigInt("123456789012345678901234567890"), ""},
		{"int big into any", "-123456789012345678901234567890", FlagInt, intoAny{bigInt("-123456789012345678901234567890")}, ""},
		{"int big into int64", "123456789012345678901234567890", FlagInt, int64(0), "overflows Go int64"},
		{"int 4300 digits", strings.Repeat("9", 4300), FlagInt, big.Int{}, ""},
		{"int 4301 digits", strings.Repeat("9", 4301), FlagInt, big.Int{}, "limit of 4300 digits"},
		{"int double underscore", "1__2", FlagInt, 0, "invalid literal"},
		{"int hex", "0x10", FlagInt, 0, "invalid literal"},
		{"int empty", "", FlagInt, 0, "invalid literal"},
		{"long", "7", FlagLong, 7, ""},
		{"bytes", "\x00\xff", FlagBytes, []byte("\x00\xff"), ""},
		{"bytes into string", "ab", FlagBytes, "ab", ""},
		{"bytes into any", "ab", FlagBytes, intoAny{[]byte("ab")}, ""},
		{"bytes into array", "abc", FlagBytes, [3]byte{'a', 'b', 'c'}, ""},
		{"bytes into short array", "abcd", FlagBytes, [3]byte{}, "4 bytes cannot go into Go [3]uint8"},
		{"bytes into int", "1", FlagBytes, 0, "Python bytes cannot go into Go int"},
		{"zlib text", string(zlibOf([]byte("héllo"))), FlagZlib | FlagText, "héllo", ""},
		{"zlib bytes", string(zlibOf([]byte("raw"))), FlagZlib, []byte("raw"), ""},
		{"zlib trailing bytes", string(zlibOf([]byte("raw"))) + "junk", FlagZlib, []byte("raw"), ""},
		{"zlib corrupt", "not zlib", FlagZlib | FlagText, "", "zlib"},
		{"zlib pickle", string(zlibOf([]byte("\x80\x02K\x07."))), FlagZlib | FlagPickle, 7, ""},
		{"text before int", "x", FlagText | FlagInt, "x", ""},
		{"int before pickle", "5", FlagInt | FlagPickle, 5, ""},
		{"unknown flags", "x", 32, "", "unknown flags 0x20"},
		{"pickle flag with others", "\x80\x02K\x07.", 0x100 | FlagPickle, 7, ""},
		{"pickle", "\x80\x02K\x07.", FlagPickle, intoAny{int64(7)}, ""},
		{"none into int", "N.", FlagPickle, 0, ""},
		{"none into pointer", "N.", FlagPickle, (*int)(nil), ""},
		{"none into any", "N.", FlagPickle, intoAny{}, ""},
	}
	for _, tt := range tests {
		got, err := decodeAs(Codec{}, []byte(tt.data), tt.flags, tt.want)
		if tt.err != "" {
			if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want ErrDecode with %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if g, w := got, tt.want; reflect.TypeOf(g) == reflect.TypeFor[big.Int]() {
			gb, wb := g.(big.Int), w.(big.Int)
			if tt.name == "int 4300 digits" {
				wb = *bigInt(strings.Repeat("9", 4300))
			}
			if gb.Cmp(&wb) != 0 {
				t.Errorf("%s: got %v, want %v", tt.name, &gb, &wb)
			}
		} else if ga, ok := g.(intoAny); ok {
			if !equal(ga.v, w.(intoAny).v) {
				t.Errorf("%s: got %#v, want %#v", tt.name, ga.v, w.(intoAny).v)
			}
		} else if !equal(g, w) {
			t.Errorf("%s: got %#v, want %#v", tt.name, g, w)
		}
	}
}

// TestParseIntMatchesPython: the ints of flag 2 are read as Python's
// int() reads the bytes.
func TestParseIntMatchesPython(t *testing.T) {
	inputs := []string{"0", "-0", "+5", " 5 ", "\t\n\v\f\r5\r\n", "5_0", "_5", "5_", "5__0", "-_5", "0_0", "007",
		"1e3", "1.0", "0x1f", "0b1", " ", "", "--1", "+-1", "٣", "\x005", "5\x00", "9223372036854775807",
		"9223372036854775808", "-9223372036854775809", "1_000_000_000_000_000_000_000", strings.Repeat("1", 4300), strings.Repeat("1", 4301),
		strings.Repeat("1_", 4300) + "1"}
	py := pyinterop.Find(t)
	var ops []pyinterop.Op
	for _, in := range inputs {
		ops = append(ops, pyinterop.Op{Op: "int", Hex: hex.EncodeToString([]byte(in))})
	}
	for i, r := range py.Batch(t, "", ops...) {
		i64, n, err := parseInt([]byte(inputs[i]), true)
		if r.Error != "" {
			if err == nil {
				t.Errorf("int(%q): Python: %s; parseInt accepted it", inputs[i], r.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("int(%q) = %s in Python; parseInt: %v", inputs[i], truncate(r.Repr), err)
			continue
		}
		if n == nil {
			n = big.NewInt(i64)
		}
		if n.String() != r.Repr {
			t.Errorf("int(%q) = %s in Python; parseInt: %s", inputs[i], truncate(r.Repr), truncate(n.String()))
		}
	}
}

type embedded struct {
	Shared string
	Depth  int `pickle:"depth"`
}

type account struct {
	embedded
	Name     string            `pickle:"name"`
	Email    *string           `json:"email"`
	Visits   int               `pickle:"visits,omitempty"`
	Tags     []string          `pickle:"tags"`
	Scores   map[string]uint16 `pickle:"scores"`
	Point    [2]float64        `pickle:"point"`
	Skipped  string            `pickle:"-"`
	Created  time.Time         `pickle:"created"`
	Any      any               `pickle:"any"`
	Counts   map[int]bool      `pickle:"counts"`
	Raw      []byte            `pickle:"raw"`
	Next     *account          `pickle:"next"`
	unexport int
}

// TestUnmarshalStruct reads a dict into a struct by field names, tags,
// embedded fields, case-insensitive matches, and ignores the rest.
func TestUnmarshalStruct(t *testing.T) {
	email := "ada@example.com"
	in := map[string]any{
		"name":     "Ada",
		"EMAIL":    email, // matched without regard to case
		"visits":   3,
		"tags":     []string{"a", "b"},
		"scores":   map[string]int{"x": 65535},
		"point":    []float64{1.5, -2},
		"Skipped":  "no",
		"created":  "2024-05-06T07:08:09Z",
		"any":      map[string]any{"k": []any{1, "v", nil}},
		"counts":   map[int]bool{1: true},
		"raw":      []byte{0, 1},
		"Shared":   "from the embedded struct",
		"depth":    2,
		"next":     map[string]any{"name": "Bob", "next": nil},
		"unknown":  []int{1},
		"unexport": 5,
	}
	data, flags, err := Marshal(in)
	if err != nil || flags != FlagPickle {
		t.Fatalf("Marshal: %v, flags %d", err, flags)
	}
	var got account
	got.Skipped = "kept"
	if err := Unmarshal(data, flags, &got); err != nil {
		t.Fatal(err)
	}
	want := account{
		embedded: embedded{Shared: "from the embedded struct", Depth: 2},
		Name:     "Ada", Email: &email, Visits: 3, Tags: []string{"a", "b"},
		Scores: map[string]uint16{"x": 65535}, Point: [2]float64{1.5, -2}, Skipped: "kept",
		Created: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Any:     map[string]any{"k": []any{int64(1), "v", nil}},
		Counts:  map[int]bool{1: true}, Raw: []byte{0, 1},
		Next: &account{Name: "Bob"},
	}
	if !reflect.DeepEqual(got, want) || got.unexport != 0 {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestUnmarshalMismatch: a value that does not fit says what, into what,
// and where.
func TestUnmarshalMismatch(t *testing.T) {
	tests := []struct {
		in   any
		into any
		err  string
	}{
		{map[string]any{"tags": []any{"a", 2}}, &account{}, `Python int cannot go into Go string at ["tags"][1]`},
		{map[string]any{"scores": map[string]int{"x": 70000}}, &account{}, `Python int 70000 overflows Go uint16 at ["scores"]["x"]`},
		{map[string]any{"point": []int{1}}, &account{}, `Python list of 1 items cannot go into Go [2]float64 at ["point"]`},
		{map[string]any{"counts": map[string]bool{"x": true}}, &account{}, `Python str cannot go into Go int at ["counts"]["x"]`},
		{map[string]any{"next": map[string]any{"next": 5}}, &account{}, `Python int cannot go into Go python.account at ["next"]["next"]`},
		{[]any{1}, &map[string]int{}, "Python list cannot go into Go map[string]int"},
		{map[int]int{1: 2}, &map[[2]int]int{}, "its key type is not text, a number or a bool"},
		{1.5, new(int), "Python float cannot go into Go int"},
		{true, new(int), "Python bool cannot go into Go int"},
		{"x", new(error), "Python str cannot go into Go error"},
		{big.NewInt(5), new(chan int), "Python int cannot go into Go chan int"},
	}
	for _, tt := range tests {
		data, flags, err := Marshal(tt.in)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", tt.in, err)
		}
		err = Unmarshal(data, flags, tt.into)
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%#v into %T: err = %v, want ErrDecode with %q", tt.in, tt.into, err, tt.err)
		}
	}
	for _, into := range []any{nil, 5, (*int)(nil)} {
		if err := Unmarshal([]byte("N."), FlagPickle, into); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "non-nil pointer") {
			t.Errorf("Unmarshal into %#v: err = %v", into, err)
		}
	}
}

// TestUnmarshalPythonObjects: instances of Python classes, persistent
// references and the like have no Go form, and say so.
func TestUnmarshalPythonObjects(t *testing.T) {
	tests := []struct{ name, pickle, err string }{
		// pickle.dumps(datetime.date(2020, 1, 1), 2)
		{"date", "\x80\x02cdatetime\ndate\nq\x00c_codecs\nencode\nq\x01X\x05\x00\x00\x00\x07\xc3\xa4\x01\x01q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.", "datetime.date object has no Go form"},
		// pickle.dumps(datetime.datetime(2020, 1, 1, 12, 0), 5)
		{"datetime", "\x80\x05\x95*\x00\x00\x00\x00\x00\x00\x00\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\x01\x01\x0c\x00\x00\x00\x00\x00\x94\x85\x94R\x94.", "datetime.datetime object has no Go form"},
		// an instance of a class C: NEWOBJ and BUILD
		{"instance", "\x80\x02c__main__\nC\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01sb.", "__main__.C object has no Go form"},
		{"persistent id", "\x80\x02X\x01\x00\x00\x00xQ.", "persistent ID"},
		{"extension", "\x80\x02\x82\x01.", "extension registry"},
		{"out-of-band", "\x80\x05\x97.", "out-of-band"},
		{"self-referencing list", "]q\x00h\x00a.", "deeper than 1000"},
		{"self-referencing dict", "}q\x00K\x01h\x00s.", "deeper than 1000"},
		{"tuple key", "}(K\x01K\x02\x86K\x03u.", "dict key of type tuple cannot be a Go map key"},
		{"truncated", "\x80\x02X\x05\x00\x00\x00ab", "truncated"},
		{"no stop", "K\x01", "no STOP"},
		{"empty", "", "no STOP"},
		{"bad opcode", "\xff", "invalid opcode 0xff"},
		{"protocol 6", "\x80\x06N.", "unsupported pickle protocol: 6"},
		{"underflow", "a.", "underflow"},
		{"pop after mark", "K\x01(0.", ""}, // POP takes the MARK back: valid
		{"append below mark", "]K\x01(a.", "underflow"},
		{"odd dict", "(K\x01d.", "odd number"},
		{"no mark", "l.", "could not find MARK"},
		{"append to int", "K\x01K\x02a.", "APPEND to int"},
		{"memo miss", "h\x05.", "memo value not found"},
		{"str not utf-8", "X\x01\x00\x00\x00\xff.", "not valid UTF-8"},
		{"lone surrogate", "V\\ud800\n.", "surrogate"},
		{"unquoted STRING", "Sabc\n.", "must be quoted"},
		{"negative BINSTRING", "T\xff\xff\xff\xff.", "negative byte count"},
		{"huge BINBYTES8", "\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "truncated"},
		{"frame beyond data", "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00N.", "truncated"},
		{"int of 4301 digits", "I" + strings.Repeat("1", 4301) + "\n.", "4300"},
	}
	for _, tt := range tests {
		var v any
		err := Unmarshal([]byte(tt.pickle), FlagPickle, &v)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want ErrDecode with %q", tt.name, err, tt.err)
		}
	}
}

// A zlib stream cut short is an error, whatever the length cut.
func TestUnmarshalTruncatedZlib(t *testing.T) {
	full := zlibOf([]byte(strings.Repeat("abcdefgh", 2000)))
	for _, n := range []int{2, len(full) / 2, len(full) - 4, len(full) - 1} {
		var b []byte
		if err := Unmarshal(full[:n], FlagZlib, &b); !errors.Is(err, ErrDecode) {
			t.Errorf("%d of %d bytes: err = %v, %d bytes; want ErrDecode", n, len(full), err, len(b))
		}
	}
}

type myByte uint8

// Byte slices and arrays of a named byte type are bytes too.
func TestNamedByteTypes(t *testing.T) {
	for _, in := range []any{[3]myByte{1, 2, 3}, []myByte{1, 2, 3}, [3]byte{1, 2, 3}} {
		data, flags, err := Marshal(in)
		if err != nil || string(data) != "\x01\x02\x03" || flags != FlagBytes {
			t.Errorf("Marshal(%#v) = %q, %d, %v", in, data, flags, err)
		}
		data, flags, err = Marshal([]any{in})
		if err != nil {
			t.Errorf("Marshal([%#v]): %v", in, err)
		}
		var arr [1][3]myByte
		var sl [1][]myByte
		if err := Unmarshal(data, flags, &arr); err != nil || arr[0] != [3]myByte{1, 2, 3} {
			t.Errorf("into [1][3]myByte: %v %v", arr, err)
		}
		if err := Unmarshal(data, flags, &sl); err != nil || len(sl[0]) != 3 || sl[0][2] != 3 {
			t.Errorf("into [1][]myByte: %v %v", sl, err)
		}
	}
}

// TestDictBytesAndTextKeys guards against a Python 3 dict holding both
// b"k" and "k" read as a Go map of one entry: bytes keys become strings,
// and {b'k': 1, 'k': 2} decoded to {"k": 2}, the b'k' entry dropped
// unseen (and from Python's dict too when the map is written back). It
// is now an error naming the two keys. (Pickles by Python 3.11, protocols
// 2 and 3.)
func TestDictBytesAndTextKeys(t *testing.T) {
	for _, p := range []string{
		"\x80\x02}q\x00(c_codecs\nencode\nq\x01X\x01\x00\x00\x00kq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05K\x01X\x01\x00\x00\x00kq\x06K\x02u.",
		"\x80\x03}q\x00(C\x01kq\x01K\x01X\x01\x00\x00\x00kq\x02K\x02u.",
	} {
		for _, into := range []any{new(any), new(map[any]any), new(map[string]int)} {
			err := Codec{}.Unmarshal([]byte(p), FlagPickle, into)
			if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), `keys b"k" and "k"`) {
				t.Errorf("{b'k': 1, 'k': 2} into %T: got %v, error %v; want an error naming both keys", into, reflect.ValueOf(into).Elem(), err)
			}
		}
	}
	// Bytes and text keys that differ still decode: {b'k': 1, 'j': 2}.
	var m map[string]int
	if err := (Codec{}).Unmarshal([]byte("\x80\x03}q\x00(C\x01kq\x01K\x01X\x01\x00\x00\x00jq\x02K\x02u."), FlagPickle, &m); err != nil || !reflect.DeepEqual(m, map[string]int{"k": 1, "j": 2}) {
		t.Errorf("{b'k': 1, 'j': 2} = %v, %v", m, err)
	}
}
