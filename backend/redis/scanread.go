package redis

import (
	"context"
	"fmt"
	"io"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// Reading SCAN pages with bounds of their own.
//
// go-redis's ScanCmd allocates the key slice its reply announces before
// any key arrives, and the guard (conn.go) lets a reply announce up to the
// max value length (512 MiB by default) and replySlack: a 13-byte header
// announcing 33M keys made go-redis allocate 503 MiB. Keys reads each page
// with a goredis.RawWriteToCmd instead: go-redis streams the reply's lines
// and bulk strings to a scanReader, which checks the shape of a page (an
// array of a cursor and an array of keys) and bounds every count and
// length before it allocates anything: the keys of a page by
// maxPageKeys, their bytes by scanPageBytes, charged as they arrive rather
// than as announced (a key announced long costs nothing until its bytes
// come). A reply that is not a page fails the call with a protocol error
// naming the server, and go-redis closes the connection (the error is not
// a reply of the server's: see rawread.go).

// scanPageBytes bounds the bytes of the keys of one SCAN page: 64 times
// what COUNT keys of Redis's usual sizes take, and far less than the
// max value length that bounds a reply otherwise. (A variable for the
// tests.)
var scanPageBytes int64 = 64 << 20

// maxCursorDigits is the length of the largest cursor (a uint64).
const maxCursorDigits = 20

// maxPageKeys returns the keys a SCAN page asked with COUNT count may
// hold: COUNT is a hint, and a page holds the keys of the buckets it
// visits, more than COUNT where they chain, never ten times more.
func maxPageKeys(count int) int { return max(10*count, 10000) }

// Where a scanReader is in a page.
const (
	spTop    = iota // the page's array header
	spCursor        // the cursor
	spKeys          // the keys' array header
	spKey           // a key
	spDone          // the page is read
)

// scanReader is the io.Writer (and io.ReaderFrom) a SCAN page is streamed
// to (goredis.RawWriteToCmd): go-redis writes each line without its CRLF,
// then the CRLF, and hands each bulk string's bytes, CRLF included, to
// ReadFrom.
type scanReader struct {
	addr  string
	count int // the COUNT asked

	st    int
	crlf  bool  // a line was written: its CRLF comes next
	bulk  int64 // the length of the bulk string ReadFrom reads next, or -1
	blob  bool  // that bulk string is a RESP3 blob error
	left  int   // keys still to read
	bytes int64 // bytes of the keys read so far

	cursor uint64
	keys   []string
	reply  error // the server's error reply, if it sent one

	buf []byte // scratch for a key's bytes, grown as they arrive
}

// violation returns the protocol error of a reply that is not a page.
func (r *scanReader) violation(format string, args ...any) error {
	return &protoError{Addr: r.addr, Msg: "SCAN answered " + fmt.Sprintf(format, args...)}
}

// Write reads one line of the reply, or the CRLF that ends it.
func (r *scanReader) Write(p []byte) (int, error) {
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

// number parses the count or length of line p, at most limit.
func (r *scanReader) number(p []byte, limit int64, what string) (int64, error) {
	n, err := strconv.ParseInt(string(p[1:]), 10, 64)
	if err != nil || n < 0 || n > limit {
		return 0, r.violation("%.40q as %s (at most %d allowed)", p, what, limit)
	}
	return n, nil
}

// line reads one line of the reply.
func (r *scanReader) line(p []byte) error {
	if len(p) == 0 || r.bulk >= 0 {
		return r.violation("a line where a string's bytes were due")
	}
	t := p[0]
	switch r.st {
	case spTop:
		switch {
		case t == '-':
			r.reply, r.st = serverReply(p[1:]), spDone
			return nil
		case t == '!':
			n, err := r.number(p, maxLineLen, "the length of an error")
			if err != nil {
				return err
			}
			r.bulk, r.blob = n, true
			return nil
		case t == '*' && string(p[1:]) == "2":
			r.st = spCursor
			return nil
		}
		return r.violation("%.40q, not an array of a cursor and keys", p)
	case spCursor:
		switch t {
		case '$':
			n, err := r.number(p, maxCursorDigits, "the length of a cursor")
			if err != nil {
				return err
			}
			r.bulk = n
			return nil
		case '+':
			return r.setCursor(p[1:])
		}
		return r.violation("%.40q as a cursor, not a string", p)
	case spKeys:
		if t != '*' {
			return r.violation("%.40q as its keys, not an array", p)
		}
		n, err := r.number(p, int64(maxPageKeys(r.count)), "the count of a page's keys")
		if err != nil {
			return err
		}
		r.keys = make([]string, 0, n)
		r.left, r.st = int(n), spKey
		if n == 0 {
			r.st = spDone
		}
		return nil
	case spKey:
		switch t {
		case '$':
			n, err := r.number(p, scanPageBytes-r.bytes, "the length of a key, with the page's other keys")
			if err != nil {
				return err
			}
			r.bulk = n
			return nil
		case '+':
			if int64(len(p)-1) > scanPageBytes-r.bytes {
				return r.violation("keys of more than %d bytes in a page", scanPageBytes)
			}
			r.bytes += int64(len(p) - 1)
			r.addKey(string(p[1:]))
			return nil
		}
		return r.violation("%.40q as a key, not a string", p)
	}
	return r.violation("more than one reply")
}

// setCursor parses the cursor.
func (r *scanReader) setCursor(b []byte) error {
	c, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return r.violation("cursor %.40q, not a number of at most %d digits", b, maxCursorDigits)
	}
	r.cursor, r.st = c, spKeys
	return nil
}

// addKey records a key of the page.
func (r *scanReader) addKey(k string) {
	r.keys = append(r.keys, k)
	if r.left--; r.left == 0 {
		r.st = spDone
	}
}

// ReadFrom reads the bulk string the last line announced, and its CRLF,
// from src.
func (r *scanReader) ReadFrom(src io.Reader) (int64, error) {
	n := r.bulk
	if n < 0 {
		return 0, r.violation("bytes where a line was due")
	}
	r.bulk = -1
	r.crlf = false // the CRLF is read here, with the bytes
	if err := r.read(src, n+2); err != nil {
		return 0, err
	}
	if string(r.buf[n:n+2]) != "\r\n" {
		return 0, r.violation("a string not followed by CRLF")
	}
	b := r.buf[:n]
	switch {
	case r.blob:
		r.blob = false
		r.reply, r.st = serverReply(b), spDone
	case r.st == spCursor:
		if err := r.setCursor(b); err != nil {
			return 0, err
		}
	default:
		r.bytes += n
		r.addKey(string(b))
	}
	return n + 2, nil
}

// read reads n bytes from src into r.buf, growing it as they arrive
// rather than to what was announced.
func (r *scanReader) read(src io.Reader, n int64) error {
	r.buf = r.buf[:0]
	for int64(len(r.buf)) < n {
		if len(r.buf) == cap(r.buf) {
			grow := min(max(2*int64(cap(r.buf)), 4096), n)
			nb := make([]byte, len(r.buf), grow)
			copy(nb, r.buf)
			r.buf = nb
		}
		m, err := src.Read(r.buf[len(r.buf):min(int64(cap(r.buf)), n)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil && int64(len(r.buf)) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// scanOnce sends SCAN cursor MATCH pattern COUNT count to n and reads its
// reply with a scanReader. It returns the server's error reply as the
// error, as go-redis's Scan does.
func scanOnce(ctx context.Context, n *goredis.Client, cursor uint64, pattern string, count int) (scanPage, error) {
	r := &scanReader{addr: n.Options().Addr, count: count, bulk: -1}
	cmd := goredis.NewRawWriteToCmd(ctx, r, "scan", cursor, "match", pattern, "count", count)
	if err := n.Process(ctx, cmd); err != nil {
		return scanPage{}, err
	}
	switch {
	case r.reply != nil:
		return scanPage{}, r.reply
	case r.st != spDone:
		return scanPage{}, r.violation("an incomplete page")
	}
	return scanPage{r.keys, r.cursor}, nil
}
