package redis

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"unsafe"
)

// Stored representation.
//
// Every value this package writes is a plain Redis string made of an
// 11-byte header followed by the caller's bytes:
//
//	offset 0..2   magic "\xfeM\x01" (0xFE never starts UTF-8 text; 0x01 is
//	              the format version)
//	offset 3..10  the CAS token, 8 bytes big-endian, random and non-zero,
//	              drawn anew on every write
//	offset 11..   the value
//
// A plain string keeps a hit at one GET (and a multi-get at one MGET per
// hash slot group), lets SET carry the TTL in the same command, and lets the
// Lua scripts for compare-and-swap, touch and increment check and replace
// the token atomically on the server.
const (
	magic     = "\xfeM\x01"
	headerLen = len(magic) + 8
)

// newCAS returns a fresh non-zero CAS token. Tokens are random: two writes
// of one key draw the same token with probability 2^-64.
func newCAS() uint64 {
	for {
		if c := rand.Uint64(); c != 0 {
			return c
		}
	}
}

// encode returns the stored form of value with token cas.
func encode(value []byte, cas uint64) []byte {
	buf := make([]byte, headerLen+len(value))
	copy(buf, magic)
	binary.BigEndian.PutUint64(buf[len(magic):], cas)
	copy(buf[headerLen:], value)
	return buf
}

// casBytes returns the 8-byte big-endian form of a CAS token, as the Lua
// scripts compare and write it.
func casBytes(cas uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], cas)
	return string(b[:])
}

// decode splits a stored string into its value and CAS token. The returned
// slice shares s's memory: it is read-only, as backend.Item.Value of a read
// is by contract. Strings are never modified, so sharing is safe.
func decode(key, s string) (value []byte, cas uint64, err error) {
	if len(s) < headerLen || s[:len(magic)] != magic {
		return nil, 0, foreignError(key, s)
	}
	cas = binary.BigEndian.Uint64(unsafe.Slice(unsafe.StringData(s[len(magic):headerLen]), 8))
	v := s[headerLen:]
	if len(v) == 0 {
		return []byte{}, cas, nil
	}
	return unsafe.Slice(unsafe.StringData(v), len(v)), cas, nil
}

// foreignError describes a value without memdict's header. It shows the
// value's length and its first bytes, quoted, never more than 16.
func foreignError(key, s string) error { return foreignLenError(key, s, len(s)) }

// foreignLenError is foreignError of a value of n bytes that starts with
// s (all of it, or its first 16 bytes or more).
func foreignLenError(key, s string, n int) error {
	head := s
	if len(head) > 16 {
		head = head[:16]
	}
	if n > len(head) {
		head += "..."
	}
	return fmt.Errorf("%w: key %q holds %d bytes without memdict's header (starting %q); "+
		"another program wrote it, or the key prefix is shared", ErrForeignValue, key, n, head)
}
