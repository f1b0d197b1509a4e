package memdict

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/keyspace"
)

// Settings are the defaults a Dict takes from where it is configured (in
// ERP5, its Memcached Plugin): site id, default TTL, codec and size limits.
// The zero value means: no site id, no expiry, the default codec and no
// limits; DefaultSettings gives memcached's limits.
type Settings struct {
	// SiteID is put in front of every prefix ("" for none).
	SiteID string
	// TTL is the time to live of values written without a TTL option; 0
	// means they do not expire. It must not be negative.
	TTL time.Duration
	// Codec encodes values; nil means codec.Default(). Dicts of string and
	// []byte ignore it.
	Codec codec.Codec
	// MaxKeyLen is the longest backend key (0: no limit, else at least 80);
	// longer keys are shortened to a hash.
	MaxKeyLen int
	// MaxValueLen is the largest encoded value sent (0: no limit).
	MaxValueLen int
	// GenerationRefresh is how often a Dict reads its namespace generation
	// again (see Dict.Clear): a Clear made elsewhere is seen within this
	// time plus one round trip. 0 means DefaultGenerationRefresh; a
	// negative value means never.
	GenerationRefresh time.Duration
}

// DefaultGenerationRefresh is how often a Dict reads its namespace
// generation again by default.
const DefaultGenerationRefresh = time.Second

// DefaultSettings returns the settings of a Dict made with no options:
// memcached's limits of 250-byte keys and 1 MiB values, the default codec,
// no expiry and no site id.
func DefaultSettings() Settings {
	return Settings{Codec: codec.Default(), MaxKeyLen: DefaultMaxKeyLen, MaxValueLen: DefaultMaxValueLen}
}

// Validate returns an error naming the first invalid field.
func (s Settings) Validate() error {
	switch {
	case s.TTL < 0:
		return fmt.Errorf("TTL %v is negative", s.TTL)
	case s.MaxKeyLen < 0 || (s.MaxKeyLen > 0 && s.MaxKeyLen < keyspace.MinMaxLen):
		return fmt.Errorf("MaxKeyLen %d: want 0 (no limit) or at least %d", s.MaxKeyLen, keyspace.MinMaxLen)
	case s.MaxValueLen < 0:
		return fmt.Errorf("MaxValueLen %d is negative", s.MaxValueLen)
	}
	return nil
}

func (s Settings) withDefaults() Settings {
	if s.Codec == nil {
		s.Codec = codec.Default()
	}
	return s
}

// SharedSettings holds Settings that several Dicts read at every call, so
// that one Store reconfigures them all at once while they are in use. The
// Tool uses it for run-time reconfiguration of a plugin. It is safe for
// concurrent use.
type SharedSettings struct {
	p atomic.Pointer[Settings]
}

// NewSharedSettings returns a SharedSettings holding s, or an error naming
// an invalid field.
func NewSharedSettings(s Settings) (*SharedSettings, error) {
	sh := &SharedSettings{}
	if err := sh.Store(s); err != nil {
		return nil, err
	}
	return sh, nil
}

// Load returns the current settings.
func (sh *SharedSettings) Load() Settings { return *sh.p.Load() }

// Store replaces the settings; Dicts use them from their next call on. An
// invalid value is refused with an error and the current one is kept.
func (sh *SharedSettings) Store(s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("memdict: settings: %w", err)
	}
	s = s.withDefaults()
	sh.p.Store(&s)
	return nil
}

func (sh *SharedSettings) load() *Settings { return sh.p.Load() }
