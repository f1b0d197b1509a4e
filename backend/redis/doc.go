// Package redis is memdict's Redis driver: a backend.Backend on a
// standalone Redis server, a Redis Cluster, a Redis Ring (client-side
// sharding) or Redis Sentinel, through github.com/redis/go-redis/v9.
//
// Importing the package registers the URL schemes redis:// and rediss://
// (TLS) with backend.Open:
//
//	redis://[user[:password]@]host[:port][/db][?param=value&...]
//	rediss://[user[:password]@]host[:port][/db]?tls_ca=/path/ca.pem
//	redis://host1:7000,host2:7001,host3:7002?cluster=true
//	redis://s1:26379,s2:26379,s3:26379/0?sentinel_master=mymaster
//	redis://h1:6379,h2:6379,h3:6379/0?ring=true
//
// The port defaults to 6379 and the database to 0. The cluster form lists
// seed nodes (one is enough; the others are discovered). The Sentinel form
// lists sentinels (port 26379 by default; see "Redis Sentinel"). The Ring
// form lists a Ring's shards, over which go-redis spreads the keys by
// consistent hashing of the shards' names, here their addresses (see
// ParseRingURL), each shard marked down and probed on its own. Programs
// that already have a go-redis client use NewFromClient; New, NewCluster,
// NewRing and NewSentinel take go-redis options. ParseURL turns a URL into
// those options (ParseRingURL a Ring's), as backend.Open does.
//
// # URL
//
// Several hosts require cluster=true, sentinel_master or ring=true; a
// single host with cluster=true is a cluster seed, with sentinel_master a
// sentinel, with ring=true a Ring's one shard. IPv6 literals work only in
// the one-host form. In the forms of several hosts, give the last host its
// port (Go's URL parser reads what follows the last colon as a port). The
// parameters are:
//
//	cluster=true                 connect to a Redis Cluster (default false)
//	ring=true                    the hosts are a Ring's shards (default false;
//	                             see NewRing and ParseRingURL)
//	sentinel_master=NAME         the hosts are sentinels: connect to the master
//	                             they name NAME (see "Redis Sentinel")
//	sentinel_username=USER       ACL user of the sentinels (sentinel_master only)
//	sentinel_password=PASSWORD   password of the sentinels (requirepass); the
//	                             URL's user information is the master's
//	timeout=1s                   bound on every call, queue wait, connecting and
//	                             socket I/O included (see WithTimeout)
//	failure_limit=3              consecutive failures that mark a server down
//	                             (0: never; see WithFailureLimit)
//	retry_interval=2s            how often a server marked down is probed
//	dial_timeout=1s              bound on connecting (default and cap: timeout)
//	read_timeout=3s              bound on one socket read (go-redis default)
//	write_timeout=3s             bound on one socket write (go-redis default)
//	pool_size=N                  connections per node (default 10 per CPU)
//	min_idle_conns=N             idle connections kept open (default 0)
//	pool_timeout=1s              wait for a free connection (default and cap: timeout)
//	max_retries=N                retries after a network error (default 0: none,
//	                             see New); writes that must not run twice are
//	                             never resent (see NewFromClient)
//	protocol=2|3                 RESP version (default 3)
//	client_name=NAME             CLIENT SETNAME on every connection
//	max_value_length=N           longest value accepted, written or read (default
//	                             DefaultMaxValueLen; see WithMaxValueLen and
//	                             "Untrusted replies")
//	allow_flush=true             enable Flush, which runs FLUSHDB (see WithFlush)
//	batch=false                  do not pipeline concurrent calls (see WithBatching)
//	batch_inflight=N             pipelines in flight per server (default 2)
//	batch_size=N                 calls per pipeline (default 256)
//	tls_ca=FILE                  PEM CA bundle to verify the server (rediss only;
//	                             default: the system roots)
//	tls_cert=FILE, tls_key=FILE  PEM client certificate and key (rediss only)
//	tls_server_name=NAME         name to verify in the server certificate
//	                             (rediss only; default: the host)
//	tls_insecure_skip_verify=true  do not verify the server certificate (rediss only;
//	                             for tests)
//
// An unknown parameter, a malformed value or a TLS parameter on redis:// is
// an error that names it (an unknown one lists the known ones); no error
// shows the password.
//
// timeout is the bound on a whole call, as in the memcached driver, and the
// one to set. dial_timeout, read_timeout, write_timeout and pool_timeout
// are go-redis's bounds on one step of a call (connecting, one socket read
// or write, the wait for a pooled connection): they can make a step fail
// sooner, never let a call run past timeout.
//
// Deprecated parameter name, accepted for one more release: max_value_size
// (now max_value_length, the name memdict and the other drivers use). A URL
// that gives both is an error naming both.
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
// says. TTLs follow the rule of backend.Item.TTL, at millisecond
// resolution.
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
// shares. On a standalone server that buffer comes from a pool a
// memdict.Dict hands it back to once it has decoded the value with its
// codec (which keeps none of it), so that reading large values neither
// allocates nor makes garbage.
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
// and probed on its own, as is each shard of a Ring (ring=true, NewRing,
// or NewFromClient with a *goredis.Ring), whose calls are batched per
// shard: the other masters
// (shards) are still served. A GetMulti then returns what the other
// masters hold and a *backend.MultiError naming each key it could not
// read, as it does when the caller's context ends (a deadline shorter
// than the timeout, a cancellation) before a master has answered: that
// master's keys are named with the context's error. A multi-key call cut short so, by a
// deadline shorter than the timeout, does not count as a failure (the
// server might have answered within the timeout); the server is PINGed
// instead, bounded by the timeout, and that counts, so that a server that
// hangs is marked down even when every caller's deadline is shorter than
// the timeout.
//
// A connect is bounded like the rest: dial_timeout is capped at timeout,
// and a call that is waiting for a connection being dialed stops waiting
// at its deadline. A new connection costs one round trip: its handshake
// (HELLO with AUTH and SETNAME, SELECT when the database is not 0, CLIENT
// SETNAME) goes out with its first command (see "Untrusted replies"), so
// that a client keeps working, and a server marked down comes back, while
// a round trip takes up to about half the timeout.
//
// # Untrusted replies
//
// A reply is untrusted input: from a buggy server, a broken proxy or an
// attacker between the client and the server. New, NewCluster, NewRing,
// NewSentinel and backend.Open guard every connection (the command
// connections through the go-redis Dialer, which they wrap, and the
// tracking connections):
//
//   - What the server sends is validated before go-redis reads it, by a
//     streaming RESP2/RESP3 validator: a bulk string, verbatim string or
//     blob error longer than the max value length plus the 11-byte header
//     and 1 MiB, an aggregate whose elements (counted at 16 bytes, what
//     go-redis allocates for each before reading it, with those announced
//     and not yet read by the aggregates it is nested in) would pass that
//     same bound, nesting deeper than 32 levels (an attribute counts as a
//     level, so a stream of attributes is bounded too), a line (a simple
//     string, an error, a number, a header) longer than 64 KiB, a byte
//     that starts no RESP type, a malformed number or length, or data not
//     followed by CRLF where its length says it ends fails the connection
//     with an error wrapping ErrProtocol, before anything is allocated for
//     it. So no reply makes the client allocate more than the max value
//     length plus about 1 MiB per connection being read, and none can
//     crash it. The default max value length is Redis's (512 MiB): set
//     max_value_length to the largest value you store to bound what a
//     hostile server can make the client allocate.
//   - What a header announces is allocated only once bytes for it have
//     come: a string over 64 KiB once half its bytes have arrived, an
//     aggregate that leaves more than 4096 elements to read once 3 bytes
//     for each (the shortest an element can be) have arrived. A server
//     announcing much and sending little (a 13-byte *30000000 made
//     go-redis allocate 457 MiB until the call's timeout) makes the
//     client allocate little, and the call fails at its timeout.
//   - The commands written and the replies read are counted: a reply
//     without a request (pushes apart) is a protocol error. A reply of the
//     wrong type or count for its command (an MGET of N keys answered with
//     M values, or with a null; a GET answered with an array; a SET
//     answered with anything but OK; a DEL of one key answered with
//     neither 0 nor 1; a script answered with anything but an array
//     starting with its call's echo, 8 random bytes the call passes it, and
//     an integer, so that another call's reply shows) is a protocol error
//     too. A protocol error
//     on a pipeline fails every call of the pipeline: none gets a value
//     read from that stream.
//   - A value is matched to its key: RESP carries no request id, so a
//     well-formed reply that answers another request (an earlier reply of
//     the connection, replayed) is caught by the value's CAS token, 64
//     random bits drawn for each write of one key: the Backend remembers,
//     for the tokens it read lately, which key each was read under, and a
//     token read under another key fails the read with ErrProtocol. (A
//     value moved to another key by another program, with RENAME or COPY,
//     fails its first read under the new key after a read under the old
//     one.)
//   - A connection is reset when it is closed (SO_LINGER 0: the kernel
//     sends RST and drops what it has not sent). go-redis closes a
//     connection whose command timed out or failed, and Close closes them
//     all. So a write the client gave up on is never delivered later, on a
//     connection the network held back: a write that fails with a timeout
//     was applied before the error, or is applied when the server reads
//     what it had already received before the reset, or never. (Without
//     the reset, the kernel kept retransmitting it after the client gave
//     up, and a partition that healed seconds later could apply it over
//     newer acknowledged writes.)
//   - The connection's handshake is pipelined with its first command, once
//     the Backend has seen a handshake succeed (so that a server without
//     HELLO, or refused credentials, show as go-redis shows them): the
//     handshake's commands are answered at once as a server that accepts
//     them answers, and sent with the first command; their real replies are
//     checked and removed. If one is an error (the password was changed
//     since), the call fails with it (wrapping ErrAuth for a refused
//     password) and gets no value, and the next connections do their
//     handshake alone. The command sent with a refused handshake reaches
//     the server unauthenticated: a server that requires a password refuses
//     it, one whose default user may run it runs it as that user. Options
//     with OnConnect or a credentials provider are not pipelined.
//   - A panic in a goroutine of the driver (a flush of the pipelining
//     lanes, a probe, the tracker, a call bounded by the timeout) is
//     recovered and fails the calls it affects with an error wrapping
//     ErrProtocol; go-redis then closes the connection. (go-redis's own
//     goroutines, such as a cluster pipeline's per node, are go-redis's.)
//
// NewFromClient guards only the connections the client dials after it
// (with a go-redis dial hook, on a *goredis.Client, on the nodes a
// *goredis.ClusterClient creates later, and on the shards of a
// *goredis.Ring that are up then or created later, or from when the
// Backend first sees up a shard that was down then), does not pipeline
// their handshake, and protects nothing of other clients: give the
// options to New, NewCluster or NewRing instead where replies may be
// hostile. NewRing guards every connection of every shard from its first
// dial, those of a shard down when it runs included.
//
// # Redis Sentinel
//
// With sentinel_master (or NewSentinel) the Backend is on the master that
// the sentinels name, through go-redis's failover client: every connect
// asks a sentinel for the master's address, and connections to a master
// the sentinels replaced are dropped when they announce the switch. The
// URL's user and password (and database, and TLS parameters, which apply
// to the sentinels and the master alike, each connection verifying the
// host it dials unless tls_server_name is given) are the master's;
// sentinel_username and sentinel_password the sentinels'. Every
// connection, to the master and to the sentinels, is guarded as above;
// their handshakes are not pipelined with their first command (a
// reconnect costs one round trip more than on a standalone server).
// Reads go to the master, never to replicas, whose values may be older.
//
// When the master dies, calls fail within their timeout (and, once the
// master is marked down, at once) until a replica is promoted. A probe of
// a master marked down asks the sentinels for the master every 100ms and
// PINGs as soon as they name another one (or every retry_interval), so
// that calls succeed again within a round trip or two of the promotion:
// measured with down-after-milliseconds 1000 and failover-timeout 3000, a
// writer storing every 10ms saw its longest run of failed writes last
// about 2.3s (the sentinels' failover time) and wrote again 11ms after the
// sentinels named the new master (TestSentinelFailover). The tracking
// connections of the near cache (Track) go to the master the sentinels
// name, asked again every second and at every reconnect: when it changes,
// tracking is set up anew there and every key is reported as changed,
// so that no read returns a value older than one the new master
// acknowledged.
//
// The probe and the near cache ask every sentinel at once (SENTINEL
// MASTER) and, once one answered, wait up to 50ms for the others (no
// more: a sentinel that hangs delays nothing beyond that). During a
// failover the sentinels disagree for a while; as in Sentinel itself, the
// master named with the highest config epoch wins, then the one most of
// them name, then the one named last; an answer that describes no master
// that is up (a missing or malformed field, flags s_down or o_down) is
// ignored. A sentinel leading a failover names, from the promotion on,
// the demoted master with the failover's epoch in SENTINEL MASTER and the
// promoted replica in get-master-addr-by-name: the latter's address is
// taken (TestSentinelFailoverReconf). A master named with an older epoch than the one last followed
// (a sentinel that lags) is not followed back unless a majority of the
// sentinels answered and all of them name it, as a fleet redeployed from
// scratch, whose epochs start anew, does: a lagging sentinel that
// answered first used to flip the near cache between the old master and
// the new one at every question, each flip a reset of the near cache
// (TestSentinelNoFlipFlop). Sentinels whose ACL user may not run
// SENTINEL MASTER are asked get-master-addr-by-name instead, which gives
// no epoch: their answers count only when no sentinel gives one, the
// master most of them name winning. go-redis's failover client, which
// the calls go through, chooses the master by its own rule. Writes the old master acknowledged but had not yet
// replicated are lost with it, as Redis's asynchronous replication loses
// them.
//
// # Errors
//
// Misses, failed conditions and the like wrap the backend sentinels
// (backend.ErrNotFound keeps goredis.Nil in its chain); unreachable servers
// wrap backend.ErrUnavailable; a reply that is not an answer to its
// command wraps ErrProtocol (and backend.ErrUnavailable); refused
// credentials wrap ErrAuth and name the user, never the password; an
// untrusted TLS certificate says so.
//
// go-redis logs through one logger for the whole process, which writes to
// the standard error; importing this package routes it to log/slog at level
// Debug instead (see SetLogger), so that nothing is printed during an
// outage beyond what the calls return (and a Dict's WithLogger logs,
// rate-limited).
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
// processes fills a key. It implements backend.TTLReader too: GetTTL reads
// a value and its PTTL together (one Lua script), for the Tool's warm
// migration; and it is a backend.Describer: the system "redis", the
// server and go-redis's pool statistics, for metrics. It implements
// backend.PrivateReader: a Get's Value (and each of GetMulti's) is the
// buffer the reply was read into, which nobody else holds, so a
// memdict.Dict[[]byte] returns it without a copy.
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
// tracking. A message on a tracking connection that cannot be read or
// interpreted (an invalidation whose key list is not an array of strings, a
// push of another kind, a reply that answers nothing, anything the guard
// refuses, such as a key longer than 4 MiB) counts as a lost connection:
// every key is reported as changed and tracking is set up anew, so that a
// near cache never keeps a value the server may have reported changed. A
// server that lacks HELLO 3 or CLIENT TRACKING (it answers an unknown
// command or subcommand, or NOPROTO: Redis before 6, miniredis) leaves
// them unsupported, never Live: a near cache then relies on its MaxStale.
// Any other error reply to them (-BUSY while a script runs, -LOADING,
// -MASTERDOWN, -OOM, "max number of clients reached", ...) is the
// server's passing state: the registrations are not Live meanwhile, and
// tracking is set up again, with backoff, until the server accepts it.
package redis
