package memdict

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/memdict/memdict/codec"
)

// Defaults of a Dict's limits, as in ERP5's Memcached Plugin and memcached.
const (
	// DefaultMaxKeyLen is memcached's key length limit.
	DefaultMaxKeyLen = 250
	// DefaultMaxValueLen is memcached's default item size limit (-I 1m).
	DefaultMaxValueLen = 1 << 20
)

// An Option configures a Dict in New.
type Option func(*options) error

type options struct {
	settings Settings
	changed  []string // Settings fields set by options
	shared   *SharedSettings
	onError  func(error)

	logger        *slog.Logger
	logEvery      time.Duration // WithLogInterval; 0: DefaultLogInterval
	observer      Observer      // WithObserver
	sampling      int           // 0: default, <0: off
	updateRetries int
	timeout       time.Duration // WithTimeout
	near          *NearCache    // WithNearCache
	noNear        bool          // WithoutNearCache

	// GetOrLoad across processes (lease.go).
	swr      time.Duration    // WithStaleWhileRevalidate
	leaseTTL time.Duration    // WithLeaseTTL; 0: DefaultLeaseTTL
	negTTL   *time.Duration   // WithNegativeTTL; nil: DefaultNegativeTTL
	clock    func() time.Time // WithClock; nil: time.Now
}

// DefaultLatencySampling is how many operations of a kind share one
// latency measurement by default: one in 64.
const DefaultLatencySampling = 64

// DefaultUpdateRetries is the number of times Update retries after a
// compare-and-swap conflict before it gives up with ErrCASConflict.
const DefaultUpdateRetries = 100

// sampleMask returns the metrics mask for the sampling option.
func (o *options) sampleMask() uint64 {
	n := o.sampling
	switch {
	case n < 0:
		return noSampling
	case n == 0:
		n = DefaultLatencySampling
	}
	p := uint64(1)
	for p < uint64(n) {
		p <<= 1
	}
	return p - 1
}

func (o *options) set(field string) { o.changed = append(o.changed, field) }

// WithSiteID puts id in front of the Dict's prefix, as ERP5's site-wide id
// does, so that several applications can share one server without meeting.
// The empty id (the default) means none.
func WithSiteID(id string) Option {
	return func(o *options) error { o.settings.SiteID = id; o.set("WithSiteID"); return nil }
}

// WithCodec sets the codec that encodes values (default codec.MsgPack).
// Dicts of string and []byte store their bytes as they are and ignore it.
func WithCodec(c codec.Codec) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("WithCodec(nil)")
		}
		o.settings.Codec = c
		o.set("WithCodec")
		return nil
	}
}

// WithDefaultTTL sets the time to live of values stored without a TTL
// option. 0, the default, means values do not expire (the cache may still
// evict them). It must not be negative. backend.Item.TTL says the whole
// rule (rounding to the backend's granularity included).
func WithDefaultTTL(ttl time.Duration) Option {
	return func(o *options) error {
		if ttl < 0 {
			return fmt.Errorf("WithDefaultTTL(%v): negative TTL", ttl)
		}
		o.settings.TTL = ttl
		o.set("WithDefaultTTL")
		return nil
	}
}

// WithMaxKeyLen sets the longest backend key the Dict produces (default
// 250, memcached's limit). Longer keys are shortened to a hash and the
// original key is stored with the value. 0 means no limit (for Redis, say);
// otherwise n must be at least 80.
func WithMaxKeyLen(n int) Option {
	return func(o *options) error {
		o.settings.MaxKeyLen = n
		o.set("WithMaxKeyLen")
		return nil
	}
}

// WithMaxValueLen sets the largest encoded value, header included, the Dict
// sends (default 1 MiB, memcached's default item size). Larger values are
// refused with ErrValueTooLarge before anything is sent, so the value
// already stored under the key is kept. 0 means no limit.
func WithMaxValueLen(n int) Option {
	return func(o *options) error {
		o.settings.MaxValueLen = n
		o.set("WithMaxValueLen")
		return nil
	}
}

// WithSettings makes the Dict read its settings from sh at every call, so
// that sh.Store reconfigures it while it is in use (a Tool's Dicts read
// their plugin's this way).
//
// The options that set one setting (WithSiteID, WithDefaultTTL, WithCodec,
// WithMaxKeyLen, WithMaxValueLen, WithGenerationRefresh, WithGenerationTTL,
// WithFormat) override that
// setting of sh for this Dict, whatever their order among the options:
// the Dict follows sh for the settings no option sets. Only one
// WithSettings may be given.
func WithSettings(sh *SharedSettings) Option {
	return func(o *options) error {
		if sh == nil || sh.p.Load() == nil && sh.base == nil {
			return fmt.Errorf("WithSettings: nil or empty SharedSettings (use NewSharedSettings)")
		}
		if o.shared != nil {
			return fmt.Errorf("WithSettings given twice: the Dict already takes its settings from another SharedSettings (a Tool's Dict takes its plugin's; set single settings with options such as WithDefaultTTL)")
		}
		o.shared = sh
		return nil
	}
}

// WithErrorHandler sets a function that receives every error the map-like
// methods (Get) would otherwise hide: backend failures and undecodable
// values, as *OpError. It must be safe for concurrent use and should be
// quick. The default is none; errors are counted in Stats either way. A
// panic of fn in GetOrLoad's background work, which no caller waits for,
// is recovered and counted rather than ending the program (see
// ErrLoaderPanicked).
func WithErrorHandler(fn func(error)) Option {
	return func(o *options) error { o.onError = fn; return nil }
}

// WithGenerationRefresh sets how often the Dict reads its namespace
// generation again from the backend (see Clear), which bounds how long a
// Clear made elsewhere — by another process, or another Dict on the same
// prefix — can go unseen: at most d plus one round trip. 0 means
// DefaultGenerationRefresh (one second); a negative d means never: the
// Dict reads the generation once and then sees only its own Clears, but
// for the renewal of the generation key's TTL, which reads it again each
// tenth of WithGenerationTTL (three days by default). (A Dict whose
// client may not store a generation where none is stored reads none: it
// reads the key again each DefaultGenerationRefresh until it finds one;
// see Clear.)
func WithGenerationRefresh(d time.Duration) Option {
	return func(o *options) error {
		o.settings.GenerationRefresh = d
		o.set("WithGenerationRefresh")
		return nil
	}
}

// WithGenerationTTL sets the time to live of the key that holds the
// Dict's namespace generation (see Clear and Settings.GenerationTTL): the
// key of a namespace no Dict uses for d expires, and the next Dict to use
// it stores a new generation, under which every entry is a miss. 0 means
// DefaultGenerationTTL (30 days); a negative d means the key does not
// expire; a positive d under MinGenerationTTL (1 s) is an error of New.
// The Dicts that use the namespace renew its TTL at most once each
// d/10, when they read the generation again (a Dict that never does,
// with a negative WithGenerationRefresh, reads it again each d/10 for
// this).
func WithGenerationTTL(d time.Duration) Option {
	return func(o *options) error {
		o.settings.GenerationTTL = d
		o.set("WithGenerationTTL")
		return nil
	}
}

// WithLogger makes the Dict log its failed operations on l, at level
// Warn, with the attributes prefix, op, key (or failed and keys, for an
// operation on several keys), kind (ErrorKind's name of the error) and
// error. Misses, absent keys on Remove and lost Add races are not failures
// and are not logged. Lines are rate-limited: at most one per
// WithLogInterval (DefaultLogInterval, 10 s) for each kind of operation and
// kind of error, the next one carrying the attribute suppressed, the number
// of similar failures left out meanwhile; so a server that is down costs a
// few lines, not two per request. A line shows at most 250 bytes of a key
// and 8 KiB of an error's message (which may carry a server's reply), each
// cut with its length; the error attribute unwraps to the error returned.
// The default is no logging; failures are counted in Stats either way.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithLogInterval sets how often, at most, the Dict logs a failure of one
// kind of operation with one kind of error (see WithLogger): 0 means
// DefaultLogInterval (10 s), a negative d logs every failure. The interval
// is measured on the Dict's clock (WithClock).
func WithLogInterval(d time.Duration) Option {
	return func(o *options) error { o.logEvery = d; return nil }
}

// WithLatencySampling makes the Dict time one operation in n of each kind
// (n is rounded up to a power of two) for the latency histograms in Stats.
// The operations are counted on a few stripes (four per CPU, up to 16, so
// that parallel calls do not share one counter): on each, the first is
// timed, then one in n; with GOMAXPROCS 1 there is one stripe. Every
// operation is counted whatever n: each timed
// operation stands, in the histogram, for the untimed ones that follow it
// (see Latency). Reading the clock costs more than a hit on the memory
// backend or the near cache, so the default, DefaultLatencySampling (64),
// keeps it out of almost every call; 1 times every operation; a negative
// n turns the histograms off (they stay empty). 0 means the default.
func WithLatencySampling(n int) Option {
	return func(o *options) error { o.sampling = n; return nil }
}

// WithUpdateRetries sets how many times Update retries after losing a
// compare-and-swap race before it returns an error wrapping
// ErrCASConflict (default DefaultUpdateRetries, 100). It must not be
// negative; 0 means the default.
func WithUpdateRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("WithUpdateRetries(%d): negative", n)
		}
		o.updateRetries = n
		return nil
	}
}

// An ItemOption adjusts one write.
type ItemOption func(*itemOptions)

type itemOptions struct {
	ttl    time.Duration
	hasTTL bool
}

// TTL sets the time to live of the value being written, overriding the
// Dict's default; TTL(0) means it does not expire. A negative TTL makes the
// write fail with an error wrapping backend.ErrInvalidTTL (the rule:
// backend.Item.TTL).
func TTL(d time.Duration) ItemOption {
	return func(o *itemOptions) { o.ttl, o.hasTTL = d, true }
}
