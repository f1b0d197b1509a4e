package memdict

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"
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

// opMetrics are the counters of one op. calls counts operations when
// they start; other and errs count those that ended with the op's
// second result or an error; the rest ended well ("ok" or "hit"). Counting
// at the start lets the hot path pay for one atomic add and use its result
// to pick the operations whose latency it samples.
type opMetrics struct {
	calls, other, errs atomic.Uint64
	samples, sum       atomic.Uint64 // latency samples and their total, ns
	buckets            [numBuckets]atomic.Uint64
}

// metrics are a Dict's counters.
type metrics struct {
	ops [numOps]opMetrics
	// retries counts CAS conflicts that Update retried.
	retries atomic.Uint64
	// near counts the near cache's work (WithNearCache).
	near nearMetrics
	// sampleMask selects the calls whose latency is measured: those
	// whose count ANDed with it is 0. noSampling turns measuring off.
	sampleMask uint64
	logger     *slog.Logger
	prefix     string
}

const noSampling = math.MaxUint64

// epoch is the base of mono.
var epoch = time.Now()

// mono returns a monotonic clock reading in nanoseconds, never 0.
func mono() int64 { return int64(time.Since(epoch)) + 1 }

// start counts a call of o and returns a start time if its latency is to
// be measured, else 0.
func (m *metrics) start(o op) int64 {
	if n := m.ops[o].calls.Add(1); n&m.sampleMask == 0 && m.sampleMask != noSampling {
		return mono()
	}
	return 0
}

// startN counts n calls of o (GetMulti counts one call per key).
func (m *metrics) startN(o op, n int) int64 {
	if n <= 0 {
		return 0
	}
	c := m.ops[o].calls.Add(uint64(n))
	if m.sampleMask != noSampling && (c-uint64(n))&^m.sampleMask != c&^m.sampleMask {
		return mono()
	}
	return 0
}

// end records the latency of a sampled call.
func (m *metrics) end(o op, t0 int64) {
	if t0 == 0 {
		return
	}
	d := mono() - t0
	om := &m.ops[o]
	om.samples.Add(1)
	om.sum.Add(uint64(d))
	i := 0
	for i < len(LatencyBounds) && time.Duration(d) > LatencyBounds[i] {
		i++
	}
	om.buckets[i].Add(1)
}

// miss counts an op that ended with its second result.
func (m *metrics) miss(o op) { m.ops[o].other.Add(1) }

// fail counts a failed op, logs it and returns it as an *OpError (err
// itself if it already is one).
func (m *metrics) fail(ctx context.Context, o op, key string, err error) error {
	m.ops[o].errs.Add(1)
	var oe *OpError
	if !errors.As(err, &oe) {
		oe = &OpError{Op: opInfo[o].name, Key: key, Err: err}
	}
	if m.logger != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		m.logger.LogAttrs(ctx, slog.LevelWarn, "memdict: operation failed",
			slog.String("prefix", m.prefix), slog.String("op", oe.Op),
			slog.String("key", oe.Key), slog.Any("error", oe.Err))
	}
	return oe
}

// failKeys counts one failed o for each key me names, logs the failure
// once (not once per key) and returns me.
func (m *metrics) failKeys(ctx context.Context, o op, me *MultiError) error {
	m.ops[o].errs.Add(uint64(len(me.Failed)))
	if m.logger != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		m.logger.LogAttrs(ctx, slog.LevelWarn, "memdict: operation failed",
			slog.String("prefix", m.prefix), slog.String("op", me.Op),
			slog.Int("failed", len(me.Failed)), slog.Int("keys", me.Total), slog.Any("error", me))
	}
	return me
}

// failWhole counts a failed op that concerns no one key, logs it and
// returns err, which names the op itself.
func (m *metrics) failWhole(ctx context.Context, o op, err error) error {
	m.ops[o].errs.Add(1)
	if m.logger != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		m.logger.LogAttrs(ctx, slog.LevelWarn, "memdict: operation failed",
			slog.String("prefix", m.prefix), slog.String("op", opInfo[o].name), slog.Any("error", err))
	}
	return err
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
	// Latency is the distribution of the sampled latencies.
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

// Latency is a histogram of sampled operation latencies. Only one
// operation in WithLatencySampling's n is measured, so Count is about
// 1/n-th of the number of operations; the distribution is unbiased.
type Latency struct {
	// Count is the number of samples and Sum their total.
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the samples not above LatencyBounds[i] and
	// above LatencyBounds[i-1]; the last bucket counts those above every
	// bound. It is not cumulative.
	Buckets []uint64
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
		errs, other := om.errs.Load(), om.other.Load()
		calls := om.calls.Load()
		ok := calls - min(calls, errs+other)
		info := opInfo[o]
		os := OpStats{Op: info.name}
		os.Results = append(os.Results, ResultCount{info.ok, ok})
		if info.other != "" {
			os.Results = append(os.Results, ResultCount{info.other, other})
		}
		os.Results = append(os.Results, ResultCount{"error", errs})
		os.Latency = Latency{Count: om.samples.Load(), Sum: time.Duration(om.sum.Load()), Buckets: make([]uint64, numBuckets)}
		for i := range om.buckets {
			os.Latency.Buckets[i] = om.buckets[i].Load()
		}
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
