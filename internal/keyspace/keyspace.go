// Package keyspace maps (site id, prefix, generation, key) to backend keys.
//
// The mapping is one-to-one, memcached-safe and readable in the common case:
//
//	<site>:<prefix>:<gen>:<key>    with a site id
//	<prefix>:<gen>:<key>           without one
//
// Each component is escaped: bytes up to 0x20 (space and controls), 0x7f,
// '%', ':' and '#' become %XX; every other byte, including UTF-8 text and
// invalid UTF-8, stays as it is. No component therefore holds a bare ':',
// so the number of colons tells the two forms apart and no two tuples can
// meet; no escaped component starts with '#'.
//
// When the result is longer than the maximum key length, the part after the
// namespace becomes '#' followed by 32 base64url characters of the key's
// SHA-256 (192 bits); a namespace that is itself too long to leave room for
// that becomes '#' plus the hash of the namespace, then ':'. Keys beginning
// "#!" are reserved for memdict's own metadata (MetaKey) and are never data
// keys.
package keyspace

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// HashLen is the length of an encoded hash: 24 bytes of SHA-256 in
// unpadded base64url.
const HashLen = 32

// MinMaxLen is the smallest non-zero maximum key length: room for a hashed
// namespace and a hashed key.
const MinMaxLen = 80

const hexdigits = "0123456789ABCDEF"

// escapeTable[c] reports whether the byte c must be escaped.
var escapeTable = func() (t [256]bool) {
	for c := range t {
		t[c] = c <= ' ' || c == 0x7f || c == '%' || c == ':' || c == '#'
	}
	return t
}()

// needsEscape reports whether s holds a byte that must be escaped.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if escapeTable[s[i]] {
			return true
		}
	}
	return false
}

// escapedLen returns the length of Escape(s).
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if escapeTable[s[i]] {
			n += 2
		}
	}
	return n
}

// appendEscaped appends the escaped form of s to b: the runs of bytes
// that stay as they are in one copy each.
func appendEscaped(b []byte, s string) []byte {
	run := 0 // the start of the current run of plain bytes
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escapeTable[c] {
			b = append(b, s[run:i]...)
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
			run = i + 1
		}
	}
	return append(b, s[run:]...)
}

// Escape returns s with every byte that may not appear in a component
// written as %XX.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	b := appendEscaped(make([]byte, 0, escapedLen(s)), s)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// ErrMalformed is returned by Unescape and Split for text that Escape and
// Key cannot have produced.
var ErrMalformed = errors.New("keyspace: malformed key")

// Unescape reverses Escape.
func Unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if needsEscape(s) {
			return "", fmt.Errorf("%w: unescaped byte in %q", ErrMalformed, s)
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: truncated escape in %q", ErrMalformed, s)
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("%w: bad escape in %q", ErrMalformed, s)
			}
			v := byte(hi<<4 | lo)
			if !escapeTable[v] {
				return "", fmt.Errorf("%w: needless escape in %q", ErrMalformed, s)
			}
			b = append(b, v)
			i += 2
		case escapeTable[c]:
			return "", fmt.Errorf("%w: unescaped byte in %q", ErrMalformed, s)
		default:
			b = append(b, c)
		}
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// Hash returns the HashLen-character hash of s.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}

// Namespace returns the part of every backend key that the tuple (site,
// prefix, gen) contributes, ending in ':'. maxLen is the maximum backend
// key length (0: no limit); it must be 0 or at least MinMaxLen.
func Namespace(site, prefix string, gen uint64, maxLen int) string {
	var b []byte
	if site != "" {
		b = append(appendEscaped(b, site), ':')
	}
	b = append(appendEscaped(b, prefix), ':')
	b = append(strconv.AppendUint(b, gen, 10), ':')
	ns := string(b)
	if maxLen > 0 && len(ns)+1+HashLen > maxLen {
		ns = "#" + Hash(ns) + ":"
	}
	return ns
}

// Key returns the backend key of key in namespace ns and whether it was
// shortened to a hash (the caller then stores key beside the value, to
// check it on reads and to list keys). maxLen is as for Namespace.
func Key(ns, key string, maxLen int) (string, bool) {
	n := escapedLen(key)
	switch {
	case maxLen > 0 && len(ns)+n > maxLen:
		b, _ := AppendKey(make([]byte, 0, len(ns)+1+HashLen), ns, key, maxLen)
		return unsafe.String(unsafe.SliceData(b), len(b)), true
	case n == len(key):
		return ns + key, false // the common case: one concatenation
	}
	// Exactly as long as the key: sized for a hash too, as it once was,
	// the benchmark programs' "user:<n>" keys took the 64-byte size class
	// rather than the 32-byte one.
	b := make([]byte, len(ns)+n)
	copy(b, ns)
	putEscaped(b[len(ns):], key)
	return unsafe.String(unsafe.SliceData(b), len(b)), false
}

// AppendKey appends Key(ns, key, maxLen) to b, and says whether it was
// shortened to a hash. The backend keys of a call on many keys are built
// into one buffer this way.
func AppendKey(b []byte, ns, key string, maxLen int) ([]byte, bool) {
	n := escapedLen(key)
	if maxLen > 0 && len(ns)+n > maxLen {
		b = append(b, ns...)
		b = append(b, '#')
		return append(b, Hash(key)...), true
	}
	b = append(b, ns...)
	if n == len(key) {
		return append(b, key...), false
	}
	b = slices.Grow(b, n)
	putEscaped(b[len(b):len(b)+n], key)
	return b[:len(b)+n], false
}

// putEscaped writes the escaped form of s into dst, which is exactly
// escapedLen(s) bytes long. It writes byte by byte, where appendEscaped
// appends the runs between escapes: keys are short, and an append per
// run (three for "user:<n>") cost more than the bytes they copy, 60 ns a
// key in a GetMulti's loop.
func putEscaped(dst []byte, s string) {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escapeTable[c] {
			dst[j], dst[j+1], dst[j+2] = '%', hexdigits[c>>4], hexdigits[c&15]
			j += 3
			continue
		}
		dst[j] = c
		j++
	}
}

// Split returns the user key of a backend key in namespace ns. If the key
// was shortened, hashed is true and key is empty: the original travels with
// the value. It returns ErrMalformed for a backend key outside ns or not
// produced by Key.
func Split(ns, full string) (key string, hashed bool, err error) {
	rest, ok := strings.CutPrefix(full, ns)
	if !ok {
		return "", false, fmt.Errorf("%w: %q is not in namespace %q", ErrMalformed, full, ns)
	}
	if strings.HasPrefix(rest, "#") {
		if len(rest) != 1+HashLen {
			return "", false, fmt.Errorf("%w: bad hashed key %q", ErrMalformed, full)
		}
		return "", true, nil
	}
	key, err = Unescape(rest)
	return key, false, err
}

// MetaKey returns the backend key of memdict's metadata called name (for
// example "gen") for (site, prefix). Meta keys start with "#!" and so never
// meet a data key.
func MetaKey(site, prefix, name string, maxLen int) string {
	b := append(appendEscaped([]byte("#!"), name), ':')
	if site != "" {
		b = append(appendEscaped(b, site), ':')
	}
	k := string(appendEscaped(b, prefix))
	if maxLen > 0 && len(k) > maxLen {
		k = "#!" + Escape(name) + "#" + Hash(k)
	}
	return k
}

// LeasePrefix starts the lock key of every backend key (LeaseKey) that is
// not hashed.
const LeasePrefix = "#!lease:"

// LeaseKey returns the key of the fill lock of the data key bkey (a key
// made by Key): "#!lease:" followed by bkey, or, when that is longer than
// maxLen (0: no limit), "#!lease#" followed by the hash of bkey. Like
// MetaKey's keys, it never meets a data key.
func LeaseKey(bkey string, maxLen int) string {
	if maxLen > 0 && len(LeasePrefix)+len(bkey) > maxLen {
		return "#!lease#" + Hash(bkey)
	}
	return LeasePrefix + bkey
}

// Parts are the components of a backend key that Key made in a readable
// namespace.
type Parts struct {
	Site, Prefix string
	Gen          uint64
	// Key is the user key; "" with Hashed when the key was shortened to a
	// hash (the original travels with the value).
	Key    string
	Hashed bool
}

// Parse returns the components of full, a backend key made by Key in a
// namespace that was not itself hashed. It returns ErrMalformed for any
// other text: meta keys, keys of a hashed namespace, keys of other
// programs.
func Parse(full string) (Parts, error) {
	f := strings.Split(full, ":")
	if len(f) != 3 && len(f) != 4 {
		return Parts{}, fmt.Errorf("%w: %q has %d components, not 3 or 4", ErrMalformed, full, len(f))
	}
	var p Parts
	var err error
	if len(f) == 4 {
		if p.Site, err = Unescape(f[0]); err != nil || p.Site == "" {
			return Parts{}, fmt.Errorf("%w: bad site id in %q", ErrMalformed, full)
		}
		f = f[1:]
	}
	if strings.HasPrefix(f[0], "#") {
		return Parts{}, fmt.Errorf("%w: %q is not a data key", ErrMalformed, full)
	}
	if p.Prefix, err = Unescape(f[0]); err != nil {
		return Parts{}, err
	}
	if p.Gen, err = strconv.ParseUint(f[1], 10, 64); err != nil || strconv.FormatUint(p.Gen, 10) != f[1] {
		return Parts{}, fmt.Errorf("%w: bad generation in %q", ErrMalformed, full)
	}
	ns := full[:len(full)-len(f[2])]
	if p.Key, p.Hashed, err = Split(ns, full); err != nil {
		return Parts{}, err
	}
	return p, nil
}
