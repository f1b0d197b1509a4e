package memdict

import (
	"errors"
	"fmt"

	"github.com/memdict/memdict/backend"
)

// Errors, to test with errors.Is. Most are the backend package's sentinels,
// repeated here so that users of Dict need not import backend.
var (
	// ErrNotFound: the key is absent (Remove, Touch).
	ErrNotFound = backend.ErrNotFound
	// ErrValueTooLarge: the encoded value is larger than the Dict's or the
	// backend's limit; nothing was written.
	ErrValueTooLarge = backend.ErrValueTooLarge
	// ErrCASConflict: a compare-and-swap lost a race.
	ErrCASConflict = backend.ErrCASConflict
	// ErrUnavailable: the server could not be reached.
	ErrUnavailable = backend.ErrUnavailable
	// ErrClosed: the backend was closed.
	ErrClosed = backend.ErrClosed
	// ErrNotSupported: the backend lacks an ability the call needs.
	ErrNotSupported = backend.ErrNotSupported
	// ErrInvalidKey: the backend refused the key.
	ErrInvalidKey = backend.ErrInvalidKey
	// ErrDecode: a stored value could not be decoded into the Dict's type:
	// it was written by another program, with another codec, as another
	// type, or is corrupt.
	ErrDecode = errors.New("memdict: cannot decode value")
	// ErrEncode: a value could not be encoded with the Dict's codec.
	ErrEncode = errors.New("memdict: cannot encode value")
)

// OpError is the error of one Dict operation on one key. It unwraps to the
// cause, so errors.Is(err, memdict.ErrNotFound) and the like work.
type OpError struct {
	// Op is the operation: "get", "put", "add", "delete", "touch", ...
	Op string
	// Key is the Dict key (not the backend key).
	Key string
	// Err is the cause.
	Err error
}

// Error returns `memdict: <op> "<key>": <cause>`.
func (e *OpError) Error() string {
	return fmt.Sprintf("memdict: %s %q: %v", e.Op, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }
