package memcached

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/decimal"
)

// The read path. gomemcache allocates a request with fmt, an Item, a key
// string and a header string for every value it reads, and starts a
// goroutine per server for GetMulti. Reads are what a cache does most, so
// the driver sends its "gets" itself, on a small pool of connections per
// server, and parses the reply with no allocation beyond the values (packed
// into one buffer per reply) and the result map. Writes and the other
// commands go through gomemcache. With batch=false reads go through
// gomemcache too.

// maxDeclaredValue bounds the size a reply may declare for one value:
// memcached's own largest item (-I 1024m). A larger size can only come from
// something that is not memcached; it is a protocol error rather than an
// allocation of that size.
const maxDeclaredValue = 1 << 30

// mconn is a pooled connection for reads.
type mconn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// getConn returns an idle connection to n (reused true), or dials one
// within ctx, with its deadline set: the whole operation, dialing
// included, ends by deadline.
func (c *Client) getConn(ctx context.Context, n *node, deadline time.Time, fresh bool) (mc *mconn, reused bool, err error) {
	if !fresh {
		select {
		case mc := <-n.idle:
			_ = mc.nc.SetDeadline(deadline)
			return mc, true, nil
		default:
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := c.dialer.dial(ctx, "tcp", n.addr)
	if err != nil {
		return nil, false, err
	}
	_ = nc.SetDeadline(deadline)
	return &mconn{nc: nc, r: bufio.NewReaderSize(nc, 16<<10), w: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

// staleConn reports whether err, on a connection taken from the pool,
// means that the server had closed it while idle (it restarted, or timed
// the connection out): the request is then sent again on a new connection.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// putConn returns a healthy connection to n's pool, or closes it if the
// pool is full or the Client closed.
func (c *Client) putConn(n *node, mc *mconn) {
	if c.closed.Load() {
		_ = mc.nc.Close()
		return
	}
	select {
	case n.idle <- mc:
	default:
		_ = mc.nc.Close()
	}
}

// drainConns closes n's idle read connections.
func drainConns(n *node) {
	for {
		select {
		case mc := <-n.idle:
			_ = mc.nc.Close()
		default:
			return
		}
	}
}

// begin prepares a read on n for ctx: it takes a connection whose
// deadline is the timeout or ctx's deadline, whichever comes first, and
// arranges for ctx's cancellation to interrupt its I/O. The returned end
// function must be called with the outcome of the read: it gives the
// connection back (or closes it) and turns an error caused by ctx into one
// wrapping ctx.Err(), which says nothing about the server.
func (c *Client) begin(ctx context.Context, n *node, fresh bool) (*mconn, bool, func(error) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, nil, err
	}
	deadline := time.Now().Add(c.cfg.timeout)
	byCtx := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, byCtx = d, true
	}
	mc, reused, err := c.getConn(ctx, n, deadline, fresh)
	if err != nil {
		if e := ctxCause(ctx, byCtx, err); e != nil {
			return nil, false, nil, e
		}
		return nil, false, nil, err
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = mc.nc.SetDeadline(time.Unix(1, 0)) })
	}
	end := func(err error) error {
		interrupted := stop != nil && !stop()
		if err != nil || interrupted {
			// A connection in an unknown state, or whose deadline the
			// AfterFunc may still change, is not reused.
			_ = mc.nc.Close()
		} else {
			c.putConn(n, mc)
		}
		if err != nil {
			if e := ctxCause(ctx, byCtx, err); e != nil {
				return e
			}
		}
		return err
	}
	return mc, reused, end, nil
}

// ctxCause returns an error wrapping the context's error if err was caused
// by ctx ending (a cancellation, or its deadline standing in for the
// timeout), or nil.
func ctxCause(ctx context.Context, byCtx bool, err error) error {
	if e := ctx.Err(); e != nil {
		return fmt.Errorf("%w (%v)", e, err)
	}
	var ne net.Error
	if byCtx && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return nil
}

// readMulti sends "gets keys..." to n and returns the items found. It does
// not record the outcome on n. The whole exchange is bounded by the
// timeout and by ctx.
func (c *Client) readMulti(ctx context.Context, n *node, keys []string) (map[string]backend.Item, error) {
	for attempt := 0; ; attempt++ {
		mc, reused, end, err := c.begin(ctx, n, attempt > 0)
		if err != nil {
			return nil, err
		}
		items, err := mc.gets(keys)
		err = end(err)
		if err != nil && reused && len(items) == 0 && staleConn(err) && ctx.Err() == nil {
			continue
		}
		return items, err
	}
}

// readOne is readMulti for one key: it returns the item, or found false.
func (c *Client) readOne(ctx context.Context, n *node, key string) (it backend.Item, found bool, err error) {
	for attempt := 0; ; attempt++ {
		mc, reused, end, err := c.begin(ctx, n, attempt > 0)
		if err != nil {
			return it, false, err
		}
		it, found, err = mc.getsOne(key)
		if err = end(err); err != nil {
			if reused && staleConn(err) && ctx.Err() == nil {
				continue
			}
			return backend.Item{}, false, err
		}
		return it, found, nil
	}
}

func (mc *mconn) writeRequest(keys []string) error {
	mc.w.WriteString("gets")
	for _, k := range keys {
		mc.w.WriteByte(' ')
		mc.w.WriteString(k)
	}
	mc.w.WriteString("\r\n")
	return mc.w.Flush()
}

var (
	prefixValue = []byte("VALUE ")
	lineEnd     = []byte("END\r\n")
)

// header parses "VALUE <key> <flags> <bytes> [<cas>]\r\n".
func parseHeader(line []byte) (key []byte, size int, cas uint64, err error) {
	if bytes.HasPrefix(line, []byte("SERVER_ERROR")) {
		// The server could not do it (out of memory, ...); classify maps
		// this to backend.ErrUnavailable without blaming the server.
		return nil, 0, 0, fmt.Errorf("memcached replied %q", bytes.TrimRight(line, "\r\n"))
	}
	if !bytes.HasPrefix(line, prefixValue) || !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, 0, 0, protoErr(fmt.Sprintf("unexpected line in get reply: %q", line))
	}
	rest := line[len(prefixValue) : len(line)-2]
	var fields [4][]byte
	nf := 0
	for len(rest) > 0 && nf < 4 {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			fields[nf] = rest
			nf++
			rest = nil
			break
		}
		fields[nf] = rest[:i]
		nf++
		rest = rest[i+1:]
	}
	if nf < 3 || len(rest) > 0 {
		return nil, 0, 0, protoErr(fmt.Sprintf("unexpected line in get reply: %q", line))
	}
	sz, ok := decimal.ParseUint(fields[2])
	if !ok || sz > maxDeclaredValue {
		return nil, 0, 0, protoErr(fmt.Sprintf("bad value size in get reply: %q", line))
	}
	if _, ok := decimal.ParseUint(fields[1]); !ok {
		return nil, 0, 0, protoErr(fmt.Sprintf("bad flags in get reply: %q", line))
	}
	if nf == 4 {
		if cas, ok = decimal.ParseUint(fields[3]); !ok {
			return nil, 0, 0, protoErr(fmt.Sprintf("bad CAS in get reply: %q", line))
		}
	}
	return fields[0], int(sz), cas, nil
}

// readLine reads one reply line.
func (mc *mconn) readLine() ([]byte, error) {
	line, err := mc.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, protoErr(fmt.Sprintf("get reply line longer than %d bytes", mc.r.Size()))
	}
	return line, err
}

// readValue reads size bytes and the CRLF after them into dst.
func (mc *mconn) readValue(dst []byte) error {
	if _, err := io.ReadFull(mc.r, dst); err != nil {
		return unexpected(err)
	}
	cr, err := mc.r.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	lf, err := mc.r.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	if cr != '\r' || lf != '\n' {
		return protoErr("value in get reply not followed by CRLF")
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (mc *mconn) getsOne(key string) (it backend.Item, found bool, err error) {
	if err := mc.writeRequest([]string{key}); err != nil {
		return it, false, err
	}
	for {
		line, err := mc.readLine()
		if err != nil {
			return backend.Item{}, false, err
		}
		if bytes.Equal(line, lineEnd) {
			return it, found, nil
		}
		k, size, cas, err := parseHeader(line)
		if err != nil {
			return backend.Item{}, false, err
		}
		if found || string(k) != key {
			return backend.Item{}, false, protoErr(fmt.Sprintf("get reply for key %q, asked %q", k, key))
		}
		v := make([]byte, size)
		if err := mc.readValue(v); err != nil {
			return backend.Item{}, false, err
		}
		it, found = backend.Item{Key: key, Value: v, CAS: cas}, true
	}
}

// arenaSize is the size of the buffers that small values of one reply are
// packed into.
const arenaSize = 8 << 10

func (mc *mconn) gets(keys []string) (map[string]backend.Item, error) {
	if err := mc.writeRequest(keys); err != nil {
		return nil, err
	}
	items := make(map[string]backend.Item, len(keys))
	var arena []byte
	next := 0 // memcached answers in request order: search from here
	for {
		line, err := mc.readLine()
		if err != nil {
			return items, err
		}
		if bytes.Equal(line, lineEnd) {
			return items, nil
		}
		k, size, cas, err := parseHeader(line)
		if err != nil {
			return items, err
		}
		// Use the caller's string for the key rather than a new one.
		key := ""
		for i := next; i < len(keys); i++ {
			if keys[i] == string(k) {
				key, next = keys[i], i+1
				break
			}
		}
		if key == "" {
			return items, protoErr(fmt.Sprintf("get reply for key %q, which was not asked for (or not in order)", k))
		}
		var v []byte
		if size > arenaSize/4 {
			v = make([]byte, size)
		} else {
			if len(arena) < size {
				arena = make([]byte, arenaSize)
			}
			v, arena = arena[:size:size], arena[size:]
		}
		if err := mc.readValue(v); err != nil {
			return items, err
		}
		items[key] = backend.Item{Key: key, Value: v, CAS: cas}
	}
}
