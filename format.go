package memdict

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/pyvalues"
)

// Formats: how a Dict lays out its keys and values in the backend.
//
// memdict's own format (FormatMemdict) is described on BackendKey and in
// package codec. The two Python formats share a cache with programs that
// know nothing of memdict: their values are those of Python's memcached
// clients (package codec/python: the client flags say what the bytes are,
// and there is no memdict header), and their keys are ERP5's
// (FormatERP5) or the keys as given (FormatPython). What needs memdict's
// own layout (a namespace generation, values that carry their key or
// their expiry) is not available in them.
//
// The Python formats are linked only into programs that import package
// codec/python (import _ "github.com/memdict/memdict/codec/python"), as a
// driver is linked only when imported: a service that does not share a
// cache with Python pays nothing for them. Without the import, WithFormat,
// Settings.Validate and a Tool plugin of a Python format fail with an
// error that names the import.

// Format is how a Dict lays out its keys and values in the backend: one
// of FormatMemdict (the default), FormatERP5 and FormatPython. The same
// names are a Tool plugin's format in configuration files (`format:
// erp5`).
type Format string

const (
	// FormatMemdict is memdict's own layout: keys
	// <site>:<prefix>:<generation>:<key> (see BackendKey), values framed
	// with the header of their codec. The empty Format means it too.
	FormatMemdict Format = "memdict"
	// FormatERP5 reads and writes the entries of ERP5's Memcached Tool
	// (the Dict of key_prefix, portal_memcached.getMemcachedDict): keys
	// are ERP5's (keyspace: "<site id>_<prefix>_<key>",
	// quoted-printable, at most MaxKeyLen bytes, else ErrInvalidKey),
	// values are python-memcached's (package codec/python: str, int,
	// bytes, pickles of everything else, told apart by memcached's client
	// flags), so ERP5 and the Dict read each other's entries.
	FormatERP5 Format = "erp5"
	// FormatPython reads and writes the values of Python's memcached
	// clients (python-memcached, pymemcache with its pickle serde) as
	// FormatERP5 does, under keys as a Python program names them: the
	// backend key is the Dict's prefix followed by the key, byte for
	// byte (no site id, no separator, no escaping), which must be
	// memcached-safe (no spaces or control bytes, at most MaxKeyLen
	// bytes), else ErrInvalidKey.
	FormatPython Format = "python"
)

// Formats returns the formats, the default first.
func Formats() []Format { return []Format{FormatMemdict, FormatERP5, FormatPython} }

// check returns an error unless f is a format ("" counts as
// FormatMemdict) that the program links (codec/python for the Python
// formats).
func (f Format) check() error {
	switch f {
	case "", FormatMemdict:
		return nil
	case FormatERP5, FormatPython:
		return pyvalues.Missing(string(f))
	}
	return fmt.Errorf("unknown format %q (known: memdict, erp5, python)", string(f))
}

// python reports whether f is one of the Python formats.
func (f Format) python() bool { return f == FormatERP5 || f == FormatPython }

// optionName is the Go spelling of the option that sets f.
func (f Format) optionName() string {
	switch f {
	case FormatERP5:
		return "WithFormat(memdict.FormatERP5)"
	case FormatPython:
		return "WithFormat(memdict.FormatPython)"
	}
	return fmt.Sprintf("WithFormat(%q)", string(f))
}

// WithFormat sets how the Dict lays out its keys and values in the
// backend (default FormatMemdict): FormatERP5 shares the entries of ERP5's
// Memcached Tool, FormatPython those of Python programs using
// python-memcached or pymemcache. In a Python format the Dict's values
// are Python's (V as package codec/python maps it: a struct or map for a
// dict, a slice for a list, and so on; the codec is not used) and some
// operations, which need memdict's own layout, fail with an error
// wrapping ErrNotSupported: Clear and Generation, Keys and All,
// Invalidate, GetOrLoad with stale-while-revalidate (GetOrLoad otherwise
// loads once per key in the process, but does not coordinate the fleet
// and caches no absence), and a near cache (WithNearCache: New fails).
// Keys are never hashed: one too long is ErrInvalidKey. The backend must
// carry memcached's client flags (memcached, or mem:// in tests; Redis
// refuses them). The program must import package codec/python for the
// Python formats (else WithFormat fails, naming the import).
func WithFormat(f Format) Option {
	return func(o *options) error {
		if err := f.check(); err != nil {
			return fmt.Errorf("WithFormat: %w", err)
		}
		o.settings.Format = f
		o.set("WithFormat")
		return nil
	}
}

// pyCodec returns the codec of the Python formats' values (protocol 2
// pickles, which ERP5 on Python 2 and Python 3 read alike): package
// codec/python's, which registers itself when a program imports it, so
// that programs without the Python formats do not link it. A Dict of a
// Python format exists only if it is registered (Format.check).
func pyCodec() pyvalues.Codec { return pyvalues.Get() }

// notAvailable returns the error of an operation (what: "Clear") that a
// Dict of a Python format cannot do, naming where the format came from:
// the Dict's WithFormat, or its settings (a Tool plugin's format).
func (d *Dict[V]) notAvailable(s *Settings, what string) error {
	f := s.Format
	where := fmt.Sprintf("on a format: %s plugin", f)
	if d.ownFormat {
		where = "with " + f.optionName()
	}
	return fmt.Errorf("%w: %s is not available %s: it needs memdict's own key and value layout", ErrNotSupported, what, where)
}

// formatOptionErr checks the options of New that a Python format
// excludes, and returns the error of the first.
func (d *Dict[V]) formatOptionErr(s *Settings, o *options, near *NearCache, nearSource string) error {
	if !s.Format.python() {
		return nil
	}
	switch {
	case o.swr > 0:
		return d.notAvailable(s, "WithStaleWhileRevalidate")
	case near != nil:
		return d.notAvailable(s, "a near cache ("+nearSource+")")
	}
	return nil
}

// pyKey returns the backend key of key in a view of a Python format, or
// an error wrapping ErrInvalidKey.
func (v *view) pyKey(key string) (string, error) {
	if v.s.Format == FormatERP5 {
		k, err := keyspace.ERP5Key(v.s.SiteID, v.prefix, key, v.s.MaxKeyLen)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		return k, nil
	}
	k := v.prefix + key
	switch {
	case k == "":
		return "", fmt.Errorf("%w: an empty key (format python uses the prefix and the key as they are)", ErrInvalidKey)
	case v.s.MaxKeyLen > 0 && len(k) > v.s.MaxKeyLen:
		return "", fmt.Errorf("%w: key %q is %d bytes, more than the limit of %d (format python does not shorten keys)", ErrInvalidKey, truncKey(k), len(k), v.s.MaxKeyLen)
	}
	if i := strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return "", fmt.Errorf("%w: key %q holds %q at byte %d: memcached keys cannot hold spaces or control bytes", ErrInvalidKey, truncKey(k), k[i], i)
	}
	return k, nil
}

// truncKey shortens a key, or a value another program stored, to its
// first 64 bytes and "..." for an error message.
func truncKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}

// bkey returns the backend key of key in v and whether it is hashed, or
// an error for a key a Python format cannot name.
func (v *view) bkey(key string) (string, bool, error) {
	if !v.python {
		k, hashed := keyspace.Key(v.ns, key, v.s.MaxKeyLen)
		return k, hashed, nil
	}
	k, err := v.pyKey(key)
	return k, false, err
}

// bkeyIn is bkey, building a key of memdict's own format into *buf: the
// key returned shares buf's memory, which must never be written again
// (appending past its end, or to a copy grown elsewhere, is fine).
func (v *view) bkeyIn(buf *[]byte, key string) (string, bool, error) {
	if v.python {
		return v.bkey(key)
	}
	start := len(*buf)
	b, hashed := keyspace.AppendKey(*buf, v.ns, key, v.s.MaxKeyLen)
	*buf = b
	k := b[start:]
	return unsafe.String(unsafe.SliceData(k), len(k)), hashed, nil
}

// counterFlags are the client flags of a counter's value: python.FlagInt
// in a Python format, so that Python's clients read an int; none in
// memdict's own.
func (v *view) counterFlags() uint32 {
	if v.python {
		return pyvalues.FlagInt
	}
	return 0
}

// decodePy decodes a value of a Python format, stored with flags, into a
// V. private says that b is the caller's own (a Raw may keep it).
func (d *Dict[V]) decodePy(b []byte, flags uint32, private bool) (V, error) {
	var v V
	if d.kind == kindRaw {
		if !private {
			b = bytes.Clone(b)
		}
		if b == nil {
			b = []byte{}
		}
		r := Raw{Flags: flags, Payload: b[:len(b):len(b)]}
		return *(*V)(unsafe.Pointer(&r)), nil
	}
	if err := pyCodec().Unmarshal(b, flags, &v); err != nil {
		return v, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return v, nil
}

// encodePy encodes v as the value of a Python format, and returns the
// client flags to store with it.
func (d *Dict[V]) encodePy(vw *view, v V) ([]byte, uint32, error) {
	var b []byte
	var flags uint32
	if d.kind == kindRaw {
		r := *(*Raw)(unsafe.Pointer(&v))
		if r.Codec != 0 {
			return nil, 0, fmt.Errorf("%w: a Raw value of format %s carries client flags, not a codec ID (%d)", ErrEncode, vw.s.Format, r.Codec)
		}
		b, flags = r.Payload, r.Flags
	} else {
		var err error
		if b, flags, err = pyCodec().Marshal(v); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrEncode, err)
		}
	}
	if err := vw.checkSize(len(b)); err != nil {
		return nil, 0, err
	}
	return b, flags, nil
}

// errRawFlags is the error of storing a Raw with client flags in
// memdict's own format, whose values carry none.
var errRawFlags = errors.New("a Raw value of format memdict carries a codec ID, not client flags (they are for the formats erp5 and python)")
