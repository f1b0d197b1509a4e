// Package valuepool recycles the buffers values are read into.
//
// A backend that reads a value from the network into a buffer of its own
// (made for that read, held by nobody else) takes it from Get; a Dict
// that decoded such a value with a codec, which keeps nothing of the
// bytes it decodes (codec.Codec's contract), hands the buffer back with
// Put, so that the next read reuses it. A read then costs no allocation,
// no zeroing of fresh memory and no garbage: at 16 KiB per value, the
// allocation and the collections it causes were a third of a client's
// CPU time; at 100 bytes, a pooled buffer costs a sixth of an allocation
// and its collection (about 15 against 75-110 ns).
//
// Put must be given only memory nobody holds or will read: a Value the
// backend declared private (backend.PrivateReader) that no caller was
// handed. A buffer Put was not given stays the garbage collector's, as
// any other.
package valuepool

import (
	"sync"
	"unsafe"
)

// Buffers come in size classes, four per power of two from MinSize to
// MaxSize: a buffer is at most a quarter larger than the value it holds.
const (
	// MinSize is the smallest length Get takes from the pool; shorter
	// values (a few bytes) are allocated.
	MinSize = 1 << 6
	// MaxSize is the largest: a pooled buffer may be kept until the
	// second garbage collection after its Put, and values above this are
	// rare enough to allocate.
	MaxSize = 1 << 20

	stepsPerOctave = 4
	minShift       = 6  // MinSize == 1 << minShift
	maxShift       = 20 // MaxSize == 1 << maxShift
	classes        = (maxShift-minShift)*stepsPerOctave + 1
)

// sizes[k] is the capacity of the buffers of class k, ascending.
var sizes = func() (s [classes]int) {
	for k := range s {
		octave, step := k/stepsPerOctave, k%stepsPerOctave
		base := 1 << (minShift + octave)
		s[k] = base + step*base/stepsPerOctave
	}
	return s
}()

// pools[k] holds pointers to the first byte of free buffers of class k,
// as unsafe.Pointer: storing a pointer in an interface does not allocate,
// as storing a slice would.
var pools [classes]sync.Pool

// class returns the smallest class whose buffers hold n bytes, or -1 if
// n is outside [MinSize, MaxSize].
func class(n int) int {
	if n < MinSize || n > MaxSize {
		return -1
	}
	lo, hi := 0, classes-1
	for lo < hi {
		mid := (lo + hi) / 2
		if sizes[mid] >= n {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Get returns a slice of length n, from the pool if one of its class is
// free. Its bytes are not zeroed: the caller overwrites them all. Its
// capacity is always more than n (the class of n+1 bytes): that is how
// Put tells it from other memory (see Put).
func Get(n int) []byte {
	k := class(n + 1)
	if k < 0 {
		return make([]byte, n)
	}
	if p, _ := pools[k].Get().(unsafe.Pointer); p != nil {
		return unsafe.Slice((*byte)(p), sizes[k])[:n]
	}
	return make([]byte, n, sizes[k])
}

// Put hands b, which nobody holds any more, back to the pool; it keeps
// only a buffer shorter than its capacity, which is exactly that of a
// class (as Get's are), and drops any other. A value as long as its
// capacity is someone else's memory: a slice of a go-redis reply string
// (a Get on a cluster or a Ring, or batched with writes), whose memory a
// go-redis hook may still hold and which must never be written, or a
// value carved from a shared buffer; reused, it would be overwritten by
// the next read.
func Put(b []byte) {
	c := cap(b)
	k := class(c)
	if k < 0 || sizes[k] != c || len(b) == c {
		return
	}
	pools[k].Put(unsafe.Pointer(unsafe.SliceData(b)))
}
