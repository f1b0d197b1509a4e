package memdict

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/compress"
	"github.com/memdict/memdict/internal/envelope"
)

// Raw is a stored value below a Dict's typing: the ID of the codec that
// encoded it and its encoded bytes, without memdict's header. A Dict[Raw]
// reads and writes values of every codec as they are, with the Dict's key
// layout, namespace generation, limits and statistics, so that a tool (the
// memdict command, the admin page) can show and change the values of any
// Dict without knowing its type:
//
//	d, _ := memdict.New[memdict.Raw](be, "reports")
//	r, ok, err := d.Lookup(ctx, "k") // r.Codec names the codec, r.Payload holds its bytes
//	err = d.Store(ctx, "k", memdict.Raw{Codec: codec.RawID, Payload: []byte("text")})
//
// Reads never fail to decode: a value of any codec reads as it was
// written, and a value that memdict did not frame (written by another
// program, by memccat or redis-cli) reads as Codec 0 with the whole value
// as Payload. A Dict[Raw] has no codec of its own (Codec returns
// codec.Raw; WithCodec has no effect): Store frames Payload under the
// codec ID it carries, which must not be 0, since memdict writes no value
// without its header.
//
// In a Python format (WithFormat), whose values have no header, a Raw is
// the value as stored and the client flags that say what it is: Codec is
// always 0, Flags are the flags (package codec/python), and Store writes
// Payload with Flags as they are.
type Raw struct {
	// Codec is the ID of the codec that encoded Payload (codec.RawID,
	// codec.MsgpackID, ...); 0 for a value memdict did not frame.
	Codec byte
	// Payload is the encoded value without the header; for an unframed
	// value, the whole value. A read's Payload is the caller's own.
	Payload []byte
	// Flags are the memcached client flags stored with the value, which
	// Python's memcached clients set to say what it is (python.FlagPickle,
	// ...): 0 in memdict's own format, whose values carry none.
	Flags uint32
}

// errRawNoCodec is the error of storing a Raw without a codec ID.
var errRawNoCodec = fmt.Errorf("%w: a Raw value needs a codec ID (0 is for values memdict did not frame)", ErrEncode)

// decodeRaw is decodeIn for a Dict[Raw]: b as it is stored, and the
// envelope's times and flags. ok is false for a hashed key whose stored
// original differs. A compressed payload is decompressed (to at most max
// bytes); one that cannot be is shown whole, under codec 0, as a value
// memdict did not frame.
func decodeRaw(key string, hashed bool, b []byte, private bool, max int) (r Raw, m envelope.Meta, ok bool) {
	h, payload, err := envelope.Parse(b)
	if err != nil {
		payload = b // not framed by memdict: shown whole, under codec 0
	} else if hashed && (!h.HasKey || string(h.Key) != key) {
		return Raw{}, m, false
	} else if h.Compressed {
		if payload, err = compress.Decode(payload, max); err != nil {
			return Raw{Payload: bytes.Clone(b)}, h.Meta, true
		}
		private = true
	}
	if !private {
		payload = bytes.Clone(payload)
	}
	if payload == nil {
		payload = []byte{}
	}
	return Raw{Codec: h.Codec, Payload: payload[:len(payload):len(payload)]}, h.Meta, true
}

// encodeRaw is encode for a Dict[Raw]: r.Payload framed under r.Codec,
// with the entry's times and flags m.
func encodeRaw(vw *view, key string, hashed bool, r Raw, m envelope.Meta) ([]byte, error) {
	if r.Codec == 0 {
		return nil, errRawNoCodec
	}
	if r.Flags != 0 {
		return nil, fmt.Errorf("%w: %w", ErrEncode, errRawFlags)
	}
	n := envelope.SizeMeta(key, hashed, m) + len(r.Payload)
	if err := vw.checkSize(n); err != nil {
		return nil, err
	}
	buf := envelope.AppendMeta(make([]byte, 0, n), r.Codec, key, hashed, m)
	return append(buf, r.Payload...), nil
}

// Decoded returns the value as a Go value that encoding/json prints: the
// text of raw and unframed values that are valid UTF-8, the codec's
// decoding for the others (maps with string keys, []byte as text or
// base64), and for a value with client flags (a Python client's) what
// package codec/python reads of it (a dict as a map, a str as a string,
// bytes as text or base64; if the program imports codec/python, else ok
// is false). ok is false when the value cannot be shown as
// JSON (binary raw values, gob, unknown codecs, decode failures, a codec
// that panics); show its Payload another way (base64) then.
func (r Raw) Decoded() (v any, ok bool) {
	defer func() {
		// A codec that panics on the bytes (the value is anyone's) shows
		// them as bytes, not a crash of the CLI or the admin page.
		if p := recover(); p != nil {
			v, ok = nil, false
		}
	}()
	if r.Codec == 0 && r.Flags != 0 {
		py := pyCodec()
		if py == nil { // codec/python is not linked: shown as bytes
			return nil, false
		}
		var x any
		if err := py.Unmarshal(r.Payload, r.Flags, &x); err != nil {
			return nil, false
		}
		x, err := jsonReady(x)
		if err != nil {
			return nil, false
		}
		return x, true
	}
	switch r.Codec {
	case 0, codec.RawID:
		if utf8.Valid(r.Payload) {
			return string(r.Payload), true
		}
		return nil, false
	}
	c, found := codec.ByID(r.Codec)
	if !found {
		return nil, false
	}
	var x any
	if err := c.Unmarshal(r.Payload, &x); err != nil {
		return nil, false
	}
	x, err := jsonReady(x)
	if err != nil {
		return nil, false
	}
	return x, true
}

// jsonReady converts what codecs decode into `any` (maps with non-string
// keys, []byte, NaN, ...) into values encoding/json can print, or returns
// an error naming why it cannot.
func jsonReady(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	case []any:
		for i, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
		return x, nil
	case []byte:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return base64.StdEncoding.EncodeToString(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("not a JSON number")
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, errors.New("not a JSON number")
		}
	}
	if _, err := json.Marshal(v); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseRaw returns the Raw form of b, a value as a backend holds it (read
// from a backend key directly, without a Dict): its codec and payload, or
// codec 0 and the whole of b for a value memdict did not frame. The
// payload shares b's memory, unless it was compressed (codec.Zstd): it is
// then decompressed, to at most 64 MiB (a value that cannot be is shown
// whole, under codec 0).
func ParseRaw(b []byte) Raw {
	h, payload, err := envelope.Parse(b)
	if err != nil {
		return Raw{Payload: b}
	}
	if h.Compressed {
		if payload, err = compress.Decode(payload, maxUnlimitedDecompressed); err != nil {
			return Raw{Payload: b}
		}
	}
	return Raw{Codec: h.Codec, Payload: payload}
}
