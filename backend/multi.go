package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MultiWriter is implemented by backends that write or delete many keys in
// a few round trips (memcached's pipelined or quiet commands, a Redis
// pipeline) rather than one per key. The SetMulti and DeleteMulti
// functions use it when the backend has it and fall back to one Set or
// Delete per key otherwise; a driver without a batched form may implement
// it with SetEach and DeleteEach.
type MultiWriter interface {
	// SetMulti stores every item as Set does, trying every item even when
	// some fail. It returns nil if all were stored. If only some failed, it
	// returns a *MultiError naming each failed key (every key it does not
	// name was stored). Any other error means the outcome of each key is
	// unknown, as when the context is done or the connection is lost.
	SetMulti(ctx context.Context, items []Item) error

	// DeleteMulti removes every key as Delete does, with the same error
	// rules as SetMulti. A key that was absent is a failure wrapping
	// ErrNotFound in the *MultiError, as Delete reports it.
	DeleteMulti(ctx context.Context, keys []string) error
}

// KeyError is the failure of one key in a multi-key operation.
type KeyError struct {
	// Key is the backend key.
	Key string
	// Err is why it failed, wrapping one of the package's sentinels.
	Err error
}

// Error returns `<key>: <cause>`.
func (e KeyError) Error() string { return fmt.Sprintf("%q: %v", e.Key, e.Err) }

// Unwrap returns the cause.
func (e KeyError) Unwrap() error { return e.Err }

// MultiError lists the keys of a multi-key operation that failed; the
// other keys succeeded. errors.Is(err, ErrX) is true if any key failed with
// ErrX.
type MultiError struct {
	// Errors holds one entry per failed key.
	Errors []KeyError
}

// Error lists every failed key and its cause.
func (e *MultiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backend: %d keys failed: ", len(e.Errors))
	for i, ke := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(ke.Error())
	}
	return b.String()
}

// Unwrap returns every key's cause.
func (e *MultiError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, ke := range e.Errors {
		errs[i] = ke.Err
	}
	return errs
}

// KeyErrors returns, for an error from SetMulti or DeleteMulti, the
// failure of each key it names and true; or nil and false if err is not (and
// does not wrap) a *MultiError, meaning every key's outcome is unknown.
func KeyErrors(err error) ([]KeyError, bool) {
	var me *MultiError
	if errors.As(err, &me) {
		return me.Errors, true
	}
	return nil, false
}
