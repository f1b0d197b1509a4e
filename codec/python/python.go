package python

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
	"unsafe"

	"github.com/memdict/memdict/internal/pyvalues"
)

// init registers Codec{} as the codec of memdict's Python formats
// (memdict.FormatERP5, memdict.FormatPython): importing this package is
// what links them into a program, as importing a driver links its URL
// scheme.
func init() { pyvalues.Register(Codec{}) }

// Client flags: the bits python-memcached and pymemcache store in
// memcached's per-item flags to say how the value's bytes were made. A
// value is bytes when no bit is set. Flag8Zlib combines with the others;
// of the rest, a reader looks at FlagText, then FlagInt, then FlagLong,
// then FlagPickle, as both libraries do.
const (
	// FlagBytes (0): the value is Python bytes (a str, in Python 2), as is.
	FlagBytes uint32 = 0
	// FlagPickle: the value is a pickle.
	FlagPickle uint32 = 1 << 0
	// FlagInt: the value is an int in ASCII decimal.
	FlagInt uint32 = 1 << 1
	// FlagLong: the value is a long in ASCII decimal (Python 2's
	// python-memcached writes its longs with it; Python 3 has no longs and
	// reads it as an int).
	FlagLong uint32 = 1 << 2
	// FlagZlib: the bytes are zlib-compressed (python-memcached's
	// min_compress_len; pymemcache 3 cannot read it).
	FlagZlib uint32 = 1 << 3
	// FlagText: the value is a str in UTF-8 (unicode, in Python 2).
	FlagText uint32 = 1 << 4
)

// Defaults of a zero Codec.
const (
	// DefaultProtocol is the pickle protocol Marshal writes: 2, the
	// highest Python 2 reads, so that ERP5 sites on Python 2 and on
	// Python 3 read it alike.
	DefaultProtocol = 2
	// DefaultMaxBytes bounds the memory one Unmarshal allocates: 64 MiB.
	DefaultMaxBytes = 64 << 20
	// MaxDepth is how deeply values may nest, in both directions, as
	// Python's own recursion limit bounds what it pickles; deeper values
	// (and cycles) are an error.
	MaxDepth = 1000
)

// Errors, to test with errors.Is.
var (
	// ErrDecode: a value could not be decoded into the Go value asked for:
	// the flags are unknown, the bytes are not what the flags say (a
	// malformed pickle, an int that is no number, text that is not UTF-8),
	// or the Python value has no Go form of that type (a list into an int,
	// an instance of a Python class). memdict wraps its own ErrDecode
	// around it.
	ErrDecode = errors.New("python: cannot decode value")
	// ErrTooLarge: decoding the value would allocate more than the
	// Codec's MaxBytes. It comes wrapped in ErrDecode.
	ErrTooLarge = errors.New("value needs more memory than the decoding limit")
	// ErrEncode: a Go value has no Python form (a channel, a function, a
	// cycle, a string that is not UTF-8, a map key that is neither text
	// nor a number).
	ErrEncode = errors.New("python: cannot encode value")
)

// A Codec reads and writes values as python-memcached and pymemcache do,
// by the client flags stored with each value. Its zero value is ready to
// use with the defaults above. A Codec is safe for concurrent use.
type Codec struct {
	// Protocol is the pickle protocol Marshal writes for values that
	// need a pickle: 1 to 5, or -1 for HighestProtocol, as Python's
	// pickle.dumps takes it. 0 means DefaultProtocol (2); the text
	// protocol 0 is read, never written.
	Protocol int
	// MinCompressLen, when positive, makes Marshal compress values longer
	// than it with zlib (flag FlagZlib) when that makes them smaller, as
	// python-memcached's min_compress_len does; ints are never
	// compressed. 0 means never (ERP5's Memcached Tool sets no
	// min_compress_len). pymemcache 3 (Debian 12's) cannot read such
	// values.
	MinCompressLen int
	// MaxBytes bounds the memory, in bytes, one Unmarshal may allocate
	// for the value (decompressed bytes, the objects a pickle builds and
	// the Go value made of them); a value that needs more is an error
	// wrapping ErrTooLarge. 0 means DefaultMaxBytes.
	MaxBytes int64
}

// Marshal encodes v with a zero Codec: see Codec.Marshal.
func Marshal(v any) ([]byte, uint32, error) { return Codec{}.Marshal(v) }

// Unmarshal decodes data, stored with flags, into the value v points to,
// with a zero Codec: see Codec.Unmarshal.
func Unmarshal(data []byte, flags uint32, v any) error { return Codec{}.Unmarshal(data, flags, v) }

// protocol returns the pickle protocol to write, or an error.
func (c Codec) protocol() (int, error) {
	switch p := c.Protocol; {
	case p == 0:
		return DefaultProtocol, nil
	case p == -1:
		return HighestProtocol, nil
	case p >= 1 && p <= HighestProtocol:
		return p, nil
	default:
		return 0, fmt.Errorf("%w: pickle protocol %d (want 1 to %d, or -1 for the highest)", ErrEncode, p, HighestProtocol)
	}
}

func (c Codec) maxBytes() int64 {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultMaxBytes
}

// Unmarshal decodes data, stored with flags, into the value v points to,
// as python-memcached and pymemcache read it: zlib-compressed bytes
// (FlagZlib) are decompressed first; then a value with no other flag is
// bytes, FlagText a str, FlagInt or FlagLong an int, FlagPickle a pickle
// of protocol 0 to 5. Any other flags are an error, as in
// python-memcached.
//
// The Python value then goes into v as encoding/json puts JSON into Go
// values:
//
//   - None: a nil pointer, slice, map or interface, or the zero value of
//     any other type
//   - bool: bool
//   - int: any integer type that holds it, float32/64, big.Int
//   - float: float32/64
//   - str, and Python 2's str: string, []byte, or an
//     encoding.TextUnmarshaler (time.Time from RFC 3339)
//   - bytes, bytearray: []byte, string, or a byte array of that length
//   - list, tuple, set, frozenset: a slice, or an array of that length
//   - dict: a map whose keys are strings (from str or bytes keys),
//     integers, floats or bools; or a struct, by field name: the
//     `pickle` tag, else the `json` tag, else the Go name, matched
//     exactly, else without regard to case. Other keys are ignored.
//   - anything into an empty interface: nil, bool, int64 (or *big.Int
//     beyond int64), float64, string, []byte, []any, and map[string]any
//     for a dict whose keys are all str (map[any]any otherwise).
//
// Pointers are allocated as needed. Python objects of other classes
// (datetime, Decimal, user classes), persistent references and
// out-of-band buffers have no Go form. Every failure is an error wrapping
// ErrDecode that says what did not fit where; none panics. Unmarshal
// keeps no reference to data.
func (c Codec) Unmarshal(data []byte, flags uint32, v any) error {
	b := &budget{left: c.maxBytes()}
	py, err := c.load(data, flags, b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return assign(py, v, b)
}

// load turns data and flags into a Python value of the unpickler.
func (c Codec) load(data []byte, flags uint32, b *budget) (any, error) {
	// own is data as a string: a copy of the caller's bytes, which
	// Unmarshal must not keep, or the decompressed bytes themselves,
	// which nothing else refers to or changes.
	own := func() (string, error) { return string(data), b.charge(len(data)) }
	if flags&FlagZlib != 0 {
		out, err := inflate(data, b)
		if err != nil {
			return nil, err
		}
		data, flags = out, flags&^FlagZlib
		own = func() (string, error) { return unsafe.String(unsafe.SliceData(out), len(out)), nil }
	}
	switch {
	case flags == FlagBytes:
		s, err := own()
		return pyBytes(s), err
	case flags&FlagText != 0:
		if !utf8.Valid(data) {
			return nil, errors.New("a value of flag 16 (text) is not valid UTF-8")
		}
		return own()
	case flags&(FlagInt|FlagLong) != 0:
		i, n, err := parseInt(data, true)
		if err != nil {
			return nil, fmt.Errorf("a value of flag %d (int): %w", flags&(FlagInt|FlagLong), err)
		}
		if n != nil {
			return n, nil
		}
		return i, nil
	case flags&FlagPickle != 0:
		return unpickle(data, b)
	}
	return nil, fmt.Errorf("unknown flags 0x%x (python-memcached knows 1 pickle, 2 int, 4 long, 8 zlib, 16 text)", flags)
}

// inflate decompresses zlib data, charging what it allocates to b.
// Bytes after the end of the zlib stream are ignored, as Python's
// zlib.decompress ignores them.
func inflate(data []byte, b *budget) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	defer zr.Close()
	var out []byte
	var probe [512]byte
	for {
		if len(out) == cap(out) {
			// Full: if more comes, double, charging the new buffer; all
			// in all, at most twice the final size.
			n, err := zr.Read(probe[:])
			for n == 0 && err == nil {
				n, err = zr.Read(probe[:])
			}
			if n > 0 {
				c := max(2*cap(out), 4096)
				if err := b.charge(c); err != nil {
					return nil, fmt.Errorf("zlib: %w", err)
				}
				out = append(append(make([]byte, 0, c), out...), probe[:n]...)
			}
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, fmt.Errorf("zlib: %w", err)
			}
			continue
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
	}
}
