// Package redis is memdict's Redis driver: a backend.Backend on a
// standalone Redis server or a Redis Cluster, through
// github.com/redis/go-redis/v9.
//
// Importing the package registers the URL schemes redis:// and rediss://
// (TLS) with backend.Open:
//
//	redis://[user[:password]@]host[:port][/db][?option=value&...]
//	rediss://[user[:password]@]host[:port][/db]?tls_ca=/path/ca.pem
//	redis://host1:7000,host2:7001,host3:7002?cluster=true
//
// The port defaults to 6379 and the database to 0. The cluster form lists
// seed nodes (one is enough; the others are discovered). ParseURL documents
// every option (timeouts, pool size, TLS files, batching, allow_flush,
// max_value_size); an unknown option is an error that lists the known ones,
// and no error shows the password. Programs that already have a go-redis
// client use NewFromClient; New and NewCluster take go-redis options.
//
// # Stored values
//
// Each item is one Redis string: an 11-byte header (a 3-byte magic and the
// item's 8-byte CAS token) followed by the value. So a hit is one GET, a
// multi-get one MGET (on a cluster, one MGET per hash slot, pipelined to
// all masters at once), Set one SET with PX for the TTL and Add one SET NX.
// CompareAndSwap, Touch and Increment are Lua scripts that check the token
// and write a new one atomically on the server; Increment does memcached's
// unsigned 64-bit arithmetic on decimal strings (a decrement stops at 0, an
// increment wraps at 2^64) and keeps the TTL. CAS tokens are random and
// change on every write, Touch included, as the backend.Backend contract
// says. TTLs have millisecond resolution, rounded up.
//
// A key that holds something else, a string written by another program or
// a hash, list or other type, gives an error wrapping ErrForeignValue
// rather than a wrong value; Set and Delete replace or remove it. (MGET
// reports keys of other types as missing, so GetMulti and Gets batched
// with others see them as misses.)
//
// # Concurrency and batching
//
// A Backend is safe for concurrent use. Concurrent Gets are coalesced by
// memdict's internal batcher (shared with the memcached driver): a Get that
// finds others in flight to the same server waits and goes out with them
// in one MGET, while a lone Get is a plain GET with no added latency. See
// WithBatching.
//
// Every call honours its context: a deadline through go-redis, and a
// cancellation too, even on a server that stopped answering.
//
// # Errors
//
// Misses, failed conditions and the like wrap the backend sentinels
// (backend.ErrNotFound keeps goredis.Nil in its chain); unreachable servers
// wrap backend.ErrUnavailable; refused credentials wrap ErrAuth and name
// the user, never the password; an untrusted TLS certificate says so.
//
// # Optional abilities
//
// Backend implements backend.Lister (SCAN MATCH on every master),
// backend.StatsReporter (INFO of every node), backend.Pinger (PING of every
// node) and backend.Flusher, which runs FLUSHDB and is therefore disabled
// unless enabled with WithFlush or allow_flush=true: it would drop other
// programs' keys. FLUSHALL is never used.
package redis
