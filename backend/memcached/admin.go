package memcached

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict/backend"
)

// protoErr describes a reply that is not memcached's, or that does not
// answer the request it was read for; it wraps ErrProtocol (classify).
type protoErr string

func (e protoErr) Error() string { return string(e) }

// adminConn is a short-lived connection for one admin command, reset when
// ctx ends so that a blocked read returns.
type adminConn struct {
	nc    net.Conn
	r     *bufio.Reader
	in    *idleReader
	stop  func() bool
	until time.Time // the command's deadline, until it streams
}

// dialAdmin connects to addr for one admin command, which must be over,
// connecting included, within the timeout (or by ctx's deadline), unless
// it streams (see adminConn.stream).
func (c *Client) dialAdmin(ctx context.Context, addr string) (*adminConn, error) {
	// ctx's own end resets the connection (below), so that the error says
	// ctx ended.
	until := time.Now().Add(c.cfg.timeout)
	dctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	nc, err := c.dialer.dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(until)
	stop := context.AfterFunc(ctx, func() { resetConn(nc) })
	in := &idleReader{nc: nc, timeout: c.cfg.timeout}
	return &adminConn{nc: nc, r: bufio.NewReaderSize(in, metadumpBuffer), in: in, stop: stop, until: until}, nil
}

// stream lifts the bound of the whole command for a reply as long as a
// dump: from now on each read from the network has one timeout, so that
// the reply may be long but the server must not go quiet for longer, and
// the reply must keep up a pace of minDumpRate bytes a second (with the
// timeout's slack), so that it must not go slow either.
func (a *adminConn) stream() {
	a.in.streaming = true
	a.in.start = time.Now()
	_ = a.nc.SetDeadline(time.Time{})
}

// minDumpRate is the slowest pace, in bytes a second, at which a dump may
// come once it started. A server that trickles its dump, each read within
// the timeout, would otherwise hold a listing whose ctx has no deadline
// (memdict keys) for as long as it likes, a month for the bound on its
// keys (see dumpBudget) at a few bytes a second; it now fails about a
// timeout after its dump started. An honest server's crawler may be
// throttled: memcached started with -o lru_crawler_sleep=100000 (1,000
// times the default pause) dumped 20,000 keys at about 200 KB/s, which a
// pace of 256 KiB/s refused, so the pace is a quarter of that. A dump may
// send up to four times its bound (see readDump): at this pace, a server
// of memcached's default memory (64 MiB; a bound of 256 MiB) that sends
// as slowly as it may is given up on within about 6 hours, rather than
// never. (A variable for the tests.)
var minDumpRate int64 = 48 << 10

// idleReader reads from nc, once streaming with one timeout per read from
// the network and a deadline that moves on with what arrived: the
// timeout after the stream started, plus the time what arrived takes at
// minDumpRate.
type idleReader struct {
	nc        net.Conn
	timeout   time.Duration
	streaming bool
	start     time.Time // when streaming began
	received  int64     // bytes read since
}

func (r *idleReader) Read(p []byte) (int, error) {
	if !r.streaming {
		return r.nc.Read(p)
	}
	idle := time.Now().Add(r.timeout)
	// received*time.Second/minDumpRate, without overflow.
	earned := time.Duration(r.received/minDumpRate)*time.Second + time.Duration(r.received%minDumpRate)*time.Second/time.Duration(minDumpRate)
	paced := r.start.Add(r.timeout + earned)
	dl := idle
	if paced.Before(idle) {
		dl = paced
	}
	_ = r.nc.SetReadDeadline(dl)
	n, err := r.nc.Read(p)
	r.received += int64(n)
	var ne net.Error
	if err != nil && dl.Equal(paced) && errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("dump too slow: %d bytes in %v, under %d bytes a second past the first %v: %w",
			r.received, time.Since(r.start).Round(time.Millisecond), minDumpRate, r.timeout, err)
	}
	return n, err
}

// close resets the connection (resetConn): an admin command given up on
// (a flush_all that timed out) is not delivered afterwards, and a dump
// left early stops at once.
func (a *adminConn) close() {
	a.stop()
	resetConn(a.nc)
}

// command sends cmd; the reply follows on a.r.
func (a *adminConn) command(cmd string) error {
	_, err := a.nc.Write([]byte(cmd + "\r\n"))
	return err
}

func (a *adminConn) readLine() (string, error) {
	line, err := a.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", protoErr(fmt.Sprintf("reply line longer than %d bytes", a.r.Size()))
	}
	if err != nil {
		return "", err
	}
	// Replies end lines with CRLF, except metadump which uses LF alone.
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return string(line), nil
}

// simple sends cmd to addr and checks that the one-line reply starts with
// want.
func (c *Client) simple(ctx context.Context, op, addr, cmd, want string) (string, error) {
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	defer a.close()
	if err := a.command(cmd); err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	line, err := a.readLine()
	if err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	if !strings.HasPrefix(line, want) {
		return "", c.adminErr(ctx, op, addr, protoErr(fmt.Sprintf("unexpected reply to %s: %q", cmd, line)))
	}
	return line, nil
}

func (c *Client) adminErr(ctx context.Context, op, addr string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("memcached: %s on %s: %w", op, addr, ctx.Err())
	}
	kind := error(backend.ErrUnavailable)
	var pe protoErr
	if errors.As(err, &pe) {
		kind = ErrProtocol
	}
	return &opError{Op: op, Addr: addr, Kind: kind, Err: err}
}

// eachNode runs fn for every server in parallel and joins the errors.
func (c *Client) eachNode(fn func(n *node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					errs[i] = &opError{Op: "admin", Addr: n.addr, Kind: ErrProtocol, Err: panicError("in an admin command", v)}
				}
			}()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Ping sends "version" to every server over a new connection and returns
// nil if all answer, or an error naming each one that does not. It does not
// change whether a server is marked down.
func (c *Client) Ping(ctx context.Context) error {
	tk, err := c.enter("ping", "")
	if err != nil {
		return err
	}
	defer c.leave(tk)
	return c.eachNode(func(n *node) error {
		_, err := c.simple(ctx, "ping", n.addr, "version", "VERSION ")
		return err
	})
}

// Flush sends "flush_all" to every server: every item of every user of
// these servers is dropped. The error names the servers that failed.
func (c *Client) Flush(ctx context.Context) error {
	tk, err := c.enter("flush", "")
	if err != nil {
		return err
	}
	defer c.leave(tk)
	return c.eachNode(func(n *node) error {
		_, err := c.simple(ctx, "flush_all", n.addr, "flush_all", "OK")
		return err
	})
}

// FlushNode sends "flush_all" to the one server addr (as listed by
// Servers). It returns an error for an address that is not one of the
// Client's servers.
func (c *Client) FlushNode(ctx context.Context, addr string) error {
	tk, err := c.enter("flush", "")
	if err != nil {
		return err
	}
	defer c.leave(tk)
	if c.byAddr[addr] == nil {
		return fmt.Errorf("memcached: flush_all: %s is not one of the servers %v", addr, c.Servers())
	}
	_, err = c.simple(ctx, "flush_all", addr, "flush_all", "OK")
	return err
}

// ServerStats returns the "stats" of every server, in the order of
// Servers, plus "memdict_marked_down" (true or false) saying whether the
// Client currently marks it down, with auto-eject "memdict_ejected"
// (whether it is out of the ring), and with discovery
// "memdict_addresses" (the addresses its name resolved to, comma
// separated). A server that cannot be asked, or whose reply is longer
// than any memcached's (more than 4096 lines), has Err set; the error
// returned is non-nil only if ctx ended or the Client is closed.
func (c *Client) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	tk, err := c.enter("stats", "")
	if err != nil {
		return nil, err
	}
	defer c.leave(tk)
	out := make([]backend.NodeStats, len(c.nodes))
	_ = c.eachNode(func(n *node) error {
		i := 0
		for c.nodes[i] != n {
			i++
		}
		stats, err := c.stats(ctx, n.addr)
		if stats == nil {
			stats = map[string]string{}
		}
		stats["memdict_marked_down"] = strconv.FormatBool(n.down())
		if c.cfg.autoEject {
			stats["memdict_ejected"] = strconv.FormatBool(n.ejected.Load())
		}
		if to := n.dialTo.Load(); to != nil {
			stats["memdict_addresses"] = strings.Join(*to, ",")
		}
		out[i] = backend.NodeStats{Addr: n.addr, Stats: stats, Err: err}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("memcached: stats: %w", err)
	}
	return out, nil
}

// maxStatLines bounds the lines of a "stats" reply (memcached sends about
// a hundred): a broken or hostile server that sends lines without end,
// within the command's timeout, does not fill the caller's memory (an
// admin page asks on behalf of anyone who loads it).
const maxStatLines = 4096

// maxStatBytes bounds the bytes of a "stats" reply (memcached's are some
// 4 KiB), so that its lines, each kept in the map, are bounded too: 4,096
// lines of the longest line read (256 KiB) would be a gigabyte.
const maxStatBytes = 64 << 10

func (c *Client) stats(ctx context.Context, addr string) (map[string]string, error) {
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return nil, c.adminErr(ctx, "stats", addr, err)
	}
	defer a.close()
	if err := a.command("stats"); err != nil {
		return nil, c.adminErr(ctx, "stats", addr, err)
	}
	m, _, err := a.readStats()
	if err != nil {
		return nil, c.adminErr(ctx, "stats", addr, err)
	}
	return m, nil
}

// readStats reads the reply to "stats", sent on a. refused reports that
// the server answered with an error line (ERROR, CLIENT_ERROR,
// SERVER_ERROR) rather than statistics; err is then a protocol error too.
func (a *adminConn) readStats() (m map[string]string, refused bool, err error) {
	m = make(map[string]string)
	lines, size := 0, 0
	for {
		line, err := a.readLine()
		if err != nil {
			return nil, false, err
		}
		if line == "END" {
			return m, false, nil
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			refused = lines == 0 && (line == "ERROR" || strings.HasPrefix(line, "CLIENT_ERROR") || strings.HasPrefix(line, "SERVER_ERROR"))
			return nil, refused, protoErr(fmt.Sprintf("unexpected line in stats reply: %q", line))
		}
		if lines++; lines > maxStatLines {
			return nil, false, protoErr(fmt.Sprintf("stats reply of more than %d lines", maxStatLines))
		}
		if size += len(line) + 2; size > maxStatBytes {
			return nil, false, protoErr(fmt.Sprintf("stats reply of more than %d bytes", maxStatBytes))
		}
		name, value, _ := strings.Cut(rest, " ")
		m[name] = value
	}
}

// Keys yields the keys starting with prefix held by every server, read
// with "lru_crawler metadump hash" (memcached 1.6.10 and later), or
// "lru_crawler metadump all" on older servers, which may miss items the
// server moves between its LRU lists during the crawl. Keys arrive
// URL-encoded and are decoded; expired items are left out by memcached.
//
// The servers are listed in turn, and each server's dump is read whole,
// as fast as the server sends it, before its first key is yielded: the
// keys that start with prefix are kept in memory, and past 16 MiB of them
// in a temporary file, removed when the server's keys are yielded or the
// loop stops. memcached's crawler, which writes the dump, thus never
// waits for the loop's body (a crawler waiting on a slow reader holds up
// other clients of the server, and the loop's own reads of the keys it
// lists); the loop may do what it likes between keys, Close included
// (Close waits for the dump being read, not for the loop). A dump that
// lists more than the server's memory can hold (its keys and their item
// headers past twice limit_maxbytes of "stats": a server that repeats its
// dump, or never ends it) is that server's failure, an error wrapping
// ErrProtocol. Keys written or deleted meanwhile may or may not appear.
// Each key is listed once, from the server Get reads it from: a copy on
// another server (left there while its server was ejected, or written by
// a client with other servers), which Get does not see, is not listed. A
// failure (a server down, the crawler disabled or busy, ctx ended, the
// Client closed) is yielded as a final ("", err) after the keys of the
// servers that answered.
//
// What bounds the time of a listing: a server must start its dump within
// the timeout (WithTimeout) and never go quiet for longer, so that a
// server down or silent costs up to the timeout, in turn: N of them cost
// up to N times the timeout. Once started, a dump must also keep up a pace
// of 48 KiB a second, with the timeout's slack: one that trickles, each
// read within the timeout, fails with an error wrapping
// backend.ErrUnavailable that names its server, even when ctx has no
// deadline. A key longer than memcached's 250 bytes, or a "stats" reply
// (asked for the server's memory) longer than 64 KiB, is that server's
// failure too, an error wrapping ErrProtocol.
func (c *Client) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var errs []error
		for _, n := range c.nodes {
			if ctx.Err() != nil {
				break
			}
			// A listing is a call in progress (which Close waits for)
			// while it reads a dump, not while the loop's body runs: a
			// Close made meanwhile would wait for the loop, forever if
			// the body waits for that Close.
			tk, err := c.enter("keys", "")
			if err != nil {
				errs = append(errs, err)
				break
			}
			keys, err := c.metadump(ctx, n.addr, prefix)
			c.leave(tk)
			if err != nil {
				errs = append(errs, err)
			}
			if keys == nil {
				continue
			}
			stop, err := keys.each(func(k string) bool {
				if len(c.nodes) > 1 && c.ring.Load().node(k) != n {
					return true // a copy Get does not read, listed from its own server
				}
				return yield(k, nil)
			})
			keys.close()
			if stop {
				return
			}
			if err != nil {
				errs = append(errs, &opError{Op: "keys", Addr: n.addr, Kind: backend.ErrUnavailable,
					Err: fmt.Errorf("reading back the listed keys: %w", err)})
			}
		}
		if err := ctx.Err(); err != nil {
			errs = []error{fmt.Errorf("memcached: keys: %w", err)}
		}
		if err := errors.Join(errs...); err != nil {
			yield("", err)
		}
	}
}

// busyRetry is the wait before metadump asks a busy crawler again.
const busyRetry = 10 * time.Millisecond

// metadump reads one server's dump whole and returns its keys that start
// with prefix, or an error. A panic (a bug) is an error.
func (c *Client) metadump(ctx context.Context, addr, prefix string) (keys *keyList, err error) {
	defer func() {
		if v := recover(); v != nil {
			if keys != nil {
				keys.close()
			}
			keys, err = nil, &opError{Op: "keys", Addr: addr, Kind: ErrProtocol, Err: panicError("listing keys", v)}
		}
	}()
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return nil, c.adminErr(ctx, "keys", addr, err)
	}
	defer a.close()
	budget, err := dumpBudget(a)
	if err != nil {
		return nil, c.adminErr(ctx, "keys", addr, err)
	}
	// The crawler runs one dump at a time per server: another client's
	// (or a dump abandoned a moment ago) makes it answer BUSY. Retry
	// within the command's timeout, and say so when it runs out: the
	// deadline would otherwise end the wait as an i/o timeout, as if the
	// server did not answer.
	//
	// "metadump hash" walks the hash table, where an item stays put;
	// "metadump all" walks the LRU lists, and misses the items that the LRU
	// maintainer moves between lists during the walk (as it does with items
	// written a moment ago). memcached before 1.6.10 knows only "all".
	cmd := "lru_crawler metadump hash"
	var first string // the first line of the dump: a key, END, or a refusal
	for {
		if err := a.command(cmd); err != nil {
			return nil, c.adminErr(ctx, "keys", addr, err)
		}
		line, err := a.readLine()
		if err != nil {
			return nil, c.adminErr(ctx, "keys", addr, err)
		}
		if cmd != "lru_crawler metadump all" && (strings.HasPrefix(line, "CLIENT_ERROR") || line == "ERROR") {
			cmd = "lru_crawler metadump all"
			continue
		}
		if !strings.HasPrefix(line, "BUSY") {
			first = line
			break
		}
		// Stop with a quarter of the timeout left for the round trip a
		// retry would make.
		if time.Until(a.until) < busyRetry+c.cfg.timeout/4 {
			return nil, c.adminErr(ctx, "keys", addr, fmt.Errorf("the LRU crawler stayed busy with another dump "+
				"(another listing's, or one given up on a moment ago) within the timeout (%v): %q", c.cfg.timeout, line))
		}
		select {
		case <-ctx.Done():
			return nil, c.adminErr(ctx, "keys", addr, ctx.Err())
		case <-time.After(busyRetry):
		}
	}
	switch {
	case strings.HasPrefix(first, "ERROR"), strings.HasPrefix(first, "CLIENT_ERROR"), strings.HasPrefix(first, "SERVER_ERROR"):
		return nil, &opError{Op: "keys", Addr: addr, Kind: backend.ErrNotSupported,
			Err: fmt.Errorf("lru_crawler metadump refused: %q (is the LRU crawler enabled?)", first)}
	}
	a.stream()
	keys = &keyList{}
	if err := readDump(a.r, []byte(first), []byte(prefix), budget, keys); err != nil {
		keys.close()
		return nil, c.adminErr(ctx, "keys", addr, err)
	}
	return keys, nil
}

// What a dump may list. Every item memcached holds keeps its key and its
// header (itemHeader, 48 bytes) in the server's memory, limit_maxbytes
// of "stats" (-m), extstore included, and memcached grants each of its
// slab classes (at most 64) its first page of 1 MiB even past that limit.
// The keys a dump lists, each charged its length and itemHeader, thus
// cannot take more than the memory plus those pages; twice that leaves
// room for the items written while the crawler walks (a dump lists those
// alive when it gets to them, not those alive at one time). A server that
// lists more (a broken one that repeats its dump, a hostile one that never
// ends it) is refused with a protocol error, rather than filling the
// caller's memory and disk (the keys past 16 MiB go to a temporary file)
// for as long as the caller's ctx lets it: memdict keys has no deadline.
// (Variables for the tests.)
var (
	slabPagesSlack  uint64 = 64 << 20
	defaultMaxBytes uint64 = 64 << 20 // memcached's -m, for a server that does not say
)

// dumpBudget asks the server on a for its memory (limit_maxbytes of
// "stats") and returns how many bytes of keys, charged as readDump charges
// them, its dump may list. A server that refuses "stats" or does not say
// is taken to have memcached's default memory.
func dumpBudget(a *adminConn) (uint64, error) {
	if err := a.command("stats"); err != nil {
		return 0, err
	}
	maxBytes := defaultMaxBytes
	stats, refused, err := a.readStats()
	switch {
	case refused:
	case err != nil:
		return 0, err
	default:
		if v, err := strconv.ParseUint(stats["limit_maxbytes"], 10, 64); err == nil {
			maxBytes = v
		}
	}
	// Saturating: a hostile server may claim any size, and is then
	// bounded by what it claims.
	if maxBytes > math.MaxUint64/2-slabPagesSlack {
		return math.MaxUint64, nil
	}
	return 2 * (maxBytes + slabPagesSlack), nil
}

// metadumpBuffer is the read buffer of a dump (and the longest line
// accepted, far above memcached's).
const metadumpBuffer = 256 << 10

// readDump reads the lines of a metadump, first (read already) and those
// after it up to the END line, and adds the decoded keys that start with
// prefix to keys. Every key listed, whatever its prefix, is charged its
// length and itemHeader (a quarter of its line if more): a dump whose keys
// cost more than budget is a protocol error (see dumpBudget). It does nothing else between two reads:
// the server's crawler never waits on it.
func readDump(br *bufio.Reader, first, prefix []byte, budget uint64, keys *keyList) error {
	var (
		dec    []byte
		spent  uint64
		listed int
	)
	line := first
	for {
		if line == nil {
			l, err := br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				return protoErr(fmt.Sprintf("metadump line longer than %d bytes", br.Size()))
			}
			if err != nil {
				return err
			}
			// Metadump ends its lines with LF, and its last one, END, with CRLF.
			line = bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
		}
		enc, ok := bytes.CutPrefix(line, []byte("key="))
		if !ok {
			switch {
			case bytes.Equal(line, []byte("END")):
				return nil
			case bytes.HasPrefix(line, []byte("BUSY")), bytes.HasPrefix(line, []byte("ERROR")),
				bytes.HasPrefix(line, []byte("CLIENT_ERROR")), bytes.HasPrefix(line, []byte("SERVER_ERROR")):
				return protoErr(fmt.Sprintf("metadump ended by %q", line))
			}
			return protoErr(fmt.Sprintf("unexpected line in metadump: %q", line))
		}
		if i := bytes.IndexByte(enc, ' '); i >= 0 {
			enc = enc[:i]
		}
		// memcached holds no key longer than maxKeyLen, URL-encoded in
		// at most three times as many bytes: a longer one is not its, and
		// is refused before it is decoded or kept.
		if len(enc) > 3*maxKeyLen {
			return protoErr(fmt.Sprintf("metadump lists a key of %d bytes encoded, longer than memcached's keys (%d bytes): %.80q...",
				len(enc), maxKeyLen, enc))
		}
		key := enc
		if bytes.IndexByte(enc, '%') >= 0 {
			if dec, ok = unescape(dec[:0], enc); !ok {
				return protoErr(fmt.Sprintf("bad key encoding in metadump: %q", line))
			}
			key = dec
		}
		if len(key) > maxKeyLen {
			return protoErr(fmt.Sprintf("metadump lists a key of %d bytes, longer than memcached's keys (%d bytes): %.80q...",
				len(key), maxKeyLen, key))
		}
		listed++
		// A line is charged its key and itemHeader, or a quarter of its
		// length if more: memcached's lines hold the key, URL-encoded in
		// up to three times its length, and some hundred bytes of fields,
		// under a quarter of that charge, so that only a line padded by a
		// hostile server pays for its length, and the bytes a dump may send
		// (which its pace, minDumpRate, makes time) are bounded with its
		// keys.
		if spent += max(uint64(len(key))+itemHeader, uint64(len(line))/4); spent > budget {
			return protoErr(fmt.Sprintf("metadump goes on past %d keys, more than twice what the server's memory "+
				"(limit_maxbytes of stats) holds: over %d bytes of keys and item headers, or of their lines (the server repeats its dump or never ends it)",
				listed, budget))
		}
		if bytes.HasPrefix(key, prefix) {
			if err := keys.add(key); err != nil {
				return err
			}
		}
		line = nil
	}
}

// unescape appends the URL-decoding (%XX) of s to dst.
func unescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			dst = append(dst, s[i])
			continue
		}
		if i+2 >= len(s) {
			return dst, false
		}
		h, ok1 := unhex(s[i+1])
		l, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, h<<4|l)
		i += 2
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// keyListMem is how many bytes of keys a keyList holds in memory before
// it writes them to a temporary file (a variable for the tests).
var keyListMem = 16 << 20

// keyList is the keys of one server's dump: each a uvarint length and its
// bytes, in memory up to keyListMem bytes, the rest in a temporary file.
type keyList struct {
	mem  []byte
	file *os.File
	fw   *bufio.Writer
}

// add appends key.
func (l *keyList) add(key []byte) error {
	l.mem = binary.AppendUvarint(l.mem, uint64(len(key)))
	l.mem = append(l.mem, key...)
	if len(l.mem) < keyListMem {
		return nil
	}
	if l.file == nil {
		f, err := os.CreateTemp("", "memdict-keys-*")
		if err != nil {
			return fmt.Errorf("memcached: keys: a temporary file for the listed keys: %w", err)
		}
		l.file, l.fw = f, bufio.NewWriterSize(f, 64<<10)
	}
	if _, err := l.fw.Write(l.mem); err != nil {
		return fmt.Errorf("memcached: keys: writing the listed keys to %s: %w", l.file.Name(), err)
	}
	l.mem = l.mem[:0]
	return nil
}

// each calls yield with every key, those of the file first, until yield
// returns false (stop).
func (l *keyList) each(yield func(string) bool) (stop bool, err error) {
	if l.file != nil {
		if err := l.fw.Flush(); err != nil {
			return false, err
		}
		if _, err := l.file.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		br := bufio.NewReaderSize(l.file, 64<<10)
		var buf []byte
		for {
			n, err := binary.ReadUvarint(br)
			if err == io.EOF {
				break
			}
			if err != nil || n > 1<<20 {
				return false, fmt.Errorf("reading %s: bad record (%v)", l.file.Name(), err)
			}
			if cap(buf) < int(n) {
				buf = make([]byte, n)
			}
			if _, err := io.ReadFull(br, buf[:n]); err != nil {
				return false, fmt.Errorf("reading %s: %w", l.file.Name(), err)
			}
			if !yield(string(buf[:n])) {
				return true, nil
			}
		}
	}
	for rest := l.mem; len(rest) > 0; {
		n, k := binary.Uvarint(rest)
		rest = rest[k:]
		if !yield(string(rest[:n])) {
			return true, nil
		}
		rest = rest[n:]
	}
	return false, nil
}

// close removes the temporary file, if any.
func (l *keyList) close() {
	if l.file != nil {
		_ = l.file.Close()
		_ = os.Remove(l.file.Name())
		l.file = nil
	}
	l.mem = nil
}

// Describe implements backend.Describer, without I/O: the system
// "memcached" and, for each server in the order given to New, the number
// of meta-protocol connections open to it (at most WithConns). Idle is -1:
// the connections are pipelined, shared by every call. The text-protocol
// client of a server without meta commands is not counted.
func (c *Client) Describe() backend.Description {
	d := backend.Description{System: "memcached", Servers: make([]backend.ServerConns, 0, len(c.nodes))}
	for _, n := range c.nodes {
		open := 0
		if !c.closed.Load() {
			for i := range n.pool.slots {
				if cn := n.pool.slots[i].cn.Load(); cn != nil && !cn.dead.Load() {
					open++
				}
			}
		}
		d.Servers = append(d.Servers, backend.ServerConns{Addr: n.addr, Open: open, Idle: -1})
	}
	return d
}
