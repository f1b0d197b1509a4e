package python

import (
	"bytes"
	"compress/zlib"
	"encoding"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxIntBits is a bound below which an int has at most maxIntDigits
// decimal digits (4300 digits need 14281 bits).
const maxIntBits = 14280

// Marshal encodes v as python-memcached and pymemcache store a Python
// value, and returns the bytes and the client flags to store with them:
//
//   - a string (any string kind): its UTF-8 bytes, FlagText; it must be
//     valid UTF-8, as Python decodes it
//   - an encoding.TextMarshaler (time.Time: RFC 3339): its text, FlagText
//   - []byte or a byte array: the bytes, FlagBytes (0)
//   - an integer of any type, big.Int: ASCII decimal, FlagInt
//   - anything else: a pickle, FlagPickle, of the Codec's protocol, that
//     Python's pickle.loads reads as None (nil pointers and interfaces),
//     bool, int (integers, big.Int), float, str (strings, TextMarshalers),
//     bytes ([]byte, byte arrays), list (slices, arrays; nil ones give
//     []), or dict (maps, whose keys must be strings, integers, floats,
//     bools or TextMarshalers; structs, by field names as Unmarshal reads
//     them, leaving out ",omitempty" fields that are empty). A dict's key
//     order is unspecified.
//
// With MinCompressLen set, long values are compressed (FlagZlib). Values
// that nest deeper than MaxDepth (cycles), channels, functions, complex
// numbers and ints of more than 4300 digits (Python will not read them)
// are an error wrapping ErrEncode.
func (c Codec) Marshal(v any) ([]byte, uint32, error) {
	proto, err := c.protocol()
	if err != nil {
		return nil, 0, err
	}
	data, flags, err := c.scalar(reflect.ValueOf(v))
	if err != nil {
		return nil, 0, err
	}
	if flags == FlagPickle {
		if data, err = pickle(reflect.ValueOf(v), proto); err != nil {
			return nil, 0, err
		}
	}
	if c.MinCompressLen > 0 && flags != FlagInt && len(data) > c.MinCompressLen {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		_, _ = zw.Write(data) // writes to a bytes.Buffer do not fail
		_ = zw.Close()
		if buf.Len() < len(data) {
			data, flags = buf.Bytes(), flags|FlagZlib
		}
	}
	return data, flags, nil
}

// scalar encodes the values python-memcached stores without a pickle
// (str, bytes, int); for any other value it returns FlagPickle and no
// bytes.
func (c Codec) scalar(rv reflect.Value) ([]byte, uint32, error) {
	for depth := 0; rv.IsValid(); depth++ {
		if depth > MaxDepth {
			return nil, 0, fmt.Errorf("%w: a pointer chain deeper than %d", ErrEncode, MaxDepth)
		}
		t := rv.Type()
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && rv.IsNil() {
			return nil, FlagPickle, nil // None
		}
		switch {
		case t == bigIntType || t == reflect.PointerTo(bigIntType):
			n := bigOf(rv)
			if err := checkDigits(n); err != nil {
				return nil, 0, err
			}
			return n.Append(nil, 10), FlagInt, nil
		case t.Implements(textMarshalerType):
			s, err := marshalText(rv)
			if err != nil {
				return nil, 0, err
			}
			return []byte(s), FlagText, nil
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Interface:
			rv = rv.Elem()
			continue
		case reflect.String:
			s := rv.String()
			if !utf8.ValidString(s) {
				return nil, 0, fmt.Errorf("%w: the string %q is not valid UTF-8, which a Python str must be (store bytes as []byte)", ErrEncode, truncate(s))
			}
			return []byte(s), FlagText, nil
		case reflect.Slice, reflect.Array:
			if t.Elem().Kind() == reflect.Uint8 {
				return byteContents(rv), FlagBytes, nil
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return strconv.AppendInt(nil, rv.Int(), 10), FlagInt, nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return strconv.AppendUint(nil, rv.Uint(), 10), FlagInt, nil
		}
		return nil, FlagPickle, nil
	}
	return nil, FlagPickle, nil // nil: None
}

// bigOf returns the *big.Int in rv, a big.Int or a non-nil *big.Int.
func bigOf(rv reflect.Value) *big.Int {
	if rv.Kind() == reflect.Pointer {
		return rv.Interface().(*big.Int)
	}
	n := new(big.Int)
	if rv.CanAddr() {
		return n.Set(rv.Addr().Interface().(*big.Int))
	}
	v := rv.Interface().(big.Int)
	return n.Set(&v)
}

// checkDigits returns an error if n has more than maxIntDigits decimal
// digits. Only an int near the limit is written out to count them: one
// of 14286 bits or more (2^14285 > 10^4300) is over it, and writing out
// a huge int takes superlinear time and memory.
func checkDigits(n *big.Int) error {
	if bits := n.BitLen(); bits > maxIntBits+5 {
		return fmt.Errorf("%w: an int of %d bits, more than %d digits: Python reads at most %d", ErrEncode, bits, maxIntDigits, maxIntDigits)
	}
	if n.BitLen() > maxIntBits {
		if d := len(strings.TrimPrefix(n.String(), "-")); d > maxIntDigits {
			return fmt.Errorf("%w: an int of %d digits: Python reads at most %d", ErrEncode, d, maxIntDigits)
		}
	}
	return nil
}

func marshalText(rv reflect.Value) (string, error) {
	b, err := rv.Interface().(encoding.TextMarshaler).MarshalText()
	if err != nil {
		return "", fmt.Errorf("%w: %v.MarshalText: %w", ErrEncode, rv.Type(), err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %v.MarshalText returned text that is not valid UTF-8", ErrEncode, rv.Type())
	}
	return string(b), nil
}

// byteContents returns a copy of the bytes of a byte slice or array.
func byteContents(rv reflect.Value) []byte {
	if rv.Kind() == reflect.Slice {
		return bytes.Clone(rv.Bytes())
	}
	b := make([]byte, rv.Len())
	for i := range b { // the element type may be a named byte type
		b[i] = byte(rv.Index(i).Uint())
	}
	return b
}

// isEmpty reports whether v is empty for ",omitempty", as encoding/json
// sees it.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
