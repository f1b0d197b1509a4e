package memory

const (
	// ItemOverhead is the number of bytes a Store accounts for each item on
	// top of the lengths of its key and value, standing for the bookkeeping
	// an item costs.
	ItemOverhead = 48
	// DefaultMaxItemSize is the largest value a Store accepts by default:
	// 1 MiB, like memcached's default -I.
	DefaultMaxItemSize = 1 << 20
	// DefaultMaxKeyLen is the longest key a Store accepts by default: 250
	// bytes, like memcached.
	DefaultMaxKeyLen = 250
)

// An Option configures a Store made by New.
type Option func(*config)

type config struct {
	clock       Clock
	maxBytes    int64
	maxItemSize int
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

// WithMaxItemSize sets the largest value, in bytes, that the Store accepts;
// larger ones give backend.ErrValueTooLarge. Zero means DefaultMaxItemSize
// (1 MiB); a negative n means no limit other than WithMaxBytes.
func WithMaxItemSize(n int) Option {
	return func(c *config) { c.maxItemSize = n }
}

// WithMaxKeyLen sets the longest key, in bytes, that the Store accepts;
// longer ones give backend.ErrInvalidKey. Zero means DefaultMaxKeyLen (250,
// memcached's limit); a negative n means no limit.
func WithMaxKeyLen(n int) Option {
	return func(c *config) { c.maxKeyLen = n }
}
