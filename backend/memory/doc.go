// Package memory is an in-process memdict backend with memcached's
// semantics: TTL expiry, CAS tokens, Add, Increment, memcached's key rules
// and item size limit, and an optional LRU bound on memory.
//
// It serves two purposes: it is the backend a program uses when it has no
// cache server (memdict's embedded default), and it is a trustworthy fake
// for unit tests, whose clock a test controls with a FakeClock:
//
//	clock := memory.NewFakeClock(time.Now())
//	store := memory.New(memory.WithClock(clock))
//	... store an item with a TTL of one minute ...
//	clock.Advance(time.Minute) // the item is now gone
//
// Create a Store with New and functional options, or from a URL.
//
// # URL
//
// The package registers the URL scheme "mem" with backend.Register, so that
// after
//
//	import _ "github.com/memdict/memdict/backend/memory"
//
// backend.Open(ctx, "mem://") opens a new, empty Store (every Open a Store
// of its own). The URL takes no host, user or path; its query parameters
// are:
//
//	max_bytes=0              bound on the memory the items take, evicting least
//	                         recently used ones (see WithMaxBytes; 0: no bound)
//	max_value_length=1048576 longest value accepted (see WithMaxValueLen;
//	                         0: the default)
//	max_key_length=250       longest key accepted (see WithMaxKeyLen;
//	                         0: the default)
//
// Any other parameter is an error that lists the known ones. The names are
// those of memdict's settings (memdict.WithMaxValueLen, the Tool's
// max_value_length) and of the other drivers.
//
// Deprecated parameter names, accepted for one more release: max_item_size
// (now max_value_length) and max_key_len (now max_key_length). A URL that
// gives a parameter under both its names is an error naming both.
//
// # Semantics
//
// A Store follows the backend.Backend contract as memcached 1.6 does:
//
//   - TTLs follow the rule of backend.Item.TTL, by the Store's Clock: an
//     item stored with TTL d at time t is gone from time t+d on. TTLs are
//     kept to the nanosecond, not rounded to seconds as memcached does.
//   - Every Set, Add, CompareAndSwap and Increment gives the item a new CAS
//     token, unique across the Store. Touch does not: like memcached 1.6's
//     touch and gat commands it changes only the expiry, so a CAS token read
//     before a Touch still matches after it.
//   - Increment works on values that are 1 to 20 ASCII decimal digits and
//     fit in a uint64; anything else, including an empty value, is
//     ErrNotNumeric. This is stricter than memcached, which also accepts
//     surrounding whitespace and a leading '+', so that code tested against
//     a Store does not come to rely on either. The result is stored as
//     decimal text, without the trailing spaces memcached 1.6 leaves when a
//     decrement shortens a number in place ("10" decremented reads "9 ").
//   - Keys must be non-empty, at most WithMaxKeyLen bytes (250 by default)
//     and free of bytes 0x00-0x20 and 0x7f, as memcached requires; other keys
//     give ErrInvalidKey.
//   - Values may be at most WithMaxValueLen bytes (1 MiB by default); a
//     longer one gives ErrValueTooLarge and leaves the previous value alone.
//
// # Memory
//
// A Store accounts each item as len(key)+len(value)+ItemOverhead bytes. With
// WithMaxBytes, a write that takes the total over the bound evicts least
// recently used items (reads, writes and touches count as use) until it fits
// again. The order is exact but for one shortcut: as memcached does not bump
// an item read again within a minute, a Store does not move an item that is
// read while still among the most recently used eighth of its items.
//
// Expired items are removed when they are next looked up; in addition each
// write removes up to two expired items from the cold end of its shard (the
// least recently used items, or least recently written when the Store is
// unbounded), so that a Store whose keys are never read again still sheds
// them over time.
//
// Values are not copied: a write keeps the caller's slice (which the caller
// gives up, per the backend.Item contract) and a read returns the stored
// slice, which must not be modified. A hit on Get allocates nothing.
//
// # Optional abilities
//
// Store implements backend.Lister (Keys), backend.StatsReporter
// (ServerStats, with memcached's counter names), backend.Flusher (Flush),
// backend.Pinger (Ping) and backend.MultiWriter (SetMulti, DeleteMulti).
// Len and Bytes tell a test how many items and bytes the Store holds.
package memory
