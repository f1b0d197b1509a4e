package redis

import (
	"strings"
	"testing"
)

// scanAll runs a fresh scanner (budget 1 MiB) over in, cut in two at
// every offset (and once byte by byte), and returns the top-level values
// and replies it counted and its error. It fails t if the cuts disagree.
func scanAll(t *testing.T, in string, setup func(*respScanner)) (values, replies uint64, err error) {
	t.Helper()
	run := func(chunks []string) (uint64, uint64, error) {
		s := &respScanner{budget: 1 << 20}
		if setup != nil {
			setup(s)
		}
		for _, c := range chunks {
			if _, _, err := s.scan([]byte(c), false); err != nil {
				return s.values, s.replies, err
			}
		}
		if !s.idle() {
			return s.values, s.replies, errIncomplete
		}
		return s.values, s.replies, nil
	}
	values, replies, err = run([]string{in})
	cuts := [][]string{}
	if len(in) < 4096 {
		for i := 1; i < len(in); i++ {
			cuts = append(cuts, []string{in[:i], in[i:]})
		}
		bytes := make([]string, len(in))
		for i := range in {
			bytes[i] = in[i : i+1]
		}
		cuts = append(cuts, bytes)
	}
	for _, chunks := range cuts {
		v, r, e := run(chunks)
		if v != values || r != replies || (e == nil) != (err == nil) {
			t.Fatalf("%.60q cut as %d chunks: %d values, %d replies, %v; whole: %d, %d, %v",
				in, len(chunks), v, r, e, values, replies, err)
		}
	}
	return values, replies, err
}

var errIncomplete = &scanError{"incomplete"}

func TestScannerAcceptsRESP(t *testing.T) {
	for _, c := range []struct {
		in              string
		values, replies uint64
	}{
		{"+OK\r\n", 1, 1},
		{"-ERR wrong\r\n", 1, 1},
		{":123\r\n:-5\r\n:+7\r\n", 3, 3},
		{"$3\r\nabc\r\n$0\r\n\r\n$-1\r\n", 3, 3},
		{"$10\r\na\r\nb\r\ncdef\r\n", 1, 1}, // CRLF inside data
		{"*-1\r\n*0\r\n", 2, 2},
		{"*2\r\n$1\r\na\r\n:1\r\n", 1, 1},
		{"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n+x\r\n*0\r\n", 1, 1},
		{"%2\r\n+a\r\n:1\r\n+b\r\n%0\r\n", 1, 1},
		{"~2\r\n+a\r\n+b\r\n", 1, 1},
		{"_\r\n,1.5\r\n,inf\r\n#t\r\n#f\r\n(1234567890123456789012345\r\n", 6, 6},
		{"=7\r\ntxt:abc\r\n!3\r\nERR\r\n", 2, 2},
		{">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", 1, 0},
		{">2\r\n$10\r\ninvalidate\r\n_\r\n+OK\r\n", 2, 1},
		{"|1\r\n+key\r\n+val\r\n+OK\r\n", 1, 1},
		{"|1\r\n+key\r\n+val\r\n>1\r\n+x\r\n", 1, 0},
		{"*1\r\n|1\r\n+k\r\n+v\r\n:1\r\n", 1, 1},
		{strings.Repeat("*1\r\n", maxReplyDepth) + ":1\r\n", 1, 1},
		{"+" + strings.Repeat("a", maxLineLen) + "\r\n", 1, 1},
	} {
		values, replies, err := scanAll(t, c.in, nil)
		if err != nil || values != c.values || replies != c.replies {
			t.Errorf("%.60q: %d values, %d replies, %v; want %d, %d, nil", c.in, values, replies, err, c.values, c.replies)
		}
	}
}

func TestScannerRejects(t *testing.T) {
	for _, c := range []struct{ what, in string }{
		{"2^63 bulk", "$9223372036854775807\r\n"},
		{"2^31 bulk", "$2147483648\r\n"},
		{"bulk over the budget", "$1048577\r\n"},
		{"verbatim over the budget", "=1048577\r\n"},
		{"blob error over the budget", "!1048577\r\n"},
		{"2^63 array", "*9223372036854775807\r\n"},
		{"2^31 array", "*2147483648\r\n"},
		{"array over the budget", "*65537\r\n"},
		{"map over the budget", "%32769\r\n"},
		{"nested arrays over the budget", "*40000\r\n*40000\r\n"},
		{"bulk in an array over the budget", "*60000\r\n$100000\r\n"},
		{"too deep", strings.Repeat("*1\r\n", maxReplyDepth+1)},
		{"attribute stream", strings.Repeat("|0\r\n", 100)},
		{"long line", "+" + strings.Repeat("A", maxLineLen+1)},
		{"long error", "-" + strings.Repeat("A", maxLineLen+1)},
		{"unknown type", "?x\r\n"},
		{"noise", "\x00\x01\x02"},
		{"streamed string", "$?\r\n"},
		{"negative length", "$-2\r\n"},
		{"negative count", "*-3\r\n"},
		{"null attribute", "|-1\r\n"},
		{"letter in a length", "$1a\r\n"},
		{"empty length", "$\r\n"},
		{"letter in an integer", ":1x\r\n"},
		{"empty integer", ":\r\n"},
		{"20-digit integer", ":12345678901234567890\r\n"},
		{"data longer than announced", "$3\r\nabcd\r\n"},
		{"data shorter than announced", "$3\r\nab\r\n+OK\r\n"},
		{"CR without LF", "+a\rb\r\n"},
		{"LF without CR", "+a\nb\r\n"},
		{"boolean", "#x\r\n"},
		{"null with a body", "_1\r\n"},
		{"empty double", ",\r\n"},
	} {
		if _, _, err := scanAll(t, c.in, nil); err == nil || err == errIncomplete {
			t.Errorf("%s: %.60q accepted (%v)", c.what, c.in, err)
		}
	}
}

// TestScannerCountsReplies checks the reply count against the requests:
// one reply too many is an error; pushes are not replies.
func TestScannerCountsReplies(t *testing.T) {
	counted := func(n uint64) func(*respScanner) {
		return func(s *respScanner) { s.counted, s.maxReplies = true, n }
	}
	if _, _, err := scanAll(t, "+OK\r\n:1\r\n", counted(2)); err != nil {
		t.Errorf("two replies to two requests: %v", err)
	}
	if _, _, err := scanAll(t, "+OK\r\n:1\r\n", counted(1)); err == nil {
		t.Error("two replies to one request accepted")
	}
	if _, _, err := scanAll(t, ">1\r\n+x\r\n+OK\r\n>1\r\n+y\r\n", counted(1)); err != nil {
		t.Errorf("pushes counted as replies: %v", err)
	}
}

// TestScannerStops checks scan's stop mode, which the pipelined handshake
// uses to cut its replies off the stream.
func TestScannerStops(t *testing.T) {
	s := &respScanner{budget: 1 << 20}
	in := []byte("%1\r\n+proto\r\n:3\r\n+OK\r\n$1\r\nx\r\n")
	n, done, err := s.scan(in, true)
	if err != nil || !done || string(in[:n]) != "%1\r\n+proto\r\n:3\r\n" {
		t.Fatalf("first value: %q, %v, %v", in[:n], done, err)
	}
	m, done, err := s.scan(in[n:], true)
	if err != nil || !done || string(in[n:n+m]) != "+OK\r\n" {
		t.Fatalf("second value: %q, %v, %v", in[n:n+m], done, err)
	}
	if _, done, err := s.scan(in[n+m:n+m+3], true); err != nil || done {
		t.Fatalf("part of a value: %v, %v", done, err)
	}
}

func TestCmdScanner(t *testing.T) {
	cmd := func(args ...string) string {
		var b strings.Builder
		b.WriteString("*" + itoa(len(args)) + "\r\n")
		for _, a := range args {
			b.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
		}
		return b.String()
	}
	for _, c := range []struct {
		in        string
		cmds      int
		unreplied bool
	}{
		{cmd("get", "k"), 1, false},
		{cmd("SET", "k", "a\r\n*1\r\n$3\r\nget\r\n") + cmd("mget", "a", "b"), 2, false},
		{cmd("HELLO", "3") + cmd("select", "1") + cmd("PING"), 3, false},
		{cmd("SUBSCRIBE", "ch"), 1, true},
		{cmd("client", "REPLY", "OFF"), 1, true},
		{cmd("client", "setname", "x"), 1, false},
		{cmd("monitor"), 1, true},
		{"PING\r\n", 0, true}, // an inline command: not followed
	} {
		var s cmdScanner
		r := s.scan([]byte(c.in))
		var byByte cmdResult
		var s2 cmdScanner
		for i := range len(c.in) {
			x := s2.scan([]byte(c.in[i : i+1]))
			byByte.cmds += x.cmds
			byByte.unreplied = byByte.unreplied || x.unreplied
			byByte.sentinel = byByte.sentinel || x.sentinel
		}
		if r != (cmdResult{cmds: c.cmds, unreplied: c.unreplied}) || byByte != r {
			t.Errorf("%.60q: %+v, byte by byte %+v; want %d, %v", c.in, r, byByte, c.cmds, c.unreplied)
		}
	}
	fake, n, ok := handshakeReplies([]byte(cmd("hello", "3", "auth", "u", "p") + cmd("select", "2") + cmd("client", "setname", "n")))
	if !ok || n != 3 || string(fake) != "%0\r\n+OK\r\n+OK\r\n" {
		t.Errorf("handshake: %q, %d, %v", fake, n, ok)
	}
	for _, in := range []string{cmd("get", "k"), cmd("hello", "3") + cmd("get", "k"), cmd("hello", "3")[:10], cmd("client", "kill", "x")} {
		if _, _, ok := handshakeReplies([]byte(in)); ok {
			t.Errorf("%q taken for a handshake", in)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// The guard's cost per reply: what go-redis would read for a GET hit of
// 100 bytes, and an MGET of 256 such values; and per command written.
func BenchmarkScanGetReply(b *testing.B) {
	reply := []byte(storedBulk(strings.Repeat("v", 100)))
	benchScan(b, reply)
}

func BenchmarkScanMGetReply(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("*256\r\n")
	for range 256 {
		sb.WriteString(storedBulk(strings.Repeat("v", 100)))
	}
	benchScan(b, []byte(sb.String()))
}

func benchScan(b *testing.B, reply []byte) {
	s := &respScanner{budget: 1 << 30, counted: true, maxReplies: 1 << 62}
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.scan(reply, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanGetCommand(b *testing.B) {
	cmd := []byte("*2\r\n$3\r\nget\r\n$16\r\nsite/prefix/0/k1\r\n")
	var s cmdScanner
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if r := s.scan(cmd); r.cmds != 1 {
			b.Fatal(r)
		}
	}
}
