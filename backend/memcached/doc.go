// Package memcached is memdict's memcached driver: a backend.Backend over
// one or more memcached servers, speaking memcached's meta protocol
// (mg, ms, md, ma, mn) on pipelined connections, and falling back to the
// text protocol (through github.com/bradfitz/gomemcache) for servers that
// have no meta commands.
//
// Open it from a URL once the package is imported:
//
//	import _ "github.com/memdict/memdict/backend/memcached"
//
//	be, err := backend.Open(ctx, "memcached://10.0.0.1:11211,10.0.0.2:11211?timeout=200ms")
//
// or with New and functional options. Every URL parameter is listed in the
// URL section below; an unknown one is an error.
//
// # URL
//
// memcached://host1:port1,host2:port2?param=value&... for plain TCP, and
// memcacheds://... for TLS (the same as memcached://...?tls=true). A host
// without a port means port 11211. Parameters:
//
//	timeout=500ms            bound on every call, queueing and connecting included
//	conns=2                  pipelined connections per server (see WithConns)
//	max_idle_conns=16        idle connections kept per text-protocol server
//	max_value_length=1048576 longer values fail with backend.ErrValueTooLarge
//	                         (see WithMaxValueLen and "Value sizes")
//	item_size_max=1048576    item size limit assumed for servers that do not tell theirs;
//	                         with max_value_length, the bound of the values read
//	                         (see "Value sizes")
//	failure_limit=3          consecutive failures that mark a server down (0: never)
//	retry_interval=2s        how long a server stays marked down (with auto_eject:
//	                         how often it is probed)
//	auto_eject=false         take servers marked down out of the ring (see "Auto-eject")
//	auto_eject_ttl=1m        longest TTL of a write on a stand-in server, and the
//	                         least time a returned server stays in (see "Auto-eject")
//	resolve_interval=0       resolve the servers' host names again this often
//	                         (0: never; see "Discovery")
//	hash=md5                 key hash of the ketama ring: md5 or fnv1a_64 (see WithHash)
//	tls=false                use TLS (implied by memcacheds://)
//	tls_ca=/path/ca.pem      CA certificates (PEM) to verify servers; default: system roots
//	tls_cert=, tls_key=      client certificate and key (PEM), for servers that ask for one
//	tls_server_name=         name to verify the servers' certificates against; default: the host
//	tls_insecure_skip_verify=false  do not verify certificates (testing only)
//	batch, batch_inflight, batch_size  accepted for older URLs and ignored:
//	                         every call is pipelined (see "The engine")
//
// timeout is the one bound of a call, connecting included; there are no
// separate dial, read or write timeouts (the Redis driver's dial_timeout,
// read_timeout and write_timeout are go-redis's bounds on one step of a
// call, within its timeout). max_value_length is the value alone, as
// memdict's own max_value_length; item_size_max is memcached's limit on the
// whole item (its -I), a different quantity (see "Value sizes").
//
// Deprecated parameter names, accepted for one more release:
// max_value_size (now max_value_length, the name memdict and the other
// drivers use) and batch_max_keys (now batch_size, as on Redis). A URL that
// gives a parameter under both its names is an error naming both.
//
// # Servers and keys
//
// With several servers each key lives on one of them, chosen by ketama
// consistent hashing exactly as twemproxy/nutcracker computes it with
// "distribution: ketama" and "hash: md5" (the default here), or its own
// default "hash: fnv1a_64" with hash=fnv1a_64 (servers named by
// "host:port" as written, or by host alone for port 11211). A Client and a
// nutcracker over the same server list and hash therefore agree on where
// every key lives, and adding a fifth server to four moves about a fifth of
// the keys. md5 is the default because twemproxy's fnv1a_64 crowds keys
// that differ only in their last bytes onto few servers.
//
// # TTLs
//
// TTLs follow the rule of backend.Item.TTL, in whole seconds: a TTL is
// rounded up to the next second, and one second is added. memcached's clock
// ticks once a second and an item written with n seconds expires at the
// n-th tick, the first of which may come at once: with the second added an
// item never expires before its TTL, and at most a second after it (a
// Dict's values end on time all the same: their envelope carries their
// expiry to the millisecond). GetTTL takes the second off again. memcached
// reads an expiration of 30 days or more as an absolute Unix time, so the
// driver sends such TTLs as one: a TTL of 45 days means 45 days. A TTL that
// would end after 2038, beyond memcached's 32-bit expiration, fails with
// backend.ErrInvalidTTL.
//
// # Client flags
//
// Every write stores backend.Item.Flags as the item's client flags (meta
// "ms ... F<flags>", the text protocol's flags field) and every read
// returns them (Get, GetMulti and GetLease ask with "f"), so that values
// of Python's memcached clients keep the flags that say what they are
// (package codec/python). Flags that are not 0 make memcached's item 4
// bytes larger, which the size check before a write counts.
//
// # Counters
//
// Increment is memcached's "ma" (incr and decr on the text protocol): a
// decimal number of up to 2^64-1, wrapping past it, a decrement stopping
// at 0. memcached before 1.6.22 (its commit ea92c6c01) may refuse a number
// of 2^63 or more as non-numeric: it looks for a minus sign with strchr
// past the end of the item's data, into what an earlier item left in the
// slab chunk, so that the same counter fails or not by chance. When the
// server says non-numeric, the driver reads the value (mg with its CAS,
// client flags and TTL): a number of 2^63 or more is then counted with a
// compare-and-swap that keeps the flags and the TTL (to the second),
// retried up to 16 times while others change it (then
// backend.ErrCASConflict); anything else is backend.ErrNotNumeric. Servers
// on the text protocol, and servers run with -C (no CAS), keep the bug.
//
// # The engine
//
// Each server has a fixed set of conns connections (2 by default), each
// with one writer and one reader goroutine; every command (Get, GetMulti,
// Set, Add, CompareAndSwap, Delete, Touch, Increment, SetMulti,
// DeleteMulti) goes through them. Calls are pipelined: a call queues its
// request on a connection, a write sends everything queued since the last
// one, and the reader matches the replies to the requests in order,
// completing all the replies of one read from the socket in one pass.
// Requests queued while others are in flight wait until they make a batch
// at least as large as what is still in flight, so that with many callers
// each write carries many requests (two such batches alternate, one
// answered by the server while the callers of the other run), and the
// writer yields once before it takes a batch, so that the callers just
// answered join it; on a connection with nothing in flight a request goes
// at once, written by its own caller when few calls are in progress.
// Concurrent callers share writes and round trips; there is no dial, no
// goroutine and (for Get and Set) only the value's allocation per call. A
// lone caller on an idle connection writes its request and reads its
// reply itself, as a synchronous client would, so that sequential calls
// pay no handoff between goroutines. A watchdog timer per connection,
// armed while requests are outstanding, enforces the timeout (calls have
// no timer of their own).
//
// The first connection to a server sends "mn", "stats settings" and
// "stats", in one write. A server that answers MN has meta commands
// (memcached 1.6 and later): its reply to "stats settings" says its
// item_size_max and whether CAS is on, its "stats" its pid and start time
// (see CAS tokens below), and every command is a meta command. Once a server is known
// to speak the meta protocol, a new connection to it (after a failure, a
// restart) costs the connect alone: it sends the same three commands ahead
// of its first requests, in the same write, and checks their replies
// before theirs (a server that no longer answers MN fails those requests
// with ErrProtocol, and the next connection does the whole handshake
// again). Under latency a reconnect thus costs the connect and one round
// trip, and a client keeps working while a round trip is under about a
// third of the timeout. Multi-key writes use quiet mode: the hundred
// "ms ... q" of a 100-key SetMulti, the last without q, are one write and
// one read per server. GetMulti sends one text-protocol "gets k1 ... kN"
// per server, which costs memcached half as much per key as an mg per
// key, followed by an "mg" whose opaque ends the request (see Replies);
// GetMultiOrdered (backend.OrderedGetter) is GetMulti without its map,
// which a Dict uses. The values of Get and GetMulti are the caller's own
// (backend.PrivateReader). A server that answers "mn" with ERROR (the
// protocol's answer to an unknown command) or a CLIENT_ERROR, or closes the
// connection but answers "version" (memcached before 1.6,
// twemproxy/nutcracker, text-protocol stores) is served from then on through
// gomemcache's text protocol, one request per round trip, each call on a
// connection of its own (max_idle_conns of them are kept idle); multi-key
// writes then loop over the keys. In a multi-key call over several servers
// the text-only ones are served in parallel, each in a goroutine of its
// own, with the meta servers' requests: a hung one holds up none of the
// others. Through nutcracker, Keys, ServerStats,
// Flush and FlushNode fail, as the proxy forwards none of lru_crawler,
// stats and flush_all, and the server's item_size_max cannot be read
// (item_size_max says what to assume). A server that refuses a new
// connection with an error line of its own, as memcached at its connection
// limit does ("ERROR Too many open connections"), or with a SERVER_ERROR,
// is not taken for one without meta commands: the connect fails, with an
// error wrapping backend.ErrUnavailable that quotes the line, and counts
// as a failure of the server.
//
// # Replies
//
// A server's reply is never handed out unless it answers the request it is
// read for. Every meta command carries an opaque (O<n>: a counter of its
// connection, wrapping at 2^32) and every read the key flag (k), which
// memcached echoes. The reader checks each reply's opaque against its
// request's (for a multi-key write: one of its commands', after the
// previous reply's, as memcached answers in order) and a value's key
// against the key asked. A GetMulti's "gets" has no opaque: each VALUE in
// its reply must be for a key asked, in the order asked, each at most
// once, then END, then the reply of the "mg" that follows the gets, with
// that mg's opaque. A reply that does not match (one added, dropped,
// relabelled, meant for another request, come before its request was
// sent) or cannot be parsed is a protocol error: the connection is reset,
// every call waiting on it fails with an error wrapping ErrProtocol, and
// no value read on it is returned. In a multi-key get memcached says
// nothing for a miss, so a hit dropped on the way reads as a miss, never
// as another key's value; a reply added after a request's last is caught
// by the next request on the connection. The text protocol returns a
// lease placeholder as an empty value; GetMulti reads the keys it found
// empty again with mg, which tells them apart.
//
// The text protocol has no opaque. There the driver checks that each VALUE
// is for a key that was asked, refuses a VALUE larger than the client
// accepts before gomemcache allocates it, and gives up a connection on
// which the server sends bytes after the end of a reply or before a
// request; a stray reply for the very key of the next request, arriving
// in between, cannot be told from its answer.
//
// A reply is bounded before anything is allocated for it (a value by the
// larger of max_value_length and item_size_max, both the client's own
// settings, never by what the server says of itself; a line by the read
// buffer), and a panic in one of the driver's goroutines or in
// gomemcache is recovered: the calls it affects fail with an error wrapping
// ErrProtocol that names it, and the process goes on.
//
// # Value sizes
//
// memcached refuses an item larger than its item_size_max (-I), counting
// not only the value but the item header (48 bytes), the key and a NUL,
// the value's CRLF and the CAS field (8 bytes, unless -C): a 1 MiB server
// refuses values some 60 bytes short of 1 MiB. A refused set also drops the
// value stored before. The driver therefore checks every write against
// both max_value_length (the value alone) and the server's item_size_max
// (the item as memcached counts it), and fails a write that memcached
// would refuse with backend.ErrValueTooLarge before sending anything: a
// refused write never costs the stored value.
//
// The server's item_size_max only ever makes that check stricter. Reads
// are bounded by the client's own settings: a value larger than both
// max_value_length and item_size_max (the URL parameter, WithItemSizeMax)
// fails with ErrProtocol, whatever item_size_max the server reports, so
// that a server cannot make the client allocate what it likes. To read
// the larger values that other clients store on a server run with a
// larger -I, set item_size_max to it. An item_size_max above 1 GiB
// (memcached's largest -I) in a server's reply is ignored.
//
// # Failures and timeouts
//
// Every call ends within its timeout (or its context's deadline, if
// sooner), counted from when it is made: queueing behind other calls,
// connecting and the reply included. A call whose context is cancelled
// returns at once with an error wrapping ctx.Err(). A call that got no
// reply within the timeout means the connection it waited on is hung: the
// connection is reset, the calls on it fail, and the next call connects
// again. A connection that the server closed while it was idle (a
// restart, an idle timeout) shows on the next call made on it alone: a
// Get, a Touch or a Set is then sent again on a new connection, the other
// commands fail once. A reply that is not memcached's, such as a value
// larger than the client accepts (max_value_length or item_size_max,
// whichever is larger), fails with an error wrapping
// ErrProtocol and resets the connection without reading (or allocating)
// the value.
//
// A connection given up on (a reply overdue, a reply that does not match,
// a call reading its own reply cancelled, a text-protocol call whose
// context ended, Close) is reset (SO_LINGER 0): the kernel drops what it
// has not delivered yet and sends the server a RST, not a FIN. So a write
// whose call failed (a timeout, a cancelled context, a connection error):
//
//   - may have been applied: a call fails when its reply is late, not its
//     request;
//   - may still be applied after the call returned, from bytes that had
//     reached the server's kernel by then: memcached reads them when it
//     gets to that connection, at once on a running server, when it
//     resumes on a stopped (SIGSTOP) or stalled one; a RST cannot take
//     them back, and a later write on another connection may then be
//     overwritten by it;
//   - is never applied from bytes the client's kernel still held when the
//     connection was reset (a partition that heals later delivers
//     nothing). A connection is reset at the latest when the oldest
//     request on it has gone unanswered for its timeout; a call whose
//     context ended while its request was queued on a connection that
//     others share leaves the request there, so that write may be applied
//     until its timeout has run out (counted from the call's start), never
//     later.
//
// Retrying a write that failed must therefore allow for the first attempt
// having been applied (a CompareAndSwap or an Add sent again fails rather
// than applying twice).
//
// A server that fails failure_limit times in a row (connection refused,
// timeout, connection closed, garbage answer) is marked down for
// retry_interval: calls for its keys then fail at once with an error
// wrapping backend.ErrUnavailable, without touching the network. After the
// interval one call is let through as a probe; if it succeeds the server is
// up again, otherwise it stays down for another interval. Keys are not moved
// to other servers meanwhile, as nutcracker does by default
// (auto_eject_hosts: false): a missing server means misses, never stale
// values. With auto_eject=true they are (see "Auto-eject"). GetMulti over several servers returns what the healthy ones
// hold together with a *backend.MultiError naming every key it could not
// read and why; so it does when the caller's context ends (a deadline
// shorter than the timeout, a cancellation) before a server has answered:
// that server's keys are named with the context's error. Errors from memcached are mapped to the backend sentinels;
// a miss also wraps memcache.ErrCacheMiss, as the driver did when it was
// built on gomemcache.
//
// # Auto-eject
//
// With auto_eject=true (WithAutoEject), nutcracker's auto_eject_hosts, a
// server marked down is taken out of the ketama ring: its keys live on the
// other servers (each on the server the ring without it gives; the other
// servers' keys do not move) until it answers again, and then move back.
// While it is out a goroutine probes it ("version") every retry_interval;
// once it has answered two probes in a row it is flushed and put back. The
// last server in the ring is never taken out (its keys fail fast, as
// without auto-eject).
//
// A server that comes back may hold the values written before it left,
// which writes and deletes made meanwhile on the servers standing in for
// it have made stale; served, they would be older than values that were
// read back. So it is emptied with flush_all before any call reaches it
// again, whether or not it restarted (a restartable memcached, -e, keeps
// its items across a restart); the second probe, a retry_interval after
// the first, lets a server that was stopped (SIGSTOP) apply the requests
// its kernel still held before the flush rather than after it. A server
// that stood in keeps the values written there for the ejected server's
// keys, which become stale once that server is back, and would be served
// again if it left again. So a write on a stand-in gets a TTL of at most
// auto_eject_ttl (one minute by default; as mcrouter's failover_exptime),
// and a server that came back is not taken out again before every such
// value has expired (its keys fail fast meanwhile): auto_eject_ttl,
// rounded up to whole seconds, one more second (memcached's clock: see
// TTLs) and the timeout (a write that picked the stand-in just before the
// server came back) after its return.
//
// flush_all drops every item of the server, memdict's and any other
// program's: auto-eject is for pools of memcached servers that memdict's
// clients own, which is why it is off by default. It needs servers that
// answer "version" and "flush_all" (not a nutcracker). Every process
// ejects and restores servers on its own failures and probes: while
// processes disagree about a server, a key may be read and written on
// different servers by different processes, as with nutcracker's
// auto_eject_hosts.
//
// # Discovery
//
// With resolve_interval (WithResolveInterval; WithResolver replaces the
// system resolver) the servers' host names are resolved again at that
// interval, in a goroutine of the Client. A server is its name as
// configured: the ring hashes the name, never an address, so a server
// whose name resolves to a new address keeps its place on the ring and no
// key moves. Its new connections go to the new address; each connection to
// an address the name no longer gives (one whose connect began before the
// change included) takes no new request and is closed once the requests
// on it are answered, so that no call fails because of the move. A server
// marked down when its address changes is probed by the next call. A
// failed lookup keeps the addresses known. A name that resolves to
// several addresses is one server reachable at each of them, tried in
// order (as net.Dial does), not several servers: list every server in the
// URL. Its addresses must be the same memcached (an IPv4 and an IPv6
// address of one host, say): a name that lists several memcached, as a
// headless service lists its pods, has each connection on the first
// address that took its connect, so that once one connect fails over to
// the second address the same key is read and written on either, at
// random, until those connections fail. TLS connections verify the
// configured name. Without resolve_interval each connect asks the system
// resolver, as net.Dial does, and a connection stays on the address it
// reached until it fails.
//
// What the new address holds is served as it is: the driver does not
// flush it, as it cannot tell a replacement that took the old server's
// items over from an empty one or from one that ran all along. So reads
// may be stale across a move in three windows. While a name moves from A
// to B, a call queued on a connection to A before the lookup is still
// answered by A (for up to the timeout) while later calls go to B.
// Between lookups each Client uses the addresses it last saw, and
// Clients look up at different times: for up to resolve_interval (plus
// the resolver's own caching) one process may read and write a key on A
// while another does on B. And a name that moves back to A while A kept
// running finds there the values it held before the first move: what was
// written on B meanwhile is not there, and A's older values are read
// again until they are overwritten or expire (write v1 with the name on
// A, move it to B, write v2 there and read it back, move it back to A:
// a Get returns v1). Give a name a new address only with a server that is
// empty or holds current values (a restarted memcached, or one flushed,
// as auto-eject flushes a server before it takes it back).
//
// # Optional abilities
//
// Client implements backend.Lister (with "lru_crawler metadump"),
// backend.StatsReporter ("stats" on every server), backend.Flusher
// ("flush_all" on every server, or FlushNode for one), backend.Pinger
// ("version"), backend.MultiWriter (SetMulti, DeleteMulti; memdict's
// Tx.Commit and PutMulti use it), backend.TTLReader (GetTTL: "mg <key>
// v c f k t", for the Tool's warm migration) and backend.Describer (the
// connections open to each server, for metrics, without I/O). The admin commands (stats, lru_crawler
// metadump, version, flush_all) do not go through the engine: each opens
// a short-lived admin connection of its own, so that a long listing never
// holds up the pipelined calls; each ends within the timeout, but for a
// dump, which may take longer but never goes quiet for longer.
//
// Keys reads each server's dump whole, as fast as the server sends it,
// before it yields that server's first key: the keys under the prefix are
// kept in memory, past 16 MiB of them in a temporary file (removed when the
// loop is done with them), and a dump that lists more than the server's
// memory can hold (twice its limit_maxbytes) is a protocol error, so that a
// dump that never ends does not fill the disk. memcached's LRU crawler
// writes the dump holding the server's locks and waits for a reader that
// falls behind, and while
// it waits, other clients of the server (and the reads of a loop that
// reads the values of the keys it lists, as memdict's Keys and All do)
// wait with it: listing therefore never makes it wait, whatever the loop
// does between keys. Keys holds the Client open while it iterates: do not
// Close the Client from inside the loop.
//
// # CAS tokens
//
// memcached numbers CAS values from 1 again when it restarts, so a token
// read before a restart may be, after it, the CAS of another version of
// the item, written by another client; a CompareAndSwap with it would
// overwrite that version (a lost update). Through the meta protocol the
// tokens of Get, GetMulti and GetLease are therefore the server's CAS
// values XORed with a key of the server's run, made from the pid and start
// time its "stats" give on each connection, and CompareAndSwap and
// ReleaseLease XOR them back: in another run a token is a number the
// server's counter does not reach, and the write fails with
// backend.ErrCASConflict. A compare-and-swap on a new connection waits for
// the reply to its hello, which says the run. Tokens stay valid across
// reconnections to the same run and between Clients. Through the text
// protocol (servers without meta commands), and with servers that do not
// answer "stats" (an error line in its place, ERROR, CLIENT_ERROR or
// SERVER_ERROR, as from a proxy that does not implement it: the
// connection goes on without the key), tokens are the bare CAS values;
// behind a proxy, the run is the proxy's.
//
// # Leases
//
// Client implements backend.Leaser with the meta protocol's leases, which
// memdict's GetOrLoad uses to let one process of a fleet fill a missing or
// stale key: GetLease is one "mg <key> v c N<ttl> [R<within>]" (the first
// caller on a miss gets W and the server keeps an empty placeholder for
// the lease TTL; later callers get Z), the winner fills with
// CompareAndSwap and the lease's CAS, ReleaseLease is "md <key> C<cas>"
// and MarkStale is "md <key> I [T<ttl>]". Plain reads report a
// placeholder as a miss. memcached hands the refresh lease (W) of a
// stale item to any mg, plain reads included, which is why memdict
// coordinates the refresh of an invalidated item with a lock key
// (backend.TryLock). Through the text protocol (no meta commands) and on
// a server started with -C (no CAS) the Leaser methods return errors
// wrapping backend.ErrNotSupported, and callers fall back to TryLock.
package memcached
