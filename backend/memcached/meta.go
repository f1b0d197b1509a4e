package memcached

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/memdict/memdict/internal/decimal"
	"github.com/memdict/memdict/internal/valuepool"
)

// The meta protocol (memcached 1.6+, doc/protocol.txt "Meta Commands"):
// the encoding of requests and the parsing of replies, and the handshake
// that tells a meta server from a text-only one.

// serverError is a SERVER_ERROR reply: the server answered but could not
// do it (out of memory, a value too large). The connection stays in step.
type serverError string

func (e serverError) Error() string { return fmt.Sprintf("memcached replied %q", string(e)) }

// writeUint appends the decimal v to w without allocating.
func writeUint(w *bufio.Writer, v uint64) {
	b := w.AvailableBuffer()
	b = strconv.AppendUint(b, v, 10)
	_, _ = w.Write(b)
}

func writeInt(w *bufio.Writer, v int64) {
	b := w.AvailableBuffer()
	b = strconv.AppendInt(b, v, 10)
	_, _ = w.Write(b)
}

// encode writes r's commands to w. Errors stick in w and show at Flush.
// Every command carries its opaque (O<n>, see request.opaque), and every
// read the key flag (k), so that each reply names the request it answers.
// Reads ask for the client flags (f) and writes store them (F<flags>, left
// out when 0, memcached's default).
func encode(w *bufio.Writer, r *request) {
	switch r.kind {
	case kindGet:
		_, _ = w.WriteString("mg ")
		_, _ = w.WriteString(r.key)
		_, _ = w.WriteString(" v c f k")
		if r.mode == 't' {
			_, _ = w.WriteString(" t")
		}
	case kindTouch:
		_, _ = w.WriteString("mg ")
		_, _ = w.WriteString(r.key)
		_, _ = w.WriteString(" T")
		writeInt(w, int64(r.exp))
	case kindStore:
		encodeSet(w, r.key, r.value, r.exp, r.flags)
		switch r.mode {
		case 'E':
			_, _ = w.WriteString(" ME")
		case 'C':
			_, _ = w.WriteString(" C")
			writeUint(w, r.wireCAS())
		}
		writeOpaque(w, r.opaque)
		_, _ = w.Write(r.value)
		_, _ = w.WriteString("\r\n")
		return
	case kindDelete:
		_, _ = w.WriteString("md ")
		_, _ = w.WriteString(r.key)
		switch r.mode {
		case 'C':
			_, _ = w.WriteString(" C")
			writeUint(w, r.wireCAS())
		case 'I':
			_, _ = w.WriteString(" I")
			if r.exp != 0 {
				_, _ = w.WriteString(" T")
				writeInt(w, int64(r.exp))
			}
		}
	case kindLease:
		encodeLease(w, r)
	case kindArith:
		_, _ = w.WriteString("ma ")
		_, _ = w.WriteString(r.key)
		_, _ = w.WriteString(" v D")
		writeUint(w, r.delta)
		if r.mode == 'D' {
			_, _ = w.WriteString(" MD")
		}
	case kindHello:
		_, _ = w.WriteString(helloCmd)
		return
	case kindGetMulti:
		encodeQuietKeys(w, "mg ", r.keys, " v c f k", r.opaque)
		return
	case kindGets:
		_, _ = w.WriteString("gets")
		for _, k := range r.keys {
			_ = w.WriteByte(' ')
			_, _ = w.WriteString(k)
		}
		_, _ = w.WriteString("\r\nmg ")
		_, _ = w.WriteString(r.keys[0])
	case kindSetMulti:
		last := len(r.items) - 1
		for i := range r.items {
			it := &r.items[i]
			encodeSet(w, it.Key, it.Value, r.exps[i], it.Flags)
			if i < last {
				_, _ = w.WriteString(" q")
			}
			writeOpaque(w, r.opaque+uint32(i))
			_, _ = w.Write(it.Value)
			_, _ = w.WriteString("\r\n")
		}
		return
	case kindDeleteMulti:
		encodeQuietKeys(w, "md ", r.keys, "", r.opaque)
		return
	}
	writeOpaque(w, r.opaque)
}

// writeOpaque ends a command line with " O<opaque>" and CRLF.
func writeOpaque(w *bufio.Writer, opaque uint32) {
	_, _ = w.WriteString(" O")
	writeUint(w, uint64(opaque))
	_, _ = w.WriteString("\r\n")
}

// encodeQuietKeys writes cmd (such as "mg ") for each of keys with flags,
// the opaque base+i for the i-th key, and quiet mode (q) for all but the
// last: memcached then answers only what is worth saying (a hit, a
// failure), and always the last command, whose reply ends the batch.
func encodeQuietKeys(w *bufio.Writer, cmd string, keys []string, flags string, base uint32) {
	last := len(keys) - 1
	for i, k := range keys {
		_, _ = w.WriteString(cmd)
		_, _ = w.WriteString(k)
		_, _ = w.WriteString(flags)
		if i < last {
			_, _ = w.WriteString(" q")
		}
		writeOpaque(w, base+uint32(i))
	}
}

// encodeSet writes "ms <key> <len> T<exp>[ F<flags>]" (no line end).
func encodeSet(w *bufio.Writer, key string, value []byte, exp int32, flags uint32) {
	_, _ = w.WriteString("ms ")
	_, _ = w.WriteString(key)
	_ = w.WriteByte(' ')
	writeUint(w, uint64(len(value)))
	_, _ = w.WriteString(" T")
	writeInt(w, int64(exp))
	if flags != 0 {
		_, _ = w.WriteString(" F")
		writeUint(w, uint64(flags))
	}
}

// readLine reads one reply line, CRLF included.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, protoErr(fmt.Sprintf("reply line longer than %d bytes", br.Size()))
	}
	if err != nil {
		return nil, unexpected(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protoErr(fmt.Sprintf("reply line not ended by CRLF: %q", line))
	}
	return line, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// metaReply is a parsed reply line "<CD> [<size>] <flags>*".
type metaReply struct {
	code      [2]byte
	size      int
	cas       uint64
	opaque    uint32
	hasOpaque bool
	key       []byte // the k flag's key, in the line's buffer
	hasKey    bool
	flags     uint8  // flagWin, flagBusy, flagStale
	client    uint32 // the f flag: the item's client flags
	ttl       int64  // the t flag: the item's remaining TTL in seconds, -1 for none
	hasTTL    bool
}

// The lease flags of an mg reply (see lease.go).
const (
	flagWin   uint8 = 1 << iota // W: this client won the right to fill the item
	flagBusy                    // Z: another client was handed W already
	flagStale                   // X: the item was marked stale (md I)
)

// leaseFlag returns the flag bit of a W, Z or X reply flag.
func leaseFlag(b byte) uint8 {
	switch b {
	case 'W':
		return flagWin
	case 'Z':
		return flagBusy
	}
	return flagStale
}

// placeholder reports whether an mg reply of size bytes with flags is a
// lease placeholder: memcached's vivified item, 0 bytes with W or Z.
func placeholder(size int, flags uint8) bool {
	return size == 0 && flags&(flagWin|flagBusy) != 0
}

// parseMeta parses a reply line of a meta command. VA lines must carry a
// size no larger than limit.
func parseMeta(line []byte, limit int) (m metaReply, err error) {
	body := line[:len(line)-2]
	if len(body) < 2 || (len(body) > 2 && body[2] != ' ') {
		return m, protoErr(fmt.Sprintf("unexpected reply line %q", line))
	}
	m.code = [2]byte{body[0], body[1]}
	rest := body[min(3, len(body)):]
	if m.code == [2]byte{'V', 'A'} {
		i := bytes.IndexByte(rest, ' ')
		tok := rest
		if i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		sz, ok := decimal.ParseUint(tok)
		if !ok {
			return m, protoErr(fmt.Sprintf("bad value size in reply %q", line))
		}
		if sz > uint64(limit) {
			return m, protoErr(fmt.Sprintf("reply declares a value of %d bytes, more than the %d this client accepts (%s): %q", sz, limit, raiseLimit, line))
		}
		m.size = int(sz)
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, ' ')
		tok := rest
		if i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(tok) == 0 {
			continue
		}
		switch tok[0] {
		case 'c':
			v, ok := decimal.ParseUint(tok[1:])
			if !ok {
				return m, protoErr(fmt.Sprintf("bad CAS in reply %q", line))
			}
			m.cas = v
		case 'f':
			v, ok := decimal.ParseUint(tok[1:])
			if !ok || v > math.MaxUint32 {
				return m, protoErr(fmt.Sprintf("bad client flags in reply %q", line))
			}
			m.client = uint32(v)
		case 'O':
			v, ok := decimal.ParseUint(tok[1:])
			if !ok || v > math.MaxUint32 || m.hasOpaque {
				return m, protoErr(fmt.Sprintf("bad opaque in reply %q", line))
			}
			m.opaque, m.hasOpaque = uint32(v), true
		case 't':
			v, ok := decimal.ParseUint(tok[1:])
			switch {
			case string(tok) == "t-1":
				m.ttl = -1
			case ok && v <= math.MaxInt32:
				m.ttl = int64(v)
			default:
				return m, protoErr(fmt.Sprintf("bad TTL in reply %q", line))
			}
			m.hasTTL = true
		case 'k':
			if m.hasKey {
				return m, protoErr(fmt.Sprintf("two keys in reply %q", line))
			}
			m.key, m.hasKey = tok[1:], true
		case 'W', 'Z', 'X':
			if len(tok) == 1 {
				m.flags |= leaseFlag(tok[0])
			}
		}
	}
	return m, nil
}

var (
	lineMN        = []byte("MN\r\n")
	lineEND       = []byte("END\r\n")
	lineError     = []byte("ERROR\r\n")
	prefixServer  = []byte("SERVER_ERROR")
	prefixClient  = []byte("CLIENT_ERROR")
	prefixError   = []byte("ERROR")
	msgTooLarge   = []byte("object too large")
	msgNonNumeric = []byte("non-numeric")
)

// readValue reads size bytes and the CRLF after them into dst.
func readValue(br *bufio.Reader, dst []byte) error {
	if n := len(dst) + 2; br.Buffered() >= n {
		// All of it is in the buffer (small values, most often): one copy
		// and one check.
		b, _ := br.Peek(n)
		copy(dst, b)
		if b[n-2] != '\r' || b[n-1] != '\n' {
			return protoErr("value in reply not followed by CRLF")
		}
		_, _ = br.Discard(n)
		return nil
	}
	if _, err := io.ReadFull(br, dst); err != nil {
		return unexpected(err)
	}
	cr, err := br.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	lf, err := br.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	if cr != '\r' || lf != '\n' {
		return protoErr("value in reply not followed by CRLF")
	}
	return nil
}

// readNewValue reads a value of size bytes and the CRLF after them into a
// buffer of its own. A long value not yet in br's buffer is read as its
// bytes arrive, its buffer made once half of them came
// (valuepool.ReadFull): the size a
// VA or VALUE line declares is the server's word, and a server that
// declares 256 MiB (under a max_value_length raised that far) and sends
// 1 KiB must not make each call hold 256 MiB until its timeout.
func readNewValue(br *bufio.Reader, size int) ([]byte, error) {
	if size <= valuepool.Ahead || br.Buffered() >= size+2 {
		v := make([]byte, size)
		return v, readValue(br, v)
	}
	v, err := valuepool.ReadFull(br, size, br.Buffered(), newBuffer)
	if err != nil {
		return nil, unexpected(err)
	}
	return v, readValue(br, v[:0])
}

// newBuffer returns a buffer of n bytes of its own: a value read is the
// caller's, never pooled.
func newBuffer(n int) []byte { return make([]byte, n) }

// readCarved reads a value of size bytes of a multi-key reply and its
// CRLF into a buffer carve gives, or into one of its own if it is long,
// and returns it with the arena left.
func readCarved(br *bufio.Reader, arena []byte, size, left int) (v, rest []byte, err error) {
	if size > arenaSize/4 {
		v, err = readNewValue(br, size)
		return v, arena, err
	}
	v, arena = carve(arena, size, left)
	return v, arena, readValue(br, v)
}

// arenaSize is the largest buffer that the small values of one multi-key
// reply are packed into (a value a caller keeps keeps its buffer).
const arenaSize = 8 << 10

// carve returns a buffer for a value of size bytes, capped so that an
// append to it cannot reach the next value, and the arena left: a value
// over a quarter of arenaSize gets its own, a smaller one a slice of the
// arena, which is renewed when it has no room, sized for the values left
// to read (left, this one included) if they are as large as this one,
// from an eighth of arenaSize (so that values of growing sizes do not
// each take a buffer) up to arenaSize: a short reply allocates (and
// zeroes) about what it needs, not arenaSize.
func carve(arena []byte, size, left int) (v, rest []byte) {
	if size > arenaSize/4 {
		return make([]byte, size), arena
	}
	if len(arena) < size {
		arena = make([]byte, min(max(left*size, arenaSize/8), arenaSize))
	}
	return arena[:size:size], arena[size:]
}

// mismatch is the protocol error of a reply that does not answer the
// request it is read for.
func mismatch(line []byte, r *request, want uint32) error {
	key := r.key
	if key == "" {
		key = "(several keys)"
	}
	return protoErr(fmt.Sprintf("reply %q does not answer the request it was read for (key %q, opaque O%d): a reply was added, dropped or changed on the way",
		bytes.TrimRight(line, "\r\n"), key, want))
}

// readReply reads the reply to r and records it in r. It returns an error
// only when the connection cannot be used further: an I/O error, a reply
// that is not what memcached sends, or one that does not answer r (its
// opaque, or for a read its key, is not r's).
func readReply(br *bufio.Reader, r *request) error {
	switch r.kind {
	case kindGetMulti, kindSetMulti, kindDeleteMulti:
		return readMultiReply(br, r)
	case kindGets:
		return readGets(br, r)
	case kindHello:
		return readHello(br, r)
	}
	line, err := readLine(br)
	if err != nil {
		return err
	}
	if isErrorLine(line) {
		return errorLine(line, r)
	}
	m, err := parseMeta(line, r.limit)
	if err != nil {
		return err
	}
	if !m.hasOpaque || m.opaque != r.opaque {
		return mismatch(line, r, r.opaque)
	}
	read := r.kind == kindGet || r.kind == kindLease
	if read && (m.hasKey || m.code == [2]byte{'V', 'A'}) && (!m.hasKey || string(m.key) != r.key) {
		return mismatch(line, r, r.opaque)
	}
	switch {
	case m.code == [2]byte{'V', 'A'} && r.kind == kindGet && placeholder(m.size, m.flags):
		// A lease placeholder (a missing key being filled): a miss.
		if err := readValue(br, nil); err != nil {
			return err
		}
		r.status = replyMiss
	case m.code == [2]byte{'V', 'A'} && read:
		v, err := readNewValue(br, m.size)
		if err != nil {
			return err
		}
		r.status, r.rvalue, r.rcas, r.rflags, r.rcflag = replyOK, v, m.cas, m.flags, m.client
		if r.kind == kindGet && r.mode == 't' {
			if !m.hasTTL {
				return protoErr(fmt.Sprintf("reply %q has no TTL (t), which was asked", bytes.TrimRight(line, "\r\n")))
			}
			r.rttl = m.ttl
		}
	case m.code == [2]byte{'V', 'A'} && r.kind == kindArith:
		if m.size > 24 {
			return protoErr(fmt.Sprintf("counter reply of %d bytes: %q", m.size, line))
		}
		var buf [24]byte
		if err := readValue(br, buf[:m.size]); err != nil {
			return err
		}
		n, ok := decimal.ParseUint(bytes.TrimRight(buf[:m.size], " "))
		if !ok {
			return protoErr(fmt.Sprintf("bad counter value %q", buf[:m.size]))
		}
		r.status, r.num = replyOK, n
	case m.code == [2]byte{'H', 'D'} && !read && r.kind != kindArith:
		r.status = replyOK
	case m.code == [2]byte{'E', 'N'} && (read || r.kind == kindTouch):
		r.status = replyMiss
	case m.code == [2]byte{'N', 'F'} && (r.kind == kindStore || r.kind == kindDelete || r.kind == kindArith):
		r.status = replyMiss
	case m.code == [2]byte{'N', 'S'} && r.kind == kindStore:
		r.status = replyNotStored
	case m.code == [2]byte{'E', 'X'} && (r.kind == kindStore || r.kind == kindDelete && r.mode == 'C'):
		r.status = replyExists
	default:
		return protoErr(fmt.Sprintf("unexpected reply %q", line))
	}
	return nil
}

// errorLine handles an error reply to a single-key command. A
// SERVER_ERROR and a non-numeric counter are answers; anything else
// (ERROR: an unknown command; another CLIENT_ERROR: the server did not
// understand what was sent) leaves the connection in an unknown state.
func errorLine(line []byte, r *request) error {
	text := string(bytes.TrimRight(line, "\r\n"))
	switch {
	case bytes.HasPrefix(line, prefixServer) && r.kind == kindStore && bytes.Contains(line, msgTooLarge):
		r.status = replyTooLarge
		return nil
	case bytes.HasPrefix(line, prefixServer):
		r.status, r.err = replyServerError, serverError(text)
		return nil
	case bytes.HasPrefix(line, prefixClient) && r.kind == kindArith && bytes.Contains(line, msgNonNumeric):
		r.status = replyNotNumeric
		return nil
	}
	return protoErr(fmt.Sprintf("unexpected reply %q", text))
}

// readMultiReply reads the replies of a multi-key request: its commands
// carry the opaques r.opaque+i, all quiet but the last, whose reply ends
// the request. Each reply must carry the opaque of one of the request's
// commands, after the previous reply's (memcached answers in order), and
// a value the key it was asked for.
func readMultiReply(br *bufio.Reader, r *request) error {
	n := uint32(r.commands())
	last := n - 1
	next := uint32(0) // the lowest offset the next reply may answer
	var arena []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, prefixServer) {
			// Not tied to a key (no opaque): the outcome of the request is
			// unknown; the connection is closed rather than trusted.
			return serverError(bytes.TrimRight(line, "\r\n"))
		}
		m, err := parseMeta(line, r.limit)
		if err != nil {
			return err
		}
		off := m.opaque - r.opaque // wraps as the opaques do
		if !m.hasOpaque || off < next || off >= n {
			return mismatch(line, r, r.opaque+next)
		}
		next = off + 1
		i := int(off)
		switch {
		case m.code == [2]byte{'V', 'A'} && r.kind == kindGetMulti:
			if !m.hasKey || string(m.key) != r.keys[i] {
				return mismatch(line, r, m.opaque)
			}
			if placeholder(m.size, m.flags) {
				// A lease placeholder (a missing key being filled): a miss.
				if err := readValue(br, nil); err != nil {
					return err
				}
				break
			}
			var v []byte
			if v, arena, err = readCarved(br, arena, m.size, len(r.keys)-i); err != nil {
				return err
			}
			r.addFound(found{index: i, value: v, cas: m.cas, flags: m.client}, len(r.keys)-i)
		case m.code == [2]byte{'E', 'N'} && r.kind == kindGetMulti && off == last:
			if m.hasKey && string(m.key) != r.keys[i] {
				return mismatch(line, r, m.opaque)
			}
		case m.code == [2]byte{'H', 'D'} && r.kind != kindGetMulti && off == last:
		case m.code == [2]byte{'N', 'S'} && r.kind == kindSetMulti:
			r.fails = append(r.fails, keyStatus{i, replyNotStored})
		case m.code == [2]byte{'E', 'X'} && r.kind == kindSetMulti:
			r.fails = append(r.fails, keyStatus{i, replyExists})
		case m.code == [2]byte{'N', 'F'} && (r.kind == kindSetMulti || r.kind == kindDeleteMulti):
			r.fails = append(r.fails, keyStatus{i, replyMiss})
		default:
			return protoErr(fmt.Sprintf("unexpected reply %q", line))
		}
		if off == last {
			return nil
		}
	}
}

// Multi-key reads. memcached spends half as much per key on the text
// protocol's "gets k1 ... kN" as on a quiet "mg" per key (0.3-0.4 µs
// against 0.6-0.8 on this project's machine, at 100 and 1000 keys), so
// GetMulti sends that, on the meta connection, followed by
// "mg <k1> O<n>", whose reply (HD or EN, with the opaque) ends the
// request: the text protocol has no opaque, so the mg's is what ties the
// reply to the request. The reply must be VALUE blocks for keys that were
// asked, in the order asked, each at most once (memcached answers the
// keys in order and says nothing of a miss), then END, then the mg's reply
// with the request's opaque. Anything else (another key, a key twice or
// out of order, a VALUE line that is not memcached's, a missing END, the
// wrong opaque) is a protocol error: a reply added, dropped or changed on
// the way shifts the stream, and the opaque or a key no longer matches.
// The text protocol returns a lease placeholder (see lease.go) as an empty
// value, so GetMulti asks again for the keys found empty, with mg (see
// Client.GetMulti).

// readGets reads the reply to a kindGets request.
func readGets(br *bufio.Reader, r *request) error {
	next := 0 // the lowest index of r.keys the next VALUE may answer
	var arena []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if bytes.Equal(line, lineEND) {
			break
		}
		key, size, cas, flags, err := parseValueLine(line, r.limit)
		if err != nil {
			return err
		}
		i := next
		for i < len(r.keys) && r.keys[i] != string(key) {
			i++
		}
		if i == len(r.keys) {
			return protoErr(fmt.Sprintf("reply %q does not answer the request it was read for (keys %q...): a reply was added, dropped or changed on the way",
				bytes.TrimRight(line, "\r\n"), r.keys[:min(len(r.keys), 3)]))
		}
		next = i + 1
		var v []byte
		if v, arena, err = readCarved(br, arena, size, len(r.keys)-i); err != nil {
			return err
		}
		r.addFound(found{index: i, value: v, cas: cas, flags: flags}, len(r.keys)-i)
	}
	line, err := readLine(br)
	if err != nil {
		return err
	}
	if isErrorLine(line) {
		return protoErr(fmt.Sprintf("unexpected reply %q", bytes.TrimRight(line, "\r\n")))
	}
	m, err := parseMeta(line, 0)
	if err != nil {
		return err
	}
	if !m.hasOpaque || m.opaque != r.opaque {
		return mismatch(line, r, r.opaque)
	}
	if m.code != [2]byte{'H', 'D'} && m.code != [2]byte{'E', 'N'} {
		return protoErr(fmt.Sprintf("unexpected reply %q", bytes.TrimRight(line, "\r\n")))
	}
	return nil
}

// parseValueLine parses a text-protocol "VALUE <key> <flags> <bytes>
// <cas>" line, exactly as memcached writes it (flags: the client flags),
// whose value must be no larger than limit.
func parseValueLine(line []byte, limit int) (key []byte, size int, cas uint64, flags uint32, err error) {
	body, ok := bytes.CutPrefix(line[:len(line)-2], []byte("VALUE "))
	var f [4][]byte
	for j := 0; ok && j < 4; j++ {
		sp := bytes.IndexByte(body, ' ')
		switch {
		case j < 3 && sp > 0:
			f[j], body = body[:sp], body[sp+1:]
		case j == 3 && sp < 0 && len(body) > 0:
			f[j] = body
		default:
			ok = false
		}
	}
	if !ok {
		return nil, 0, 0, 0, protoErr(fmt.Sprintf("unexpected reply %q", bytes.TrimRight(line, "\r\n")))
	}
	fl, ok1 := decimal.ParseUint(f[1])
	sz, ok2 := decimal.ParseUint(f[2])
	cas, ok3 := decimal.ParseUint(f[3])
	if !ok1 || !ok2 || !ok3 || fl > math.MaxUint32 {
		return nil, 0, 0, 0, protoErr(fmt.Sprintf("bad VALUE line %q", bytes.TrimRight(line, "\r\n")))
	}
	if sz > uint64(limit) {
		return nil, 0, 0, 0, protoErr(fmt.Sprintf("reply declares a value of %d bytes, more than the %d this client accepts (%s): %q", sz, limit, raiseLimit, bytes.TrimRight(line, "\r\n")))
	}
	return f[0], int(sz), cas, uint32(fl), nil
}

// raiseLimit says, in the error of a reply whose value is larger than
// the client accepts, how to accept it: values another client stored on a
// server started with a larger -I need the client's limit raised too.
const raiseLimit = "raise it with the URL's max_value_length or item_size_max, or WithMaxValueSize or WithItemSizeMax"

// helloCmd is what every connection sends first: "mn", which a server
// with meta commands answers MN, "stats settings", which says its
// item_size_max and whether CAS is on, and "stats", whose pid and start
// time name the server's run (see bootKey). All in one write: one round
// trip.
const helloCmd = "mn\r\nstats settings\r\nstats\r\n"

// readHello reads the replies to helloCmd, pipelined ahead of the first
// requests of a new connection to a server known to have meta commands,
// into r.info. A refusal (see refusedBy) is the connection's error;
// anything else but MN first is a protocol error, after which the next
// connection does the whole handshake again.
func readHello(br *bufio.Reader, r *request) error {
	line, err := readLine(br)
	if err != nil {
		return err
	}
	if err := refusedBy(line); err != nil {
		return err
	}
	if !bytes.Equal(line, lineMN) {
		return protoErr(fmt.Sprintf("unexpected reply to mn on a new connection: %q (the server no longer speaks the meta protocol?)",
			bytes.TrimRight(line, "\r\n")))
	}
	if r.info, err = readSettings(br); err != nil {
		return err
	}
	r.info.boot, err = readBoot(br)
	return err
}

// readSettings reads the reply to "stats settings": the server's
// item_size_max and whether CAS is enabled. A server that does not know
// the command (ERROR, CLIENT_ERROR) or will not answer it (SERVER_ERROR:
// a proxy that does not implement it) gets the defaults. An item_size_max
// that is not a number from 1 to maxItemSizeMax is ignored, as if the
// server had not said it (no memcached can run with it): the size check of
// writes then uses WithItemSizeMax. Whatever it says, the item_size_max
// of a server only ever makes that check stricter; it never bounds what
// the client reads (see Client.valueLimit).
func readSettings(br *bufio.Reader) (serverInfo, error) {
	info := serverInfo{casEnabled: true}
	for first := true; ; first = false {
		line, err := readLine(br)
		if err != nil {
			return info, err
		}
		if bytes.Equal(line, lineEND) {
			return info, nil
		}
		if first && isErrorLine(line) {
			return info, nil // settings not available: defaults
		}
		rest, found := bytes.CutPrefix(line[:len(line)-2], []byte("STAT "))
		if !found {
			return info, protoErr(fmt.Sprintf("unexpected line in stats settings reply: %q", line))
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		switch string(name) {
		case "item_size_max":
			if v, ok := decimal.ParseUint(value); ok && v > 0 && v <= maxItemSizeMax {
				info.itemSizeMax = int64(v)
			}
		case "cas_enabled":
			info.casEnabled = string(value) != "no"
		}
	}
}

// readBoot reads the reply to "stats" and returns the bootKey of the
// server's run: the key its CAS values are XORed with (see conn.boot). A
// server that does not know the command (ERROR, CLIENT_ERROR), will not
// answer it (SERVER_ERROR: a proxy that does not implement it), or does
// not say its pid, time and uptime, gets 0: its CAS values are passed
// as they are, as over the text protocol, and a token read before a
// restart of such a server is not told from one read after (see bootKey).
// Its connection goes on: failing it would make the server unusable.
func readBoot(br *bufio.Reader) (uint64, error) {
	var pid, now, uptime uint64
	var seen int
	for first := true; ; first = false {
		line, err := readLine(br)
		if err != nil {
			return 0, err
		}
		if bytes.Equal(line, lineEND) {
			if seen != 3 || uptime > now {
				return 0, nil
			}
			return bootKey(pid, now-uptime), nil
		}
		if first && isErrorLine(line) {
			return 0, nil // stats not available: CAS values untranslated
		}
		rest, found := bytes.CutPrefix(line[:len(line)-2], []byte("STAT "))
		if !found {
			return 0, protoErr(fmt.Sprintf("unexpected line in stats reply: %q", line))
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		var dst *uint64
		switch string(name) {
		case "pid":
			dst = &pid
		case "time":
			dst = &now
		case "uptime":
			dst = &uptime
		default:
			continue
		}
		if v, ok := decimal.ParseUint(value); ok {
			*dst = v
			seen++
		}
	}
}

// isErrorLine reports whether line is an error line: ERROR, CLIENT_ERROR
// or SERVER_ERROR, with or without a message. In place of the hello's
// statistics it means the server answered and the connection is in step.
func isErrorLine(line []byte) bool {
	return bytes.HasPrefix(line, prefixError) || bytes.HasPrefix(line, prefixClient) || bytes.HasPrefix(line, prefixServer)
}

// bootKey returns the key that the CAS values of a server's run are
// XORed with, from the run's pid and start time (stats "time" less
// "uptime", the same on every connection of the run).
//
// memcached numbers CAS values from 1 again when it restarts: a token read
// before a restart could equal the CAS of another version of the item
// written after it, and a compare-and-swap with it would overwrite that
// version (a lost update). XORed with a key of the run, a token read in
// one run is, in another run, a number whose top bit is clear and whose
// other bits are as good as random, which the new run's counter does not
// reach: the compare-and-swap fails with a conflict, as it should. The top
// bit is set so that no token is 0 (no CAS), memcached's counter staying
// below 2^63.
func bootKey(pid, started uint64) uint64 {
	// splitmix64's finalizer over the two numbers.
	x := pid*0x9e3779b97f4a7c15 ^ started
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x | 1<<63
}

// defaultItemSizeMax is memcached's default -I, assumed for servers that
// do not say theirs.
const defaultItemSizeMax = 1 << 20

// maxItemSizeMax is the largest item_size_max memcached runs with (its -I
// is at most 1024m): a server's item_size_max above it is ignored.
const maxItemSizeMax = 1 << 30

// handshake dials addr (returning the address connected to, as
// dialer.dialAt) and sends helloCmd, in one round trip: a meta
// server answers MN, then its settings and stats. A server without meta commands
// answers ERROR, the protocol's reply to an unknown command (memcached <
// 1.6, most text-protocol stores), or a CLIENT_ERROR (a store that takes
// "mn" for a malformed command), or closes the connection (nutcracker);
// the latter is told from a failing server by asking "version" on a new
// connection. Such servers give errTextProtocol. A server that refuses
// the connection with an error line of its own ("ERROR Too many open
// connections", a SERVER_ERROR) is busy, not without meta commands: that
// is a failed dial (see refusedBy). The connections to a server that is
// known to speak the meta protocol skip this round trip (see
// pool.dialSlot).
func (c *Client) handshake(ctx context.Context, addr string) (net.Conn, string, serverInfo, error) {
	info := serverInfo{casEnabled: true}
	nc, at, err := c.dialer.dialAt(ctx, "tcp", addr)
	if err != nil {
		return nil, "", info, err
	}
	ok := false
	defer func() {
		if !ok {
			resetConn(nc)
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, has := ctx.Deadline(); has {
		_ = nc.SetDeadline(d)
	}
	br := bufio.NewReaderSize(nc, 4<<10)
	if _, err := nc.Write([]byte(helloCmd)); err != nil {
		return nil, "", info, err
	}
	line, err := br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(line) == 0:
		if c.answersVersion(ctx, addr) {
			return nil, "", info, errTextProtocol
		}
		return nil, "", info, fmt.Errorf("connection closed at once: %w", io.ErrUnexpectedEOF)
	case err != nil:
		return nil, "", info, unexpected(err)
	case string(line) == "MN\r\n":
	case bytes.Equal(line, lineError), bytes.HasPrefix(line, prefixClient):
		return nil, "", info, errTextProtocol
	default:
		if err := refusedBy(line); err != nil {
			return nil, "", info, err
		}
		return nil, "", info, protoErr(fmt.Sprintf("unexpected reply to mn: %q", bytes.TrimRight(line, "\r\n")))
	}
	if info, err = readSettings(br); err != nil {
		return nil, "", info, err
	}
	if info.boot, err = readBoot(br); err != nil {
		return nil, "", info, err
	}
	if br.Buffered() > 0 {
		return nil, "", info, protoErr(fmt.Sprintf("unexpected data after the handshake: %q", peekLine(br)))
	}
	if !stop() {
		return nil, "", info, ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	ok = true
	return nc, at, info, nil
}

// refusal is the error of a connection that the server refused, with an
// error line in place of the reply to its first command: memcached at its
// connection limit writes "ERROR Too many open connections" to a new
// connection and closes it; a SERVER_ERROR (out of memory, ...) says the
// server cannot serve it now. It is a failure of the server, as a refused
// connect is (classify: backend.ErrUnavailable), and says nothing about
// its protocol: it is not the bare ERROR that answers an unknown command.
type refusal struct{ line string }

func (e refusal) Error() string { return fmt.Sprintf("the server refused the connection: %q", e.line) }

// refusedBy returns a refusal if line, the first reply on a new
// connection, is an error line that refuses it ("ERROR <message>",
// "SERVER_ERROR <message>"), or nil.
func refusedBy(line []byte) error {
	if (bytes.HasPrefix(line, prefixError) && !bytes.Equal(line, lineError)) || bytes.HasPrefix(line, prefixServer) {
		return refusal{string(bytes.TrimRight(line, "\r\n"))}
	}
	return nil
}

// answersVersion reports whether addr answers "version" on a new
// connection.
func (c *Client) answersVersion(ctx context.Context, addr string) bool {
	nc, err := c.dialer.dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer resetConn(nc)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, has := ctx.Deadline(); has {
		_ = nc.SetDeadline(d)
	}
	if _, err := nc.Write([]byte("version\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	return err == nil && len(line) > 8 && line[:8] == "VERSION "
}
