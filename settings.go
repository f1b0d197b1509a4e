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
	// negative value means never, but for a Dict whose client may not
	// store a generation where none is stored (see Dict.Clear), which
	// reads the key again each DefaultGenerationRefresh until it finds one,
	// and for the renewal of the key's TTL, each tenth of GenerationTTL.
	// A refresh longer than that tenth is shortened to it.
	GenerationRefresh time.Duration
	// GenerationTTL is the time to live of the key that holds the
	// namespace generation (see Dict.Clear), which the Dicts that use the
	// namespace renew as they go (at most once each tenth of it), so that
	// only the key of a namespace no Dict has used for that long expires:
	// a Dict per user or per tenant leaves no key behind for good. 0
	// means DefaultGenerationTTL; a negative value means the key does not
	// expire (as before 2026-12-07), which leaves one key per namespace
	// ever used on a server that evicts nothing. A positive value under
	// MinGenerationTTL (1 s) is invalid.
	GenerationTTL time.Duration
	// NearCache, if not nil, is the near cache of Dicts that do not set
	// their own with WithNearCache or WithoutNearCache (see NearCache). A
	// Dict takes it when it is made: a change of it in SharedSettings
	// applies to the Dicts made afterwards. The Python formats have none.
	NearCache *NearCache
	// Format is how Dicts lay out their keys and values (see WithFormat):
	// "" or FormatMemdict, FormatERP5 or FormatPython. In the Python
	// formats Codec is not used, nor are GenerationRefresh and hashed
	// keys.
	Format Format
}

// DefaultGenerationRefresh is how often a Dict reads its namespace
// generation again by default.
const DefaultGenerationRefresh = time.Second

// DefaultGenerationTTL is the time to live of a namespace's generation key
// by default: thirty days. The Dicts that use the namespace renew it each
// tenth of that (three days), so the key lives 27 days at least after
// the namespace's last use, and an entry written with a TTL up to that is
// gone before its namespace's key: the key's expiry orphans nothing
// alive. What it does orphan (values without a TTL, or a longer one, of
// a namespace no Dict used for a month) costs one miss each, as after the
// loss of the key (see Dict.Clear). A month also spans the idle time of
// weekly jobs and bounds the keys of namespaces gone (a prefix per user
// or per tenant) to those used within it. Over memcached, a TTL of 30
// days or more is sent as a Unix time (backend/memcached does so, as
// memcached reads it), so the key lasts its TTL as long as the clocks of
// client and server agree within days, as any value's TTL that long does.
const DefaultGenerationTTL = 30 * 24 * time.Hour

// MinGenerationTTL is the shortest GenerationTTL a Dict takes: memcached
// keeps TTLs in whole seconds, and the Dicts renew the key and read the
// generation again each tenth of it, which for a TTL of a millisecond was
// almost every call (and under 10 ns never: the tenth was 0).
const MinGenerationTTL = time.Second

// genTTL returns the TTL the generation key is stored with: 0 for none.
func (s *Settings) genTTL() time.Duration {
	switch {
	case s.GenerationTTL == 0:
		return DefaultGenerationTTL
	case s.GenerationTTL < 0:
		return 0
	}
	return s.GenerationTTL
}

// genKeep returns how often a Dict renews the TTL of its generation key:
// a tenth of it (0: never, the key has none).
func (s *Settings) genKeep() time.Duration { return s.genTTL() / 10 }

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
	case s.GenerationTTL > 0 && s.GenerationTTL < MinGenerationTTL:
		return fmt.Errorf("GenerationTTL %v: want 0 (the default, %v), a negative value (no TTL) or at least %v", s.GenerationTTL, DefaultGenerationTTL, MinGenerationTTL)
	case s.Format.check() != nil:
		return fmt.Errorf("Format: %w", s.Format.check())
	case s.Format.python() && s.NearCache != nil:
		return fmt.Errorf("NearCache: a near cache is not available with Format %q (it needs memdict's own value layout)", s.Format)
	case s.NearCache != nil:
		if err := s.NearCache.validate(); err != nil {
			return fmt.Errorf("NearCache: %w", err)
		}
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

	// A Dict's own settings over shared ones (WithSettings with options
	// that set single settings): base's current settings with the
	// fields over sets, made once per version of base.
	base    *SharedSettings
	over    func(*Settings)
	derived atomic.Pointer[derivedSettings]
}

// derivedSettings are the settings derived from one version of a base.
type derivedSettings struct{ from, s *Settings }

// layered returns SharedSettings that read sh and replace the fields that
// the options named in fields set in own ("WithDefaultTTL", ...).
func (sh *SharedSettings) layered(own Settings, fields []string) *SharedSettings {
	return &SharedSettings{base: sh, over: func(s *Settings) {
		for _, f := range fields {
			switch f {
			case "WithSiteID":
				s.SiteID = own.SiteID
			case "WithDefaultTTL":
				s.TTL = own.TTL
			case "WithCodec":
				s.Codec = own.Codec
			case "WithMaxKeyLen":
				s.MaxKeyLen = own.MaxKeyLen
			case "WithMaxValueLen":
				s.MaxValueLen = own.MaxValueLen
			case "WithGenerationRefresh":
				s.GenerationRefresh = own.GenerationRefresh
			case "WithGenerationTTL":
				s.GenerationTTL = own.GenerationTTL
			case "WithFormat":
				s.Format = own.Format
			}
		}
	}}
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
func (sh *SharedSettings) Load() Settings { return *sh.load() }

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

// noSettings are the settings of a Dict not made by New.
var noSettings Settings

// load returns the current settings. For layered settings the pointer is
// the same as long as the base's is, so that a Dict keeps its view.
func (sh *SharedSettings) load() *Settings {
	if sh == nil {
		return &noSettings // a Dict not made by New: its calls fail (errNotMade)
	}
	if sh.base == nil {
		return sh.p.Load()
	}
	from := sh.base.load()
	old := sh.derived.Load()
	if old != nil && old.from == from {
		return old.s
	}
	s := *from
	sh.over(&s)
	nd := &derivedSettings{from: from, s: &s}
	if sh.derived.CompareAndSwap(old, nd) {
		return nd.s
	}
	if cur := sh.derived.Load(); cur != nil && cur.from == from {
		return cur.s // another caller derived them first
	}
	return nd.s
}
