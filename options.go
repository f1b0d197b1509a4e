package memdict

import (
	"fmt"
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
// evict them). It must not be negative.
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
// that sh.Store reconfigures it while it is in use. It cannot be combined
// with the options that set one setting (WithSiteID, WithCodec, ...).
func WithSettings(sh *SharedSettings) Option {
	return func(o *options) error {
		if sh == nil || sh.load() == nil {
			return fmt.Errorf("WithSettings: nil or empty SharedSettings (use NewSharedSettings)")
		}
		o.shared = sh
		return nil
	}
}

// WithErrorHandler sets a function that receives every error the map-like
// methods (Get) would otherwise hide: backend failures and undecodable
// values, as *OpError. It must be safe for concurrent use and should be
// quick. The default is none; errors are counted in Stats either way.
func WithErrorHandler(fn func(error)) Option {
	return func(o *options) error { o.onError = fn; return nil }
}

// An ItemOption adjusts one write.
type ItemOption func(*itemOptions)

type itemOptions struct {
	ttl    time.Duration
	hasTTL bool
}

// TTL sets the time to live of the value being written, overriding the
// Dict's default; TTL(0) means it does not expire. A negative TTL makes the
// write fail with an error.
func TTL(d time.Duration) ItemOption {
	return func(o *itemOptions) { o.ttl, o.hasTTL = d, true }
}
