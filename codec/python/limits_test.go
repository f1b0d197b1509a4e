package python

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"
)

// longGet is LONG_BINGET i.
func longGet(i int) []byte {
	return binary.LittleEndian.AppendUint32([]byte{opLongBinGet}, uint32(i))
}

// hostile are pickles made to exhaust a decoder, each small.
func hostile() map[string][]byte {
	m := map[string][]byte{}

	// A DAG: level i is [level i-1, level i-1], 60 levels: 2^60 leaves
	// once made into a tree.
	var dag bytes.Buffer
	dag.WriteString("N\x94")
	for i := 1; i <= 60; i++ {
		dag.WriteByte(opMark)
		dag.Write(longGet(i - 1))
		dag.Write(longGet(i - 1))
		dag.WriteString("l\x94")
	}
	dag.WriteByte('.')
	m["dag"] = dag.Bytes()

	// The pattern that makes og-rek copy a list on every APPENDS: a long
	// list, memoized, fetched and extended again and again.
	var app bytes.Buffer
	app.WriteString("](")
	app.WriteString(strings.Repeat("N", 100_000))
	app.WriteString("e\x94")
	for range 20_000 {
		app.Write(longGet(0))
		app.WriteString("(Ne0")
	}
	app.Write(longGet(0))
	app.WriteByte('.')
	m["appends"] = app.Bytes()

	// One memo entry per input byte.
	m["memo"] = []byte("N" + strings.Repeat("\x94", 1<<20) + ".")
	// One stack slot per input byte.
	m["stack"] = []byte(strings.Repeat("N", 1<<20) + ".")
	// One dict pair per 3 input bytes, all in one dict.
	m["dict"] = []byte("}(" + strings.Repeat("NN", 1<<19) + "u.")
	// A string referenced a million times.
	m["strings"] = []byte("X\x00\x00\x01\x00" + strings.Repeat("x", 1<<16) + "\x94(" + strings.Repeat("h\x00", 1<<19) + "l.")
	// Tuples nested 100000 deep.
	m["deep"] = []byte(")" + strings.Repeat("\x85", 100_000) + ".")
	// Lengths far beyond the data.
	m["length"] = []byte("\x8e\xff\xff\xff\xff\xff\xff\xff\x7fxyz.")
	m["length4"] = []byte("B\xff\xff\xff\xffxyz.")
	m["frame"] = []byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\x00\x00N.")
	return m
}

// TestHostilePicklesAreBounded: each hostile pickle is an error (none can
// be decoded within the limit), and decoding it allocates little more
// than the limit, whatever the pickle says.
func TestHostilePicklesAreBounded(t *testing.T) {
	const limit = 8 << 20
	c := Codec{MaxBytes: limit}
	for name, p := range hostile() {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		var v any
		err := c.Unmarshal(p, FlagPickle, &v)
		runtime.ReadMemStats(&ms1)
		if !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", name, err)
		}
		// The budget counts estimates; allow them a factor of 3, plus the
		// input.
		if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 3*limit+2*uint64(len(p)) {
			t.Errorf("%s: %d MiB allocated for a %d KiB pickle, with a limit of %d MiB: %v", name, alloc>>20, len(p)>>10, limit>>20, err)
		}
		t.Logf("%s (%d KiB): %v", name, len(p)>>10, err)
	}
}

// TestBudgetErrors: what exceeds the budget is ErrTooLarge, wrapped in
// ErrDecode, and a value within it decodes.
func TestBudgetErrors(t *testing.T) {
	c := Codec{MaxBytes: 1 << 20}
	for _, name := range []string{"dag", "memo", "stack", "dict", "strings"} {
		var v any
		err := c.Unmarshal(hostile()[name], FlagPickle, &v)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrTooLarge in ErrDecode", name, err)
		}
	}
	// A zip bomb: 4 MiB of zeros in 4 KiB.
	bomb := zlibOf(make([]byte, 4<<20))
	var b []byte
	if err := c.Unmarshal(bomb, FlagZlib, &b); !errors.Is(err, ErrTooLarge) {
		t.Errorf("zlib bomb: err = %v, want ErrTooLarge", err)
	}
	// Within the limit: decompressing takes up to twice the size, and
	// the []byte a copy.
	if err := (Codec{MaxBytes: 16 << 20}).Unmarshal(bomb, FlagZlib, &b); err != nil || len(b) != 4<<20 {
		t.Errorf("zlib within the limit: %d bytes, %v", len(b), err)
	}
	// A large value within the default limit.
	big := make([]byte, 2<<20)
	data, flags, err := Marshal(map[string][]byte{"blob": big})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string][]byte
	if err := Unmarshal(data, flags, &back); err != nil || len(back["blob"]) != len(big) {
		t.Errorf("a 2 MiB value: %v", err)
	}
}

// TestHugeIntErrorIsBounded: a long int of a pickle (LONG4 takes any
// size, and Python reads it) that fits no Go integer or float is an
// error that neither spells out its millions of digits nor allocates
// many times the value to find them: decimal conversion is superlinear,
// and the digits are not charged to the budget.
func TestHugeIntErrorIsBounded(t *testing.T) {
	const n = 256 << 10 // 256 KiB of two's complement: 630000 digits
	p := binary.LittleEndian.AppendUint32([]byte{opProto, 2, opLong4}, n)
	p = append(append(p, bytes.Repeat([]byte{0x5a}, n)...), opStop)
	c := Codec{MaxBytes: 1 << 20}
	for _, v := range []any{new(int64), new(uint8), new(float64), new(float32)} {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		err := c.Unmarshal(p, FlagPickle, v)
		runtime.ReadMemStats(&ms1)
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("%T: err = %v, want ErrDecode", v, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("%T: an error of %d bytes: %.120s...", v, len(err.Error()), err)
		}
		// Reading the LONG4 takes some 4 times its size.
		if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 8*n {
			t.Errorf("%T: %d KiB allocated to decode a %d KiB int (limit %d KiB): %v", v, alloc>>10, n>>10, c.MaxBytes>>10, err)
		}
		t.Logf("%T: %v", v, err)
	}
}

// TestErrorsQuoteLittleOfTheValue: an error about a malformed value
// quotes at most a short part of it, as Python's int() and float() do,
// whatever the value's size: a 1 MiB value of garbage is not an error of
// 1 to 4 MiB (every byte above 0x7e quoted as \xNN) in every failed read
// and log line.
func TestErrorsQuoteLittleOfTheValue(t *testing.T) {
	const n = 1 << 20
	junk := bytes.Repeat([]byte{0xff}, n)
	line := func(op string) []byte { // op, then a 1 MiB argument line
		return append(append(append([]byte(op), junk...), '\n'), 'N', '.')
	}
	type when struct{ When time.Time }
	for name, c := range map[string]struct {
		data  []byte
		flags uint32
		v     any
	}{
		"int flag":    {append([]byte("1"), junk...), FlagInt, new(any)},
		"long flag":   {append(junk, '1'), FlagLong, new(int64)},
		"INT":         {line("I1"), FlagPickle, new(any)},
		"LONG":        {line("L1"), FlagPickle, new(any)},
		"FLOAT":       {line("F1"), FlagPickle, new(any)},
		"GET":         {line("g1"), FlagPickle, new(any)},
		"PUT":         {line("Np1"), FlagPickle, new(any)},
		"TextMarshal": {[]byte("{\"When\": \"" + strings.Repeat("x", n) + "\"}"), 0, nil},
	} {
		v := c.v
		if v == nil { // a dict with a time.Time field of 1 MiB of text
			data, flags, err := Marshal(map[string]string{"When": strings.Repeat("x", n)})
			if err != nil {
				t.Fatal(err)
			}
			c.data, c.flags, v = data, flags, new(when)
		}
		err := Unmarshal(c.data, c.flags, v)
		if !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", name, err)
			continue
		}
		if len(err.Error()) > 1024 {
			t.Errorf("%s: an error of %d bytes: %.150s...", name, len(err.Error()), err)
		}
	}
}

// TestMarshalHugeIntIsQuick: an int Python will not read (more than 4300
// digits) is an ErrEncode found from its size, without writing out its
// digits, which takes superlinear time and memory: a Dict[any] that
// writes back what it read (a pickle's LONG4 may hold an int of
// millions of digits) spent 1.7 s on a 1 MiB int.
func TestMarshalHugeIntIsQuick(t *testing.T) {
	n := new(big.Int).Lsh(big.NewInt(1), 1<<21) // 631306 digits
	for _, v := range []any{n, new(big.Int).Neg(n), []any{n}, *n} {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		_, _, err := Marshal(v)
		runtime.ReadMemStats(&ms1)
		if !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), "4300") {
			t.Errorf("%T: err = %.200v, want ErrEncode naming Python's limit", v, err)
		}
		if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 2<<20 {
			t.Errorf("%T: %d KiB allocated to refuse an int of %d KiB", v, alloc>>10, len(n.Bits())*8>>10)
		}
	}
	// At the limit, exactly.
	max, _ := new(big.Int).SetString(strings.Repeat("9", 4300), 10)
	if _, _, err := Marshal(max); err != nil {
		t.Errorf("4300 digits: %v", err)
	}
	if _, _, err := Marshal(new(big.Int).Add(max, big.NewInt(1))); !errors.Is(err, ErrEncode) {
		t.Errorf("4301 digits: %v, want ErrEncode", err)
	}
}

// TestErrorsNameClassesShortly: the class of an object that has no Go
// form, which an error names, comes from the pickle: a GLOBAL or
// STACK_GLOBAL of a 1 MiB name is an error naming a little of it.
func TestErrorsNameClassesShortly(t *testing.T) {
	long := strings.Repeat("m", 1<<20)
	sbu := func(s string) string { return "X" + string(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))) + s }
	for name, p := range map[string]string{
		"GLOBAL module":       "c" + long + "\nname\n)R.",
		"GLOBAL name":         "cmod\n" + long + "\n)R.",
		"class":               "c" + long + "\nname\n.",
		"STACK_GLOBAL":        "\x80\x04" + sbu(long) + sbu("name") + "\x93)\x81.",
		"INST":                "(i" + long + "\nname\n.",
		"dict key of a class": "}c" + long + "\nname\nNs.",
	} {
		for _, v := range []any{new(any), new(int), new(map[string]any)} {
			err := Unmarshal([]byte(p), FlagPickle, v)
			if !errors.Is(err, ErrDecode) {
				t.Errorf("%s into %T: err = %.200v, want ErrDecode", name, v, err)
				continue
			}
			if len(err.Error()) > 1024 {
				t.Errorf("%s into %T: an error of %d bytes: %.150s...", name, v, len(err.Error()), err)
			}
		}
	}
}

// An encoding error says where in the value it is in a few hundred
// bytes, as a decoding error does: a map that held itself was an error
// of 2.5 KB spelling the steps of the cycle, and a value under a map
// key of 1 MiB an error quoting all of it.
func TestEncodeErrorsAreShort(t *testing.T) {
	cycle := map[string]any{}
	cycle["m"] = cycle
	type node struct{ Next *node }
	list := &node{}
	list.Next = list
	for name, v := range map[string]any{
		"map cycle":  cycle,
		"pointers":   list,
		"a long key": map[string]any{strings.Repeat("k", 1<<20): make(chan int)},
	} {
		_, _, err := Marshal(v)
		if !errors.Is(err, ErrEncode) {
			t.Fatalf("%s: %v, want ErrEncode", name, err)
		}
		if len(err.Error()) > 400 {
			t.Errorf("%s: an error of %d bytes: %.120s...", name, len(err.Error()), err)
		}
	}
}
