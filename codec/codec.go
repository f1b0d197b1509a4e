// Package codec turns typed values into bytes and back for memdict.
//
// A Codec has a one-byte ID that memdict writes in a small header in front
// of every stored value, so that a value written with one codec and read
// with another gives a clear error instead of a wrong value. The built-in
// codecs are MsgPack (memdict's default), JSON and Gob. Dicts of string and
// []byte values use no codec at all: their bytes are stored as they are,
// under the ID Raw.
//
// Custom codecs pick an ID from 128 to 255 and, to be found by ByID (which
// tools such as the memdict command use to show any stored value), call
// Register.
//
// Zstd wraps a codec so that a Dict compresses its large values, saying so
// in each value's header, where every reader sees it.
package codec

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec encodes values to bytes and decodes them back. Implementations
// must be safe for concurrent use.
type Codec interface {
	// ID identifies the codec in stored values. IDs below 128 are reserved
	// for memdict's own codecs.
	ID() byte
	// Name is a short lower-case name such as "msgpack", used in errors and
	// configuration files.
	Name() string
	// Marshal returns the encoding of v, in a slice the caller may keep.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. It must not keep
	// data after it returns: a Dict reuses the buffer a value was read
	// into once it is decoded (over Redis).
	Unmarshal(data []byte, v any) error
}

// IDs of the built-in codecs.
const (
	// RawID marks values stored as their own bytes (string and []byte).
	RawID byte = 'r'
	// MsgPackID marks MessagePack values.
	MsgPackID byte = 'm'
	// JSONID marks JSON values.
	JSONID byte = 'j'
	// GobID marks encoding/gob values.
	GobID byte = 'g'
)

// The built-in codecs.
var (
	// MsgPack encodes with github.com/vmihailenco/msgpack/v5. Struct fields
	// are named by their `msgpack` tag, or else their `json` tag, or else
	// their Go name. It is memdict's default codec. A value nested deeper
	// than MsgPackMaxDepth arrays and maps, or holding itself, is an
	// encoding error.
	MsgPack Codec = msgpackCodec{}
	// JSON encodes with encoding/json.
	JSON Codec = jsonCodec{}
	// Gob encodes with encoding/gob; every value carries its type
	// description, so it is larger and slower than MsgPack. A value that
	// holds itself, or nests deeper than 100,000 levels, is an encoding
	// error.
	//
	// Like MsgPack and JSON, Gob bounds what a value makes its reader
	// allocate (MsgPackMaxAlloc): encoding/gob makes a map for the count a
	// value states, a slice for up to 10 MB of elements, and decodes an
	// element as small as a byte (a struct whose fields are all zero) to a
	// whole Go element, so 23 bytes stating 2^20 pairs allocated 38 MB and
	// 10 KB read as a slice of 8 KiB structs 358 MiB. Unmarshal walks the
	// value first, as the decoder will read it, with the Go types it
	// decodes into, and refuses one whose slices, maps, pointers,
	// interface values and type definitions (which the decoder reads and
	// compiles) would take more, which states more elements than its bytes
	// hold, or which nests deeper than the encoder writes. An interface
	// value is charged as the type gob.Register registered under its name;
	// a name whose type the walk cannot find (not registered, or an array
	// of more than 4096 elements, or of elements that decode themselves)
	// is an error. Not bounded: strings and []byte, which take their size
	// in the value (a []byte over 10 MB up to about five times, as it
	// grows), and what a GobDecoder or BinaryUnmarshaler allocates, which
	// is its own.
	Gob Codec = gobCodec{}
	// Raw stores string and []byte values as they are. Marshal and
	// Unmarshal accept string, []byte, *string and *[]byte only.
	Raw Codec = rawCodec{}
)

// Appender is implemented by codecs that can encode straight into a
// caller's buffer, saving a copy. memdict uses it when present.
type Appender interface {
	// AppendMarshal appends the encoding of v to dst and returns the
	// extended slice.
	AppendMarshal(dst []byte, v any) ([]byte, error)
}

// Default returns the codec Dicts use unless told otherwise: MsgPack.
func Default() Codec { return MsgPack }

var (
	mu     sync.RWMutex
	byID   = map[byte]Codec{}
	byName = map[string]Codec{}
)

func init() {
	for _, c := range []Codec{Raw, MsgPack, JSON, Gob} {
		byID[c.ID()] = c
		byName[c.Name()] = c
	}
}

// Register makes a custom codec known to ByID and ByName. It returns an
// error if c is nil, its ID is below 128 (reserved), or its ID or name is
// already registered.
func Register(c Codec) error {
	if c == nil {
		return fmt.Errorf("codec: Register(nil)")
	}
	if c.ID() < 128 {
		return fmt.Errorf("codec: Register %q: ID %d is reserved for memdict's codecs (use 128-255)", c.Name(), c.ID())
	}
	mu.Lock()
	defer mu.Unlock()
	if old, ok := byID[c.ID()]; ok {
		return fmt.Errorf("codec: Register %q: ID %d is taken by %q", c.Name(), c.ID(), old.Name())
	}
	if _, ok := byName[c.Name()]; ok {
		return fmt.Errorf("codec: Register: name %q is taken", c.Name())
	}
	byID[c.ID()] = c
	byName[c.Name()] = c
	return nil
}

// ByID returns the codec registered with id.
func ByID(id byte) (Codec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	c, ok := byID[id]
	return c, ok
}

// ByName returns the codec registered under name ("msgpack", "json",
// "gob", "raw", or a custom codec's name).
func ByName(name string) (Codec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	c, ok := byName[name]
	return c, ok
}

// Names returns the registered codec names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NameOf returns the name of the codec registered with id, or a
// description such as "unknown codec 0x07".
func NameOf(id byte) string {
	if c, ok := ByID(id); ok {
		return c.Name()
	}
	return fmt.Sprintf("unknown codec 0x%02x", id)
}

type msgpackCodec struct{}

func (msgpackCodec) ID() byte     { return MsgPackID }
func (msgpackCodec) Name() string { return "msgpack" }

// appendWriter is the fastest io.Writer for the encoder: it appends to a
// slice the caller hands in, so the encoding lands straight in the
// caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }
func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// msgpackEncoder is a pooled encoder with its writer, configured once.
type msgpackEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.SetCustomStructTag("json")
	e.enc.UseCompactInts(true) // smaller values; any msgpack decoder reads them
	return e
}}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// maxPooledDecode is the largest value after whose decoding a decoder is
// pooled again: a decoder keeps the buffer it read strings and binaries
// into, as large as the largest it read, and a pooled one that once read
// a value of megabytes would keep them for as long as reads reuse it.
const maxPooledDecode = 64 << 10

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

func (c msgpackCodec) Marshal(v any) ([]byte, error) {
	return c.AppendMarshal(make([]byte, 0, 64), v)
}

// AppendMarshal implements Appender. A value nested deeper than
// MsgPackMaxDepth arrays and maps, which no reader would decode, or one
// that holds itself (a map, slice or pointer cycle) is an error
// (checkEncodeDepth), not a stack overflow.
func (msgpackCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	if err := checkEncodeDepth(v); err != nil {
		return dst, err
	}
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	dst = e.w.b
	e.w.b = nil // do not keep the caller's buffer
	msgpackEncoders.Put(e)
	return dst, err
}

// Unmarshal decodes data, which may come from anyone (a value another
// program stored): it is checked first (checkMsgPack: nesting and the
// lengths headers declare; checkAlloc: what the slices and maps it
// decodes to take, MsgPackMaxAlloc), and a panic of the decoder is an
// error.
func (msgpackCodec) Unmarshal(data []byte, v any) (err error) {
	if err := checkMsgPack(data); err != nil {
		return err
	}
	if err := checkAlloc(data, v); err != nil {
		return err
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer func() {
		if p := recover(); p != nil {
			// The decoder is dropped, not pooled: its state is unknown.
			err = fmt.Errorf("msgpack: cannot decode into %T: %v", v, p)
			return
		}
		if len(data) <= maxPooledDecode {
			msgpackDecoders.Put(d)
		}
	}()
	d.r.Reset(data) // an io.ByteScanner: the decoder reads it directly, unbuffered
	d.dec.Reset(&d.r)
	d.dec.SetCustomStructTag("json")
	err = d.dec.Decode(v)
	trailing := d.r.Len()
	d.r.Reset(nil) // do not keep data
	if err == nil && trailing > 0 {
		err = fmt.Errorf("msgpack: %d trailing bytes after the value", trailing)
	}
	return err
}

type jsonCodec struct{}

func (jsonCodec) ID() byte                      { return JSONID }
func (jsonCodec) Name() string                  { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data, which may come from anyone (a value another
// program stored): what the slices and maps it decodes to take is bounded
// first (checkJSONAlloc, MsgPackMaxAlloc).
func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkJSONAlloc(data, v); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

type gobCodec struct{}

func (gobCodec) ID() byte     { return GobID }
func (gobCodec) Name() string { return "gob" }

// Marshal encodes v; a value that holds itself (a pointer, map or slice
// cycle), which gob would follow until the stack overflows, is an error.
func (gobCodec) Marshal(v any) ([]byte, error) {
	if err := gobWalk.walkAny(v, 0, 0); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes data, which may come from anyone (a value another
// program stored): what the slices, maps, pointers and interface values
// it decodes to take is bounded first (checkGob, MsgPackMaxAlloc), and a
// panic of the decoder is an error.
func (gobCodec) Unmarshal(data []byte, v any) (err error) {
	if err := checkGob(data, v); err != nil {
		return err
	}
	defer func() {
		// encoding/gob recovers its own errors only: a field a value sets
		// through a nil embedded pointer panics in reflect.
		if p := recover(); p != nil {
			err = fmt.Errorf("gob: cannot decode into %T: %v", v, p)
		}
	}()
	r := bytes.NewReader(data)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() > 0 {
		return fmt.Errorf("gob: %d trailing bytes after the value", r.Len())
	}
	return nil
}

type rawCodec struct{}

func (rawCodec) ID() byte     { return RawID }
func (rawCodec) Name() string { return "raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case *string:
		if v != nil {
			return []byte(*v), nil
		}
	case []byte:
		return bytes.Clone(v), nil
	case *[]byte:
		if v != nil {
			return bytes.Clone(*v), nil
		}
	}
	return nil, fmt.Errorf("raw: cannot encode %T (only string and []byte, or non-nil pointers to them)", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	case *[]byte:
		if v != nil {
			*v = bytes.Clone(data)
			return nil
		}
	}
	return fmt.Errorf("raw: cannot decode into %T (only non-nil *string and *[]byte)", v)
}
