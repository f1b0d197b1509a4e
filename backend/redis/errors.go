package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// ErrAuth is wrapped by the error returned when the server refuses the
// configured credentials (WRONGPASS, NOAUTH) or denies a command to the
// ACL user (NOPERM). The error names the user, never the password.
var ErrAuth = errors.New("backend/redis: authentication failed")

// ErrForeignValue is wrapped by the error returned when a key holds
// something this package did not write: a string without memdict's header
// (for example one set by redis-cli or another program) or a Redis value of
// another type (a hash, a list, ...). The key is left untouched.
var ErrForeignValue = errors.New("backend/redis: value was not written by memdict")

// ErrProtocol is wrapped by the error a call returns when a server (or
// something between the client and the server) answers what is not the
// Redis protocol, or not an answer to the command: a malformed reply, a
// length or count larger than the client accepts (see WithMaxValueLen), a
// line without end, nesting too deep, a reply without a request, a reply
// of the wrong type or count for its command. The connection it came on
// is closed, and no value is returned. Such an error also wraps
// backend.ErrUnavailable and counts as a failure of that server.
var ErrProtocol = errors.New("backend/redis: protocol error")

// errNotFound is returned for every miss: a static error, so that a miss
// costs no allocation, that wraps backend.ErrNotFound and goredis.Nil.
var errNotFound = fmt.Errorf("redis: %w (%w)", backend.ErrNotFound, goredis.Nil)

// check returns the error a call must return before any I/O: ErrClosed
// after Close, ctx's error if ctx is done, ErrInvalidKey for an empty key
// (key "-" stands for calls without a key).
func (b *Backend) check(ctx context.Context, op, key string) error {
	if b.closed.Load() {
		return fmt.Errorf("redis: %s: %w", where(op, key), backend.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", where(op, key), err)
	}
	if key == "" {
		return fmt.Errorf("redis: %s: %w: empty key", op, backend.ErrInvalidKey)
	}
	return nil
}

// where names a call in errors: the operation and, unless it is "-", the
// key or server.
func where(op, key string) string {
	if key == "-" {
		return op
	}
	return op + " " + strconv.Quote(key)
}

// code returns the status code a script replies first.
func code(res []any) int64 {
	if len(res) == 0 {
		return -100
	}
	n, ok := res[0].(int64)
	if !ok {
		return -100
	}
	return n
}

// scriptError turns a script's foreign-value reply, or any unexpected
// reply (one that does not fit its script: an error wrapping ErrProtocol
// and backend.ErrUnavailable, as the lane reports it), into an error.
func scriptError(op, key string, res []any) error {
	if code(res) == -1 && len(res) == 3 {
		head, _ := res[1].(string)
		n, _ := res[2].(int64)
		e := foreignError(key, head)
		if n > int64(len(head)) {
			e = fmt.Errorf("%w: key %q holds %d bytes without memdict's header (starting %q)",
				ErrForeignValue, key, n, head)
		}
		return fmt.Errorf("redis: %s: %w", op, e)
	}
	return fmt.Errorf("redis: %s %q: %w: %w: unexpected script reply %.80v", op, key, ErrProtocol, backend.ErrUnavailable, res)
}

// wrap turns a go-redis error into one that wraps both the matching
// backend sentinel and the original error.
func (b *Backend) wrap(ctx context.Context, op, key string, err error) error {
	// A flush's context (deadlineCtx) and bounded's (boundCtx) carry the
	// driver's timeout: running out of it is the server's fault. But
	// bounded's carries the caller's deadline when that comes first
	// (callers): running out of it is the caller's deadline, as when
	// bounded stops waiting for it.
	_, ours := ctx.(*deadlineCtx)
	if bc, ok := ctx.(boundCtx); ok {
		ours = !bc.callers
	}
	cerr := ctx.Err()
	switch {
	case ours:
		cerr = nil
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("redis: %s: %w: the server did not answer within %v: %w", where(op, key), backend.ErrUnavailable, b.cfg.timeout, err)
		}
	case cerr == nil:
		// go-redis sets the connection's deadline to ctx's: its i/o
		// timeout may come a hair before ctx reports DeadlineExceeded.
		var ne net.Error
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("redis: %s: %w", where(op, key), err)
		}
		return fmt.Errorf("redis: %s: %w (%w)", where(op, key), cerr, err)
	}
	if err == goredis.Nil || !errors.Is(err, ErrProtocol) && unreadable(err) {
		// A null here answered a command that never answers one: callers
		// handle it where a command may.
		err = &protoError{Addr: b.addr(), Msg: "a reply that does not fit its command", Err: err}
	}
	var kind error
	switch {
	case errors.Is(err, goredis.ErrClosed), b.closed.Load():
		// Calls in flight when Close closes the connections.
		kind = backend.ErrClosed
	case goredis.IsPermissionError(err) && writeOps[op]:
		// The user may not write (there, or at all): the write is
		// refused, which a reader may take as such (backend.ErrWriteRefused).
		// The server's reply first: callers that show one cause (the
		// Dict's generation errors) show it.
		return fmt.Errorf("redis: %s: %w: the ACL of %s denies the write (%w, %w)", where(op, key), err, b.who(), backend.ErrWriteRefused, ErrAuth)
	case goredis.IsAuthError(err), goredis.IsPermissionError(err), errors.Is(err, ErrAuth):
		return fmt.Errorf("redis: %s: %w as %s (check the user and password): %w", where(op, key), ErrAuth, b.who(), err)
	case goredis.IsReadOnlyError(err):
		// Only a write gets READONLY: the server is a replica.
		return fmt.Errorf("redis: %s: %w: %s is a read-only replica: %w", where(op, key), backend.ErrWriteRefused, b.addr(), err)
	case tlsVerifyError(err):
		return fmt.Errorf("redis: %s: the server's TLS certificate is not trusted "+
			"(give the CA that signed it with the URL option tls_ca): %w", where(op, key), err)
	case wrongType(err):
		return otherTypeError(op, key, err)
	case b.cluster != nil && redirected(err):
		// go-redis followed MaxRedirects redirections and was sent on
		// again: the slot is moving, or nodes disagree on its owner (two
		// redirecting to each other). A later call may find it settled.
		return fmt.Errorf("redis: %s: %w: still redirected after %d redirections (the slot is moving, or the nodes disagree on its owner): %w",
			where(op, key), backend.ErrUnavailable, b.cluster.Options().MaxRedirects, err)
	case unavailable(err):
		kind = backend.ErrUnavailable
	}
	if kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("redis: %s: %w: %w", where(op, key), kind, err)
	}
	return fmt.Errorf("redis: %s: %w", where(op, key), err)
}

// who names the configured user in errors, never its password.
func (b *Backend) who() string {
	if b.user != "" {
		return fmt.Sprintf("user %q", b.user)
	}
	return "the default user"
}

// writeOps are the operations (as wrap names them) that write: a NOPERM
// answering one of them is a refused write (backend.ErrWriteRefused), one
// answering a read is not.
var writeOps = map[string]bool{
	"add": true, "set": true, "setmulti": true, "cas": true, "delete": true, "deletemulti": true,
	"touch": true, "increment": true, "trylock": true, "unlock": true, "flush": true,
}

// tlsVerifyError reports whether err is a failure to verify the server's
// certificate.
func tlsVerifyError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// wrongType reports a WRONGTYPE error, also one raised inside a Lua script
// (which Redis reports with another prefix).
func wrongType(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	return strings.Contains(re.Error(), "WRONGTYPE")
}

// redirected reports whether err is a MOVED or ASK redirection.
func redirected(err error) bool {
	_, moved := goredis.IsMovedError(err)
	_, ask := goredis.IsAskError(err)
	return moved || ask
}

// unavailable reports whether err means the server could not be reached or
// cannot serve now (the call may succeed later).
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		goredis.IsLoadingError(err), goredis.IsClusterDownError(err), goredis.IsTryAgainError(err),
		goredis.IsMasterDownError(err), goredis.IsMaxClientsError(err):
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// otherTypeError is the error of op on key, which holds a Redis value of
// another type than a string (err is the server's WRONGTYPE reply): a
// value memdict did not write, ErrForeignValue.
func otherTypeError(op, key string, err error) error {
	return fmt.Errorf("redis: %s: %w: key %q holds a Redis value of another type, not a string: %w",
		op, ErrForeignValue, key, err)
}
