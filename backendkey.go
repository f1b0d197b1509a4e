package memdict

import (
	"fmt"

	"github.com/memdict/memdict/internal/keyspace"
)

// Backend keys.
//
// A Dict stores key's value under the backend key
//
//	<site>:<prefix>:<gen>:<key>    with a site id (WithSiteID)
//	<prefix>:<gen>:<key>           without one
//
// where gen is the namespace generation (see Clear) and each component is
// escaped: bytes up to 0x20 (space and controls), 0x7f, '%', ':' and '#'
// become %XX; every other byte, UTF-8 text and invalid UTF-8 included,
// stays as it is. No two (site, prefix, key) tuples meet. A key too long
// for the Dict's MaxKeyLen becomes '#' and 32 characters of its SHA-256,
// and its original is stored beside the value; a namespace too long
// itself becomes '#', a hash and ':'. The namespace generation lives under
// a key starting "#!", which no data key does, as do GetOrLoad's fill
// locks. BackendKey, GenerationKey, LockKey and ParseBackendKey let tools that look at the server
// directly go from one form to the other.

// GenerationKey returns the backend key that holds the Dict's namespace
// generation (see Clear), for tools and tests that clean up after a Dict
// or look at the server directly. It depends on the site id, the prefix
// and the maximum key length, not on the generation.
func (d *Dict[V]) GenerationKey() string { return d.metaKey(d.settings.load()) }

// LockKey returns the backend key of the lock with which GetOrLoad
// coordinates the fill of key across processes (on backends without
// leases, and for every refresh of an entry marked stale): "#!lease:"
// and the backend key, or a hash of it when that is too long. Like the
// generation's key it never meets a data key. Tools and tests use it to
// see or clear a fill in progress.
func (d *Dict[V]) LockKey(key string) string {
	return keyspace.LeaseKey(d.BackendKey(key), d.settings.load().MaxKeyLen)
}

// ParsedKey is what a backend key says of the value it holds.
type ParsedKey struct {
	// SiteID and Prefix are those of the Dict that stores under the key.
	SiteID, Prefix string
	// Generation is the namespace generation the key belongs to.
	Generation uint64
	// Key is the Dict key; "" when Hashed, for a key that was shortened
	// to a hash (its original is stored beside the value).
	Key    string
	Hashed bool
}

// ParseBackendKey returns what a backend key that a Dict made for a value
// (BackendKey) says: site id, prefix, generation and key. It returns an
// error for any other key: one of another program, a generation key, or a
// key whose namespace was shortened to a hash.
func ParseBackendKey(bkey string) (ParsedKey, error) {
	p, err := keyspace.Parse(bkey)
	if err != nil {
		return ParsedKey{}, fmt.Errorf("memdict: not the backend key of a Dict's value: %w", err)
	}
	return ParsedKey{SiteID: p.Site, Prefix: p.Prefix, Generation: p.Gen, Key: p.Key, Hashed: p.Hashed}, nil
}
