package memcached

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
)

// ErrProtocol is wrapped by the error a call returns when a server answers
// something that is not the memcached text protocol (or closes the
// connection in the middle of a reply). Such an error also wraps
// backend.ErrUnavailable and counts as a failure of that server.
var ErrProtocol = errors.New("memcached: protocol error")

// opError is the error of one operation: what was done, on which key and
// server, the backend sentinel it means (Kind) and the original error from
// gomemcache or the network (Err). errors.Is and errors.As see both.
type opError struct {
	Op   string
	Key  string
	Addr string
	Kind error // a backend sentinel, ErrProtocol, or nil
	Err  error // the original error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("memcached: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		fmt.Fprintf(&b, " %q", e.Key)
	}
	if e.Addr != "" {
		b.WriteString(" on ")
		b.WriteString(e.Addr)
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil && e.Err != e.Kind {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// ServerAddr returns the server the operation failed on ("" if none), for
// backend.ServerOf.
func (e *opError) ServerAddr() string { return e.Addr }

func (e *opError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Kind == ErrProtocol {
		errs = append(errs, backend.ErrUnavailable)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// errMiss is returned by Get for a miss: it is frequent, so it is not
// allocated per call (and does not name the key).
var errMiss error = &opError{Op: "get", Kind: backend.ErrNotFound, Err: memcache.ErrCacheMiss}

// classify maps an error from gomemcache or the network to the backend
// sentinel it means, and reports whether it is a failure of the server (as
// opposed to an answer about the key).
func classify(err error) (kind error, serverFault bool) {
	switch {
	case err == nil:
		return nil, false
	case errors.Is(err, memcache.ErrCacheMiss):
		return backend.ErrNotFound, false
	case errors.Is(err, memcache.ErrNotStored):
		return backend.ErrNotStored, false
	case errors.Is(err, memcache.ErrCASConflict):
		return backend.ErrCASConflict, false
	case errors.Is(err, memcache.ErrMalformedKey):
		return backend.ErrInvalidKey, false
	case errors.Is(err, memcache.ErrNoServers):
		return backend.ErrUnavailable, true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, false
	case errors.Is(err, errRetired):
		// The server's name moved during the call, again at each
		// connect: the server did not fail, and a later call may reach
		// its new address.
		return backend.ErrUnavailable, false
	}
	var pe protoErr
	if errors.As(err, &pe) {
		return ErrProtocol, true
	}
	var re refusal
	if errors.As(err, &re) {
		// Checked before the SERVER_ERROR of a reply below: a refused
		// connection is a failure of the server.
		return backend.ErrUnavailable, true
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "object too large"):
		return backend.ErrValueTooLarge, false
	case strings.Contains(msg, "SERVER_ERROR"):
		// The server answered but could not do it (out of memory with -M,
		// ...): it may succeed later, and the server is not failing.
		return backend.ErrUnavailable, false
	case strings.Contains(msg, "non-numeric"), strings.Contains(msg, "invalid numeric delta"):
		return backend.ErrNotNumeric, false
	}
	var cte *memcache.ConnectTimeoutError
	var ne net.Error
	var errno syscall.Errno
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.As(err, &cve), errors.As(err, &rhe), errors.As(err, &ae):
		// TLS: a wrong CA, a plain-TCP server, a refused handshake.
		return backend.ErrUnavailable, true
	case errors.As(err, &cte), errors.As(err, &ne), errors.As(err, &errno),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return backend.ErrUnavailable, true
	}
	// gomemcache reports a reply it cannot parse with a plain error
	// ("memcache: unexpected line ...", "corrupt get result read",
	// strconv errors on a bad number).
	return ErrProtocol, true
}
