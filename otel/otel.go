// Package otel instruments memdict with OpenTelemetry: traces and metrics
// of the operations of Dicts and of the calls of their backends. It is a
// module of its own (github.com/memdict/memdict/otel), so that programs
// that do not use OpenTelemetry do not depend on it. Import it under
// another name where go.opentelemetry.io/otel is imported too:
//
//	import memdictotel "github.com/memdict/memdict/otel"
//
//	tel := memdictotel.New() // the global TracerProvider and MeterProvider
//	t, _ := tool.New(cfg, tool.WithMiddleware(tel.Middleware))
//	users, _ := tool.Dict[User](t, "users", "", memdict.WithObserver(tel))
//
// (or, without a Tool, backend.Wrap(be, tel.Middleware) and memdict.New).
//
// # Traces
//
// Each Dict operation (memdict.WithObserver: Get, Lookup, Store,
// GetOrLoad, GetMulti, ...) is a span of kind internal named after the
// operation and the Dict's prefix ("get users"), with the attributes
// db.operation.name (the operation: get, put, getorload, ...),
// db.collection.name (the prefix), memdict.result (hit, miss, ok,
// not_stored, not_found or error), memdict.near_cache.hits and
// memdict.near_cache.misses (with a near cache), db.operation.batch.size
// (operations on several keys) and, for a failure, error.type
// (memdict.ErrorKind's name) and the span status Error.
//
// Each backend call (the middleware: every call of the backend and of its
// optional abilities, but for the properties ServerFor and Describe) is a
// span of kind client, a child of the operation's, named after the call
// ("get", "setmulti", "getlease", ...), following OpenTelemetry's semantic
// conventions for database clients: db.system.name (memcached, redis, or
// memory, from backend.Describe), db.operation.name, server.address and
// server.port (the server of the key, where the backend can tell, or its
// only server), db.operation.batch.size, and, for a failure, error.type.
// A miss (backend.ErrNotFound), an Add that found a value and a lost
// compare-and-swap are outcomes, not failures.
//
// Keys are not recorded, nor error messages (which name keys), unless
// WithKeys asks: then the Dict key (memdict.key) and the backend key
// (memdict.backend_key) are attributes, and errors are recorded on the
// spans with their messages (an event "exception", as span.RecordError
// makes, and the status's description). What a span records of a key
// (250 bytes), of a message (8 KiB) and of a server's address is bounded,
// each cut with its length: keys, and messages carrying a server's reply,
// can be as long as a value. Every string recorded (prefixes, keys,
// messages, addresses) is valid UTF-8, each invalid byte written \xNN:
// OTLP's exporters cannot encode anything else, and drop the whole batch.
//
// GetOrLoad's background refresh (of a stale entry, or memcached's early
// refresh) is a span "refresh <prefix>" of its own, a child of the
// GetOrLoad span that started it, in a context that keeps the caller's
// values but not its cancellation: the refresh outlives the call, and its
// backend calls and the loader's work are its children.
//
// # Metrics
//
//	db.client.operation.duration   histogram, s: backend calls, with the attributes of their spans
//	memdict.operation.duration     histogram, s: Dict operations (db.operation.name, db.collection.name, memdict.result, error.type)
//	memdict.near_cache.requests    counter: reads answered by the near cache (memdict.result=hit) or not (miss), by db.collection.name
//
// The Prometheus exporter of package metrics/prometheus reads a Dict's own
// Stats instead, and adds gauges (near-cache entries and bytes,
// connections).
package otel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/memdict/memdict/otel"

// Attribute keys of memdict's own.
const (
	// ResultKey is the outcome of a Dict operation (memdict.Outcome's
	// Result), or of a near-cache read (hit, miss).
	ResultKey = attribute.Key("memdict.result")
	// KeyKey is the Dict key of an operation (with WithKeys).
	KeyKey = attribute.Key("memdict.key")
	// BackendKeyKey is the backend key of a call (with WithKeys).
	BackendKeyKey = attribute.Key("memdict.backend_key")
	// NearHitsKey and NearMissesKey count the keys of an operation that
	// the near cache answered, and those it did not.
	NearHitsKey   = attribute.Key("memdict.near_cache.hits")
	NearMissesKey = attribute.Key("memdict.near_cache.misses")
)

// Instrumentation is memdict's OpenTelemetry instrumentation: a
// memdict.Observer for Dicts (WithObserver) and, in Middleware, a
// backend.Middleware for their backends. It is safe for concurrent use,
// and one serves any number of Dicts and backends.
type Instrumentation struct {
	tracer trace.Tracer
	keys   bool

	callDur, opDur metric.Float64Histogram
	nearReqs       metric.Int64Counter

	describeEvery time.Duration
}

// An Option configures New.
type Option func(*config)

type config struct {
	tp            trace.TracerProvider
	mp            metric.MeterProvider
	keys          bool
	describeEvery time.Duration
}

// WithTracerProvider sets the TracerProvider (default: the global one,
// otel.GetTracerProvider, at New).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the MeterProvider (default: the global one,
// otel.GetMeterProvider, at New).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithKeys records keys on the spans — the Dict key (memdict.key) and the
// backend key (memdict.backend_key) — and the errors' messages, which name
// them. Keys may be personal data: the default records none.
func WithKeys() Option { return func(c *config) { c.keys = true } }

// DefaultDescribeInterval is how often the middleware asks a backend what
// it is (backend.Describe: its system and servers) by default.
const DefaultDescribeInterval = time.Second

// WithDescribeInterval sets how often the middleware asks the backend
// under it what it is (db.system.name, its servers): after a Tool's
// SetPlugin moves a plugin to another kind of server, the spans name it
// within d. 0 means DefaultDescribeInterval.
func WithDescribeInterval(d time.Duration) Option {
	return func(c *config) { c.describeEvery = d }
}

// New returns the instrumentation, with the providers the options give
// (the global ones by default). It returns an error if an instrument
// cannot be made.
func New(opts ...Option) (*Instrumentation, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.describeEvery <= 0 {
		c.describeEvery = DefaultDescribeInterval
	}
	meter := c.mp.Meter(ScopeName)
	in := &Instrumentation{tracer: c.tp.Tracer(ScopeName), keys: c.keys, describeEvery: c.describeEvery}
	var errs []error
	var err error
	in.callDur, err = meter.Float64Histogram("db.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of memdict's backend calls."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10))
	errs = append(errs, err)
	in.opDur, err = meter.Float64Histogram("memdict.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of memdict Dict operations."),
		metric.WithExplicitBucketBoundaries(0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10))
	errs = append(errs, err)
	in.nearReqs, err = meter.Int64Counter("memdict.near_cache.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Reads of near-cached Dicts, by whether the near cache answered (hit) or not (miss)."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return in, nil
}

var _ memdict.Observer = (*Instrumentation)(nil)

// Start implements memdict.Observer: it starts the span of a Dict
// operation, a child of ctx's, and returns the function that ends it and
// records its duration.
func (in *Instrumentation) Start(ctx context.Context, op memdict.Operation) (context.Context, func(memdict.Outcome)) {
	attrs := make([]attribute.KeyValue, 0, 6)
	prefix := text(op.Prefix, maxKey)
	attrs = append(attrs, semconv.DBOperationName(op.Name), semconv.DBCollectionName(prefix))
	if op.Keys > 1 {
		attrs = append(attrs, semconv.DBOperationBatchSize(op.Keys))
	}
	if in.keys && op.Key != "" {
		attrs = append(attrs, KeyKey.String(text(op.Key, maxKey)))
	}
	ctx, span := in.tracer.Start(ctx, op.Name+" "+prefix, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	t0 := time.Now()
	return ctx, func(o memdict.Outcome) {
		d := time.Since(t0).Seconds()
		mattrs := []attribute.KeyValue{semconv.DBOperationName(op.Name), semconv.DBCollectionName(prefix), ResultKey.String(o.Result)}
		span.SetAttributes(ResultKey.String(o.Result))
		if o.NearHits+o.NearMisses > 0 {
			span.SetAttributes(NearHitsKey.Int(o.NearHits), NearMissesKey.Int(o.NearMisses))
			set := metric.WithAttributes(semconv.DBCollectionName(prefix), ResultKey.String("hit"))
			if o.NearHits > 0 {
				in.nearReqs.Add(ctx, int64(o.NearHits), set)
			}
			if o.NearMisses > 0 {
				in.nearReqs.Add(ctx, int64(o.NearMisses), metric.WithAttributes(semconv.DBCollectionName(prefix), ResultKey.String("miss")))
			}
		}
		if o.Result == "error" {
			kind := memdict.ErrorKind(o.Err)
			mattrs = append(mattrs, semconv.ErrorTypeKey.String(kind))
			in.fail(span, kind, o.Err)
		}
		in.opDur.Record(ctx, d, metric.WithAttributes(mattrs...))
		span.End()
	}
}

// fail marks span as failed with the error kind (and, with WithKeys, the
// error itself, whose message may name keys).
func (in *Instrumentation) fail(span trace.Span, kind string, err error) {
	span.SetAttributes(semconv.ErrorTypeKey.String(kind))
	if in.keys && err != nil && span.IsRecording() {
		// RecordError's event, with the message bounded.
		msg := message(err)
		span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
			semconv.ExceptionType(errorType(err)), semconv.ExceptionMessage(msg)))
		span.SetStatus(codes.Error, msg)
		return
	}
	span.SetStatus(codes.Error, kind)
}

// Middleware is a backend.Middleware (give it to backend.Wrap or
// tool.WithMiddleware) that makes a span of each backend call and records
// its duration.
func (in *Instrumentation) Middleware(next backend.CallFunc) backend.CallFunc {
	d := &describer{next: next, every: in.describeEvery}
	return func(ctx context.Context, c backend.Call) backend.Result {
		if c.Op.Property() {
			return next(ctx, c)
		}
		desc := d.get()
		attrs := make([]attribute.KeyValue, 0, 8)
		if desc.System != "" {
			attrs = append(attrs, semconv.DBSystemNameKey.String(desc.System))
		}
		attrs = append(attrs, semconv.DBOperationName(c.Op.String()))
		key := callKey(c)
		addr := ""
		if key != "" {
			addr = next(ctx, backend.Call{Op: backend.OpServerFor, Key: key}).Addr
		}
		if addr == "" && len(desc.Servers) == 1 {
			addr = desc.Servers[0].Addr
		}
		attrs = appendServer(attrs, addr)
		if n := batchSize(c); n > 1 {
			attrs = append(attrs, semconv.DBOperationBatchSize(n))
		}
		sattrs := attrs
		if in.keys && key != "" {
			sattrs = append(sattrs[:len(sattrs):len(sattrs)], BackendKeyKey.String(text(key, maxKey)))
		}
		ctx, span := in.tracer.Start(ctx, c.Op.String(), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(sattrs...))
		t0 := time.Now()
		r := next(ctx, c)
		dur := time.Since(t0).Seconds()
		if failed(r.Err) {
			kind := memdict.ErrorKind(r.Err)
			attrs = append(attrs, semconv.ErrorTypeKey.String(kind))
			if addr == "" {
				if a := backend.ServerOf(r.Err); a != "" {
					span.SetAttributes(appendServer(nil, a)...)
				}
			}
			in.fail(span, kind, r.Err)
		}
		span.End()
		in.callDur.Record(ctx, dur, metric.WithAttributes(attrs...))
		return r
	}
}

// describer caches what the backend under a middleware says it is.
type describer struct {
	next  backend.CallFunc
	every time.Duration
	cur   atomic.Pointer[described]
}

type described struct {
	d  backend.Description
	at time.Time
}

// get returns the backend's Description, asked again when it is older
// than the interval.
func (d *describer) get() backend.Description {
	if c := d.cur.Load(); c != nil && time.Since(c.at) < d.every {
		return c.d
	}
	desc := d.next(context.Background(), backend.Call{Op: backend.OpDescribe}).Description
	d.cur.Store(&described{d: desc, at: time.Now()})
	return desc
}

// callKey returns the key a call is about, if one.
func callKey(c backend.Call) string {
	switch c.Op {
	case backend.OpSet, backend.OpAdd, backend.OpCompareAndSwap:
		return c.Item.Key
	}
	return c.Key
}

// batchSize returns the number of keys of a call on several.
func batchSize(c backend.Call) int {
	switch c.Op {
	case backend.OpGetMulti, backend.OpDeleteMulti:
		return len(c.Keys)
	case backend.OpSetMulti:
		return len(c.Items)
	}
	return 0
}

// What a span shows of a key, of an error's message and of an address is
// valid UTF-8 (see text) and bounded: a key is as long as the program makes it, and a message or an
// address may come from a server (a Redis error line of up to 64 KiB, the
// address of a node a cluster announced). A 1 MiB attribute on each span
// would make the exporter's batches too large to send, and lose the
// other spans with them.
const (
	maxKey     = 250 // memcached's longest key: any it holds is recorded whole
	maxMessage = 8 << 10
	maxAddress = 260 // a DNS name (253 bytes) and a port
)

// shorten returns s, or, if it is longer than max bytes, its first max
// bytes at most (not cutting a UTF-8 sequence) and how long it was.
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// message returns err's message, shortened to maxMessage bytes. The
// Dict key that a memdict.OpError names, and those a memdict.MultiError
// lists first, are shortened to maxKey bytes beforehand, or the first key
// would fill the message and hide the cause.
func message(err error) string {
	switch e := err.(type) {
	case *memdict.OpError:
		if len(e.Key) > maxKey {
			short := *e
			short.Key = shorten(e.Key, maxKey)
			err = &short
		}
	case *memdict.MultiError:
		short := *e
		short.Failed = slices.Clone(e.Failed)
		for i, oe := range short.Failed {
			if i == maxListed {
				break
			}
			if oe != nil && len(oe.Key) > maxKey {
				short.Failed[i] = &memdict.OpError{Op: oe.Op, Key: shorten(oe.Key, maxKey), Err: oe.Err}
			}
		}
		err = &short
	}
	return text(err.Error(), maxMessage)
}

// maxListed is how many keys memdict.MultiError's message lists.
const maxListed = 20

// text returns s fit for an attribute or a span's name: valid UTF-8,
// each invalid byte written \xNN (OTLP's protobuf encoding refuses
// invalid UTF-8, and the exporter then drops the whole batch of spans or
// metrics it is in: one key of a client's choosing, or one byte of a
// server's error, would lose them all), and cut to max bytes of s, with
// its length.
func text(s string, max int) string {
	if len(s) <= max && utf8.ValidString(s) {
		return s
	}
	n := len(s)
	if n > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	if !utf8.ValidString(s) {
		var b strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				fmt.Fprintf(&b, "\\x%02x", s[i])
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
		}
		s = b.String()
	}
	if n > max {
		s += "... (" + strconv.Itoa(n) + " bytes)"
	}
	return s
}

// errorType is the exception.type span.RecordError records: the
// package path and name of err's type, or its description for an
// unnamed one (*memdict.OpError).
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// appendServer appends server.address and server.port of addr.
func appendServer(attrs []attribute.KeyValue, addr string) []attribute.KeyValue {
	if addr == "" {
		return attrs
	}
	if len(addr) > maxAddress || !utf8.ValidString(addr) {
		return append(attrs, semconv.ServerAddress(text(addr, maxAddress)))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return append(attrs, semconv.ServerAddress(addr))
	}
	attrs = append(attrs, semconv.ServerAddress(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.ServerPort(p))
	}
	return attrs
}

// failed reports whether err is a failure of a backend call, rather than
// one of its expected outcomes (a miss, an Add that found a value, a lost
// compare-and-swap, an ability the backend lacks).
func failed(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, backend.ErrNotFound),
		errors.Is(err, backend.ErrNotStored),
		errors.Is(err, backend.ErrCASConflict),
		backend.NotSupported(err):
		return false
	}
	return true
}
