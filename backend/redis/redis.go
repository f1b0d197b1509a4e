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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/memdict/memdict/backend"
)

// DefaultMaxValueSize is the largest value a Backend stores unless
// WithMaxValueSize says otherwise: Redis's own limit on a string (512 MiB,
// proto-max-bulk-len) less the 11-byte header this package adds.
const DefaultMaxValueSize = 512<<20 - headerLen

// ErrAuth is wrapped by the error returned when the server refuses the
// configured credentials (WRONGPASS, NOAUTH) or denies a command to the
// ACL user (NOPERM). The error names the user, never the password.
var ErrAuth = errors.New("backend/redis: authentication failed")

// errNotFound is returned for every miss: a static error, so that a miss
// costs no allocation, that wraps backend.ErrNotFound and goredis.Nil.
var errNotFound = fmt.Errorf("redis: %w (%w)", backend.ErrNotFound, goredis.Nil)

// Backend is a backend.Backend on a Redis server or a Redis Cluster,
// through a go-redis client. It also implements backend.Lister,
// backend.StatsReporter, backend.Pinger, backend.MultiWriter (pipelined
// writes and deletes) and backend.Flusher (Flush is disabled unless enabled
// with WithFlush).
//
// Concurrent single-key calls are pipelined (see WithBatching), every call
// is bounded by the timeout (see WithTimeout), and a server that stops
// answering is marked down and probed (see WithFailureLimit).
//
// A Backend is safe for concurrent use by multiple goroutines.
type Backend struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // non-nil for a cluster client
	single  *goredis.Client        // non-nil for a standalone client
	owns    bool                   // Close closes client
	closed  atomic.Bool
	cfg     config
	user    string // ACL user, for error messages

	// Pipelining and health (pipeline.go, health.go): one lane per
	// server; lane0 on a standalone server (or a Ring), lanes by master
	// address on a cluster.
	lane0       *lane
	lanesMu     sync.RWMutex
	lanes       map[string]*lane
	lanesClosed bool

	stop    chan struct{}  // closed by Close: probes end
	calls   sync.WaitGroup // goroutines started by spawn and bounded
	callsMu sync.RWMutex   // orders calls.Add before Close's calls.Wait
	closing bool           // set by Close under callsMu
}

// New returns a Backend on the standalone Redis server that opt describes.
// It copies opt and, in the copy, sets ContextTimeoutEnabled (so that every
// call honours its deadline on the socket) and DisableIdentity; it caps
// PoolTimeout at the Backend's timeout (WithTimeout); it sets
// DialerRetries to 1 if it is 0 (a cache should fail fast when its server
// is down, not retry a refused dial five times) and MaxRetries to -1, no
// retries, if it is 0 (a retried Increment, Add or CompareAndSwap whose
// first attempt reached the server would be applied twice or misreported;
// set MaxRetries above 0 to accept that for transparent retries); and it
// disables maintenance notifications unless opt configures them. It does not connect:
// the first call (or Ping) does. Close closes the client it creates.
func New(opt *goredis.Options, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: New with nil options")
	}
	cfg := newConfig(options)
	o := *opt
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	if o.PoolTimeout <= 0 || o.PoolTimeout > cfg.timeout {
		o.PoolTimeout = cfg.timeout
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	b := newBackend(goredis.NewClient(&o), cfg)
	b.owns = true
	b.user = o.Username
	return b, nil
}

// NewCluster returns a Backend on the Redis Cluster that opt describes
// (opt.Addrs are seed nodes; the others are discovered). It adjusts a copy
// of opt as New does and, if MinRetryBackoff is 0, sets it to -1, no
// backoff: go-redis's cluster client retries a command that timed out (on
// another attempt bounded by the same, spent, deadline), and sleeping
// before that attempt would only make the call overrun the timeout. It
// does not connect: the first call (or Ping) does. Close closes the client
// it creates.
func NewCluster(opt *goredis.ClusterOptions, options ...Option) (*Backend, error) {
	if opt == nil {
		return nil, errors.New("redis: NewCluster with nil options")
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("redis: NewCluster with no seed addresses")
	}
	cfg := newConfig(options)
	o := *opt
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	if o.PoolTimeout <= 0 || o.PoolTimeout > cfg.timeout {
		o.PoolTimeout = cfg.timeout
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.MinRetryBackoff == 0 {
		o.MinRetryBackoff = -1
	}
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	b := newBackend(goredis.NewClusterClient(&o), cfg)
	b.owns = true
	b.user = o.Username
	return b, nil
}

// NewFromClient returns a Backend that uses client, a *goredis.Client, a
// *goredis.ClusterClient or another goredis.UniversalClient (such as a
// *goredis.Ring, on which multi-gets are pipelined GETs). The caller keeps
// ownership of client: Close does not close it. For calls to be bounded by
// the timeout on the socket, the client must have ContextTimeoutEnabled
// set, and a PoolTimeout no longer than the timeout.
// NewFromClient returns an error if client is nil.
func NewFromClient(client goredis.UniversalClient, options ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("redis: NewFromClient with a nil client")
	}
	b := newBackend(client, newConfig(options))
	switch c := client.(type) {
	case *goredis.Client:
		b.user = c.Options().Username
	case *goredis.ClusterClient:
		b.user = c.Options().Username
	}
	return b, nil
}

func newBackend(c goredis.UniversalClient, cfg config) *Backend {
	b := &Backend{client: c, cfg: cfg, stop: make(chan struct{})}
	switch c := c.(type) {
	case *goredis.ClusterClient:
		b.cluster = c
		b.lanes = make(map[string]*lane)
	case *goredis.Client:
		b.single = c
		b.lane0 = &lane{b: b, addr: c.Options().Addr}
	default:
		b.lane0 = &lane{b: b, addr: fmt.Sprintf("%T", c)}
	}
	return b
}

// Client returns the go-redis client the Backend uses, for commands this
// package does not offer. Values the Backend stores carry an 11-byte
// header (see the package documentation).
func (b *Backend) Client() goredis.UniversalClient { return b.client }

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

// ttlArg returns ttl in whole milliseconds, rounded up, as Redis's PX and
// PEXPIRE take it; "0" means no expiry.
func ttlArg(op, key string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("redis: %s %q: %w: %v", op, key, backend.ErrInvalidTTL, ttl)
	}
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	return ms, nil
}

// Close releases the Backend: it fails the calls still queued with
// backend.ErrClosed, stops the probes of servers marked down, closes the
// go-redis client if New or NewCluster made it (not one given to
// NewFromClient), and waits for the goroutines it started. Later calls
// return errors wrapping backend.ErrClosed; a second Close returns nil.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.callsMu.Lock()
	b.closing = true
	b.callsMu.Unlock()
	close(b.stop)
	b.closeLanes()
	stopTracking(b)
	var err error
	if b.owns {
		if cerr := b.client.Close(); cerr != nil && !errors.Is(cerr, goredis.ErrClosed) {
			err = fmt.Errorf("redis: close: %w", cerr)
		}
	}
	b.calls.Wait()
	return err
}

// closeLanes closes every lane: their queued calls fail with ErrClosed.
func (b *Backend) closeLanes() {
	b.lanesMu.Lock()
	b.lanesClosed = true
	ls := make([]*lane, 0, len(b.lanes)+1)
	for _, l := range b.lanes {
		ls = append(ls, l)
	}
	b.lanesMu.Unlock()
	if b.lane0 != nil {
		ls = append(ls, b.lane0)
	}
	for _, l := range ls {
		l.closeLane()
	}
}

// bounded runs fn with a context that ends at ctx's deadline or after the
// timeout, whichever comes first, and returns its results. go-redis
// honours a deadline (on the socket) but not a cancellation: so when ctx
// can be cancelled, fn runs in a goroutine of its own and bounded returns
// ctx.Err() as soon as ctx is done; fn then finishes on its own, by its
// deadline, and Close waits for it. When ctx cannot be cancelled (such as
// context.Background()), fn runs in the caller's goroutine.
func bounded[T any](b *Backend, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	dl := time.Now().Add(b.cfg.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	if ctx.Done() == nil {
		return fn(&deadlineCtx{dl: dl})
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if !b.spawn(func() {
		v, err := fn(&deadlineCtx{dl: dl})
		ch <- result{v, err}
	}) {
		var zero T
		return zero, fmt.Errorf("redis: %w", backend.ErrClosed)
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it finished at the same moment: prefer its result
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
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
// reply, into an error.
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
	return fmt.Errorf("redis: %s %q: unexpected script reply %v", op, key, res)
}

// wrap turns a go-redis error into one that wraps both the matching
// backend sentinel and the original error.
func (b *Backend) wrap(ctx context.Context, op, key string, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// go-redis sets the connection's deadline to ctx's: its i/o
		// timeout may come a hair before ctx reports DeadlineExceeded.
		// A flush's own context (deadlineCtx) carries the driver's
		// timeout, not the caller's deadline: that is the server's fault.
		var ne net.Error
		_, ours := ctx.(*deadlineCtx)
		if dl, ok := ctx.Deadline(); ok && !ours && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("redis: %s: %w", where(op, key), err)
		}
		return fmt.Errorf("redis: %s: %w (%w)", where(op, key), cerr, err)
	}
	var kind error
	switch {
	case errors.Is(err, goredis.ErrClosed), b.closed.Load():
		// Calls in flight when Close closes the connections.
		kind = backend.ErrClosed
	case goredis.IsAuthError(err), goredis.IsPermissionError(err):
		who := "the default user"
		if b.user != "" {
			who = fmt.Sprintf("user %q", b.user)
		}
		return fmt.Errorf("redis: %s: %w as %s (check the user and password): %w", where(op, key), ErrAuth, who, err)
	case tlsVerifyError(err):
		return fmt.Errorf("redis: %s: the server's TLS certificate is not trusted "+
			"(give the CA that signed it with the URL option tls_ca): %w", where(op, key), err)
	case wrongType(err):
		return fmt.Errorf("redis: %s: %w: key %q holds a Redis value of another type, not a string: %w",
			op, ErrForeignValue, key, err)
	case unavailable(err):
		kind = backend.ErrUnavailable
	}
	if kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("redis: %s: %w: %w", where(op, key), kind, err)
	}
	return fmt.Errorf("redis: %s: %w", where(op, key), err)
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
