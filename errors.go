package memdict

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
)

// Errors, to test with errors.Is: every sentinel of the package. Most are
// the backend package's, repeated here so that users of Dict need not
// import backend.
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
	// ErrWriteRefused: the server refused a write because this client may
	// not write (a read-only replica, an ACL user that may only read); also
	// wrapped by a write through a Dict that reads a namespace whose
	// generation it could not store (see Clear).
	ErrWriteRefused = backend.ErrWriteRefused
	// ErrDecode: a stored value could not be decoded into the Dict's type:
	// it was written by another program, with another codec, as another
	// type, or is corrupt.
	ErrDecode = errors.New("memdict: cannot decode value")
	// ErrEncode: a value could not be encoded with the Dict's codec.
	ErrEncode = errors.New("memdict: cannot encode value")
	// ErrNoValue: a GetOrLoad loader returns an error wrapping it to say
	// that the key has no value (it does not exist in the source of
	// truth); GetOrLoad then caches the absence for the negative TTL
	// (WithNegativeTTL) and returns an *OpError of op "load" wrapping it.
	ErrNoValue = errors.New("memdict: no value")
	// ErrTxDone is returned by the methods of a Tx that was already
	// committed or rolled back.
	ErrTxDone = errors.New("memdict: transaction already committed or rolled back")
	// ErrLoaderPanicked is the error the callers waiting on a GetOrLoad
	// load receive when the loader panics; the caller that ran it gets the
	// panic. A panic in GetOrLoad's background work (a refresh's loader,
	// or one of its backend calls: a middleware's bug), or in a callback
	// that work calls (the WithErrorHandler function, the Observer's end
	// of a "refresh"), is recovered rather than ending the program, and
	// counted in Stats, logged and reported to the WithErrorHandler
	// function with it.
	ErrLoaderPanicked = errors.New("memdict: loader panicked")
	// ErrUpdatePanicked is the error of the Update callers whose functions
	// were combined with one that panicked; the caller that led the round
	// gets the panic.
	ErrUpdatePanicked = errors.New("memdict: an update function panicked")
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

// Error returns `memdict: <op> "<key>": <cause>` (for Dict.Generation's
// error, `memdict: namespace generation of prefix "<prefix>": <cause>`).
func (e *OpError) Error() string {
	if ge, ok := e.Err.(*genError); ok && e.Op == "generation" && e.Key == "" {
		// Dict.Generation: the generation is the subject.
		return fmt.Sprintf("memdict: namespace generation of prefix %q: %s", ge.prefix, ge.about(""))
	}
	return fmt.Sprintf("memdict: %s %q: %s", e.Op, e.Key, e.cause())
}

// cause returns the message of e.Err for e.Key: an error reading the
// namespace generation is worded by whether the key's own server failed.
func (e *OpError) cause() string {
	if ge, ok := e.Err.(*genError); ok {
		return ge.about(e.Key)
	}
	return fmt.Sprint(e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// MultiError is the error of an operation on several keys (GetMulti,
// PutMulti, Tx.Commit) in which some or all keys failed. It lists every
// failed Dict key with its cause; every key it does not list succeeded (for
// GetMulti: was found or missing). Test for it with errors.As; errors.Is
// sees each key's cause, so errors.Is(err, ErrUnavailable) is true if any
// key failed because its server was unreachable.
type MultiError struct {
	// Op is the operation: "getmulti", "putmulti" or "commit".
	Op string
	// Failed holds one *OpError per failed key, sorted by key. Its Key is
	// the Dict key (not the backend key) and its Op the operation on that
	// key: "get", "put" or "delete".
	Failed []*OpError
	// Total is the number of distinct keys the operation tried.
	Total int
}

// maxListed is how many failed keys MultiError.Error lists; Failed holds
// them all.
const maxListed = 20

// Error returns `memdict: <op>: <n> of <total> keys failed: ` followed by
// the failed keys and their causes (the first 20 keys, then how many
// more). Keys that failed alike (the same operation and cause, as when
// their server is down) are listed together before their cause:
// `get "a", "c": <cause>; put "b": <cause>`.
func (e *MultiError) Error() string {
	var b strings.Builder
	b.WriteString("memdict: ")
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	fmt.Fprintf(&b, "%d of %d keys failed: ", len(e.Failed), e.Total)
	listed := e.Failed[:min(len(e.Failed), maxListed)]
	type group struct {
		op, cause string
		keys      []string
	}
	var groups []*group
	byCause := map[[2]string]*group{}
	for _, oe := range listed {
		c := [2]string{oe.Op, oe.cause()}
		g := byCause[c]
		if g == nil {
			g = &group{op: c[0], cause: c[1]}
			byCause[c] = g
			groups = append(groups, g)
		}
		g.keys = append(g.keys, strconv.Quote(oe.Key))
	}
	for i, g := range groups {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s: %s", g.op, strings.Join(g.keys, ", "), g.cause)
	}
	if n := len(e.Failed) - len(listed); n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return b.String()
}

// Unwrap returns the failed keys' errors, so that errors.Is(err,
// ErrUnavailable) and errors.As(err, &opErr) see them.
func (e *MultiError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, oe := range e.Failed {
		errs[i] = oe
	}
	return errs
}

// Keys returns the failed keys, sorted.
func (e *MultiError) Keys() []string {
	keys := make([]string, len(e.Failed))
	for i, oe := range e.Failed {
		keys[i] = oe.Key
	}
	return keys
}

// Err returns the cause of key's failure, or nil if key is not listed.
func (e *MultiError) Err(key string) error {
	for _, oe := range e.Failed {
		if oe.Key == key {
			return oe.Err
		}
	}
	return nil
}

// CommitError is the error of a Tx.Commit in which some keys failed: a
// MultiError whose Op is "commit" and whose Failed entries have Op "put" or
// "delete". Every key it does not list was written (or deleted).
type CommitError = MultiError

// errNotMade is the error of every call of a Dict not made by New (the
// zero Dict).
var errNotMade = errors.New("memdict: the Dict was not made by memdict.New (or tool.Dict)")
