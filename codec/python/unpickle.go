package python

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// The unpickler is a pickle virtual machine of its own rather than
// github.com/kisielk/og-rek's Decoder. og-rek v1.3.0 keeps Python lists as
// Go slice values, so a list referenced twice (memoized when empty, then
// filled: how Python pickles every list) reads back empty the second time,
// silently: [a, a] with a = [1, 2] decodes as [[1, 2], []]. It also lacks
// sets (protocol 4's EMPTY_SET), LONG4 and the *8 opcodes, and lets a
// small hostile pickle allocate without bound (APPENDS on a memoized list
// copies it each time). This one keeps containers by reference, as Python
// does, reads every opcode of protocols 0 to 5, and charges what it
// allocates to a budget before allocating it.

// Values on the unpickler's stack: the Python objects a pickle can build.
type (
	// pyNone is None.
	pyNone struct{}
	// str8 is Python 2's str (a byte string), from the STRING, BINSTRING
	// and SHORT_BINSTRING opcodes.
	str8 string
	// pyBytes is bytes.
	pyBytes string
	// pyByteArray is bytearray.
	pyByteArray string
	// pyList is a list, by reference: APPEND and APPENDS fill the very
	// list every memo reference sees.
	pyList struct{ items []any }
	// pyTuple is a tuple.
	pyTuple []any
	// pyDict is a dict: its pairs in insertion order. A key set twice
	// keeps its last value when the dict becomes a Go value.
	pyDict struct{ keys, vals []any }
	// pySet is a set or frozenset.
	pySet struct {
		items  []any
		frozen bool
	}
	// pyGlobal is a class or function named by GLOBAL or STACK_GLOBAL.
	pyGlobal struct{ module, name string }
	// pyObject is an instance of a class (REDUCE, NEWOBJ, INST, OBJ) that
	// has no Go form; it is kept so that the error can name its class.
	pyObject struct{ class any }
)

// Opcodes of pickle protocols 0 to 5 (Python's Lib/pickletools.py).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opExt1           = 0x82
	opExt2           = 0x83
	opExt4           = 0x84
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opNewObjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadOnlyBuffer = 0x98
)

// HighestProtocol is the highest pickle protocol Unmarshal reads and
// Marshal writes: 5, Python 3.8's.
const HighestProtocol = 5

// maxIntDigits is the longest decimal integer Python 3.11+ converts from
// text (sys.int_info.default_max_str_digits): longer ones are an error
// there, and here; it also keeps big.Int parsing, which is quadratic,
// short.
const maxIntDigits = 4300

// Estimated sizes, in bytes, charged to the budget for what the
// unpickler allocates.
const (
	costSlot   = 16 // a stack slot or a list/tuple item (an interface)
	costMemo   = 64 // a memo entry (map key, value, overhead, growth)
	costObject = 48 // a container or object header
)

// budget bounds the memory one Unmarshal allocates.
type budget struct{ left int64 }

// charge takes n bytes from the budget, or returns ErrTooLarge.
func (b *budget) charge(n int) error {
	b.left -= int64(n)
	if b.left < 0 {
		return ErrTooLarge
	}
	return nil
}

// unpickler runs one pickle.
type unpickler struct {
	data  []byte
	pos   int
	op    int // offset of the opcode being run, for errors
	stack []any
	marks []int // stack lengths at each MARK; the top one is the fence
	memo  map[uint64]any
	proto int
	b     *budget
}

// pickleError is the error of a malformed or unsupported pickle.
type pickleError struct {
	offset int
	msg    string
	err    error // ErrTooLarge, or nil
}

func (e *pickleError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("pickle: %v (at byte %d)", e.err, e.offset)
	}
	return fmt.Sprintf("pickle: %s (at byte %d)", e.msg, e.offset)
}

func (e *pickleError) Unwrap() error { return e.err }

func (u *unpickler) fail(format string, args ...any) error {
	return &pickleError{offset: u.op, msg: fmt.Sprintf(format, args...)}
}

const errTruncated = "pickle data was truncated"

// unpickle runs the pickle in data and returns the object it builds.
// Bytes after the STOP opcode are ignored, as Python's pickle.loads
// ignores them.
func unpickle(data []byte, b *budget) (any, error) {
	u := &unpickler{data: data, b: b}
	v, err := u.run()
	if err == ErrTooLarge {
		return nil, &pickleError{offset: u.op, err: ErrTooLarge}
	}
	return v, err
}

func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			u.op = u.pos
			return nil, u.fail("%s: no STOP opcode", errTruncated)
		}
		u.op = u.pos
		op := u.data[u.pos]
		u.pos++
		if op == opStop {
			return u.pop()
		}
		if err := u.step(op); err != nil {
			return nil, err
		}
	}
}

// read returns the next n bytes (a sub-slice of the input).
func (u *unpickler) read(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, u.fail("%s: %d bytes wanted, %d left", errTruncated, n, len(u.data)-u.pos)
	}
	s := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return s, nil
}

func (u *unpickler) readByte() (byte, error) {
	if u.pos >= len(u.data) {
		return 0, u.fail("%s", errTruncated)
	}
	c := u.data[u.pos]
	u.pos++
	return c, nil
}

func (u *unpickler) readUint(n int) (uint64, error) {
	s, err := u.read(uint64(n))
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(s)), nil
	}
	return binary.LittleEndian.Uint64(s), nil
}

// readLine returns the bytes up to the next '\n', which it consumes.
func (u *unpickler) readLine() ([]byte, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := u.data[u.pos:i]
			u.pos = i + 1
			return s, nil
		}
	}
	return nil, u.fail("%s: line without a newline", errTruncated)
}

// fence is the stack length at the topmost MARK: nothing below it may be
// popped before the MARK is.
func (u *unpickler) fence() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) push(v any) error {
	if len(u.stack) == cap(u.stack) {
		var err error
		if u.stack, err = u.grow(u.stack, 1); err != nil {
			return err
		}
	}
	u.stack = append(u.stack, v)
	return nil
}

// grow returns s with room for n more items, charging what it allocates:
// capacities double, so that a slice filled item by item allocates at
// most twice its final size in all.
func (u *unpickler) grow(s []any, n int) ([]any, error) {
	if cap(s)-len(s) >= n {
		return s, nil
	}
	c := max(2*cap(s), len(s)+n, 8)
	if err := u.b.charge(c * costSlot); err != nil {
		return s, err
	}
	ns := make([]any, len(s), c)
	copy(ns, s)
	return ns, nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.fence() {
		return nil, u.fail("unpickling stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack[len(u.stack)-1] = nil
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.fence() {
		return nil, u.fail("unpickling stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops the topmost MARK and returns the items pushed since, which
// stay valid until the next push.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.fail("could not find MARK")
	}
	k := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := u.stack[k:]
	u.stack = u.stack[:k]
	return items, nil
}

// clone copies items (a view of the stack) into a new slice, and clears
// them, so that the stack beyond its length keeps no references.
func (u *unpickler) clone(items []any) ([]any, error) {
	out, err := u.copyItems(items)
	clear(items)
	return out, err
}

// copyItems copies items into a new slice.
func (u *unpickler) copyItems(items []any) ([]any, error) {
	if err := u.b.charge(costObject + costSlot*len(items)); err != nil {
		return nil, err
	}
	return append([]any(nil), items...), nil
}

// lenSize returns the size of the length that follows a counted opcode.
func lenSize(op byte) int {
	switch op {
	case opShortBinUni, opShortBinBytes, opShortBinString, opLong1:
		return 1
	case opBinUnicode8, opBinBytes8, opByteArray8:
		return 8
	}
	return 4
}

func (u *unpickler) memoPut(idx uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if u.memo == nil {
		u.memo = make(map[uint64]any)
	}
	if _, ok := u.memo[idx]; !ok {
		if err := u.b.charge(costMemo); err != nil {
			return err
		}
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) memoGet(idx uint64) error {
	v, ok := u.memo[idx]
	if !ok {
		return u.fail("memo value not found at index %d", idx)
	}
	return u.push(v)
}

// lineIndex parses the decimal memo index of GET and PUT.
func (u *unpickler) lineIndex() (uint64, error) {
	line, err := u.readLine()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(line), 10, 64)
	if err != nil {
		return 0, u.fail("bad memo index %q", truncate(string(line)))
	}
	return n, nil
}

// text returns s as a Python str: UTF-8, as Python decodes it.
func (u *unpickler) text(s []byte) (any, error) {
	if !utf8.Valid(s) {
		return nil, u.fail("str is not valid UTF-8")
	}
	if err := u.b.charge(len(s) + costSlot); err != nil {
		return nil, err
	}
	return string(s), nil
}

// counted reads the byte count of the counted opcode op (lenSize) and then
// that many bytes, charged (bytesLen). A what names an opcode whose 4-byte
// count is signed, as LONG4's and BINSTRING's are: Python refuses their
// negative counts ("<what> pickle has negative byte count").
func (u *unpickler) counted(op byte, what string) ([]byte, error) {
	size := lenSize(op)
	n, err := u.readUint(size)
	if err != nil {
		return nil, err
	}
	if what != "" && size == 4 && int32(uint32(n)) < 0 {
		return nil, u.fail("%s pickle has negative byte count", what)
	}
	return u.bytesLen(n)
}

func (u *unpickler) bytesLen(n uint64) ([]byte, error) {
	s, err := u.read(n)
	if err != nil {
		return nil, err
	}
	if err := u.b.charge(len(s) + costSlot); err != nil {
		return nil, err
	}
	return s, nil
}

// int pushes a Python int, as int64 when it fits, else *big.Int.
func (u *unpickler) pushBig(n *big.Int) error {
	if n.IsInt64() {
		return u.push(n.Int64())
	}
	if err := u.b.charge(costObject + len(n.Bits())*8); err != nil {
		return err
	}
	return u.push(n)
}

func (u *unpickler) step(op byte) error {
	switch op {
	case opMark:
		if err := u.b.charge(8); err != nil {
			return err
		}
		u.marks = append(u.marks, len(u.stack))
		return nil
	case opPop:
		// POP discards the topmost MARK when nothing was pushed after it.
		if n := len(u.marks); n > 0 && u.marks[n-1] == len(u.stack) {
			u.marks = u.marks[:n-1]
			return nil
		}
		_, err := u.pop()
		return err
	case opPopMark:
		items, err := u.popMark()
		clear(items)
		return err
	case opDup:
		v, err := u.top()
		if err != nil {
			return err
		}
		return u.push(v)

	case opNone:
		return u.push(pyNone{})
	case opNewTrue:
		return u.push(true)
	case opNewFalse:
		return u.push(false)
	case opInt:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		switch string(line) {
		case "00":
			return u.push(false)
		case "01":
			return u.push(true)
		}
		n, err := parseDecimal(line, false)
		if err != nil {
			return u.fail("INT: %v", err)
		}
		return u.pushBig(n)
	case opLong:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		if len(line) > 0 && line[len(line)-1] == 'L' {
			line = line[:len(line)-1]
		}
		n, err := parseDecimal(line, false)
		if err != nil {
			return u.fail("LONG: %v", err)
		}
		return u.pushBig(n)
	case opBinInt:
		n, err := u.readUint(4)
		if err != nil {
			return err
		}
		return u.push(int64(int32(uint32(n))))
	case opBinInt1:
		n, err := u.readUint(1)
		if err != nil {
			return err
		}
		return u.push(int64(n))
	case opBinInt2:
		n, err := u.readUint(2)
		if err != nil {
			return err
		}
		return u.push(int64(n))
	case opLong1, opLong4:
		s, err := u.counted(op, "LONG")
		if err != nil {
			return err
		}
		return u.pushBig(decodeLong(s))
	case opFloat:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil {
			return u.fail("could not convert string to float: %q", truncate(string(line)))
		}
		return u.push(f)
	case opBinFloat:
		s, err := u.read(8)
		if err != nil {
			return err
		}
		return u.push(math.Float64frombits(binary.BigEndian.Uint64(s)))

	case opString:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
			return u.fail("the STRING opcode argument must be quoted")
		}
		if err := u.b.charge(len(line) + costSlot); err != nil {
			return err
		}
		s, err := escapeDecode(line[1 : len(line)-1])
		if err != nil {
			return u.fail("STRING: %v", err)
		}
		return u.push(str8(s))
	case opBinString, opShortBinString:
		s, err := u.counted(op, "BINSTRING")
		if err != nil {
			return err
		}
		return u.push(str8(s))
	case opUnicode:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		if err := u.b.charge(2*len(line) + costSlot); err != nil {
			return err
		}
		s, err := rawUnicodeEscapeDecode(line)
		if err != nil {
			return u.fail("UNICODE: %v", err)
		}
		return u.push(s)
	case opBinUnicode, opShortBinUni, opBinUnicode8:
		n, err := u.readUint(lenSize(op))
		if err != nil {
			return err
		}
		s, err := u.read(n)
		if err != nil {
			return err
		}
		v, err := u.text(s)
		if err != nil {
			return err
		}
		return u.push(v)
	case opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		s, err := u.counted(op, "")
		if err != nil {
			return err
		}
		if op == opByteArray8 {
			return u.push(pyByteArray(s))
		}
		return u.push(pyBytes(s))

	case opEmptyList:
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(&pyList{})
	case opEmptyTuple:
		return u.push(pyTuple{})
	case opEmptyDict:
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(&pyDict{})
	case opEmptySet:
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(&pySet{})
	case opList, opTuple, opFrozenSet, opDict:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if op == opDict && len(items)%2 != 0 {
			return u.fail("odd number of items for DICT")
		}
		c, err := u.clone(items)
		if err != nil {
			return err
		}
		switch op {
		case opList:
			return u.push(&pyList{items: c})
		case opTuple:
			return u.push(pyTuple(c))
		case opFrozenSet:
			return u.push(&pySet{items: c, frozen: true})
		}
		if err := u.b.charge(costSlot * len(c)); err != nil {
			return err
		}
		d := &pyDict{keys: make([]any, 0, len(c)/2), vals: make([]any, 0, len(c)/2)}
		for i := 0; i < len(c); i += 2 {
			d.keys = append(d.keys, c[i])
			d.vals = append(d.vals, c[i+1])
		}
		return u.push(d)
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(u.stack)-n < u.fence() {
			return u.fail("unpickling stack underflow")
		}
		c, err := u.clone(u.stack[len(u.stack)-n:])
		if err != nil {
			return err
		}
		u.stack = u.stack[:len(u.stack)-n]
		return u.push(pyTuple(c))
	case opAppend:
		v, err := u.pop()
		if err != nil {
			return err
		}
		return u.extend([]any{v}, 0)
	case opAppends, opAddItems:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.extend(items, op)
	case opSetItem:
		if len(u.stack)-3 < u.fence() {
			return u.fail("unpickling stack underflow")
		}
		n := len(u.stack)
		pair := [2]any{u.stack[n-2], u.stack[n-1]}
		u.stack[n-2], u.stack[n-1] = nil, nil
		u.stack = u.stack[:n-2]
		return u.setItems(pair[:])
	case opSetItems:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return u.fail("odd number of items for SETITEMS")
		}
		return u.setItems(items)

	case opPut:
		idx, err := u.lineIndex()
		if err != nil {
			return err
		}
		return u.memoPut(idx)
	case opBinPut:
		idx, err := u.readUint(1)
		if err != nil {
			return err
		}
		return u.memoPut(idx)
	case opLongBinPut:
		idx, err := u.readUint(4)
		if err != nil {
			return err
		}
		return u.memoPut(idx)
	case opMemoize:
		return u.memoPut(uint64(len(u.memo)))
	case opGet:
		idx, err := u.lineIndex()
		if err != nil {
			return err
		}
		return u.memoGet(idx)
	case opBinGet:
		idx, err := u.readUint(1)
		if err != nil {
			return err
		}
		return u.memoGet(idx)
	case opLongBinGet:
		idx, err := u.readUint(4)
		if err != nil {
			return err
		}
		return u.memoGet(idx)

	case opGlobal:
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		if err := u.b.charge(costObject + len(module) + len(name)); err != nil {
			return err
		}
		return u.push(global(string(module), string(name)))
	case opStackGlobal:
		name, err := u.pop()
		if err != nil {
			return err
		}
		module, err := u.pop()
		if err != nil {
			return err
		}
		m, ok1 := module.(string)
		n, ok2 := name.(string)
		if !ok1 || !ok2 {
			return u.fail("STACK_GLOBAL requires str")
		}
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(global(m, n))
	case opReduce:
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		t, ok := args.(pyTuple)
		if !ok {
			return u.fail("REDUCE arguments are %s, not a tuple", pyTypeName(args))
		}
		v, err := u.call(fn, t)
		if err != nil {
			return err
		}
		return u.push(v)
	case opNewObj, opNewObjEx:
		if op == opNewObjEx {
			if _, err := u.pop(); err != nil { // keyword arguments
				return err
			}
		}
		if _, err := u.pop(); err != nil { // arguments
			return err
		}
		cls, err := u.pop()
		if err != nil {
			return err
		}
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(&pyObject{class: cls})
	case opInst:
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		items, err := u.popMark()
		if err != nil {
			return err
		}
		clear(items)
		if err := u.b.charge(costObject + len(module) + len(name)); err != nil {
			return err
		}
		return u.push(&pyObject{class: global(string(module), string(name))})
	case opObj:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return u.fail("unpickling stack underflow")
		}
		cls := items[0]
		clear(items)
		if err := u.b.charge(costObject); err != nil {
			return err
		}
		return u.push(&pyObject{class: cls})
	case opBuild:
		state, err := u.pop()
		if err != nil {
			return err
		}
		inst, err := u.top()
		if err != nil {
			return err
		}
		switch inst := inst.(type) {
		case *pyObject:
			return nil // its state has no Go form either
		case *pyDict:
			// collections.OrderedDict's reduce may add an empty state.
			if d, ok := state.(*pyDict); ok && len(d.keys) == 0 {
				return nil
			}
			if _, ok := state.(pyNone); ok {
				return nil
			}
			return u.fail("BUILD on a dict with state %s", pyTypeName(state))
		default:
			return u.fail("BUILD on %s", pyTypeName(inst))
		}

	case opProto:
		v, err := u.readByte()
		if err != nil {
			return err
		}
		if v > HighestProtocol {
			return u.fail("unsupported pickle protocol: %d", v)
		}
		u.proto = int(v)
		return nil
	case opFrame:
		n, err := u.readUint(8)
		if err != nil {
			return err
		}
		if n > uint64(len(u.data)-u.pos) {
			return u.fail("%s: frame of %d bytes, %d left", errTruncated, n, len(u.data)-u.pos)
		}
		return nil

	case opPersID, opBinPersID:
		return u.fail("the pickle holds a persistent ID (a reference to an object of a database such as ZODB), which has no value outside it")
	case opExt1, opExt2, opExt4:
		return u.fail("the pickle uses the copyreg extension registry, which is empty")
	case opNextBuffer, opReadOnlyBuffer:
		return u.fail("the pickle uses out-of-band buffers, which a cached value cannot have")
	}
	return u.fail("invalid opcode 0x%02x", op)
}

// extend implements APPEND (op 0), APPENDS and ADDITEMS: the container is
// below the items' MARK.
func (u *unpickler) extend(items []any, op byte) error {
	c, err := u.top()
	if err != nil {
		clear(items)
		return err
	}
	defer clear(items)
	switch c := c.(type) {
	case *pyList:
		if op != opAddItems {
			var err error
			c.items, err = u.grow(c.items, len(items))
			c.items = append(c.items, items...)
			return err
		}
	case *pySet:
		if op == opAddItems && !c.frozen {
			var err error
			c.items, err = u.grow(c.items, len(items))
			c.items = append(c.items, items...)
			return err
		}
	case *pyObject:
		return nil // an instance of a list subclass: it has no Go form
	}
	name := "APPEND"
	switch op {
	case opAppends:
		name = "APPENDS"
	case opAddItems:
		name = "ADDITEMS"
	}
	return u.fail("%s to %s", name, pyTypeName(c))
}

// setItems implements SETITEM and SETITEMS: pairs go into the dict below.
func (u *unpickler) setItems(pairs []any) error {
	defer clear(pairs)
	c, err := u.top()
	if err != nil {
		return err
	}
	switch d := c.(type) {
	case *pyDict:
		if d.keys, err = u.grow(d.keys, len(pairs)/2); err != nil {
			return err
		}
		if d.vals, err = u.grow(d.vals, len(pairs)/2); err != nil {
			return err
		}
		for i := 0; i < len(pairs); i += 2 {
			d.keys = append(d.keys, pairs[i])
			d.vals = append(d.vals, pairs[i+1])
		}
		return nil
	case *pyObject:
		return nil // an instance of a dict subclass: it has no Go form
	}
	return u.fail("SETITEMS to %s", pyTypeName(c))
}

// global returns the class or function module.name, with the Python 2
// names Python 3 maps (fix_imports) mapped.
func global(module, name string) pyGlobal {
	switch module {
	case "__builtin__":
		module = "builtins"
	case "copy_reg":
		module = "copyreg"
	}
	return pyGlobal{module: module, name: name}
}

// qualName is module.name, each shortened: they come from the pickle,
// and may be of any length.
func (g pyGlobal) qualName() string { return truncate(g.module) + "." + truncate(g.name) }

// call runs REDUCE: the few constructors Python's picklers use for
// built-in types become those types; any other call makes a pyObject.
func (u *unpickler) call(fn any, args pyTuple) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return &pyObject{class: fn}, u.b.charge(costObject)
	}
	var arg0 any = pyNone{}
	if len(args) > 0 {
		arg0 = args[0]
	}
	switch g {
	case pyGlobal{"builtins", "set"}, pyGlobal{"builtins", "frozenset"}:
		// Protocols 0 to 3: set([items]) and frozenset([items]).
		frozen := g.name == "frozenset"
		switch {
		case len(args) == 0:
			return &pySet{frozen: frozen}, u.b.charge(costObject)
		case len(args) == 1:
			if items, ok := sequence(arg0); ok {
				c, err := u.copyItems(items)
				return &pySet{items: c, frozen: frozen}, err
			}
		}
	case pyGlobal{"builtins", "bytes"}:
		if len(args) == 0 { // protocols 0 to 2 write b'' as bytes()
			return pyBytes(""), nil
		}
	case pyGlobal{"_codecs", "encode"}, pyGlobal{"builtins", "bytearray"}:
		// Protocols 0 to 2: _codecs.encode(s, 'latin1') for bytes, and
		// bytearray(s, 'latin-1') or bytearray(bytes) for bytearray.
		isArray := g.name == "bytearray"
		if isArray && len(args) == 0 {
			return pyByteArray(""), nil
		}
		if isArray && len(args) == 1 {
			if b, ok := arg0.(pyBytes); ok {
				return pyByteArray(b), nil
			}
		}
		if len(args) == 2 {
			s, ok1 := arg0.(string)
			enc, ok2 := text(args[1])
			if ok1 && ok2 && (enc == "latin1" || enc == "latin-1") {
				b, ok := latin1(s)
				if !ok {
					return nil, u.fail("%s.%s: the str is not latin-1", g.module, g.name)
				}
				if err := u.b.charge(len(b) + costSlot); err != nil {
					return nil, err
				}
				if isArray {
					return pyByteArray(b), nil
				}
				return pyBytes(b), nil
			}
		}
	case pyGlobal{"collections", "OrderedDict"}:
		// Python 3: OrderedDict() then SETITEMS; Python 2:
		// OrderedDict([[k, v], ...]).
		if len(args) == 0 {
			return &pyDict{}, u.b.charge(costObject)
		}
		if items, ok := sequence(arg0); ok && len(args) == 1 {
			d := &pyDict{}
			for _, it := range items {
				kv, ok := sequence(it)
				if !ok || len(kv) != 2 {
					return nil, u.fail("OrderedDict: an item is not a pair")
				}
				d.keys = append(d.keys, kv[0])
				d.vals = append(d.vals, kv[1])
			}
			return d, u.b.charge(costObject + 2*costSlot*len(items))
		}
	case pyGlobal{"copyreg", "_reconstructor"}:
		// Instances of classes pickled with protocols 0 and 1.
		if len(args) > 0 {
			return &pyObject{class: arg0}, u.b.charge(costObject)
		}
	}
	return &pyObject{class: g}, u.b.charge(costObject)
}

// sequence returns the items of a list or tuple.
func sequence(v any) ([]any, bool) {
	switch v := v.(type) {
	case *pyList:
		return v.items, true
	case pyTuple:
		return v, true
	}
	return nil, false
}

// text returns the text of a str or Python 2 str.
func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case str8:
		return string(v), true
	}
	return "", false
}

// latin1 encodes s, whose runes must all be below 256, as Latin-1.
func latin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// decodeLong decodes LONG1/LONG4's little-endian two's complement.
func decodeLong(s []byte) *big.Int {
	be := make([]byte, len(s))
	for i, c := range s {
		be[len(s)-1-i] = c
	}
	n := new(big.Int).SetBytes(be)
	if len(s) > 0 && s[len(s)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(s))))
	}
	return n
}

// pyTypeName names the Python type of a value of the unpickler.
func pyTypeName(v any) string {
	switch v := v.(type) {
	case pyNone:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case str8:
		return "str (Python 2)"
	case pyBytes:
		return "bytes"
	case pyByteArray:
		return "bytearray"
	case *pyList:
		return "list"
	case pyTuple:
		return "tuple"
	case *pyDict:
		return "dict"
	case *pySet:
		if v.frozen {
			return "frozenset"
		}
		return "set"
	case pyGlobal:
		return "class " + v.qualName()
	case *pyObject:
		if g, ok := v.class.(pyGlobal); ok {
			return g.qualName() + " object"
		}
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
