// Package python reads and writes cache values as Python's memcached
// clients do, so that a Go program can share a memcached with ERP5's
// Memcached Tool (python-memcached) and with Python services using
// python-memcached or pymemcache.
//
// Those clients store, beside each value, memcached client flags that say
// what the bytes are: FlagBytes (0) bytes, FlagText a UTF-8 str, FlagInt
// an ASCII decimal int, FlagPickle a pickle of any other object, and
// FlagZlib on top for compressed values. Marshal chooses the flags as
// python-memcached does for the Go value's Python counterpart and writes
// pickles as Python's pickle.dumps does (protocol 2 by default, for ERP5
// on Python 2 and 3 alike); Unmarshal reads any value of those flags,
// pickles of protocols 0 to 5 included, into a Go value, as encoding/json
// reads JSON (dict into a map or a struct, list into a slice, and so on).
//
// A value read from a server is untrusted: Unmarshal never panics, checks
// every length against the bytes it has before it allocates, bounds the
// memory it allocates in all (Codec.MaxBytes) and the nesting of values
// (MaxDepth), and reports what did not fit as an error wrapping ErrDecode.
//
// The package knows nothing of memcached itself: the caller stores the
// bytes with the flags (memcached's meta command "ms <key> <len> F<flags>")
// and reads both back ("mg <key> v f").
//
// memdict's Python formats (memdict.FormatERP5, memdict.FormatPython, a
// Tool plugin's format: erp5) use this package, and are linked only into
// programs that import it, as a driver is:
//
//	import _ "github.com/memdict/memdict/codec/python"
package python
