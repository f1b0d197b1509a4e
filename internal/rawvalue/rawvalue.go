// Package rawvalue handles memdict values below a Dict's typing: the
// encoded payload of any codec, stored and read through a Dict under that
// codec's ID, and shown as JSON. The memdict command and the admin page
// (tool/admin) use it to read and write values whatever program and codec
// wrote them.
package rawvalue

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/memdict/memdict/codec"
)

// Payload is the encoded bytes of one value, without memdict's header. A
// named type, so that a Dict of Payload goes through its codec (Dicts of
// []byte store their bytes under the raw codec's ID).
type Payload []byte

// Passthrough returns a codec that stores Payloads as they are under the
// ID (and name) of codec id, so that a Dict of Payload writes values
// encoded by any codec, with the Dict's key layout and limits.
func Passthrough(id byte) codec.Codec { return passthrough{id} }

type passthrough struct{ id byte }

func (p passthrough) ID() byte     { return p.id }
func (p passthrough) Name() string { return codec.NameOf(p.id) }

func (p passthrough) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case Payload:
		return b, nil
	case *Payload:
		return *b, nil
	}
	return nil, fmt.Errorf("passthrough codec: unexpected %T", v)
}

func (p passthrough) Unmarshal(data []byte, v any) error {
	pp, ok := v.(*Payload)
	if !ok {
		return fmt.Errorf("passthrough codec: unexpected %T", v)
	}
	*pp = bytes.Clone(data)
	return nil
}

// Stored is one value as read from the backend.
type Stored struct {
	// Codec is the ID of the codec that wrote it; 0 for a value that
	// memdict did not frame (written by another program).
	Codec byte
	// Payload is the encoded value without the header (the whole value
	// for an unframed one).
	Payload []byte
}

// Decoded returns the value as a JSON-ready Go value: text for raw and
// unframed values that are valid UTF-8, the codec's decoding for the
// others. ok is false when the value cannot be shown as JSON (binary raw
// values, gob, unknown codecs, decode failures); callers then show its
// bytes another way (base64).
func (s Stored) Decoded() (v any, ok bool) {
	switch s.Codec {
	case 0, codec.RawID:
		if utf8.Valid(s.Payload) {
			return string(s.Payload), true
		}
		return nil, false
	}
	c, found := codec.ByID(s.Codec)
	if !found {
		return nil, false
	}
	var x any
	if err := c.Unmarshal(s.Payload, &x); err != nil {
		return nil, false
	}
	x, err := JSONReady(x)
	if err != nil {
		return nil, false
	}
	return x, true
}

// JSONReady converts what codecs decode into `any` (maps with non-string
// keys, []byte, NaN, ...) into values encoding/json can print, or returns
// an error naming why it cannot.
func JSONReady(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e, err := JSONReady(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			e, err := JSONReady(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	case []any:
		for i, e := range x {
			e, err := JSONReady(e)
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

// ParseJSON parses one JSON value as the command and the admin page take
// it: integers stay integers (int64 or uint64), so that a Go program
// reading them into an int gets them back. More than one value is an
// error.
func ParseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromNumbers(e)
		}
	}
	return v
}
