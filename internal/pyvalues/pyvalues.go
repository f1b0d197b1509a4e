// Package pyvalues is where package codec/python registers itself, so that
// memdict's Python formats (FormatERP5, FormatPython: the values of
// Python's memcached clients, pickles included) are linked only into the
// programs that import codec/python, as a backend driver is linked only
// when imported. A program without it pays nothing for them (some 240 KB
// of a service's binary); a Dict or Tool plugin of a Python format then
// fails with Missing's error, which names the import.
package pyvalues

import "fmt"

// Codec reads and writes the values of Python's memcached clients:
// codec/python.Codec.
type Codec interface {
	// Marshal returns v's bytes and the client flags that say what they are.
	Marshal(v any) ([]byte, uint32, error)
	// Unmarshal decodes data, stored with flags, into v.
	Unmarshal(data []byte, flags uint32, v any) error
}

// FlagInt is the client flag of an int in ASCII decimal (python-memcached's
// _FLAG_INTEGER, codec/python.FlagInt): the flag of a counter's value in a
// Python format.
const FlagInt uint32 = 1 << 1

// Package is the import path that registers the codec.
const Package = "github.com/memdict/memdict/codec/python"

// registered is set by codec/python's init, before any Dict exists, and
// only read afterwards.
var registered Codec

// Register makes c the codec of the Python formats. codec/python calls it
// from its init.
func Register(c Codec) { registered = c }

// Get returns the registered codec, or nil if codec/python is not linked.
func Get() Codec { return registered }

// Missing returns nil if the codec is registered, else the error of a
// Dict or plugin of format (erp5, python) in a program without it.
func Missing(format string) error {
	if registered != nil {
		return nil
	}
	return fmt.Errorf("format %s needs package codec/python, which this program does not link: forgotten import? add import _ %q", format, Package)
}
