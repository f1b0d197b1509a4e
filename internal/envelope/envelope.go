// Package envelope frames the values memdict stores.
//
// A stored value is
//
//	0xC1  codec-ID  flags  [uvarint(len(key)) key]  payload
//
// 0xC1 is a byte that neither MessagePack nor UTF-8 text ever starts with,
// so values written by other programs are recognised. Flag bit 0 says the
// original key follows (for keys shortened to a hash).
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the first byte of every value memdict writes.
const Magic byte = 0xC1

// HeaderLen is the size of the header without a key.
const HeaderLen = 3

const flagKey = 1

// ErrNotOurs is returned by Parse for bytes that memdict did not frame.
var ErrNotOurs = errors.New("value was not written by memdict")

// Header is a parsed envelope header.
type Header struct {
	// Codec is the ID of the codec that encoded the payload.
	Codec byte
	// HasKey says the original key is carried.
	HasKey bool
	// Key is the original key; it aliases the parsed bytes.
	Key []byte
}

// Size returns the header size for a value carrying key (if withKey).
func Size(key string, withKey bool) int {
	if !withKey {
		return HeaderLen
	}
	return HeaderLen + uvarintLen(uint64(len(key))) + len(key)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Append appends a header to dst.
func Append(dst []byte, codecID byte, key string, withKey bool) []byte {
	if !withKey {
		return append(dst, Magic, codecID, 0)
	}
	dst = append(dst, Magic, codecID, flagKey)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	return append(dst, key...)
}

// Parse splits b into its header and payload. The payload aliases b.
func Parse(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen || b[0] != Magic {
		return Header{}, nil, ErrNotOurs
	}
	h := Header{Codec: b[1]}
	flags := b[2]
	if flags&^flagKey != 0 {
		return Header{}, nil, fmt.Errorf("%w: unknown flags 0x%02x", ErrNotOurs, flags)
	}
	rest := b[HeaderLen:]
	if flags&flagKey != 0 {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return Header{}, nil, fmt.Errorf("%w: truncated key", ErrNotOurs)
		}
		if w != uvarintLen(n) {
			// Append writes the shortest form; a longer one is not ours.
			return Header{}, nil, fmt.Errorf("%w: non-minimal key length", ErrNotOurs)
		}
		h.HasKey = true
		h.Key = rest[w : w+int(n)]
		rest = rest[w+int(n):]
	}
	return h, rest, nil
}
