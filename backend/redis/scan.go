package redis

// Bounded reading: a streaming RESP2/RESP3 validator in front of go-redis.
//
// go-redis's reader trusts the server: it allocates what a length or a
// count announces before any data arrives ($9223372036854775807 panics in
// makeslice, $2147483648 makes a 2 GiB buffer, *2147483648 a 32 GiB
// slice), it recurses on nesting and on attributes (a stream of |0 or of
// *1 overflows the stack), and it accumulates a line without CRLF however
// long it gets. respScanner runs over the bytes before go-redis sees them
// (guardConn.Read calls it on what the socket returned, in place, without
// a copy) and turns what could hurt into a protocol error on the
// connection, before go-redis reads the offending header:
//
//   - a bulk string, verbatim string or blob error longer than the
//     budget: the max value length, the 11-byte header and replySlack;
//   - an aggregate (array, set, push, map, attribute) whose elements,
//     added to those announced and not yet read by the aggregates it is
//     nested in, would make go-redis allocate more than the budget
//     (slotSize bytes an element: an interface or string header);
//   - nesting deeper than maxReplyDepth (an attribute counts as a level
//     around the value it annotates, so a stream of attributes is bounded
//     too);
//   - a line (simple string, error, number, header) longer than
//     maxLineLen, a CR not followed by LF or an LF without CR in a line, a
//     malformed number or length, a type byte RESP does not have, and data
//     not followed by CRLF where its length says it ends.
//
// The scanner is a state machine over the bytes: a header costs a few
// steps per byte, and the data of a bulk string is skipped by its length,
// so a value is never scanned byte by byte. It also counts the top-level
// values it completes, pushes apart, so that guardConn can check that the
// server never answers more than it was asked (see conn.go).

import (
	"bytes"
	"fmt"
	"strings"
)

const (
	// maxReplyDepth bounds the nesting of a reply. Redis's deepest
	// replies (COMMAND DOCS, XINFO STREAM FULL, module replies) nest less
	// than 10 levels.
	maxReplyDepth = 32
	// maxLineLen bounds a line: a simple string, an error, a number or a
	// header. Redis's longest lines are error messages.
	maxLineLen = 64 << 10
	// replySlack is what a reply may make the client allocate on top of
	// the max value length and the header: room for replies that are not
	// values (INFO, CLUSTER NODES, SCAN pages, an MGET's slots).
	replySlack = 1 << 20
	// slotSize is what go-redis allocates for each element an aggregate
	// announces, before reading it (an interface or a string header).
	slotSize = 16
)

// Scanner states.
const (
	stType   uint8 = iota // at the type byte of a value
	stLine                // in a line, after its type byte
	stLF                  // after a line's CR
	stData                // in the data of a bulk string
	stDataCR              // after the data: CR
	stDataLF              // after the data's CR: LF
)

// respFrame is an open aggregate.
type respFrame struct {
	left int64 // elements still to read
	attr bool  // an attribute: its last element is the annotated value
}

// respScanner validates a stream of RESP values (see the comment at the
// top of the file). The zero value is not usable: set budget.
type respScanner struct {
	budget int64 // bytes a reply may make the reader allocate ahead of its data

	st    uint8
	kind  byte  // type byte of the current line
	first byte  // first byte of the current line's body
	line  int   // length of the current line's body so far
	num   int64 // the number of the current line
	nd    int   // its digits
	neg   bool  // it started with '-'
	left  int64 // data bytes left (stData)

	depth   int
	frames  [maxReplyDepth]respFrame
	pending int64 // elements announced by the open aggregates and not read

	top      byte   // type byte of the current top-level value ('>' for a push)
	firstTop byte   // type byte of the first reply
	values   uint64 // top-level values completed, pushes and replies
	replies  uint64 // top-level values completed that are not pushes
	// maxReplies, when counted is set, is how many replies the stream may
	// hold (the requests written): one more is a protocol error.
	maxReplies uint64
	counted    bool

	// holdOver, when set, makes scan stop right after the header line of
	// a string (bulk, verbatim, blob error) longer than holdOver, or of an
	// aggregate that leaves more than holdOver bytes of slots announced
	// and not read (slotSize a pending element), with need set to the
	// bytes that must be at hand after that header before the reader sees
	// it: guardConn holds the header's end until they have arrived (see
	// guardConn.hold).
	holdOver int64
	need     int64
}

// minElemLen is the length of the shortest RESP value ("_\r\n", "+\r\n"):
// an aggregate announcing n elements is at least minElemLen*n bytes long,
// however honest.
const minElemLen = 3

// scanError is a violation found by a respScanner.
type scanError struct{ msg string }

func (e *scanError) Error() string { return e.msg }

func violation(format string, args ...any) error {
	return &scanError{fmt.Sprintf(format, args...)}
}

// isNumeric reports whether the body of a line of type k is a number.
func isNumeric(k byte) bool {
	switch k {
	case '$', '=', '!', '*', '~', '>', '%', '|', ':', '(':
		return true
	}
	return false
}

// scan validates p, the next bytes of the stream. With stop set it
// returns as soon as a top-level value is complete: n is then the length
// of p up to the end of that value and done is true. With holdOver set it
// returns after the header of a string longer than that, or of an
// aggregate that leaves more than that in slots pending, with need set (n
// is then the length of p up to that header's end). Otherwise it scans
// all of p (n == len(p)). An error means the stream is not valid RESP, or
// exceeds a bound, at or before p[n].
func (s *respScanner) scan(p []byte, stop bool) (n int, done bool, err error) {
	i := 0
	for i < len(p) {
		switch s.st {
		case stData:
			k := int64(len(p) - i)
			if k > s.left {
				k = s.left
			}
			i += int(k)
			s.left -= k
			if s.left == 0 {
				s.st = stDataCR
			}
		case stDataCR:
			if p[i] != '\r' {
				return i, false, violation("bulk data not followed by CRLF where its length says it ends (a wrong length, or a truncated or shifted reply)")
			}
			s.st = stDataLF
			i++
		case stDataLF:
			if p[i] != '\n' {
				return i, false, violation("bulk data followed by CR without LF")
			}
			i++
			s.st = stType
			top, err := s.valueDone()
			if err != nil {
				return i, false, err
			}
			if top && stop {
				return i, true, nil
			}
		case stType:
			c := p[i]
			switch c {
			case '+', '-', ':', '$', '*', '_', ',', '#', '!', '=', '(', '%', '~', '|', '>':
			default:
				return i, false, violation("byte %q where a reply starts (not a RESP type)", c)
			}
			i++
			s.kind, s.line, s.num, s.nd, s.neg = c, 0, 0, 0, false
			s.st = stLine
			if s.depth == 0 || s.frames[s.depth-1].attr && s.annotated() {
				s.top = c
			}
		case stLine:
			// The body of a line, up to its CR.
			for ; i < len(p); i++ {
				c := p[i]
				if c == '\r' {
					break
				}
				if c == '\n' {
					return i, false, violation("LF without CR in a %q line", s.kind)
				}
				if s.line == 0 {
					s.first = c
				}
				s.line++
				if s.line > maxLineLen {
					return i, false, violation("%q line longer than %d bytes without CRLF", s.kind, maxLineLen)
				}
				if isNumeric(s.kind) {
					if err := s.digit(c); err != nil {
						return i, false, err
					}
				}
			}
			if i < len(p) {
				s.st = stLF
				i++
			}
		case stLF:
			if p[i] != '\n' {
				return i, false, violation("CR without LF in a %q line", s.kind)
			}
			i++
			s.st = stType
			top, complete, err := s.lineDone()
			if err != nil {
				return i, false, err
			}
			if complete && top && stop {
				return i, true, nil
			}
			if s.holdOver > 0 {
				switch {
				case s.st == stData && s.left > s.holdOver:
					// A long string: half its bytes (as valuepool.ReadFull
					// reads one): its reader allocates it with them at
					// hand, and reads the rest straight into it, so that
					// the held chunks and its buffer make 1.5 times its
					// length at most, not twice.
					s.need = (s.left + 2) / 2
					return i, false, nil
				case !complete && s.st == stType && slotSize*s.pending > s.holdOver:
					// An aggregate opened, and the reader would allocate
					// slots for all that is pending: as many bytes as
					// those elements take at their shortest. Each open
					// aggregate but the outermost is pending in the one
					// it is in, yet its bytes are those of its elements:
					// counted, they made an honest reply of nulls in a
					// nested array (EVAL "return {'a', redis.call('mget',
					// ...)}" of 5000 missing keys, RESP3) 3 bytes short
					// of what was held for, until its timeout.
					s.need = minElemLen * (s.pending - int64(s.depth-1))
					return i, false, nil
				}
			}
		}
	}
	return i, false, nil
}

// annotated reports whether the value starting now is the one that every
// open aggregate is an attribute of (so that it is the top-level value).
func (s *respScanner) annotated() bool {
	for d := range s.depth {
		if !s.frames[d].attr || s.frames[d].left != 1 {
			return false
		}
	}
	return true
}

// digit takes one byte of a numeric line.
func (s *respScanner) digit(c byte) error {
	switch {
	case c >= '0' && c <= '9':
		s.nd++
		if s.num <= 1<<53 {
			s.num = s.num*10 + int64(c-'0')
		}
		if s.kind != ':' && s.kind != '(' && !s.neg && s.num > s.limit() {
			// A length or count: no need to wait for the CRLF.
			return s.tooLarge()
		}
		if s.kind == ':' && s.nd > 19 {
			return violation("integer reply of more than 19 digits")
		}
	case (c == '-' || c == '+' && (s.kind == ':' || s.kind == '(')) && s.line == 1:
		s.neg = c == '-'
	default:
		return violation("byte %q in the number of a %q line", c, s.kind)
	}
	return nil
}

// pushBudget bounds what a push may make the reader allocate ahead of
// its data, whatever the budget of replies: a push (an invalidation, a
// maintenance notice) carries keys and short names, never a value, and
// go-redis reads one that comes before a reply, allocating all it
// announces (a push announcing a 512 MiB bulk held a call 2.6 s past its
// timeout).
const pushBudget = trackBudget

// limit returns the budget of the value being read: pushBudget within a
// push, at most.
func (s *respScanner) limit() int64 {
	if s.top == '>' {
		return min(s.budget, pushBudget)
	}
	return s.budget
}

// tooLarge is the error of a length or count over the budget.
func (s *respScanner) tooLarge() error {
	switch {
	case s.top == '>' && s.limit() < s.budget:
		return violation("a push with a %q announcing %d or more bytes or elements, more than the %d bytes a push may make the client allocate",
			s.kind, s.num, s.limit())
	case s.kind == '$', s.kind == '=', s.kind == '!':
		return violation("a %q reply announcing %d or more bytes, more than the %d the client accepts (max value length + %d)",
			s.kind, s.num, s.budget, replySlack)
	}
	return violation("a %q aggregate announcing %d or more elements, more than the client accepts", s.kind, s.num)
}

// lineDone handles the end of a line. complete reports that it completed
// a value (rather than opening data or an aggregate), top that this value
// was a top-level one.
func (s *respScanner) lineDone() (top, complete bool, err error) {
	switch s.kind {
	case '+', '-', ',':
		if s.kind == ',' && s.line == 0 {
			return false, false, violation("empty double reply")
		}
	case ':', '(':
		if s.nd == 0 {
			return false, false, violation("malformed number in a %q line", s.kind)
		}
	case '#':
		if s.line != 1 || s.first != 't' && s.first != 'f' {
			return false, false, violation("boolean reply that is neither #t nor #f")
		}
	case '_':
		if s.line != 0 {
			return false, false, violation("null reply with a body")
		}
	default: // lengths and counts
		if s.neg {
			if s.num != 1 || s.nd != 1 || s.kind == '|' {
				return false, false, violation("negative length %q-%d", s.kind, s.num)
			}
			break // a null
		}
		if s.nd == 0 || s.line != s.nd {
			return false, false, violation("malformed length in a %q line", s.kind)
		}
		switch s.kind {
		case '$', '=', '!':
			if s.num+slotSize*s.pending > s.limit() {
				return false, false, s.tooLarge()
			}
			s.left = s.num
			if s.left == 0 {
				s.st = stDataCR
			} else {
				s.st = stData
			}
			return false, false, nil
		}
		n := s.num
		attr := s.kind == '|'
		if s.kind == '%' || attr {
			n *= 2
		}
		if attr {
			n++ // the annotated value
		}
		if n == 0 {
			break // an empty aggregate: complete
		}
		if s.depth == maxReplyDepth {
			return false, false, violation("reply nested deeper than %d levels", maxReplyDepth)
		}
		if slotSize*(s.pending+n) > s.limit() {
			return false, false, s.tooLarge()
		}
		s.frames[s.depth] = respFrame{left: n, attr: attr}
		s.depth++
		s.pending += n
		return false, false, nil
	}
	top, err = s.valueDone()
	return top, true, err
}

// valueDone records a complete value: it closes the aggregates it
// completes, and reports whether it completed a top-level value.
func (s *respScanner) valueDone() (bool, error) {
	for s.depth > 0 {
		f := &s.frames[s.depth-1]
		f.left--
		s.pending--
		if f.left > 0 {
			return false, nil
		}
		s.depth--
	}
	s.values++
	if s.top != '>' {
		s.replies++
		if s.replies == 1 {
			s.firstTop = s.top
		}
		if s.counted && s.replies > s.maxReplies {
			return true, violation("a reply without a request (%d replies to %d commands)", s.replies, s.maxReplies)
		}
	}
	return true, nil
}

// idle reports whether the scanner is between top-level values.
func (s *respScanner) idle() bool { return s.st == stType && s.depth == 0 }

// The client's side: cmdScanner follows the commands the client writes
// (arrays of bulk strings, the only form go-redis and the tracker write),
// to count them and to see the commands after which replies no longer
// answer one command each. It trusts the bytes (they are ours) but stops
// following a stream it does not recognise, rather than guessing.

// Command scanner states.
const (
	csStar  uint8 = iota // at a command's '*'
	csCount              // in the count line
	csArg                // at an argument's '$'
	csLen                // in the length line
	csData               // in an argument's data
	csCR                 // after the data: CR
	csLF                 // LF
)

type cmdScanner struct {
	st   uint8
	num  int64
	lf   bool  // the current line's CR was seen
	args int64 // arguments left in the command
	argi int   // index of the current argument
	left int64 // data left of the argument
	name [16]byte
	nn   int // bytes of name (the first argument, lower case, cut at 16)
	sub  [16]byte
	sn   int
	lost bool // not a stream of commands: no longer followed
}

// cmdResult is what one write held.
type cmdResult struct {
	cmds      int  // commands completed
	unreplied bool // one of them makes replies stop answering one command each
	sentinel  bool // one of them is a SENTINEL command
	topology  int  // how many are CLUSTER SLOTS, SHARDS or NODES
}

// atStart reports whether the scanner is at the start of a command.
func (s *cmdScanner) atStart() bool { return s.st == csStar && !s.lost }

// scan follows p, the next bytes the client writes.
func (s *cmdScanner) scan(p []byte) (r cmdResult) {
	if s.lost {
		return cmdResult{unreplied: true}
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch s.st {
		case csStar, csArg:
			want := byte('*')
			if s.st == csArg {
				want = '$'
			}
			if c != want {
				s.lost = true
				return cmdResult{cmds: r.cmds, unreplied: true}
			}
			s.num, s.lf = 0, false
			s.st++ // csCount or csLen
			i++
		case csCount, csLen:
			switch {
			case c >= '0' && c <= '9' && !s.lf:
				s.num = s.num*10 + int64(c-'0')
			case c == '\r' && !s.lf:
				s.lf = true
			case c == '\n' && s.lf:
				if s.st == csCount {
					s.args, s.argi, s.nn, s.sn = s.num, 0, 0, 0
					s.st = csArg
					if s.args == 0 {
						s.st = csStar
						s.done(&r)
					}
				} else {
					s.left = s.num
					s.st = csData
					if s.left == 0 {
						s.st = csCR
					}
				}
			default:
				s.lost = true
				return cmdResult{cmds: r.cmds, unreplied: true}
			}
			i++
		case csData:
			k := min(int64(len(p)-i), s.left)
			if s.argi < 2 {
				s.keep(p[i : i+int(k)])
			}
			i += int(k)
			s.left -= k
			if s.left == 0 {
				s.st = csCR
			}
		case csCR:
			if c != '\r' {
				s.lost = true
				return cmdResult{cmds: r.cmds, unreplied: true}
			}
			s.st = csLF
			i++
		case csLF:
			if c != '\n' {
				s.lost = true
				return cmdResult{cmds: r.cmds, unreplied: true}
			}
			i++
			s.argi++
			s.args--
			s.st = csArg
			if s.args == 0 {
				s.st = csStar
				s.done(&r)
			}
		}
	}
	return r
}

// keep records the bytes of the first two arguments, lower case.
func (s *cmdScanner) keep(b []byte) {
	buf, n := &s.name, &s.nn
	if s.argi == 1 {
		buf, n = &s.sub, &s.sn
	}
	for _, c := range b {
		if *n == len(buf) {
			return
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[*n] = c
		*n++
	}
}

// done records a complete command.
func (s *cmdScanner) done(r *cmdResult) {
	r.cmds++
	switch string(s.name[:s.nn]) {
	case "subscribe", "psubscribe", "ssubscribe", "monitor", "sync", "psync":
		r.unreplied = true
	case "client":
		if string(s.sub[:s.sn]) == "reply" {
			r.unreplied = true
		}
	case "sentinel":
		r.sentinel = true
	case "cluster":
		switch string(s.sub[:s.sn]) {
		case "slots", "shards", "nodes":
			r.topology++
		}
	}
}

// handshakeReplies returns the replies a server that accepts them gives to
// the commands of p, if p is made only of commands of go-redis's
// connection handshake (HELLO, SELECT, CLIENT SETNAME, CLIENT SETINFO,
// READONLY), each complete, and how many commands there are.
func handshakeReplies(p []byte) (fake []byte, n int, ok bool) {
	for len(p) > 0 {
		var args []string
		args, p, ok = parseCommand(p, 2)
		if !ok || len(args) == 0 {
			return nil, 0, false
		}
		switch strings.ToLower(args[0]) {
		case "hello":
			if len(args) > 1 && args[1] == "2" {
				fake = append(fake, "*0\r\n"...)
			} else {
				fake = append(fake, "%0\r\n"...)
			}
		case "select", "readonly":
			fake = append(fake, "+OK\r\n"...)
		case "client":
			if len(args) < 2 || !strings.EqualFold(args[1], "setname") && !strings.EqualFold(args[1], "setinfo") {
				return nil, 0, false
			}
			fake = append(fake, "+OK\r\n"...)
		default:
			return nil, 0, false
		}
		n++
	}
	return fake, n, n > 0
}

// parseCommand parses one complete command at the start of p and returns
// its first keep arguments and the rest of p.
func parseCommand(p []byte, keep int) (args []string, rest []byte, ok bool) {
	line := func() (int64, bool) {
		end := bytes.Index(p, crlf)
		if end < 2 {
			return 0, false
		}
		var n int64
		for _, c := range p[1:end] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		p = p[end+2:]
		return n, true
	}
	if len(p) == 0 || p[0] != '*' {
		return nil, nil, false
	}
	count, ok := line()
	if !ok {
		return nil, nil, false
	}
	for i := range count {
		if len(p) == 0 || p[0] != '$' {
			return nil, nil, false
		}
		n, ok := line()
		if !ok || int64(len(p)) < n+2 || p[n] != '\r' || p[n+1] != '\n' {
			return nil, nil, false
		}
		if i < int64(keep) {
			args = append(args, string(p[:n]))
		}
		p = p[n+2:]
	}
	return args, p, true
}

var crlf = []byte("\r\n")
