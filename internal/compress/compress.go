// Package compress compresses memdict's values with zstd
// (github.com/klauspost/compress/zstd), and decompresses them within a
// bound, for values that are untrusted input.
//
// Every value memdict compresses is one zstd frame that states its
// decompressed size (EncodeAll writes it); Decode refuses a frame that does
// not, whose size exceeds the bound, or that states more than its bytes
// can hold (maxRatio), before allocating anything, and
// never writes more than the stated size (DecodeAll's cap limit), however
// the frame was made (several frames, a lying size). The encoder is made
// at the first Encode, so that programs that only read compressed values
// do not pay for it; the decoder at the first Decode.
package compress

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// encoder is shared: EncodeAll is safe for concurrent use. It is made in
// Encode, not by a package-level initializer (sync.OnceValue's function
// would be referenced from the package's init and keep zstd's encoder in
// every program's binary): a program links the encoder only if it can
// compress, that is if it calls codec.Zstd.
var encoder struct {
	once sync.Once
	e    *zstd.Encoder
}

// newEncoder makes the shared encoder.
func newEncoder() {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("compress: " + err.Error()) // the options are constant
	}
	encoder.e = e
}

// decoder is shared: DecodeAll is safe for concurrent use.
var decoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic("compress: " + err.Error()) // the options are constant
	}
	return d
})

// Encode appends the zstd frame of src, which states its size, to dst.
func Encode(dst, src []byte) []byte {
	encoder.once.Do(newEncoder)
	return encoder.e.EncodeAll(src, dst)
}

// ErrTooLarge is wrapped by Decode's error for a frame that would
// decompress to more than its bound.
var ErrTooLarge = errors.New("compressed value too large")

// maxRatio bounds what a byte of a zstd frame decompresses to: a block
// holds 128 KiB at most and takes 4 bytes at least (its 3-byte header and
// the byte of a run), so a frame of n bytes holds less than n*maxRatio.
// A frame stating more lies, and its size is not allocated: a frame of 17
// bytes stating 64 MiB made Decode allocate 64 MiB to find that out.
const maxRatio = (128 << 10) / 4

// Size returns the decompressed size the zstd frame src states, and
// whether it states one (Decode refuses a frame that does not).
func Size(src []byte) (int, bool) {
	var h zstd.Header
	if h.Decode(src) != nil || !h.HasFCS || h.FrameContentSize > math.MaxInt32 {
		return 0, false
	}
	return int(h.FrameContentSize), true
}

// Decode returns what the zstd frame src decompresses to, in a new slice,
// or an error if src is not one frame of memdict's (no stated size,
// corrupt) or would decompress to more than max bytes (ErrTooLarge).
func Decode(src []byte, max int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if !h.HasFCS {
		return nil, errors.New("zstd: frame without its decompressed size")
	}
	if max < 0 || h.FrameContentSize > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, h.FrameContentSize, max)
	}
	if h.FrameContentSize > uint64(len(src))*maxRatio {
		// A lie: refused before its size is allocated.
		return nil, fmt.Errorf("zstd: a frame of %d bytes states %d bytes decompressed, more than it can hold", len(src), h.FrameContentSize)
	}
	// Exactly the size stated: the cap limit stops a frame (or frames)
	// that would write more.
	out, err := decoder().DecodeAll(src, make([]byte, 0, h.FrameContentSize))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if uint64(len(out)) != h.FrameContentSize {
		return nil, fmt.Errorf("zstd: %d bytes decompressed, the frame said %d", len(out), h.FrameContentSize)
	}
	return out, nil
}
