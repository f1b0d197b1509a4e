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
// with others see them as misses; Gets batched with others see a foreign
// empty string as a miss too.)
//
// # Concurrency and pipelining
//
// A Backend is safe for concurrent use. Concurrent single-key calls to one
// server (Get, Set, Add, CompareAndSwap, Delete, Touch, Increment, TryLock,
// Unlock) are pipelined: while two pipelines to a server are in flight,
// further calls queue, and as soon as one returns, everything queued goes
// out as one go-redis pipeline, in one write and one round trip, the Gets
// among them merged into one MGET. A lone call is a plain command with no
// added latency. On a cluster each master has its own queue, and the Gets
// of a pipeline are one MGET per hash slot. See WithBatching. A Get reads
// its value once, from the socket into the buffer the returned Value
// shares.
//
// # Timeouts and failures
//
// Every call is bounded by the timeout (URL timeout=, default 1s; see
// WithTimeout), whatever context the caller passes, context.Background()
// included: the wait in the queue, the wait for a pooled connection,
// connecting, writing and reading all count. A caller's earlier deadline
// or cancellation ends a call sooner, even on a server that stopped
// answering. A server that fails failure_limit calls in a row (default 3;
// a timeout, a refused or dropped connection) is marked down: calls for it
// then fail at once with an error wrapping backend.ErrUnavailable that
// names it, while a background probe PINGs it every retry_interval
// (default 2s) until it answers. On a cluster each master is marked down
// on its own; a GetMulti then returns what the other masters hold and a
// *backend.MultiError naming each key it could not read.
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
// node), backend.MultiWriter (SetMulti and DeleteMulti, pipelined per
// master; memdict's PutMulti and Tx.Commit use it), backend.Flusher, which
// runs FLUSHDB and is therefore disabled unless enabled with WithFlush or
// allow_flush=true: it would drop other programs' keys (FLUSHALL is never
// used), and backend.Invalidator (Track), which memdict's near cache
// (memdict.WithNearCache) uses, and backend.Locker: TryLock takes a lock key
// with one SET NX PX (the token stored as a value like any other) and
// Unlock deletes it with a compare-and-delete script only while it holds
// the caller's token, both pipelined and bounded like every single-key
// call; memdict's GetOrLoad takes them so that one caller in a fleet of
// processes fills a key.
//
// # Client-side caching
//
// Track keeps one connection of its own to every master, in RESP3, with
// CLIENT TRACKING ON BCAST and a PREFIX per tracked prefix, and hands the
// keys the server reports as changed (written, deleted, expired or evicted
// by anyone) to the registrations whose prefix they start with. A FLUSHDB
// or FLUSHALL, a lost tracking connection (one that answers no PING for 3
// seconds counts as lost) or a set-up anew reports every key as changed;
// the registrations are Live again once every master has confirmed
// tracking. A server that refuses HELLO 3 or CLIENT TRACKING (Redis before
// 6, miniredis) leaves them unsupported, never Live: a near cache then
// relies on its MaxStale.
package redis
