package redis

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// The pipelining engine.
//
// Every single-key call (Get, Set, Add, CompareAndSwap, Delete, Touch,
// Increment) becomes a call handed to the lane of its server: the
// standalone server, the master that holds the key on a cluster, or the
// shard the key is on on a Ring. A lane
// lets cfg.inFlight flushes run at once. A call that finds a free slot is
// flushed at once, alone, as a plain command (in the caller's goroutine
// when its context cannot be cancelled); the others queue, and when a
// flush returns, the goroutine that ran it takes everything queued (up to
// cfg.maxBatch calls) and sends it as one go-redis pipeline: one write and
// one round trip for all, the Gets among them merged into one MGET (one
// per hash slot on a cluster).
//
// Every call has a deadline, its arrival plus cfg.timeout, whatever the
// caller's context. A flush runs under the earliest deadline of its calls,
// which go-redis puts on the socket (ContextTimeoutEnabled). Calls queue in
// arrival order and the timeout is the same for all, so the flushes in
// flight ahead of a queued call end before its deadline, and so does its
// own: a caller whose context cannot be cancelled waits for its answer
// without a timer of its own and still returns within the timeout. A
// caller whose context can be cancelled also stops waiting when it ends.
//
// A lane also tracks its server's health (health.go): a flush that fails
// without an answer from the server counts as a failure; failureLimit
// failures in a row mark the server down, and calls then fail at once
// until a background probe finds it answering again.

// call is one single-key operation waiting for, or carried by, a flush.
type call struct {
	key    string
	get    bool            // a Get, merged into the flush's MGET
	cmd    goredis.Cmder   // the command of any other call
	script *goredis.Script // when cmd is an EVALSHA of script
	args   []any           // the script's arguments, for a NOSCRIPT retry
	val    []byte          // a SET's stored string (see setCall)
	ms     int64           // a SET's TTL in milliseconds
	dl     int64           // arrival + timeout, in mono nanoseconds
	want   uint8           // the reply cmd must get (wantOK, ...): checked by flush
	// once: cmd must not be sent again after a failure (see noRetry).
	once bool

	// Results. err, when set, is the call's outcome and overrides cmd's:
	// the call was not sent (server marked down, deadline passed, Backend
	// closed) or, for a Get, it is the final error (miss, foreign value)
	// when final is set, or the raw go-redis error otherwise.
	item  backend.Item
	err   error
	final bool

	done      chan struct{} // buffered 1: receives once the call is answered
	abandoned atomic.Bool   // the caller stopped waiting
	alone     [1]*call      // the batch of a call flushed alone, without an allocation

	// Memory a flush borrows from its first call rather than allocating
	// it: the flush's context, and the arguments of a lone GET. The call
	// outlives the flush (it is recycled only after its answer, and never
	// if abandoned). argv also holds a SET's arguments (setCall), which
	// its command keeps as long as the call.
	ctx    deadlineCtx
	argv   [6]any
	reader replyReader // the reader of the flush's GET or MGET reply (rawread.go)
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// newCall returns a call for key with its deadline.
func (b *Backend) newCall(key string) *call {
	c := calls.Get().(*call)
	c.key = key
	c.dl = mono() + int64(b.cfg.timeout)
	return c
}

// release recycles c once its caller has read its results. An abandoned
// call is never recycled: a flush may still hold it.
func (c *call) release() {
	*c = call{done: c.done}
	calls.Put(c)
}

// batchOfOne returns the batch of c flushed alone.
func (c *call) batchOfOne() []*call {
	c.alone[0] = c
	return c.alone[:]
}

// answer delivers c's results to its caller.
func (c *call) answer() { c.done <- struct{}{} }

// fail answers c with err.
func (c *call) fail(err error) {
	c.err = err
	c.answer()
}

// lane is the pipelining queue and the health record of one server.
type lane struct {
	b    *Backend
	addr string
	// node is the server's own client on a cluster or a Ring, for
	// probes; nil elsewhere (probes then use the Backend's client). It is
	// the client go-redis gives for addr now (see nodeLane).
	node atomic.Pointer[goredis.Client]

	mu       sync.Mutex
	inflight int     // flushes running
	queue    []*call // calls waiting; non-empty only while inflight == max
	closed   bool    // set by Close: nothing queues any more

	fails   atomic.Int64 // consecutive failures
	down    atomic.Bool  // marked down; a probe is running
	downFor atomic.Int64 // failures that marked it down, for errors
	asking  atomic.Bool  // a PING of askServer is running
}

// maxInFlight returns the flushes a lane may run at once: cfg.inFlight,
// or no limit (every call its own round trip) without batching.
func (l *lane) maxInFlight() int {
	if !l.b.cfg.batch {
		return int(^uint(0) >> 1)
	}
	return l.b.cfg.inFlight
}

// lane returns the lane of key's server, or an error wrapping
// backend.ErrUnavailable if a cluster's slots cannot be loaded, an error
// if no shard of a Ring is up, or backend.ErrClosed after Close.
func (b *Backend) lane(ctx context.Context, key string) (*lane, error) {
	if b.ring != nil {
		return b.shardLane(key)
	}
	if b.cluster == nil {
		return b.lane0, nil
	}
	m, err := b.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	return b.nodeLane(m)
}

// shardLane returns the lane of the Ring shard that key is on: each shard
// has its own, so that one that hangs is marked down (and probed) alone,
// and its calls are not batched with the other shards'.
func (b *Backend) shardLane(key string) (*lane, error) {
	c, err := b.ring.GetShardClientForKey(key)
	if err != nil {
		return nil, err // no shard is up, or the Ring is closed
	}
	return b.nodeLane(c)
}

// nodeLane returns the lane of the server of n, a cluster master's or a
// Ring shard's client, made if need be, with n as its client.
func (b *Backend) nodeLane(n *goredis.Client) (*lane, error) {
	addr := n.Options().Addr
	b.lanesMu.RLock()
	l := b.lanes[addr]
	b.lanesMu.RUnlock()
	if b.ring != nil && (l == nil || l.node.Load() != n) {
		// A shard's client new to the lane may be one the Backend has
		// not seen (see seenShard).
		b.ringMu.Lock()
		b.seenShard(n)
		b.ringMu.Unlock()
	}
	if l != nil {
		if l.node.Load() != n {
			// go-redis closes the client of a node that left the
			// cluster (of a shard removed from a Ring), and makes a new
			// one if its address comes back: a probe on the closed one
			// would never succeed.
			l.node.Store(n)
		}
		return l, nil
	}
	b.lanesMu.Lock()
	defer b.lanesMu.Unlock()
	if b.lanesClosed {
		return nil, backend.ErrClosed
	}
	if l = b.lanes[addr]; l == nil {
		l = &lane{b: b, addr: addr}
		b.lanes[addr] = l
	}
	l.node.Store(n)
	return l, nil
}

// do runs c on key's lane and reports whether c was answered; false means
// that ctx ended first (c is then abandoned and must not be released).
func (b *Backend) do(ctx context.Context, c *call) bool {
	l := b.lane0
	if l == nil {
		var err error
		if b.ring != nil {
			l, err = b.shardLane(c.key) // no context to allocate
		} else {
			l, err = b.lane(&deadlineCtx{dl: monoTime(c.dl)}, c.key)
		}
		if err != nil {
			c.err = err
			return true
		}
	}
	if err := l.admit(); err != nil {
		c.err = err
		return true
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		c.err = backend.ErrClosed
		return true
	case l.inflight < l.maxInFlight():
		l.inflight++
		l.mu.Unlock()
		batch := c.batchOfOne()
		if ctx.Done() == nil {
			// Nothing can interrupt this caller: flush in its goroutine.
			l.flush(batch)
			l.handOff()
			<-c.done
			return true
		}
		if !b.spawn(func() { l.work(batch) }) {
			l.mu.Lock()
			l.inflight--
			l.mu.Unlock()
			c.err = backend.ErrClosed
			return true
		}
	default:
		l.queue = append(l.queue, c)
		l.mu.Unlock()
	}
	return wait(ctx, c)
}

// wait waits for c's answer or the end of ctx.
func wait(ctx context.Context, c *call) bool {
	if ctx.Done() == nil {
		<-c.done
		return true
	}
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		c.abandoned.Store(true)
		select {
		case <-c.done: // answered at the same moment: prefer the answer
			return true
		default:
			return false
		}
	}
}

// handOff gives back the slot of a flush run in a caller's goroutine; if
// calls queued meanwhile, a new worker takes the slot and serves them.
func (l *lane) handOff() {
	l.mu.Lock()
	if len(l.queue) == 0 || l.closed {
		l.releaseAndUnlock() // fails a queue non-empty only after Close
		return
	}
	batch := l.takeLocked(nil)
	l.mu.Unlock()
	if !l.b.spawn(func() { l.work(batch) }) {
		failAll(batch, backend.ErrClosed)
		l.mu.Lock()
		l.releaseAndUnlock()
	}
}

// releaseAndUnlock, called with l.mu held, gives back a slot, unlocks
// l.mu, then fails the calls left in the queue with backend.ErrClosed.
func (l *lane) releaseAndUnlock() {
	l.inflight--
	q := l.queue
	l.queue = nil
	l.mu.Unlock()
	failAll(q, backend.ErrClosed)
}

// work flushes batch, then whatever queued behind it, until the queue is
// empty; it holds one of the lane's slots meanwhile.
func (l *lane) work(batch []*call) {
	var own []*call // the batches this worker took, reused (not batch: it may be a call's alone)
	for {
		l.flush(batch)
		if len(batch) > 1 {
			// The callers just answered are runnable now and many will
			// call again at once: let them queue before taking the next
			// batch, rather than sending a small one.
			runtime.Gosched()
		}
		l.mu.Lock()
		if len(l.queue) == 0 || l.closed {
			l.releaseAndUnlock() // fails a queue non-empty only after Close
			return
		}
		own = l.takeLocked(own[:0])
		batch = own
		l.mu.Unlock()
	}
}

// takeLocked removes up to cfg.maxBatch calls from the queue, dropping
// abandoned ones, and appends them to batch, which it returns. l.mu must
// be held.
func (l *lane) takeLocked(batch []*call) []*call {
	n := min(len(l.queue), l.b.cfg.maxBatch)
	batch = slices.Grow(batch, n)
	i := 0
	for ; i < len(l.queue) && len(batch) < n; i++ {
		if c := l.queue[i]; !c.abandoned.Load() {
			batch = append(batch, c)
		}
	}
	rest := copy(l.queue, l.queue[i:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return batch
}

// closeLane fails the queued calls with ErrClosed and refuses new ones.
func (l *lane) closeLane() {
	l.mu.Lock()
	l.closed = true
	q := l.queue
	l.queue = nil
	l.mu.Unlock()
	failAll(q, backend.ErrClosed)
}

func failAll(cs []*call, err error) {
	for _, c := range cs {
		c.fail(err)
	}
}

// flush sends calls as one command or one pipeline and answers each.
func (l *lane) flush(calls []*call) {
	now := mono()
	var dl int64
	live := calls[:0]
	expired := false
	for _, c := range calls {
		switch {
		case c.abandoned.Load():
			// Its caller is gone; nobody reads the answer.
			c.answer()
		case now >= c.dl:
			expired = true
			c.fail(&backend.ServerError{Addr: l.addr, Err: fmt.Errorf("%w: server %s did not answer within %v", backend.ErrUnavailable, l.addr, l.b.cfg.timeout)})
		default:
			live = append(live, c)
			if dl == 0 || c.dl < dl {
				dl = c.dl
			}
		}
	}
	if expired {
		l.record(errQueueTimeout)
	}
	if len(live) == 0 {
		return
	}
	if err := l.admit(); err != nil {
		failAll(live, err)
		return
	}
	var ctx context.Context = &live[0].ctx
	live[0].ctx.dl = monoTime(dl)
	if l.b.doneCtx || now-(dl-int64(l.b.cfg.timeout)) > int64(lateFlush) {
		// The flush starts well after its first call arrived: go-redis
		// must stop waiting for a connection being dialed at the
		// deadline, which takes a context that can be done (a flush
		// made at once is bounded by DialTimeout, the timeout). So must
		// a client that retries a command that timed out (MaxRetries:
		// New's clients have none unless set, go-redis's 3) after a
		// backoff it sleeps on the context: on one never done, a Get
		// with a 300 ms timeout took 4.4 s on a Ring with MaxRetries 10,
		// 0.73 s on a client with a backoff of 100 ms to 1 s.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.Background(), monoTime(dl))
		defer cancel()
	}
	err := l.exchange(ctx, live)
	if perr := l.checkReplies(err, live); perr != nil {
		// The stream did not answer these commands: no call keeps what
		// was read from it.
		err = perr
		for _, c := range live {
			c.item, c.err, c.final = backend.Item{}, perr, false
		}
	}
	l.record(err)
	if err != nil && mono() >= dl {
		// The socket deadline: say which server did not answer in time.
		var terr error = &backend.ServerError{Addr: l.addr, Err: fmt.Errorf("%w: server %s did not answer within %v: %w", backend.ErrUnavailable, l.addr, l.b.cfg.timeout, err)}
		for _, c := range live {
			if c.get && !c.final && c.err != nil || !c.get && (c.err != nil || c.cmd.Err() != nil) {
				c.err = terr
			}
		}
	}
	for _, c := range live {
		c.answer()
	}
}

// lateFlush is how long after its first call's arrival a flush starts
// before it needs a context that can be done (see flush).
const lateFlush = time.Millisecond

// exchange sends live and reads the replies, and returns the transport
// error, if any. A panic (in go-redis, on a reply it could not handle) is
// recovered and returned as an error wrapping ErrProtocol; go-redis has
// then closed the connection.
func (l *lane) exchange(ctx context.Context, live []*call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError(l.addr, r)
		}
	}()
	if len(live) == 1 {
		err = l.one(ctx, live[0])
	} else {
		err = l.many(ctx, live)
	}
	err = transportErr(err)
	if err == nil {
		err = l.retryNoScript(ctx, live)
	}
	return err
}

// checkReplies returns the protocol error of a flush, if any: err itself
// when it says that the stream was not a valid answer (rather than that
// the connection failed or timed out), or a reply of the wrong type or
// count for its command.
func (l *lane) checkReplies(err error, live []*call) error {
	if err != nil {
		if protocolErr(err) {
			return asProtoErr(l.addr, err)
		}
		return nil
	}
	for _, c := range live {
		if c.get && c.err != nil && errors.Is(c.err, ErrProtocol) {
			return c.err // found as it was read, and worded then
		}
		if msg := c.badReply(); msg != "" {
			return &protoError{Addr: l.addr, Msg: msg}
		}
	}
	return nil
}

// protocolErr reports whether err, an error a flush got without a reply
// from the server, means that what was read was not a valid answer: a
// violation the guard found, a panic, or a reply go-redis could not read
// as its command's (see unreadable).
func protocolErr(err error) bool {
	return err != nil && (errors.Is(err, ErrProtocol) || unreadable(err))
}

// unreadable reports whether err is go-redis's report of a reply it could
// not read as the answer to its command: a reply of another type, a
// number that does not parse. The guard (conn.go) catches what is not
// RESP before go-redis reads it; these are well-formed replies that do
// not fit their command. go-redis reports them with plain errors of its
// reader's, told apart here by their text.
func unreadable(err error) bool {
	var re goredis.Error
	if errors.As(err, &re) {
		return false // the server's error reply
	}
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	for _, s := range unreadableMessages {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unreadableMessages are in go-redis's reports of replies that do not fit
// their command (and in no other error it returns).
var unreadableMessages = []string{
	"redis: can't ", "redis: got ", "redis: unexpected ", "redis: invalid reply",
	"redis: invalid map key", "redis: the length of the array", "redis: RESP3 map key",
	"out of range", // bigInt(...) value out of range
}

// asProtoErr returns err as an error wrapping ErrProtocol.
func asProtoErr(addr string, err error) error {
	if errors.Is(err, ErrProtocol) {
		return err
	}
	return &protoError{Addr: addr, Msg: "unreadable reply", Err: err}
}

// The replies a call's command must get, checked by flush.
const (
	wantAny     uint8 = iota // a Get (checked as it is read), or nothing to check
	wantOK                   // SET: OK
	wantOKOrNil              // SET NX: OK, or a null when the key exists
	wantBool                 // DEL of one key: 0 or 1
	wantScript               // one of the scripts: an array of its call's echo, an integer code and what the code promises (scriptReplies)
)

// badReply describes a reply that does not fit c's command, or returns "".
func (c *call) badReply() string {
	if c.err != nil {
		return "" // a Get's protocol error is checkReplies's
	}
	if c.want != wantAny && c.want != wantOKOrNil && c.cmd.Err() == goredis.Nil {
		return "a null answered a command that never answers one"
	}
	switch c.want {
	case wantOK, wantOKOrNil:
		if cmd := c.cmd.(*goredis.StatusCmd); cmd.Err() == nil && cmd.Val() != "OK" {
			return fmt.Sprintf("SET answered %.40q, not OK", cmd.Val())
		}
	case wantBool:
		if cmd := c.cmd.(*goredis.IntCmd); cmd.Err() == nil && cmd.Val() != 0 && cmd.Val() != 1 {
			return fmt.Sprintf("DEL of one key answered %d", cmd.Val())
		}
	case wantScript:
		cmd := c.cmd.(*goredis.Cmd)
		if cmd.Err() != nil {
			return ""
		}
		res, ok := cmd.Val().([]any)
		if !ok || len(res) < 2 {
			return fmt.Sprintf("a script answered %.40v, not an array of 2 or more", cmd.Val())
		}
		if echo, _ := res[0].(string); echo != c.args[len(c.args)-1] {
			return "a script's reply does not start with its call's echo: it answers another call"
		}
		if _, ok := res[1].(int64); !ok {
			return fmt.Sprintf("a script answered an array whose code is %.40v, not an integer", res[1])
		}
		return scriptReplyFault(c.script, res[1:])
	}
	return ""
}

// noRetry is a command go-redis must not send again after a failure: a
// client with MaxRetries above 0 (go-redis's default for a client made
// with MaxRetries 0 is 3) resends a command, and the whole pipeline it is
// in, whose reply was lost (the connection dropped, a read timed out),
// whether or not the server ran it. An Increment resent after its reply
// was lost adds its delta twice, and an Add, CompareAndSwap, Delete,
// TryLock or Unlock that the server applied is reported as not stored, a
// conflict, not found or not held. go-redis does not resend a pipeline
// holding a command whose NoRetry is true (as it does not its
// RawWriteToCmd).
type noRetry struct{ goredis.Cmder }

// NoRetry tells go-redis not to send the command again.
func (noRetry) NoRetry() bool { return true }

// sent returns the command to send for c: cmd, wrapped in noRetry for a
// call that must not be applied twice.
func (c *call) sent() goredis.Cmder {
	if c.once {
		return noRetry{c.cmd}
	}
	return c.cmd
}

// noRetryEval queues the EVAL of a script on its pipeline as a noRetry
// command (the script's calls are all once).
type noRetryEval struct{ goredis.Pipeliner }

// Eval queues EVAL script with keys and args, not to be sent again.
func (p noRetryEval) Eval(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "eval", script, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmd := goredis.NewCmd(ctx, append(cmdArgs, args...)...)
	_ = p.Process(ctx, noRetry{cmd}) // queued; Exec sends it
	return cmd
}

// errQueueTimeout is recorded as a failure when calls time out in a
// lane's queue (the flushes ahead of them took the whole timeout).
var errQueueTimeout = errors.New("calls timed out in the queue")

// one sends a lone call as a plain command.
func (l *lane) one(ctx context.Context, c *call) error {
	if !c.get {
		return l.b.client.Process(ctx, c.sent())
	}
	if l.b.single != nil {
		return l.rawGets(ctx, c.batchOfOne(), false)
	}
	s, err := l.b.client.Get(ctx, c.key).Result()
	switch {
	case err == goredis.Nil:
		c.err, c.final = errNotFound, true
		return nil
	case err != nil && wrongType(err):
		c.err, c.final = otherTypeError("get", c.key, err), true
		return nil
	case err != nil:
		c.err = err
		return err
	}
	l.setValue(c, s)
	return nil
}

// setValue sets a Get's result from the stored string s. A value that is
// another key's (see owners) is a protocol error.
func (l *lane) setValue(c *call, s string) {
	v, cas, err := decode(c.key, s)
	if err != nil {
		c.err, c.final = fmt.Errorf("redis: get: %w", err), true
		return
	}
	if err := l.b.owners.check(l.addr, c.key, cas); err != nil {
		c.err = err
		return
	}
	c.item = backend.Item{Key: c.key, Value: v, CAS: cas}
}

// many sends calls in one pipeline: their commands, and one MGET (one per
// hash slot on a cluster; pipelined GETs on other clients) for the Gets.
// A Ring's lane holds the keys of one shard, which one MGET reads: the
// Ring sends it to its first key's shard.
func (l *lane) many(ctx context.Context, calls []*call) error {
	b := l.b
	if allGets(calls) && b.single != nil {
		// Only Gets, for one MGET: no pipeline needed, and its values
		// read without go-redis's copies (rawread.go).
		return l.rawGets(ctx, calls, true)
	}
	if allGets(calls) && (b.ring != nil || b.cluster != nil && oneSlot(calls)) {
		// Only Gets, for one MGET: no pipeline needed.
		cmd := l.mget(ctx, calls)
		err := b.client.Process(ctx, cmd)
		l.setMGet(cmd, calls)
		return err
	}
	pipe := b.client.Pipeline()
	var gets []*call
	for _, c := range calls {
		if c.get {
			gets = append(gets, c)
		} else {
			_ = pipe.Process(ctx, c.sent()) // queued; Exec sends it
		}
	}
	var read func()
	switch {
	case len(gets) == 0:
	case b.single != nil || b.ring != nil || (b.cluster != nil && oneSlot(gets)):
		read = l.mgetInto(ctx, pipe, gets)
	case b.cluster != nil:
		bySlot := make(map[uint16][]*call)
		for _, c := range gets {
			s := slot(c.key)
			bySlot[s] = append(bySlot[s], c)
		}
		reads := make([]func(), 0, len(bySlot))
		for _, cs := range bySlot {
			reads = append(reads, l.mgetInto(ctx, pipe, cs))
		}
		read = func() {
			for _, r := range reads {
				r()
			}
		}
	default:
		cmds := make([]*goredis.StringCmd, len(gets))
		for i, c := range gets {
			cmds[i] = pipe.Get(ctx, c.key)
		}
		read = func() {
			for i, c := range gets {
				s, err := cmds[i].Result()
				switch {
				case err == goredis.Nil:
					c.err, c.final = errNotFound, true
				case err != nil:
					c.err = err
				default:
					l.setValue(c, s)
				}
			}
		}
	}
	_, err := pipe.Exec(ctx)
	if read != nil {
		read()
	}
	return err
}

// oneSlot reports whether the keys of gets share one hash slot.
func oneSlot(gets []*call) bool {
	s := slot(gets[0].key)
	for _, c := range gets[1:] {
		if slot(c.key) != s {
			return false
		}
	}
	return true
}

// allGets reports whether every call is a Get.
func allGets(calls []*call) bool {
	for _, c := range calls {
		if !c.get {
			return false
		}
	}
	return true
}

// mget returns the MGET of the keys of gets, read as strings: a missing
// key (or one of another Redis type) reads as "", which no value this
// package writes is (the header alone is 11 bytes), so that the values
// are not boxed one by one. A foreign empty string therefore reads as a
// miss here, as keys of other types do; a Get alone reports it.
func (l *lane) mget(ctx context.Context, gets []*call) *goredis.StringSliceCmd {
	return goredis.NewStringSliceCmd(ctx, mgetArgs(gets, l.b.single != nil)...)
}

// mgetArgs returns the arguments of the MGET of the keys of gets. With
// ptrs, each key is a *string, written as the string without boxing a
// copy of its header (the call outlives the command); a cluster client
// (a Ring) needs strings, to find the keys' slot (shard).
func mgetArgs(gets []*call, ptrs bool) []any {
	args := make([]any, 1+len(gets))
	args[0] = "mget"
	for i, c := range gets {
		if ptrs {
			args[1+i] = &c.key
		} else {
			args[1+i] = c.key
		}
	}
	return args
}

// setMGet sets each Get's result from cmd, the MGET of their keys. An
// answer with another number of values is a protocol error.
func (l *lane) setMGet(cmd *goredis.StringSliceCmd, gets []*call) {
	vals, err := cmd.Result()
	switch {
	case err == goredis.Nil:
		err = &protoError{Addr: l.addr, Msg: "MGET answered a null"}
	case err == nil && len(vals) != len(gets):
		err = &protoError{Addr: l.addr, Msg: fmt.Sprintf("MGET of %d keys answered %d values", len(gets), len(vals))}
	}
	for i, c := range gets {
		switch {
		case err != nil:
			c.err = err
		case vals[i] == "":
			c.err, c.final = errNotFound, true
		default:
			l.setValue(c, vals[i])
		}
	}
}

// mgetInto queues one MGET of the keys of gets on pipe and returns the
// function that, after Exec, sets each Get's result.
func (l *lane) mgetInto(ctx context.Context, pipe goredis.Pipeliner, gets []*call) func() {
	cmd := l.mget(ctx, gets)
	_ = pipe.Process(ctx, cmd)
	return func() { l.setMGet(cmd, gets) }
}

// retryNoScript runs again, with EVAL, the script calls the server
// answered NOSCRIPT (its script cache was empty: a restarted server), in
// one pipeline. It returns a transport error, as flush records them.
func (l *lane) retryNoScript(ctx context.Context, calls []*call) error {
	var retry []*call
	for _, c := range calls {
		if c.script != nil && isNoScript(c.cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) == 0 {
		return nil
	}
	pipe := l.b.client.Pipeline()
	for _, c := range retry {
		c.cmd = c.script.Eval(ctx, noRetryEval{pipe}, []string{c.key}, c.args...)
	}
	_, err := pipe.Exec(ctx)
	return transportErr(err)
}

func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// transportErr returns err unless it is the server's answer (a miss or an
// error reply), which says that the server is up.
func transportErr(err error) error {
	if err == nil || err == goredis.Nil {
		return nil
	}
	var re goredis.Error
	if errors.As(err, &re) {
		return nil
	}
	return err
}

// monoBase is the origin of mono.
var monoBase = time.Now()

// mono returns the monotonic clock in nanoseconds since monoBase: cheaper
// than time.Now, which also reads the wall clock, and all a deadline needs.
func mono() int64 { return int64(time.Since(monoBase)) }

// monoTime returns the time of mono reading ns.
func monoTime(ns int64) time.Time { return monoBase.Add(time.Duration(ns)) }

// deadlineCtx is the context of a flush: a deadline (which go-redis puts
// on the socket, and net.Dialer on a dial) and nothing else, without the
// timer of context.WithDeadline. Its Done is nil: nothing cancels a flush
// but its deadline, or Close, which closes the connections.
type deadlineCtx struct{ dl time.Time }

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.dl, true }
func (*deadlineCtx) Done() <-chan struct{}         { return nil }
func (*deadlineCtx) Err() error                    { return nil }
func (*deadlineCtx) Value(any) any                 { return nil }

// spawn runs fn in a goroutine that Close waits for; it reports false,
// without running fn, once Close has begun.
func (b *Backend) spawn(fn func()) bool {
	b.callsMu.RLock()
	defer b.callsMu.RUnlock()
	if b.closing {
		return false
	}
	b.calls.Add(1)
	go func() {
		defer b.calls.Done()
		defer func() {
			// Every goroutine of the driver recovers a panic: the ones
			// that carry calls answer them with an error of their own
			// (flush, bounded); here nothing is left to answer.
			_ = recover()
		}()
		fn()
	}()
	return true
}

// bounded runs fn with a context that ends at ctx's deadline or after the
// timeout, whichever comes first, and returns its results. go-redis
// honours a deadline (on the socket) but not a cancellation: so when ctx
// can be cancelled, fn runs in a goroutine of its own and bounded returns
// ctx.Err() as soon as ctx is done; fn then finishes on its own, by its
// deadline, and Close waits for it. When ctx cannot be cancelled (such as
// context.Background()), fn runs in the caller's goroutine. A panic in fn
// is recovered and returned as an error wrapping ErrProtocol.
func bounded[T any](b *Backend, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	dl := time.Now().Add(b.cfg.timeout)
	callers := false
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl, callers = d, true
	}
	run := func() (v T, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicError(b.addr(), r)
			}
		}()
		// A context that can be done, so that go-redis stops waiting for a
		// connection being dialed at the deadline.
		dctx, cancel := context.WithDeadline(context.Background(), dl)
		defer cancel()
		return fn(boundCtx{dctx, callers})
	}
	if ctx.Done() == nil {
		return run()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if !b.spawn(func() {
		v, err := run()
		ch <- result{v, err}
	}) {
		var zero T
		return zero, fmt.Errorf("redis: %w", backend.ErrClosed)
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it finished at the same moment: prefer its result
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

// boundCtx is the context bounded gives fn: its deadline is the
// driver's (wrap tells it from a caller's).
type boundCtx struct {
	context.Context
	// callers says the deadline is the caller's, earlier than the
	// timeout: running out of it is not the server's failure (see
	// callerTimedOut).
	callers bool
}

// addr names the Backend's server in errors: the standalone server, or
// the client's type.
func (b *Backend) addr() string {
	switch {
	case b.lane0 != nil:
		return b.lane0.addr
	case b.ring != nil:
		return "ring"
	}
	return "cluster"
}
