package codec

import "github.com/memdict/memdict/internal/compress"

// Compression.
//
// A Dict compresses a value when its codec is a Compressor (the codecs
// Zstd returns): it encodes the value with the codec, compresses the
// encoding if it is at least MinLen bytes long and the compressed form is
// smaller, and records that in the value's header. Since the header says
// so, every reader decompresses the value — a Dict with the plain codec
// as well, or the memdict command — and values stored before (or
// below the threshold) read as they are. The codec's ID stays the one of
// the codec it wraps.

// DefaultZstdMinLen is the shortest encoding Zstd compresses unless told
// otherwise: below about a kilobyte, compressing saves little and costs a
// few microseconds.
const DefaultZstdMinLen = 1024

// Compressor is implemented by a codec that a Dict compresses the
// encodings of (see Zstd).
type Compressor interface {
	Codec
	// MinLen is the shortest encoding worth compressing.
	MinLen() int
	// Compress appends the compressed form of src to dst, as one zstd
	// frame that states its decompressed size.
	Compress(dst, src []byte) []byte
}

// Zstd returns c (the default codec if c is nil) with compression: a Dict
// whose codec it is stores each value whose encoding is at least minLen
// bytes long (DefaultZstdMinLen if minLen <= 0) compressed with zstd
// (github.com/klauspost/compress, level SpeedFastest), if that makes it
// smaller, and says so in the value's header. Every reader decompresses
// such values, whatever codec it has: a value is readable by the Dicts of
// c and of Zstd(c) alike. Reading never decompresses a value to more
// than the Dict's MaxValueLen (64 MiB for a Dict without a limit), which
// also bounds the uncompressed encoding a Dict writes: compression saves
// memory and network, it does not raise the limit.
//
// The returned codec has c's ID, and the name c's name followed by
// "+zstd". Its Marshal and Unmarshal are c's, without compression (the
// Dict compresses, in the value's envelope). Dicts of string and []byte
// values use no codec and are not compressed.
func Zstd(c Codec, minLen int) Codec {
	if c == nil {
		c = Default()
	}
	if z, ok := c.(Compressor); ok {
		c = unwrapZstd(z)
	}
	if minLen <= 0 {
		minLen = DefaultZstdMinLen
	}
	z := zstdCodec{Codec: c, minLen: minLen}
	if _, ok := c.(Appender); ok {
		return zstdAppender{z}
	}
	return z
}

// unwrapZstd returns the codec a codec of Zstd wraps.
func unwrapZstd(c Compressor) Codec {
	switch z := c.(type) {
	case zstdCodec:
		return z.Codec
	case zstdAppender:
		return z.Codec
	}
	return c
}

type zstdCodec struct {
	Codec
	minLen int
}

func (z zstdCodec) Name() string                    { return z.Codec.Name() + "+zstd" }
func (z zstdCodec) MinLen() int                     { return z.minLen }
func (z zstdCodec) Compress(dst, src []byte) []byte { return compress.Encode(dst, src) }

// zstdAppender is a zstdCodec of an Appender, which keeps its
// AppendMarshal.
type zstdAppender struct{ zstdCodec }

func (z zstdAppender) AppendMarshal(dst []byte, v any) ([]byte, error) {
	return z.Codec.(Appender).AppendMarshal(dst, v)
}
