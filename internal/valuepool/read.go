package valuepool

import "io"

// Ahead is the most ReadFull allocates for a value ahead of its bytes.
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
// straight into alloc(n): one allocation, no copy. A longer one is read
// into a buffer that grows as its bytes arrive, from Ahead (or buffered),
// twice as long each time it is full, up to alloc(n): it holds at most
// about three times what the server sent, whatever it announced. The smaller buffers, used only here, come from the pool and
// go back to it, and the growth copies less than n bytes in all.
//
// On an error (as io.ReadFull's: io.ErrUnexpectedEOF for a value cut
// short) it returns nil and the error.
func ReadFull(r io.Reader, n, buffered int, alloc func(int) []byte) ([]byte, error) {
	first := max(Ahead, buffered)
	if n <= first {
		b := alloc(n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	buf := Get(first)
	got := 0
	for {
		k, err := io.ReadFull(r, buf[got:])
		got += k
		if err != nil {
			Put(buf)
			if err == io.EOF && got > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		next := min(n, 2*len(buf))
		var nb []byte
		if next == n {
			nb = alloc(n)
		} else {
			nb = Get(next)
		}
		copy(nb, buf[:got])
		Put(buf)
		buf = nb
		if next == n {
			break
		}
	}
	if _, err := io.ReadFull(r, buf[got:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
