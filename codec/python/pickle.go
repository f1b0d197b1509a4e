package python

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The pickler: Go values written as the pickle Python's own pickle.dumps
// writes for their Python counterparts (Lib/pickle.py, _Pickler), opcode
// for opcode, without memo entries (a Go value has no shared or cyclic
// references the depth bound lets through) and without protocol 4's
// optional frames.

// batchSize is how many items one APPENDS or SETITEMS takes, as in
// Python (_BATCHSIZE).
const batchSize = 1000

// pickler writes one pickle.
type pickler struct {
	buf   []byte
	proto int
	depth int
	path  []string // where in the value it is, for errors
}

// pickle returns the pickle of rv in protocol proto (1 to
// HighestProtocol).
func pickle(rv reflect.Value, proto int) ([]byte, error) {
	p := &pickler{proto: proto, buf: make([]byte, 0, 64)}
	if proto >= 2 {
		p.buf = append(p.buf, opProto, byte(proto))
	}
	if err := p.save(rv); err != nil {
		return nil, err
	}
	return append(p.buf, opStop), nil
}

// errorf is an ErrEncode saying where in the value it is: of a deep path
// (a cycle's, 1000 steps) the first and last 8 steps, each cut to 64
// bytes (a map key may be of any size), as the decoder's errors do.
func (p *pickler) errorf(format string, args ...any) error {
	var where strings.Builder
	for i, step := range p.path {
		if i == 0 {
			where.WriteString(" at ")
		}
		if n := len(p.path); n > 16 && i >= 8 && i < n-8 {
			if i == 8 {
				fmt.Fprintf(&where, "...(%d more)...", n-16)
			}
			continue
		}
		where.WriteString(truncate(step))
	}
	return fmt.Errorf("%w: %s%s", ErrEncode, fmt.Sprintf(format, args...), where.String())
}

// save writes rv as the Python value it stands for: None (nil pointers
// and interfaces), bool, int, float, str, bytes, list or dict.
func (p *pickler) save(rv reflect.Value) error {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return p.errorf("the value nests deeper than %d levels (a cycle?)", MaxDepth)
	}
	if !rv.IsValid() {
		p.buf = append(p.buf, opNone)
		return nil
	}
	t := rv.Type()
	if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && rv.IsNil() {
		p.buf = append(p.buf, opNone)
		return nil
	}
	switch {
	case t == bigIntType || t == reflect.PointerTo(bigIntType):
		n := bigOf(rv)
		if err := checkDigits(n); err != nil {
			return p.errorf("%v", err)
		}
		p.saveBig(n)
		return nil
	case t.Implements(textMarshalerType):
		s, err := marshalText(rv)
		if err != nil {
			return p.errorf("%v", err)
		}
		return p.saveStr(s)
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		return p.save(rv.Elem())
	case reflect.Bool:
		p.saveBool(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.saveInt(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			p.saveInt(int64(u))
		} else {
			p.saveBig(new(big.Int).SetUint64(u))
		}
	case reflect.Float32, reflect.Float64:
		p.buf = append(p.buf, opBinFloat)
		p.buf = binary.BigEndian.AppendUint64(p.buf, math.Float64bits(rv.Float()))
	case reflect.String:
		s := rv.String()
		if !utf8.ValidString(s) {
			return p.errorf("the string %q is not valid UTF-8, which a Python str must be (store bytes as []byte)", truncate(s))
		}
		return p.saveStr(s)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return p.saveBytes(byteContents(rv))
		}
		return p.saveList(rv)
	case reflect.Map:
		return p.saveMap(rv)
	case reflect.Struct:
		return p.saveStruct(rv)
	default:
		return p.errorf("Go %v has no Python form", t)
	}
	return nil
}

func (p *pickler) saveBool(b bool) {
	switch {
	case p.proto >= 2 && b:
		p.buf = append(p.buf, opNewTrue)
	case p.proto >= 2:
		p.buf = append(p.buf, opNewFalse)
	case b:
		p.buf = append(p.buf, "I01\n"...)
	default:
		p.buf = append(p.buf, "I00\n"...)
	}
}

// saveInt writes an int as Python does: BININT1, BININT2 or BININT when
// it fits, else LONG1 (protocol 2 on) or LONG.
func (p *pickler) saveInt(n int64) {
	switch {
	case n >= 0 && n <= math.MaxUint8:
		p.buf = append(p.buf, opBinInt1, byte(n))
	case n >= 0 && n <= math.MaxUint16:
		p.buf = append(p.buf, opBinInt2)
		p.buf = binary.LittleEndian.AppendUint16(p.buf, uint16(n))
	case n >= math.MinInt32 && n <= math.MaxInt32:
		p.buf = append(p.buf, opBinInt)
		p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(int32(n)))
	default:
		p.saveBig(big.NewInt(n))
	}
}

// saveBig writes an int of any size: as saveInt when it fits an int32,
// else LONG1 or LONG4 with its two's complement bytes (protocol 2 on),
// or LONG with its decimal digits (protocol 1).
func (p *pickler) saveBig(n *big.Int) {
	if n.IsInt64() {
		if i := n.Int64(); i >= math.MinInt32 && i <= math.MaxInt32 {
			p.saveInt(i)
			return
		}
	}
	if p.proto < 2 {
		p.buf = append(p.buf, opLong)
		p.buf = n.Append(p.buf, 10)
		p.buf = append(p.buf, "L\n"...)
		return
	}
	b := encodeLong(n)
	if len(b) < 256 {
		p.buf = append(p.buf, opLong1, byte(len(b)))
	} else {
		p.buf = append(p.buf, opLong4)
		p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(b)))
	}
	p.buf = append(p.buf, b...)
}

// encodeLong returns n as pickle's encode_long does: the fewest
// little-endian bytes of its two's complement (none for 0).
func encodeLong(n *big.Int) []byte {
	var b []byte
	if n.Sign() >= 0 {
		b = n.Bytes() // big-endian magnitude
		reverse(b)
		if len(b) > 0 && b[len(b)-1]&0x80 != 0 {
			b = append(b, 0) // keep it positive
		}
		return b
	}
	// -n-1 has the bits of n's two's complement, inverted.
	m := new(big.Int).Neg(n)
	b = m.Sub(m, big.NewInt(1)).Bytes()
	reverse(b)
	for i := range b {
		b[i] = ^b[i]
	}
	if len(b) == 0 || b[len(b)-1]&0x80 == 0 {
		b = append(b, 0xff) // keep it negative
	}
	return b
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// saveStr writes a str: SHORT_BINUNICODE (protocol 4 on, up to 255
// bytes), BINUNICODE or BINUNICODE8.
func (p *pickler) saveStr(s string) error {
	if !p.counted(len(s), p.proto >= 4, [3]byte{opShortBinUni, opBinUnicode, opBinUnicode8}) {
		return p.errorf("a str of %d bytes needs pickle protocol 4", len(s))
	}
	p.buf = append(p.buf, s...)
	return nil
}

// counted writes the opcode and byte count of a counted value of n bytes:
// ops[0] with a 1-byte count if short allows it, ops[1] with a 4-byte
// count, or ops[2] with an 8-byte count from protocol 4 on; false if n
// needs protocol 4, for the caller to name what it was writing.
func (p *pickler) counted(n int, short bool, ops [3]byte) bool {
	switch {
	case n <= math.MaxUint8 && short:
		p.buf = append(p.buf, ops[0], byte(n))
	case n <= math.MaxUint32:
		p.buf = append(p.buf, ops[1])
		p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(n))
	case p.proto >= 4:
		p.buf = append(p.buf, ops[2])
		p.buf = binary.LittleEndian.AppendUint64(p.buf, uint64(n))
	default:
		return false
	}
	return true
}

// saveBytes writes bytes: SHORT_BINBYTES, BINBYTES or BINBYTES8 from
// protocol 3 on; before it, which has no bytes, as Python 3 does:
// bytes() for b” and _codecs.encode(<the bytes as latin-1 str>,
// 'latin1') for the others, which Python 2 reads as a str.
func (p *pickler) saveBytes(b []byte) error {
	if p.proto < 3 {
		if len(b) == 0 {
			p.global("__builtin__", "bytes")
			p.buf = append(p.buf, opEmptyTuple, opReduce)
			return nil
		}
		p.global("_codecs", "encode")
		if p.proto < 2 {
			p.buf = append(p.buf, opMark)
		}
		s := make([]byte, 0, len(b)+len(b)/2)
		for _, c := range b {
			s = utf8.AppendRune(s, rune(c))
		}
		if err := p.saveStr(string(s)); err != nil {
			return err
		}
		_ = p.saveStr("latin1")
		if p.proto < 2 {
			p.buf = append(p.buf, opTuple)
		} else {
			p.buf = append(p.buf, opTuple2)
		}
		p.buf = append(p.buf, opReduce)
		return nil
	}
	if !p.counted(len(b), true, [3]byte{opShortBinBytes, opBinBytes, opBinBytes8}) {
		return p.errorf("bytes of %d bytes need pickle protocol 4", len(b))
	}
	p.buf = append(p.buf, b...)
	return nil
}

// global writes GLOBAL module name.
func (p *pickler) global(module, name string) {
	p.buf = append(p.buf, opGlobal)
	p.buf = append(p.buf, module...)
	p.buf = append(p.buf, '\n')
	p.buf = append(p.buf, name...)
	p.buf = append(p.buf, '\n')
}

// batched writes n items with item, after EMPTY_LIST or EMPTY_DICT, as
// Python's _batch_appends and _batch_setitems do: batches of up to
// batchSize in MARK ... many, a lone item with one.
func (p *pickler) batched(n int, one, many byte, item func(i int) error) error {
	for start := 0; start < n; start += batchSize {
		end := min(start+batchSize, n)
		if end-start > 1 {
			p.buf = append(p.buf, opMark)
		}
		for i := start; i < end; i++ {
			if err := item(i); err != nil {
				return err
			}
		}
		if end-start > 1 {
			p.buf = append(p.buf, many)
		} else {
			p.buf = append(p.buf, one)
		}
	}
	return nil
}

// saveList writes a slice or array as a list.
func (p *pickler) saveList(rv reflect.Value) error {
	p.buf = append(p.buf, opEmptyList)
	return p.batched(rv.Len(), opAppend, opAppends, func(i int) error {
		p.path = append(p.path, "["+strconv.Itoa(i)+"]")
		err := p.save(rv.Index(i))
		p.path = p.path[:len(p.path)-1]
		return err
	})
}

// saveMap writes a map as a dict, in the map's iteration order.
func (p *pickler) saveMap(rv reflect.Value) error {
	p.buf = append(p.buf, opEmptyDict)
	it := rv.MapRange()
	return p.batched(rv.Len(), opSetItem, opSetItems, func(int) error {
		it.Next()
		name, err := p.saveKey(it.Key())
		if err != nil {
			return err
		}
		p.path = append(p.path, "["+name+"]")
		err = p.save(it.Value())
		p.path = p.path[:len(p.path)-1]
		return err
	})
}

// saveKey writes a map key as a dict key (str, int, float or bool), and
// returns how errors name it.
func (p *pickler) saveKey(rv reflect.Value) (string, error) {
	if rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return "", p.errorf("a nil map key")
		}
		rv = rv.Elem()
	}
	t := rv.Type()
	if t.Implements(textMarshalerType) {
		s, err := marshalText(rv)
		if err != nil {
			return "", p.errorf("%v", err)
		}
		return strconv.Quote(s), p.saveStr(s)
	}
	switch t.Kind() {
	case reflect.String:
		return strconv.Quote(rv.String()), p.save(rv)
	case reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprint(rv.Interface()), p.save(rv)
	}
	return "", p.errorf("a map key of Go type %v: a dict key must be text, a number or a bool", t)
}

// saveStruct writes a struct as a dict of its fields, by the names
// Unmarshal reads them by, leaving out ",omitempty" fields that are
// empty.
func (p *pickler) saveStruct(rv reflect.Value) error {
	fields := fieldsOf(rv.Type())
	list := make([]*field, 0, len(fields.list))
	for i := range fields.list {
		f := &fields.list[i]
		if f.omitEmpty && isEmpty(rv.FieldByIndex(f.index)) {
			continue
		}
		list = append(list, f)
	}
	p.buf = append(p.buf, opEmptyDict)
	return p.batched(len(list), opSetItem, opSetItems, func(i int) error {
		f := list[i]
		_ = p.saveStr(f.name)
		p.path = append(p.path, "."+f.name)
		err := p.save(rv.FieldByIndex(f.index))
		p.path = p.path[:len(p.path)-1]
		return err
	})
}
