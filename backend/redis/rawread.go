package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/valuepool"
)

// Reading Gets' replies without go-redis's copies.
//
// go-redis reads a bulk string into a buffer it makes for it (zeroed,
// then filled), and an MGET's into one each: at 16 KiB values that
// allocation, its zeroing and the garbage collections it causes were a
// third of a client's CPU time. On a standalone server the lanes' GETs
// and MGETs are goredis.RawWriteToCmd commands instead: go-redis streams
// the reply's lines and bulk strings to a replyReader, which reads each
// value's stored string straight from the connection's buffer into a
// buffer from valuepool (which a Dict that decoded the value hands back),
// its 11-byte header apart, so that the Value is the whole buffer.
//
// What the server sends is checked as go-redis's own reading of it was:
// the guard (conn.go) has bounded and validated the RESP stream before
// go-redis reads it, and the replyReader checks what the command must get
// (an array of one value per key for an MGET, a bulk string or a null
// for a GET) before it allocates anything, bounds each value by the
// largest value this package writes, and checks each value's token
// against its key (owners.go). A reply that does not fit its command
// fails the flush with an error wrapping ErrProtocol, and go-redis closes
// the connection.

// replyReader is the io.Writer (and io.ReaderFrom) a GET's or an MGET's
// reply is streamed to (goredis.RawWriteToCmd): go-redis writes each line
// without its CRLF, then the CRLF, and hands each bulk string's bytes,
// CRLF included, to ReadFrom.
type replyReader struct {
	l     *lane
	gets  []*call
	array bool // an MGET: an array of len(gets) values
	i     int  // the call the next value answers

	started bool // the reply's first line was read
	crlf    bool // a line was written: its CRLF comes next
	bulk    int  // the length of the bulk string ReadFrom reads next, or -1
	blobErr bool // that bulk string is a RESP3 blob error

	// reply is the server's error reply, if it sent one (go-redis returns
	// no error then: it is the command's outcome).
	reply error

	// Scratch space of ReadFrom, here rather than on its stack: what is
	// read into passes through an io.Reader, so it would escape, and cost
	// two allocations per value.
	head [16]byte // a value's header, or a foreign value's first bytes
	end  [2]byte  // the CRLF after a value
}

// serverReply is an error reply of the server's, as go-redis reports
// them (a goredis.Error).
type serverReply string

func (e serverReply) Error() string { return string(e) }

// RedisError marks the error as the server's reply (goredis.Error).
func (serverReply) RedisError() {}

var _ goredis.Error = serverReply("")

// violation returns the protocol error of a reply that does not fit the
// command.
func (r *replyReader) violation(format string, args ...any) error {
	cmd := "GET"
	if r.array {
		cmd = "MGET"
	}
	return &protoError{Addr: r.l.addr, Msg: cmd + " answered " + fmt.Sprintf(format, args...)}
}

// Write reads one line of the reply, or the CRLF that ends it.
func (r *replyReader) Write(p []byte) (int, error) {
	if r.crlf {
		r.crlf = false
		if string(p) != "\r\n" {
			return 0, r.violation("a line without its CRLF")
		}
		return len(p), nil
	}
	if err := r.line(p); err != nil {
		return 0, err
	}
	r.crlf = true
	return len(p), nil
}

// line reads one line of the reply: its type and what follows it.
func (r *replyReader) line(p []byte) error {
	if len(p) == 0 || r.bulk >= 0 {
		return r.violation("a line where a value's bytes were due")
	}
	if r.reply != nil || r.i >= len(r.gets) && r.started {
		return r.violation("more than one reply")
	}
	first := !r.started
	r.started = true
	body := p[1:]
	switch t := p[0]; {
	case first && t == '-':
		r.reply = serverReply(body)
		return nil
	case first && t == '!':
		n, err := r.length(body)
		if err != nil {
			return err
		}
		r.bulk, r.blobErr = n, true
		return nil
	case first && r.array:
		if t != '*' {
			return r.violation("%.40q, not an array", p)
		}
		n, err := strconv.Atoi(string(body))
		if err != nil || n != len(r.gets) {
			return r.violation("%.40q to %d keys", p, len(r.gets))
		}
		return nil
	case t == '_' && len(body) == 0, t == '$' && string(body) == "-1":
		// A null: the key is missing (for MGET, or holds another type).
		c := r.gets[r.i]
		r.i++
		c.err, c.final = errNotFound, true
		return nil
	case t == '$':
		n, err := r.length(body)
		if err != nil {
			return err
		}
		r.bulk = n
		return nil
	}
	return r.violation("%.40q, not a string or a null", p)
}

// length parses the length of a bulk string, which no value this package
// writes exceeds: checked before anything is allocated for it.
func (r *replyReader) length(body []byte) (int, error) {
	n, err := strconv.Atoi(string(body))
	if err != nil || n < 0 || n > r.l.b.cfg.maxValueSize+headerLen {
		return 0, r.violation("a string of length %.40q (at most %d allowed)", body, r.l.b.cfg.maxValueSize+headerLen)
	}
	return n, nil
}

// ReadFrom reads the bulk string the last line announced, and its CRLF,
// from src, and sets the result of the call it answers.
func (r *replyReader) ReadFrom(src io.Reader) (int64, error) {
	n := r.bulk
	if n < 0 {
		return 0, r.violation("bytes where a line was due")
	}
	r.bulk = -1
	r.crlf = false // the CRLF is read here, with the bytes
	total := int64(n) + 2
	if r.blobErr {
		b := make([]byte, n+2)
		if _, err := io.ReadFull(src, b); err != nil {
			return 0, err
		}
		r.reply = serverReply(b[:n])
		return total, r.crlfOf(b[n:])
	}
	c := r.gets[r.i]
	r.i++
	head := r.head[:]
	switch {
	case n == 0 && r.array:
		// As in mget: an empty string reads as a miss (no value this
		// package writes is empty).
		c.err, c.final = errNotFound, true
	case n < headerLen:
		if _, err := io.ReadFull(src, head[:n]); err != nil {
			return 0, err
		}
		c.err, c.final = fmt.Errorf("redis: get: %w", foreignLenError(c.key, string(head[:n]), n)), true
	default:
		hdr := head[:headerLen]
		if _, err := io.ReadFull(src, hdr); err != nil {
			return 0, err
		}
		if string(hdr[:len(magic)]) != magic {
			m := min(n, len(head))
			if _, err := io.ReadFull(src, head[headerLen:m]); err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, src, int64(n-m)); err != nil {
				return 0, err
			}
			c.err, c.final = fmt.Errorf("redis: get: %w", foreignLenError(c.key, string(head[:m]), n)), true
			break
		}
		cas := binary.BigEndian.Uint64(hdr[len(magic):])
		v := []byte{}
		if n > headerLen {
			// A long value is read as its bytes arrive: the length alone
			// is the server's word (see valuepool.ReadFull). On a guarded
			// connection half of them have arrived already (the guard's
			// hold), as ReadFull would wait for: read straight into the
			// value's buffer.
			avail := buffered(src)
			if g := r.l.b.guard; g != nil && g.all {
				avail = n - headerLen
			}
			var err error
			if v, err = valuepool.ReadFull(src, n-headerLen, avail, valuepool.Get); err != nil {
				return 0, err
			}
		}
		if err := r.l.b.owners.check(r.l.addr, c.key, cas); err != nil {
			c.err = err
			break
		}
		c.item = backend.Item{Key: c.key, Value: v, CAS: cas}
	}
	if _, err := io.ReadFull(src, r.end[:]); err != nil {
		return 0, err
	}
	return total, r.crlfOf(r.end[:])
}

// buffered returns how many of src's next bytes go-redis holds in its
// buffer already: src is the io.LimitedReader of the io.CopyN with which
// go-redis hands a bulk string's bytes from its bufio.Reader.
func buffered(src io.Reader) int {
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		return 0
	}
	if b, ok := lr.R.(interface{ Buffered() int }); ok {
		return int(min(int64(b.Buffered()), lr.N))
	}
	return 0
}

// crlfOf checks that b, the two bytes after a bulk string, are its CRLF.
func (r *replyReader) crlfOf(b []byte) error {
	if string(b) != "\r\n" {
		return r.violation("a string not followed by CRLF")
	}
	return nil
}

// rawGets sends the GET of gets[0] (array false) or the MGET of the keys
// of gets, reads the reply with a replyReader and sets each Get's result.
// It returns the error of the exchange, or the server's error reply.
func (l *lane) rawGets(ctx context.Context, gets []*call, array bool) error {
	// The first call's reader, rather than a new one (see call).
	r := &gets[0].reader
	*r = replyReader{l: l, gets: gets, array: array, bulk: -1}
	defer func() { r.l, r.gets, r.reply = nil, nil, nil }() // keep no other call
	var cmd *goredis.RawWriteToCmd
	if array {
		cmd = goredis.NewRawWriteToCmd(ctx, r, mgetArgs(gets, true)...)
	} else {
		// As in mget: a *string, not a boxed copy of the key; the call's
		// own array, not a new slice.
		c := gets[0]
		c.argv[0], c.argv[1] = "get", &c.key
		cmd = goredis.NewRawWriteToCmd(ctx, r, c.argv[:2]...)
	}
	err := l.b.client.Process(ctx, cmd)
	switch {
	case err != nil:
	case r.reply != nil:
		err = r.reply
		if !array && wrongType(err) {
			c := gets[0]
			c.err, c.final = otherTypeError("get", c.key, err), true
			return nil
		}
	case r.i != len(gets):
		err = r.violation("%d values to %d keys", r.i, len(gets))
	default:
		return nil
	}
	// Nothing read from a reply that failed is kept.
	for _, c := range gets {
		c.item, c.err, c.final = backend.Item{}, err, false
	}
	return err
}
