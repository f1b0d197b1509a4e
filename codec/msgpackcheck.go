package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MsgPackMaxDepth bounds the nesting of arrays and maps in a value the
// msgpack codec decodes. The decoder recurses once per level, so a stored
// value of a few hundred bytes (compressed) nested millions deep would
// overflow the reader's stack, a crash no recover catches.
const MsgPackMaxDepth = 10000

// checkMsgPack checks, before the decoder sees it, that data holds one
// msgpack value no deeper than MsgPackMaxDepth, whose declared lengths
// fit in what is left of data: an array of n elements needs n bytes at
// least, a map of n pairs 2n, a string, binary or extension its length.
// The decoder allocates for what a header declares before it reads the
// elements (a slice of n for an array of n), so that bounds what a stored
// value can make it allocate by the value's size. It walks the value
// without recursion, and reads nothing after it (Unmarshal reports
// trailing bytes).
func checkMsgPack(data []byte) error {
	// open holds, for each array or map being read, how many values it
	// still has; the top level is one value.
	var small [16]uint64
	open := append(small[:0], 1)
	i := 0
	for len(open) > 0 {
		if open[len(open)-1] == 0 {
			open = open[:len(open)-1]
			continue
		}
		open[len(open)-1]--
		if i >= len(data) {
			return errors.New("msgpack: value truncated")
		}
		c := data[i]
		i++
		var (
			lenBytes  int    // bytes of a length that follows c
			fixed     int    // bytes of data that follow c (and the length)
			elems     uint64 // values of an array or map
			container bool
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			elems, container = 2*uint64(c&0x0f), true
		case c <= 0x9f: // fixarray
			elems, container = uint64(c&0x0f), true
		case c <= 0xbf: // fixstr
			fixed = int(c & 0x1f)
		case c == 0xc0, c == 0xc2, c == 0xc3: // nil, false, true
		case c == 0xc1:
			return fmt.Errorf("msgpack: byte 0xc1 at offset %d, which msgpack never uses", i-1)
		case c == 0xc4, c == 0xd9: // bin8, str8
			lenBytes = 1
		case c == 0xc5, c == 0xda: // bin16, str16
			lenBytes = 2
		case c == 0xc6, c == 0xdb: // bin32, str32
			lenBytes = 4
		case c == 0xc7: // ext8: length, type
			lenBytes, fixed = 1, 1
		case c == 0xc8: // ext16
			lenBytes, fixed = 2, 1
		case c == 0xc9: // ext32
			lenBytes, fixed = 4, 1
		case c == 0xca: // float32
			fixed = 4
		case c == 0xcb: // float64
			fixed = 8
		case c >= 0xcc && c <= 0xcf: // uint8..uint64
			fixed = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int8..int64
			fixed = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext1..fixext16: type, data
			fixed = 1 + 1<<(c-0xd4)
		case c == 0xdc: // array16
			lenBytes, container = 2, true
		case c == 0xdd: // array32
			lenBytes, container = 4, true
		case c == 0xde: // map16
			lenBytes, container = 2, true
		case c == 0xdf: // map32
			lenBytes, container = 4, true
		}
		var n uint64
		if lenBytes > 0 {
			if len(data)-i < lenBytes {
				return errors.New("msgpack: value truncated")
			}
			switch lenBytes {
			case 1:
				n = uint64(data[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(data[i:]))
			case 4:
				n = uint64(binary.BigEndian.Uint32(data[i:]))
			}
			i += lenBytes
		}
		left := uint64(len(data) - i)
		if container {
			if lenBytes > 0 {
				elems = n
				if c == 0xde || c == 0xdf {
					elems = 2 * n
				}
			}
			if elems > left {
				return fmt.Errorf("msgpack: a header at offset %d declares %d values, more than the %d bytes left", i-1-lenBytes, elems, left)
			}
			if elems > 0 {
				if len(open) > MsgPackMaxDepth {
					return fmt.Errorf("msgpack: arrays and maps nested deeper than %d", MsgPackMaxDepth)
				}
				open = append(open, elems)
			}
			continue
		}
		size := uint64(fixed)
		if lenBytes > 0 {
			size += n
		}
		if size > left {
			return fmt.Errorf("msgpack: a value at offset %d declares %d bytes, more than the %d left", i-1-lenBytes, size, left)
		}
		i += int(size)
	}
	return nil
}
