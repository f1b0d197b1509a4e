package memory

const (
	// ItemOverhead is the number of bytes a Store accounts for each item on
	// top of the lengths of its key and value, standing for the bookkeeping
	// an item costs.
	ItemOverhead = 48
	// DefaultMaxValueLen is the longest value a Store accepts by default:
	// 1 MiB, like memcached's default -I (and memdict.DefaultMaxValueLen).
	DefaultMaxValueLen = 1 << 20
	// DefaultMaxItemSize is the former name of DefaultMaxValueLen.
	//
	// Deprecated: use DefaultMaxValueLen.
	DefaultMaxItemSize = DefaultMaxValueLen
	// DefaultMaxKeyLen is the longest key a Store accepts by default: 250
	// bytes, like memcached.
	DefaultMaxKeyLen = 250
)

// An Option configures a Store made by New.
type Option func(*config)

type config struct {
	clock       Clock
	maxBytes    int64
	maxValueLen int
	maxKeyLen   int
}

// WithClock makes the Store read the time from clock instead of the system
// clock. A nil clock, or a nil *FakeClock, means the system clock.
func WithClock(clock Clock) Option {
	if fc, ok := clock.(*FakeClock); ok && fc == nil {
		clock = nil
	}
	return func(c *config) { c.clock = clock }
}

// WithMaxBytes bounds the memory the Store accounts for its items (see
// ItemOverhead) to n bytes, evicting least recently used items to stay
// within it. An item larger than n on its own is rejected with
// ErrValueTooLarge. Zero or a negative n (the default) means no bound.
func WithMaxBytes(n int64) Option {
	return func(c *config) { c.maxBytes = max(n, 0) }
}

// WithMaxValueLen sets the longest value, in bytes, that the Store
// accepts; longer ones give backend.ErrValueTooLarge. Zero means
// DefaultMaxValueLen (1 MiB); a negative n means no limit other than
// WithMaxBytes. URL parameter: max_value_length.
func WithMaxValueLen(n int) Option {
	return func(c *config) { c.maxValueLen = n }
}

// WithMaxItemSize is the former name of WithMaxValueLen.
//
// Deprecated: use WithMaxValueLen.
func WithMaxItemSize(n int) Option { return WithMaxValueLen(n) }

// WithMaxKeyLen sets the longest key, in bytes, that the Store accepts;
// longer ones give backend.ErrInvalidKey. Zero means DefaultMaxKeyLen (250,
// memcached's limit); a negative n means no limit. URL parameter:
// max_key_length.
func WithMaxKeyLen(n int) Option {
	return func(c *config) { c.maxKeyLen = n }
}
