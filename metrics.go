package memdict

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/memdict/memdict/backend"
)

// op names one kind of Dict operation, for Stats and metrics.
type op uint8

const (
	opGet        op = iota // Get, Lookup, GetMulti (per key), GetOrLoad's read, Tx reads
	opPut                  // Put, Store, PutMulti, Tx commit writes
	opAdd                  // Add
	opDelete               // Delete, Remove, Tx commit deletes
	opTouch                // Touch
	opUpdate               // Update
	opLoad                 // GetOrLoad's loader calls
	opIncr                 // Counter operations
	opClear                // Clear
	opList                 // Keys, All
	opCommit               // Tx.Commit
	opInvalidate           // Invalidate
	numOps
)

// opInfo names an op and the result its second counter counts.
var opInfo = [numOps]struct{ name, ok, other string }{
	opGet:        {"get", "hit", "miss"},
	opPut:        {"put", "ok", ""},
	opAdd:        {"add", "ok", "not_stored"},
	opDelete:     {"delete", "ok", "not_found"},
	opTouch:      {"touch", "ok", "not_found"},
	opUpdate:     {"update", "ok", "conflict"},
	opLoad:       {"load", "ok", ""},
	opIncr:       {"incr", "ok", ""},
	opClear:      {"clear", "ok", ""},
	opList:       {"list", "ok", ""},
	opCommit:     {"commit", "ok", ""},
	opInvalidate: {"invalidate", "ok", ""},
}

// LatencyBounds are the upper bounds of the latency histogram's buckets,
// from 5µs to 10s; a last, unbounded bucket follows.
var LatencyBounds = []time.Duration{
	5 * time.Microsecond, 10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

const numBuckets = 21 // len(LatencyBounds) + 1

// opMetrics are the counters of one op. The op's calls, counted when
// they start, are in metrics.hot (striped); other and errs count those
// that ended with the op's second result or an error (a Get's misses are
// striped too); the rest ended well ("ok" or "hit"). Counting at the
// start lets the hot path pay for one atomic add and use its result to
// pick the operations whose latency it samples. The calls a snapshot or a
// timed end reads are the sum of the stripes, read one after the other:
// each stripe only grows, so a later sum is never smaller than an earlier
// one, and the outcomes, read before it, never exceed it.
//
// The latency histogram counts every operation, though only one in n is
// timed (WithLatencySampling): each timed operation stands for itself and
// for the operations counted after it, up to the next timed one. With
// n = 1 every operation is timed and adds itself to its bucket. With n > 1
// the end of a timed operation, under mu, adds the calls counted since the
// previous timed one ended to the bucket and sum of that previous one
// (last), and becomes the last; a snapshot adds the calls counted since
// to the last's bucket. So the histogram's count is the exact number of
// operations (those in flight included, as in the result counts), and its
// buckets and sum, an unbiased estimate, only grow.
type opMetrics struct {
	other, errs atomic.Uint64 // a Get's misses are counted in hotStripe
	samples     atomic.Uint64 // operations timed
	sum         atomic.Uint64 // total latency, ns (estimated, n > 1)
	buckets     [numBuckets]atomic.Uint64

	mu   sync.Mutex // n > 1: orders timed ends and snapshots
	last lastSample // under mu
}

// lastSample is the latest timed operation to end (n > 1 sampling).
type lastSample struct {
	calls  uint64 // the calls counter when it ended: those are accounted for
	bucket int
	dur    uint64 // ns
	ok     bool   // one has ended
}

// sample is what start returns: when a timed operation started (t0, 0 if
// it is not timed).
type sample struct{ t0 int64 }

// metrics are a Dict's counters.
type metrics struct {
	// hot holds the counters that calls write every time (each op's
	// calls, a Get's misses, the near cache's hits), striped: one counter
	// shared by every core is a cache line that moves between them on
	// each call, which under parallel near-cache hits cost more than the
	// hits themselves. A call adds to its goroutine's stripe (stripe);
	// the counts are the sums. Its length is a power of two.
	hot        []hotStripe
	stripeBits uint8 // len(hot) is 1<<stripeBits
	ops        [numOps]opMetrics
	// retries counts CAS conflicts that Update retried.
	retries atomic.Uint64
	// near counts the near cache's work (WithNearCache).
	near nearMetrics
	// sampleMask selects the calls whose latency is measured: those
	// whose count on their stripe less one ANDed with it is 0 (each
	// stripe's first, then one in sampleMask+1). noSampling turns
	// measuring off.
	sampleMask uint64
	logger     *slog.Logger
	prefix     string
	// logs rate-limits the logged failures (nil without a logger).
	logs *logLimiter
}

const noSampling = math.MaxUint64

// hotStripe is one stripe of metrics.hot.
type hotStripe struct {
	calls    [numOps]atomic.Uint64 // the op's calls, counted when they start
	getMiss  atomic.Uint64         // Gets that ended with a miss (opGet's other)
	nearHits atomic.Uint64
	_        [64]byte // keeps the next stripe's counters off this one's cache lines
}

// maxStripes bounds metrics.hot.
const maxStripes = 16

// init makes m's stripes: four per CPU (GOMAXPROCS), at most maxStripes,
// one with a single CPU.
func (m *metrics) init() {
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < maxStripes {
		n *= 2
	}
	if runtime.GOMAXPROCS(0) == 1 {
		n = 1
	}
	m.hot = make([]hotStripe, n)
	m.stripeBits = uint8(bits.TrailingZeros(uint(n)))
}

// unmade counts the calls of Dicts not made by New, which have no
// stripes: they only fail, and nothing reads it.
var unmade hotStripe

// stripe returns the stripe of m.hot the calling goroutine adds to,
// picked by the address of its stack: the same for each of its calls (its
// stripe's cache line stays with the CPU that runs it), and most often
// another for goroutines running at the same time. Reading a random
// number instead cost a near-cache hit a third more.
func (m *metrics) stripe() *hotStripe {
	switch len(m.hot) {
	case 1:
		return &m.hot[0]
	case 0:
		return &unmade // a Dict not made by New, whose calls fail (errNotMade)
	}
	var onStack byte
	h := uint32(uintptr(unsafe.Pointer(&onStack))>>10) * 0x9e3779b1 // Fibonacci hashing of the stack's KiB
	return &m.hot[h>>(32-m.stripeBits)]
}

// sum returns the sum over the stripes of the counter c picks.
func (m *metrics) sum(c func(*hotStripe) *atomic.Uint64) uint64 {
	var n uint64
	for i := range m.hot {
		n += c(&m.hot[i]).Load()
	}
	return n
}

// calls returns the number of calls of o started.
func (m *metrics) calls(o op) uint64 {
	return m.sum(func(s *hotStripe) *atomic.Uint64 { return &s.calls[o] })
}

// nearHit counts n near-cache hits.
func (m *metrics) nearHit(n uint64) { m.stripe().nearHits.Add(n) }

// nearHits returns the number of near-cache hits.
func (m *metrics) nearHits() uint64 {
	return m.sum(func(s *hotStripe) *atomic.Uint64 { return &s.nearHits })
}

// epoch is the base of mono.
var epoch = time.Now()

// mono returns a monotonic clock reading in nanoseconds, never 0.
func mono() int64 { return int64(time.Since(epoch)) + 1 }

// start counts a call of o and returns its start time if its latency is
// to be measured: one in sampleMask+1 of the calls counted by each stripe.
func (m *metrics) start(o op) sample {
	if n := m.stripe().calls[o].Add(1); (n-1)&m.sampleMask == 0 && m.sampleMask != noSampling {
		return sample{mono()}
	}
	return sample{}
}

// startN counts n calls of o (GetMulti counts one call per key), timed
// together if one of them is to be.
func (m *metrics) startN(o op, n int) sample {
	if n <= 0 {
		return sample{}
	}
	c := m.stripe().calls[o].Add(uint64(n))
	// The stripe's calls are numbered c-n+1 to c; one is timed if one less than
	// its number is a multiple of sampleMask+1.
	first, last := c-uint64(n), c-1
	if m.sampleMask != noSampling && (first&m.sampleMask == 0 || first&^m.sampleMask != last&^m.sampleMask) {
		return sample{mono()}
	}
	return sample{}
}

// count counts n calls of o that are not timed on their own (they are
// part of another operation, which is).
func (m *metrics) count(o op, n int) {
	if n > 0 {
		m.stripe().calls[o].Add(uint64(n))
	}
}

// end records the latency of a timed call.
func (m *metrics) end(o op, s sample) {
	if s.t0 == 0 {
		return
	}
	d := uint64(mono() - s.t0)
	om := &m.ops[o]
	i := 0
	for i < len(LatencyBounds) && time.Duration(d) > LatencyBounds[i] {
		i++
	}
	om.samples.Add(1)
	if m.sampleMask == 0 {
		om.sum.Add(d)
		om.buckets[i].Add(1)
		return
	}
	om.mu.Lock()
	c := m.calls(o)
	if l := &om.last; l.ok {
		// The calls counted since the last timed one ended are its.
		w := c - l.calls
		om.buckets[l.bucket].Add(w)
		om.sum.Add(w * l.dur)
	} else {
		// The first timed call stands for those before it too.
		om.buckets[i].Add(c)
		om.sum.Add(c * d)
	}
	om.last = lastSample{calls: c, bucket: i, dur: d, ok: true}
	om.mu.Unlock()
}

// latency returns the histogram of o.
func (m *metrics) latency(o op) Latency {
	om := &m.ops[o]
	l := Latency{Buckets: make([]uint64, numBuckets)}
	if m.sampleMask != 0 && m.sampleMask != noSampling {
		om.mu.Lock()
		defer om.mu.Unlock()
	}
	l.Samples = om.samples.Load()
	sum := om.sum.Load()
	for i := range om.buckets {
		l.Buckets[i] = om.buckets[i].Load()
		l.Count += l.Buckets[i]
	}
	if last := om.last; last.ok {
		w := m.calls(o) - last.calls
		l.Buckets[last.bucket] += w
		l.Count += w
		sum += w * last.dur
	}
	l.Sum = time.Duration(sum)
	return l
}

// miss counts an op that ended with its second result.
func (m *metrics) miss(o op) {
	if o == opGet {
		m.stripe().getMiss.Add(1)
		return
	}
	m.ops[o].other.Add(1)
}

// others returns the number of calls of o that ended with its second
// result.
func (m *metrics) others(o op) uint64 {
	if o == opGet {
		return m.sum(func(s *hotStripe) *atomic.Uint64 { return &s.getMiss })
	}
	return m.ops[o].other.Load()
}

// fail counts a failed op, logs it and returns it as an *OpError (err
// itself if it already is one).
func (m *metrics) fail(ctx context.Context, o op, key string, err error) error {
	m.ops[o].errs.Add(1)
	var oe *OpError
	if !errors.As(err, &oe) {
		oe = &OpError{Op: opInfo[o].name, Key: key, Err: err}
	}
	if m.logger != nil {
		if suppressed, ok := m.logs.allow(o, oe.Err); ok {
			m.log(ctx, suppressed, slog.String("prefix", m.prefix), slog.String("op", oe.Op),
				slog.String("key", shorten(oe.Key, maxLoggedKey)), slog.String("kind", ErrorKind(oe.Err)), slog.Any("error", loggedError{oe.Err}))
		}
	}
	return oe
}

// failKeys counts one failed o for each key me names, logs the failure
// once (not once per key) and returns me.
func (m *metrics) failKeys(ctx context.Context, o op, me *MultiError) error {
	m.ops[o].errs.Add(uint64(len(me.Failed)))
	if m.logger != nil {
		if suppressed, ok := m.logs.allow(o, me); ok {
			m.log(ctx, suppressed, slog.String("prefix", m.prefix), slog.String("op", me.Op),
				slog.Int("failed", len(me.Failed)), slog.Int("keys", me.Total),
				slog.String("kind", ErrorKind(me)), slog.Any("error", loggedError{me}))
		}
	}
	return me
}

// failWhole counts a failed op that concerns no one key, logs it and
// returns err, which names the op itself.
func (m *metrics) failWhole(ctx context.Context, o op, err error) error {
	m.ops[o].errs.Add(1)
	if m.logger != nil {
		if suppressed, ok := m.logs.allow(o, err); ok {
			m.log(ctx, suppressed, slog.String("prefix", m.prefix), slog.String("op", opInfo[o].name),
				slog.String("kind", ErrorKind(err)), slog.Any("error", loggedError{err}))
		}
	}
	return err
}

// log writes one failure line, with the number of similar failures left
// out since the last line of its kind.
func (m *metrics) log(ctx context.Context, suppressed uint64, attrs ...slog.Attr) {
	if ctx == nil {
		ctx = context.Background()
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	m.logger.LogAttrs(ctx, slog.LevelWarn, "memdict: operation failed", attrs...)
}

// What a failure line shows of a key and of an error's message is
// bounded: a key is as long as the program makes it, and an error's
// message may carry a server's reply (a Redis error line of up to 64 KiB,
// an address a cluster announced) or, for a MultiError, twenty keys. A
// line must not be as large as they are.
const (
	// maxLoggedKey is memcached's longest key: any key it can hold is
	// shown whole.
	maxLoggedKey = 250
	// maxLoggedError is far more than a failure's message needs: a
	// MultiError's twenty keys of maxLoggedKey bytes and their cause.
	maxLoggedError = 8 << 10
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

// loggedError is an error as a failure line shows it: its message
// shortened to maxLoggedError bytes, the keys a MultiError lists first
// shortened to maxLoggedKey (else its first key would fill the line). It
// unwraps to the error, for handlers that look into it.
type loggedError struct{ err error }

func (e loggedError) Error() string {
	err := e.err
	if me, ok := err.(*MultiError); ok && len(me.Failed) > 0 {
		short := *me
		short.Failed = slices.Clone(me.Failed)
		for i, oe := range short.Failed[:min(len(short.Failed), maxListed)] {
			if len(oe.Key) > maxLoggedKey {
				short.Failed[i] = &OpError{Op: oe.Op, Key: shorten(oe.Key, maxLoggedKey), Err: oe.Err}
			}
		}
		err = &short
	}
	return shorten(err.Error(), maxLoggedError)
}

func (e loggedError) Unwrap() error { return e.err }

// DefaultLogInterval is how often, at most, a Dict logs the failures of
// one kind of operation with one kind of error (see WithLogInterval).
const DefaultLogInterval = 10 * time.Second

// Kinds of error, as ErrorKind names them.
var errorKinds = [...]struct {
	err  error
	name string
}{
	{context.DeadlineExceeded, "timeout"},
	{context.Canceled, "canceled"},
	{backend.ErrUnavailable, "unavailable"},
	{backend.ErrClosed, "closed"},
	{ErrDecode, "decode"},
	{ErrEncode, "encode"},
	{backend.ErrValueTooLarge, "value_too_large"},
	{backend.ErrInvalidKey, "invalid_key"},
	{backend.ErrInvalidTTL, "invalid_ttl"},
	{backend.ErrNotSupported, "not_supported"},
	{backend.ErrCASConflict, "cas_conflict"},
	{ErrLoaderPanicked, "loader_panicked"},
	{ErrUpdatePanicked, "update_panicked"},
	{ErrTxDone, "tx_done"},
}

// numKinds counts the kinds of error: those of errorKinds and "other".
const numKinds = len(errorKinds) + 1

// ErrorKind classifies err for logs and metrics, by the first of memdict's
// and package backend's sentinel errors it wraps: "timeout"
// (context.DeadlineExceeded), "canceled" (context.Canceled),
// "unavailable", "closed", "decode", "encode", "value_too_large",
// "invalid_key", "invalid_ttl", "not_supported", "cas_conflict",
// "loader_panicked", "update_panicked", "tx_done", or "other" (an error of
// a GetOrLoad loader, say). It returns "" for a nil err. The names are
// few and fixed, fit for a metric label or OpenTelemetry's error.type.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	return kindName(kindOf(err))
}

// kindOf returns the index of err's kind in errorKinds, or
// len(errorKinds) for "other".
func kindOf(err error) int {
	for i, k := range errorKinds {
		if errors.Is(err, k.err) {
			return i
		}
	}
	return len(errorKinds)
}

func kindName(k int) string {
	if k < len(errorKinds) {
		return errorKinds[k].name
	}
	return "other"
}

// logLimiter lets through at most one failure line per interval for each
// kind of operation and kind of error, and counts the others.
type logLimiter struct {
	every int64        // ns; <= 0: no limit
	now   func() int64 // ns
	slots [numOps][numKinds]logSlot
}

type logSlot struct {
	next       atomic.Int64 // when the next line may be written; 0: now
	suppressed atomic.Uint64
}

// newLogLimiter returns a limiter of one line per every (DefaultLogInterval
// for 0, no limit for a negative every), on the clock now (nil: mono).
func newLogLimiter(every time.Duration, now func() time.Time) *logLimiter {
	if every == 0 {
		every = DefaultLogInterval
	}
	l := &logLimiter{every: int64(every), now: mono}
	if now != nil {
		l.now = func() int64 { return now().UnixNano() }
	}
	return l
}

// allow reports whether a failure of o with err is to be logged, and how
// many failures of its kind were not logged since the last line.
func (l *logLimiter) allow(o op, err error) (suppressed uint64, ok bool) {
	if l == nil || l.every <= 0 {
		return 0, true
	}
	s := &l.slots[o][kindOf(err)]
	now := l.now()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+l.every) {
		s.suppressed.Add(1)
		return 0, false
	}
	return s.suppressed.Swap(0), true
}

// Stats counts a Dict's operations since it was made. The totals at the
// top sum the per-operation counts in Ops. Operations are counted when
// they start and classified when they end, so a snapshot taken while
// operations are in flight counts those as successes (hits, sets).
type Stats struct {
	// Hits and Misses count reads that found a value and that did not.
	Hits, Misses uint64
	// Errors counts failed operations (a miss is not a failure).
	Errors uint64
	// Sets and Deletes count successful writes and removals.
	Sets, Deletes uint64
	// Loads counts the loader calls of GetOrLoad (successful or not).
	Loads uint64
	// Conflicts counts compare-and-swap conflicts that Update retried.
	Conflicts uint64
	// Ops holds one entry per kind of operation, in a fixed order: get,
	// put, add, delete, touch, update, load, incr, clear, list, commit.
	Ops []OpStats
	// NearCache counts the near cache's hits, misses, evictions and
	// invalidations (see WithNearCache); zero without one.
	NearCache NearCacheStats
}

// OpStats counts one kind of operation.
type OpStats struct {
	// Op names the operation: "get", "put", "add", "delete", "touch",
	// "update", "load", "incr", "clear", "list", "commit" or "invalidate".
	Op string
	// Results counts the operations by outcome: "hit" and "miss" for get;
	// "ok" for the others, and "not_stored" (add), "not_found" (delete,
	// touch) or "conflict" (update gave up) where they apply; "error" for
	// failures. Every outcome the operation can have is listed, zero or
	// not, "error" last.
	Results []ResultCount
	// Latency is the distribution of the operations' latencies.
	Latency Latency
}

// ResultCount is the number of operations that ended with Result.
type ResultCount struct {
	// Result names the outcome ("hit", "ok", "error", ...).
	Result string
	// Count is the number of operations with that outcome.
	Count uint64
}

// Count returns the count of result, or 0.
func (o OpStats) Count(result string) uint64 {
	for _, r := range o.Results {
		if r.Result == result {
			return r.Count
		}
	}
	return 0
}

// Latency is a histogram of operation latencies. Every operation is
// counted, but only one in WithLatencySampling's n is timed: each timed
// operation stands for itself and the untimed ones that follow it, up to
// the next timed one. So Count is the number of operations, exact once
// none is in flight, and Buckets and Sum are an unbiased estimate that
// only grows, as a Prometheus histogram's must; with n = 1 they are exact.
type Latency struct {
	// Count is the number of operations and Sum their total latency.
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the operations not above LatencyBounds[i] and
	// above LatencyBounds[i-1]; the last bucket counts those above every
	// bound. It is not cumulative. The buckets add up to Count.
	Buckets []uint64
	// Samples is the number of operations timed.
	Samples uint64
}

// Quantile returns an estimate of the q-quantile (0 ≤ q ≤ 1) of the
// latencies, interpolated within the bucket it falls in, or 0 if there
// are no samples. A quantile in the last, unbounded bucket is reported as
// the largest bound.
func (l Latency) Quantile(q float64) time.Duration {
	if l.Count == 0 || len(l.Buckets) == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(l.Count)
	var seen float64
	for i, c := range l.Buckets {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i >= len(LatencyBounds) {
				return LatencyBounds[len(LatencyBounds)-1]
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			hi := LatencyBounds[i]
			frac := (rank - seen) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		seen += float64(c)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

// Mean returns the mean latency, or 0 without samples.
func (l Latency) Mean() time.Duration {
	if l.Count == 0 {
		return 0
	}
	return l.Sum / time.Duration(l.Count)
}

func (m *metrics) snapshot() Stats {
	var st Stats
	st.Ops = make([]OpStats, numOps)
	for o := range numOps {
		om := &m.ops[o]
		// Read the outcomes before the calls, so that ok never goes
		// negative.
		errs, other := om.errs.Load(), m.others(o)
		calls := m.calls(o)
		ok := calls - min(calls, errs+other)
		info := opInfo[o]
		os := OpStats{Op: info.name}
		os.Results = append(os.Results, ResultCount{info.ok, ok})
		if info.other != "" {
			os.Results = append(os.Results, ResultCount{info.other, other})
		}
		os.Results = append(os.Results, ResultCount{"error", errs})
		os.Latency = m.latency(o)
		st.Ops[o] = os
		st.Errors += errs
		switch o {
		case opGet:
			st.Hits, st.Misses = ok, other
		case opPut, opAdd, opUpdate:
			st.Sets += ok
		case opDelete:
			st.Deletes += ok
		case opLoad:
			st.Loads = calls
		}
	}
	st.Conflicts = m.retries.Load()
	return st
}
