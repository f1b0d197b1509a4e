package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is one way of mistreating a reply.
type Kind int

// The kinds of mistreatment. Each names what the client gets instead of
// the reply.
const (
	// Extra: the reply, twice.
	Extra Kind = iota
	// Missing: nothing; the reply is dropped.
	Missing
	// OtherReply: an earlier reply of the same connection (another key's
	// value, another command's status) instead of this one; the first
	// reply of a connection is dropped instead.
	OtherReply
	// Relabel (memcached): the reply with its opaque (O<n>) changed, or an
	// opaque added to a reply that had none.
	Relabel
	// Truncated: the first half of the reply, then a normal close (FIN).
	Truncated
	// ResetMid: the first half of the reply, then a reset (RST).
	ResetMid
	// HugeLength: a reply announcing a value of 2^63-1 bytes (memcached
	// "VA 9223372036854775807", or "VALUE <key> 0 9223372036854775807" in
	// place of a text-protocol VALUE line; RESP "$9223372036854775807"),
	// or 2^31 bytes, with nothing after it.
	HugeLength
	// LongLine: 10 MB without a line end.
	LongLine
	// Noise: 64 to 4096 random bytes.
	Noise
	// Dribble: the reply, one byte every 100 ms.
	Dribble
	// HugeAggregate (RESP): an array, map or set announcing 2^31 or
	// 2^63-1 elements.
	HugeAggregate
	// DeepNesting (RESP): 100,000 nested one-element arrays around the reply.
	DeepNesting
	// AttributeStream (RESP3): 100,000 empty attributes (|0) before the reply.
	AttributeStream
	// WrongType (RESP): a reply of another type (an integer, an array, a
	// map, a null, an error, a double) instead of this one.
	WrongType
	// CountMismatch (RESP): an aggregate reply with one element more or
	// one less than the server sent.
	CountMismatch
	// BadPush (RESP3): a malformed invalidation push before the reply: its
	// key list a bulk string, integers, nested arrays, a map, or of another
	// push kind.
	BadPush
	// HugePush (RESP3): a push announcing a 512 MiB bulk, with nothing
	// after it.
	HugePush
)

var kindNames = [...]string{
	Extra: "extra", Missing: "missing", OtherReply: "other-reply", Relabel: "relabel",
	Truncated: "truncated", ResetMid: "reset-mid", HugeLength: "huge-length",
	LongLine: "long-line", Noise: "noise", Dribble: "dribble",
	HugeAggregate: "huge-aggregate", DeepNesting: "deep-nesting",
	AttributeStream: "attribute-stream", WrongType: "wrong-type",
	CountMismatch: "count-mismatch", BadPush: "bad-push", HugePush: "huge-push",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MemcachedKinds are the kinds that apply to memcached replies.
var MemcachedKinds = []Kind{Extra, Missing, OtherReply, Relabel, Truncated, ResetMid,
	HugeLength, LongLine, Noise, Dribble}

// RESPKinds are the kinds that apply to Redis replies.
var RESPKinds = []Kind{Extra, Missing, OtherReply, Truncated, ResetMid, HugeLength,
	LongLine, Noise, Dribble, HugeAggregate, DeepNesting, AttributeStream, WrongType,
	CountMismatch, BadPush, HugePush}

// Apply sends the client of c what kind k makes of reply, and records it
// in the proxy's log. It returns an error when the connection should end
// (Truncated and ResetMid end it themselves).
func (k Kind) Apply(c *Conn, reply []byte, rnd *rand.Rand) error {
	c.p.Logf("conn %d reply %d: %s of %.60q", c.ID, c.Replies, k, reply)
	defer func() { c.prev = reply }()
	switch k {
	case Extra:
		if err := c.Write(reply); err != nil {
			return err
		}
		return c.Write(reply)
	case Missing:
		return nil
	case OtherReply:
		if c.prev == nil {
			return nil
		}
		return c.Write(c.prev)
	case Relabel:
		return c.Write(relabel(reply, rnd))
	case Truncated:
		_ = c.Write(reply[:len(reply)/2])
		c.Close()
		return nil
	case ResetMid:
		_ = c.Write(reply[:len(reply)/2])
		c.Reset()
		return nil
	case HugeLength:
		n := "9223372036854775807"
		if rnd.IntN(2) == 0 {
			n = "2147483648"
		}
		if isRESP(reply) {
			return c.Write([]byte("$" + n + "\r\n"))
		}
		if f := bytes.Fields(reply); len(f) > 2 && string(f[0]) == "VALUE" {
			// The text protocol's get: the same key, the huge length.
			return c.Write([]byte("VALUE " + string(f[1]) + " 0 " + n + "\r\n"))
		}
		return c.Write([]byte("VA " + n + " c1 O" + strconv.Itoa(rnd.IntN(100)) + "\r\n"))
	case LongLine:
		prefix := ""
		if isRESP(reply) {
			prefix = "+"
		}
		return c.Write(append([]byte(prefix), bytes.Repeat([]byte("A"), 10<<20)...))
	case Noise:
		b := make([]byte, 64+rnd.IntN(4096-64))
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		return c.Write(b)
	case Dribble:
		return c.Dribble(reply, 100*time.Millisecond)
	case HugeAggregate:
		t := "*%~"[rnd.IntN(3)]
		n := "9223372036854775807"
		if rnd.IntN(2) == 0 {
			n = "2147483648"
		}
		return c.Write([]byte(string(t) + n + "\r\n"))
	case DeepNesting:
		return c.Write(append(bytes.Repeat([]byte("*1\r\n"), 100000), reply...))
	case AttributeStream:
		return c.Write(append(bytes.Repeat([]byte("|0\r\n"), 100000), reply...))
	case WrongType:
		others := []string{":1\r\n", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "%1\r\n$1\r\na\r\n$1\r\nb\r\n",
			"_\r\n", "$-1\r\n", "*-1\r\n", "-ERR hostile\r\n", ",1.5\r\n", "+OK\r\n", "$3\r\nabc\r\n"}
		return c.Write([]byte(others[rnd.IntN(len(others))]))
	case CountMismatch:
		return c.Write(countMismatch(reply, rnd))
	case BadPush:
		pushes := []string{
			">2\r\n$10\r\ninvalidate\r\n$3\r\nkey\r\n",
			">2\r\n$10\r\ninvalidate\r\n*2\r\n:1\r\n:2\r\n",
			">2\r\n$10\r\ninvalidate\r\n*1\r\n*1\r\n$3\r\nkey\r\n",
			">2\r\n$10\r\ninvalidate\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n",
			">2\r\n$10\r\ninvalidate\r\n:7\r\n",
			">1\r\n$10\r\ninvalidate\r\n",
			">3\r\n$10\r\ninvalidate\r\n*0\r\n*0\r\n",
			">2\r\n$7\r\nmessage\r\n$3\r\nkey\r\n",
			">0\r\n",
		}
		if err := c.Write([]byte(pushes[rnd.IntN(len(pushes))])); err != nil {
			return err
		}
		return c.Write(reply)
	case HugePush:
		return c.Write([]byte(">2\r\n$10\r\ninvalidate\r\n*1\r\n$536870912\r\n"))
	}
	return c.Write(reply)
}

// isRESP reports whether reply looks like a RESP value rather than a
// memcached line.
func isRESP(reply []byte) bool {
	// No memcached reply starts with one of these bytes.
	return len(reply) > 0 && bytes.IndexByte([]byte("+-:$*_#,(!=%~>|"), reply[0]) >= 0
}

var opaqueRE = regexp.MustCompile(` O[0-9]+`)

// relabel changes the opaque of a memcached reply line (the first line of
// reply), or adds one.
func relabel(reply []byte, rnd *rand.Rand) []byte {
	end := bytes.Index(reply, []byte("\r\n"))
	if end < 0 {
		return reply
	}
	line, rest := reply[:end], reply[end:]
	var out []byte
	if loc := opaqueRE.FindIndex(line); loc != nil {
		n, _ := strconv.Atoi(string(line[loc[0]+2 : loc[1]]))
		m := n + 1 + rnd.IntN(3)
		if rnd.IntN(2) == 0 && n > 0 {
			m = n - 1
		}
		out = append(append(append(out, line[:loc[0]]...), fmt.Sprintf(" O%d", m)...), line[loc[1]:]...)
	} else {
		out = append(append(out, line...), fmt.Sprintf(" O%d", rnd.IntN(1000))...)
	}
	return append(out, rest...)
}

// countMismatch returns an aggregate reply with one element more or
// less; other replies are returned as a one-element array around them.
func countMismatch(reply []byte, rnd *rand.Rand) []byte {
	if len(reply) == 0 || bytes.IndexByte([]byte("*~>"), reply[0]) < 0 {
		return append([]byte("*1\r\n"), reply...)
	}
	br := bufio.NewReader(bytes.NewReader(reply))
	head, _ := readLine(br)
	n, err := strconv.Atoi(string(head[1 : len(head)-2]))
	if err != nil || n < 0 {
		return reply
	}
	var elems [][]byte
	for range n {
		var e []byte
		if respValue(br, &e, 0) != nil {
			return reply
		}
		elems = append(elems, e)
	}
	if n > 0 && rnd.IntN(2) == 0 {
		elems = elems[1:]
	} else {
		elems = append(elems, []byte("$5\r\nextra\r\n"))
	}
	out := fmt.Appendf(nil, "%c%d\r\n", reply[0], len(elems))
	for _, e := range elems {
		out = append(out, e...)
	}
	return out
}

// Random is a Mutator that mistreats a random share of the replies.
type Random struct {
	// Rate is the probability that a reply is mistreated (0 to 1).
	Rate float64
	// Kinds are the mistreatments chosen from, with equal chances.
	Kinds []Kind
	// Skip is how many replies of each connection pass untouched first
	// (the handshake's).
	Skip int

	mu  sync.Mutex
	rnd *rand.Rand
}

// NewRandom returns a Random mutator with its own generator seeded with
// seed, so that a failing seed can be run again.
func NewRandom(seed uint64, rate float64, skip int, kinds ...Kind) *Random {
	return &Random{Rate: rate, Kinds: kinds, Skip: skip, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Mutate mistreats reply with probability Rate, after Skip replies.
func (m *Random) Mutate(c *Conn, reply []byte) error {
	if c.Replies < m.Skip || len(m.Kinds) == 0 {
		c.prev = reply
		return c.Write(reply)
	}
	m.mu.Lock()
	hit := m.rnd.Float64() < m.Rate
	k := m.Kinds[m.rnd.IntN(len(m.Kinds))]
	seed := m.rnd.Uint64()
	m.mu.Unlock()
	if !hit {
		c.prev = reply
		return c.Write(reply)
	}
	return k.Apply(c, reply, rand.New(rand.NewPCG(seed, seed)))
}

// Nth is a Mutator that applies Kind to the N-th reply (counting from 0)
// the proxy handles after it is set, across all connections, and passes
// every other reply. It is the deterministic form of Random, for tests of
// one defect.
type Nth struct {
	N    int64
	Kind Kind
	// Skip is how many replies of each connection pass uncounted first.
	Skip int
	// Applied is set once the kind was applied.
	Applied atomic.Bool

	seen atomic.Int64
}

// Mutate applies m.Kind to the N-th counted reply.
func (m *Nth) Mutate(c *Conn, reply []byte) error {
	if c.Replies < m.Skip {
		c.prev = reply
		return c.Write(reply)
	}
	if m.seen.Add(1)-1 != m.N {
		c.prev = reply
		return c.Write(reply)
	}
	m.Applied.Store(true)
	return m.Kind.Apply(c, reply, rand.New(rand.NewPCG(uint64(m.N), 1)))
}
