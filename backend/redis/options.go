package redis

import "time"

// Defaults of the Options.
const (
	// DefaultTimeout bounds every call, the wait in the coalescing queue,
	// connecting and socket I/O included (see WithTimeout).
	DefaultTimeout = time.Second
	// DefaultFailureLimit is the number of consecutive failures that mark a
	// server down (the memcached driver's default too).
	DefaultFailureLimit = 3
	// DefaultRetryInterval is how often a server marked down is probed.
	DefaultRetryInterval = 2 * time.Second

	// DefaultBatchInFlight is the number of pipelines in flight per server
	// (see WithBatching).
	DefaultBatchInFlight = 2
	// DefaultBatchSize is the largest number of calls sent in one pipeline.
	DefaultBatchSize = 256
)

// DefaultMaxValueLen is the longest value a Backend stores unless
// WithMaxValueLen says otherwise: Redis's own limit on a string (512 MiB,
// proto-max-bulk-len) less the 11-byte header this package adds.
const DefaultMaxValueLen = 512<<20 - headerLen

// DefaultMaxValueSize is the former name of DefaultMaxValueLen.
//
// Deprecated: use DefaultMaxValueLen.
const DefaultMaxValueSize = DefaultMaxValueLen

// config holds what Options set.
type config struct {
	maxValueSize  int
	flush         bool
	batch         bool
	inFlight      int
	maxBatch      int
	timeout       time.Duration
	failureLimit  int
	retryInterval time.Duration
}

// An Option configures a Backend made by New, NewCluster, NewRing,
// NewSentinel or NewFromClient.
type Option func(*config)

// WithMaxValueLen makes Set, Add and CompareAndSwap reject values longer
// than n bytes with backend.ErrValueTooLarge, and bounds what a reply may
// make the client allocate: n, the header and 1 MiB (a longer reply is a
// protocol error; see the package documentation, "Untrusted replies"). The
// default, also used for n <= 0 and as a cap, is DefaultMaxValueLen, Redis's
// own limit: set n to the largest value you store. URL parameter:
// max_value_length.
func WithMaxValueLen(n int) Option {
	return func(c *config) {
		if n <= 0 || n > DefaultMaxValueLen {
			n = DefaultMaxValueLen
		}
		c.maxValueSize = n
	}
}

// WithMaxValueSize is the former name of WithMaxValueLen.
//
// Deprecated: use WithMaxValueLen.
func WithMaxValueSize(n int) Option { return WithMaxValueLen(n) }

// WithFlush enables Flush, which runs FLUSHDB: it drops every key of the
// Redis database (of every master, on a cluster), including keys that other
// programs and other Dicts store there. Use it only on a database memdict
// has to itself. By default Flush returns an error wrapping
// backend.ErrNotSupported. FLUSHALL is never used.
func WithFlush(enabled bool) Option {
	return func(c *config) { c.flush = enabled }
}

// WithBatching turns the pipelining of concurrent calls on (the default)
// or off. With it on, a call (Get, Set, Add, CompareAndSwap, Delete, Touch,
// Increment) that finds maxInFlight pipelines of its server in flight
// waits, and goes out with every call that queued meanwhile in one go-redis
// pipeline: one round trip for all of them, the Gets among them merged into
// one MGET (on a cluster: one MGET per hash slot). A lone call is sent at
// once, as a plain command, so batching adds no latency when there is no
// concurrency. maxInFlight bounds the pipelines in flight per server (0:
// DefaultBatchInFlight) and maxBatch the calls per pipeline (0:
// DefaultBatchSize). With batching off every call is its own round trip.
func WithBatching(enabled bool, maxInFlight, maxBatch int) Option {
	return func(c *config) {
		c.batch = enabled
		if maxInFlight > 0 {
			c.inFlight = maxInFlight
		}
		if maxBatch > 0 {
			c.maxBatch = maxBatch
		}
	}
}

// WithTimeout bounds every call, whatever the context the caller passes:
// the wait for a place in a pipeline, connecting, writing and reading
// included (default DefaultTimeout; d <= 0 means the default). A caller's
// context with an earlier deadline, or one cancelled, still ends the call
// earlier. A call that runs out of time because the server did not answer
// fails with an error wrapping backend.ErrUnavailable that names the
// server, and counts towards its failure limit.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = positiveOr(d, DefaultTimeout) }
}

// Timeout returns the bound of one call (WithTimeout), for
// backend.Timeouter.
func (b *Backend) Timeout() time.Duration { return b.cfg.timeout }

// WithFailureLimit sets how many consecutive failures (the server did not
// answer in time, refused the connection, dropped it) mark a server down
// (default DefaultFailureLimit; 0 never marks servers down). While a server
// is marked down, calls for its keys fail at once with an error wrapping
// backend.ErrUnavailable that names it, and the Backend probes it in the
// background (see WithRetryInterval) until it answers again. On a cluster
// each master is marked down on its own, on a Ring each shard.
func WithFailureLimit(n int) Option {
	return func(c *config) {
		if n < 0 {
			n = 0
		}
		c.failureLimit = n
	}
}

// WithRetryInterval sets how often a server marked down is probed with a
// PING (default DefaultRetryInterval; d <= 0 means the default).
func WithRetryInterval(d time.Duration) Option {
	return func(c *config) { c.retryInterval = positiveOr(d, DefaultRetryInterval) }
}

// positiveOr returns d, or def if d <= 0.
func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func newConfig(opts []Option) config {
	c := config{
		maxValueSize:  DefaultMaxValueLen,
		batch:         true,
		inFlight:      DefaultBatchInFlight,
		maxBatch:      DefaultBatchSize,
		timeout:       DefaultTimeout,
		failureLimit:  DefaultFailureLimit,
		retryInterval: DefaultRetryInterval,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}
