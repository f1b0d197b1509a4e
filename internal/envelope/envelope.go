// Package envelope frames the values memdict stores.
//
// A stored value is
//
//	0xC1  codec-ID  flags  [uvarint(len(key)) key]  [uvarint(expiry)]  [uvarint(fresh-until)]  payload
//
// 0xC1 is a byte that neither MessagePack nor UTF-8 text ever starts with,
// so values written by other programs are recognised. The flag bits say
// what follows the header and what the entry is:
//
//   - bit 0 (key): the original key follows (for keys shortened to a hash);
//   - bit 1 (expiry): the entry's hard expiry follows, in Unix
//     milliseconds: from then on the entry is gone, whatever the store did
//     with its TTL;
//   - bit 2 (fresh-until): the end of the entry's fresh time follows, in
//     Unix milliseconds (stale-while-revalidate: past it the entry is
//     stale until its expiry);
//   - bit 3 (stale): the entry was marked stale (invalidated);
//   - bit 4 (absent): the entry records that the value does not exist (a
//     negative cache entry); its payload is empty;
//   - bit 5 (zstd): the payload is compressed: one zstd frame stating its
//     decompressed size, which is the codec's encoding (codec.Zstd).
//     Every reader decompresses it, whatever codec it was configured
//     with, since the header says so.
//
// Values written before the time fields existed (flags 0 or 1) still
// parse, as entries without expiry.
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the first byte of every value memdict writes.
const Magic byte = 0xC1

// HeaderLen is the size of the header without a key or times.
const HeaderLen = 3

const (
	flagKey    = 1 << 0
	flagExpiry = 1 << 1
	flagFresh  = 1 << 2
	flagStale  = 1 << 3
	flagAbsent = 1 << 4
	flagZstd   = 1 << 5
	flagsKnown = flagKey | flagExpiry | flagFresh | flagStale | flagAbsent | flagZstd
)

// ErrNotOurs is returned by Parse for bytes that memdict did not frame.
var ErrNotOurs = errors.New("value was not written by memdict")

// Meta is what an envelope says about its entry beyond its codec and key.
// The zero Meta is an entry that does not expire.
type Meta struct {
	// Expiry is the hard expiry in Unix milliseconds; 0 means none. An
	// entry is gone when now >= Expiry.
	Expiry int64
	// FreshUntil is the end of the fresh time in Unix milliseconds; 0
	// means the entry is fresh until it expires (or is marked Stale).
	FreshUntil int64
	// Stale says the entry was marked stale.
	Stale bool
	// Absent says the entry records an absence; it has no payload.
	Absent bool
}

// HasTime reports whether m carries an expiry or a fresh time, that is
// whether reading the entry needs the clock.
func (m Meta) HasTime() bool { return m.Expiry != 0 || m.FreshUntil != 0 }

// Expired reports whether the entry is gone at now (Unix milliseconds).
func (m Meta) Expired(now int64) bool { return m.Expiry != 0 && now >= m.Expiry }

// IsStale reports whether the entry is stale at now (Unix milliseconds):
// marked stale, or past its fresh time.
func (m Meta) IsStale(now int64) bool { return m.Stale || (m.FreshUntil != 0 && now >= m.FreshUntil) }

// Header is a parsed envelope header.
type Header struct {
	// Codec is the ID of the codec that encoded the payload.
	Codec byte
	// HasKey says the original key is carried.
	HasKey bool
	// Compressed says the payload is a zstd frame (see SetCompressed).
	Compressed bool
	// Key is the original key; it aliases the parsed bytes.
	Key []byte
	// Meta holds the entry's times and flags.
	Meta
}

// Size returns the header size for a value carrying key (if withKey).
func Size(key string, withKey bool) int {
	return SizeMeta(key, withKey, Meta{})
}

// SizeMeta returns the header size for a value carrying key (if withKey)
// and m.
func SizeMeta(key string, withKey bool, m Meta) int {
	n := HeaderLen
	if withKey {
		n += uvarintLen(uint64(len(key))) + len(key)
	}
	if m.Expiry > 0 {
		n += uvarintLen(uint64(m.Expiry))
	}
	if m.FreshUntil > 0 {
		n += uvarintLen(uint64(m.FreshUntil))
	}
	return n
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

// AppendMeta appends a header carrying m to dst. Times that are not
// positive are left out.
func AppendMeta(dst []byte, codecID byte, key string, withKey bool, m Meta) []byte {
	var flags byte
	if withKey {
		flags |= flagKey
	}
	if m.Expiry > 0 {
		flags |= flagExpiry
	}
	if m.FreshUntil > 0 {
		flags |= flagFresh
	}
	if m.Stale {
		flags |= flagStale
	}
	if m.Absent {
		flags |= flagAbsent
	}
	dst = append(dst, Magic, codecID, flags)
	if withKey {
		dst = binary.AppendUvarint(dst, uint64(len(key)))
		dst = append(dst, key...)
	}
	if m.Expiry > 0 {
		dst = binary.AppendUvarint(dst, uint64(m.Expiry))
	}
	if m.FreshUntil > 0 {
		dst = binary.AppendUvarint(dst, uint64(m.FreshUntil))
	}
	return dst
}

// SetCompressed marks the envelope b, whose payload the caller has
// compressed with zstd, as compressed. b must start with a header.
func SetCompressed(b []byte) { b[2] |= flagZstd }

// Reframe returns a copy of the value b with its meta replaced by m, its
// codec, key, compression and payload kept. It fails as Parse does, and for an absent m
// over a non-empty payload.
func Reframe(b []byte, m Meta) ([]byte, error) {
	h, payload, err := Parse(b)
	if err != nil {
		return nil, err
	}
	if m.Absent && len(payload) > 0 {
		return nil, errors.New("envelope: an absent entry has no payload")
	}
	out := make([]byte, 0, SizeMeta(string(h.Key), h.HasKey, m)+len(payload))
	out = AppendMeta(out, h.Codec, string(h.Key), h.HasKey, m)
	if h.Compressed {
		SetCompressed(out)
	}
	return append(out, payload...), nil
}

// Parse splits b into its header and payload. The payload aliases b.
func Parse(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen || b[0] != Magic {
		return Header{}, nil, ErrNotOurs
	}
	h := Header{Codec: b[1]}
	flags := b[2]
	if flags&^flagsKnown != 0 {
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
	if flags&(flagExpiry|flagFresh) != 0 {
		var err error
		if flags&flagExpiry != 0 {
			if h.Expiry, rest, err = parseTime(rest, "expiry"); err != nil {
				return Header{}, nil, err
			}
		}
		if flags&flagFresh != 0 {
			if h.FreshUntil, rest, err = parseTime(rest, "fresh time"); err != nil {
				return Header{}, nil, err
			}
		}
	}
	h.Stale = flags&flagStale != 0
	if flags&flagAbsent != 0 {
		if len(rest) != 0 || flags&flagZstd != 0 {
			return Header{}, nil, fmt.Errorf("%w: absent entry with a payload", ErrNotOurs)
		}
		h.Absent = true
	}
	h.Compressed = flags&flagZstd != 0
	return h, rest, nil
}

// parseTime reads one time field: a minimal, positive uvarint that fits
// in an int64.
func parseTime(b []byte, what string) (int64, []byte, error) {
	t, w := binary.Uvarint(b)
	switch {
	case w <= 0:
		return 0, nil, fmt.Errorf("%w: truncated %s", ErrNotOurs, what)
	case w != uvarintLen(t):
		return 0, nil, fmt.Errorf("%w: non-minimal %s", ErrNotOurs, what)
	case t == 0 || t > 1<<63-1:
		return 0, nil, fmt.Errorf("%w: %s %d out of range", ErrNotOurs, what, t)
	}
	return int64(t), b[w:], nil
}
