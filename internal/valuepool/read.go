package valuepool

import "io"

// Ahead is the length of the longest value ReadFull allocates whole
// before its bytes came, and the first chunk of Held: longer values are
// allocated as their bytes arrive.
//
// A reply's length is a promise, not data: a server (broken, hostile, or
// a proxy in between) that announces a value of hundreds of MiB and then
// sends little or nothing made a reader that allocated the whole length
// up front hold that much until its timeout, per call (a Redis $268435456
// held 256 MiB per Get, 2 GiB with 8 concurrent GetMultis). Values up to
// Ahead, the common case, are still read into one buffer of their exact
// length.
const Ahead = 64 << 10

// ReadFull reads n bytes from r into a buffer of length n made by alloc
// (Get, or make for memory that must not be pooled) and returns it.
// buffered is how many of r's next bytes are known to be in memory
// already (a bufio.Reader's Buffered), or 0.
//
// A value of at most Ahead bytes, or of at most buffered, is read
// straight into alloc(n): one allocation, no copy. Of a longer one, the
// first half is read as it arrives into pooled chunks (Held), and only
// then is alloc(n) called, the first half copied into it and the rest
// read straight into it: what is allocated ahead of what came is at most
// about as much again, whatever the server announced, and the chunks go
// back to the pool.
//
// On an error (as io.ReadFull's: io.ErrUnexpectedEOF for a value cut
// short) it returns nil and the error.
func ReadFull(r io.Reader, n, buffered int, alloc func(int) []byte) ([]byte, error) {
	if n > max(Ahead, buffered) {
		return readLong(r, n, alloc)
	}
	b := alloc(n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readLong is ReadFull of a long value.
func readLong(r io.Reader, n int, alloc func(int) []byte) ([]byte, error) {
	var h Held
	half := n / 2
	if err := h.Collect(nil, r, half, func([]byte) error { return nil }); err != nil {
		return nil, err
	}
	b := alloc(n)
	h.Read(b[:half])
	if _, err := io.ReadFull(r, b[half:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// Held holds bytes read ahead of their reader, in chunks from the pool:
// a connection's guard collects a long value with it before its reader
// sees the value's length (go-redis and gomemcache allocate that length
// as soon as they read it), and hands them on with Read. The zero value
// is empty and ready to use.
type Held struct {
	chunks [][]byte
	off    int // in chunks[0]
}

// Collect reads n bytes: first those of tail (fewer than n), then the
// rest from r as they arrive, into chunks that grow from Ahead (or
// len(tail)) to MaxSize-1: what it allocates ahead of what came is at
// most twice that and at most MaxSize, whatever n is, the chunks are
// pooled buffers, and no byte is copied twice. It calls check on the
// bytes of each chunk once it is full; an error of check's, or of r's,
// drops what was collected and is returned. h must be empty.
func (h *Held) Collect(tail []byte, r io.Reader, n int, check func([]byte) error) error {
	return h.CollectGrowing(tail, r, n, func(b []byte) (int, error) { return 0, check(b) })
}

// CollectGrowing is Collect for a reader that learns, from the bytes
// collected, that more must be at hand: check returns how many bytes to
// collect beyond those asked so far (0 for none). A connection's guard
// holds the header of a long aggregate until bytes for its elements have
// arrived, and those bytes may announce more (a nested aggregate, a long
// string).
func (h *Held) CollectGrowing(tail []byte, r io.Reader, n int, check func([]byte) (int, error)) error {
	size := max(Ahead, len(tail))
	for n > 0 {
		b := Get(min(n, size))
		k := copy(b, tail)
		tail = tail[k:]
		if m, err := io.ReadFull(r, b[k:]); err != nil {
			if err == io.EOF && (k+m > 0 || len(h.chunks) > 0) {
				err = io.ErrUnexpectedEOF // some bytes came
			}
			Put(b)
			h.Reset()
			return err
		}
		h.chunks = append(h.chunks, b)
		more, err := check(b)
		if err != nil {
			h.Reset()
			return err
		}
		n += more - len(b)
		size = min(2*size, MaxSize-1)
	}
	return nil
}

// Len returns how many bytes h holds.
func (h *Held) Len() int {
	n := -h.off
	for _, b := range h.chunks {
		n += len(b)
	}
	return n
}

// Read hands the next bytes h holds to p, and returns how many; each
// chunk emptied goes back to the pool.
func (h *Held) Read(p []byte) int {
	n := 0
	for n < len(p) && len(h.chunks) > 0 {
		k := copy(p[n:], h.chunks[0][h.off:])
		n += k
		if h.off += k; h.off == len(h.chunks[0]) {
			Put(h.chunks[0])
			h.chunks[0] = nil
			h.chunks, h.off = h.chunks[1:], 0
		}
	}
	if len(h.chunks) == 0 {
		h.chunks = nil
	}
	return n
}

// Reset drops what h holds, handing its chunks back to the pool.
func (h *Held) Reset() {
	for _, b := range h.chunks {
		Put(b)
	}
	h.chunks, h.off = nil, 0
}
