package valuepool

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"
	"testing/iotest"
)

// ReadFull reads values of every size whole and exactly, through readers
// that return them in one piece or a byte at a time, and allocates with
// alloc only the value's own buffer: once, of its length.
func TestReadFull(t *testing.T) {
	for _, n := range []int{0, 1, Ahead - 1, Ahead, Ahead + 1, 3*Ahead + 7, MaxSize, MaxSize + 1, 3<<20 + 5} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(i*7 + i>>16)
		}
		for _, half := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(want)
			if half {
				r = iotest.HalfReader(r)
			}
			var allocs []int
			got, err := ReadFull(r, n, 0, func(k int) []byte { allocs = append(allocs, k); return make([]byte, k) })
			if err != nil || !bytes.Equal(got, want) || len(allocs) != 1 || allocs[0] != n {
				t.Fatalf("ReadFull of %d bytes (half reads %v): %d bytes (equal %v), %v; alloc called with %v",
					n, half, len(got), bytes.Equal(got, want), err, allocs)
			}
		}
	}
}

// A value whose bytes are already in memory (buffered) is read straight
// into its buffer, however long.
func TestReadFullBuffered(t *testing.T) {
	const n = 4 * Ahead
	src := bytes.Repeat([]byte("ab"), n/2)
	r := bytes.NewReader(src)
	got, err := ReadFull(r, n, n, func(k int) []byte { return make([]byte, k) })
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("ReadFull of %d buffered bytes: %d bytes, %v", n, len(got), err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		r.Reset(src)
		if _, err := ReadFull(r, n, n, func(k int) []byte { return make([]byte, k) }); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 10*n+n/2 {
		t.Errorf("10 reads of %d buffered bytes allocated %d bytes: more than their buffers", n, a)
	}
}

// A length announced by a reader that then sends 1 KiB and fails costs
// about what arrived: ReadFull allocated the whole length first (256 MiB
// here), so that a server announcing long values and sending nothing
// could exhaust the client's memory.
func TestReadFullAnnouncedOnly(t *testing.T) {
	const announced = 256 << 20
	stall := errors.New("stalled")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	called := false
	v, err := ReadFull(io.MultiReader(bytes.NewReader(make([]byte, 1<<10)), iotest.ErrReader(stall)), announced, 0,
		func(k int) []byte { called = true; return make([]byte, k) })
	runtime.ReadMemStats(&after)
	if v != nil || !errors.Is(err, stall) || called {
		t.Errorf("ReadFull of %d bytes from 1 KiB and an error: %d bytes, %v (value's buffer allocated: %v)", announced, len(v), err, called)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("ReadFull of %d announced bytes, of which 1 KiB came, allocated %d KiB", announced, a>>10)
	}
	// Cut short: io.ErrUnexpectedEOF, as io.ReadFull.
	if _, err := ReadFull(bytes.NewReader(make([]byte, 3*Ahead)), 5*Ahead, 0, Get); err != io.ErrUnexpectedEOF {
		t.Errorf("ReadFull of %d bytes from %d: %v, want io.ErrUnexpectedEOF", 5*Ahead, 3*Ahead, err)
	}
	if _, err := ReadFull(bytes.NewReader(nil), 5*Ahead, 0, Get); err != io.EOF {
		t.Errorf("ReadFull of %d bytes from none: %v, want io.EOF", 5*Ahead, err)
	}
}

// Held collects a long value in chunks that grow to MaxSize-1, tail
// first, checking each once, and hands it back whole through reads of
// any size; an error (r's, or check's) drops what was collected.
func TestHeld(t *testing.T) {
	const n = 3<<20 + 5
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(i*7 + i>>16)
	}
	tail := want[:1000]
	var h Held
	var sizes []int
	checked := 0
	err := h.Collect(tail, iotest.HalfReader(bytes.NewReader(want[len(tail):])), n, func(b []byte) error {
		sizes = append(sizes, len(b))
		checked += len(b)
		return nil
	})
	if err != nil || checked != n || h.Len() != n {
		t.Fatalf("Collect of %d bytes: %v, checked %d, holds %d", n, err, checked, h.Len())
	}
	if sizes[0] != Ahead || sizes[1] != 2*Ahead || slices.Max(sizes) != MaxSize-1 {
		t.Errorf("chunks of %v, want from %d doubling to %d", sizes, Ahead, MaxSize-1)
	}
	var got []byte
	p := make([]byte, 7000)
	for h.Len() > 0 {
		got = append(got, p[:h.Read(p)]...)
	}
	if !bytes.Equal(got, want) || h.Read(p) != 0 {
		t.Errorf("read back %d bytes (equal %v)", len(got), bytes.Equal(got, want))
	}
	stall := errors.New("stalled")
	if err := h.Collect(nil, io.MultiReader(bytes.NewReader(want[:3*Ahead]), iotest.ErrReader(stall)), n, func([]byte) error { return nil }); err != stall || h.Len() != 0 {
		t.Errorf("Collect from a reader failing: %v, holds %d", err, h.Len())
	}
	bad := errors.New("bad")
	if err := h.Collect(nil, bytes.NewReader(want), n, func([]byte) error { return bad }); err != bad || h.Len() != 0 {
		t.Errorf("Collect with check failing: %v, holds %d", err, h.Len())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = h.Collect(nil, io.MultiReader(bytes.NewReader(make([]byte, 1<<10)), iotest.ErrReader(stall)), 256<<20, func([]byte) error { return nil })
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; err != stall || a > 1<<20 {
		t.Errorf("Collect of 256 MiB of which 1 KiB came: %v, allocated %d KiB", err, a>>10)
	}
}

// CollectGrowing collects the bytes its check asks for beyond the n first
// asked, as it learns of them, and no more: what follows stays unread.
func TestHeldCollectGrowing(t *testing.T) {
	want := make([]byte, 5*Ahead)
	for i := range want {
		want[i] = byte(i * 13)
	}
	r := bytes.NewReader(want)
	var h Held
	calls := 0
	err := h.CollectGrowing(nil, r, Ahead, func(b []byte) (int, error) {
		calls++
		if calls == 1 {
			return 2*Ahead + 7, nil // the first chunk announces more
		}
		return 0, nil
	})
	if n := 3*Ahead + 7; err != nil || h.Len() != n || r.Len() != len(want)-n {
		t.Fatalf("CollectGrowing of %d bytes, then %d more: %v, holds %d, left %d of %d unread", Ahead, 2*Ahead+7, err, h.Len(), r.Len(), len(want))
	}
	got := make([]byte, h.Len())
	if h.Read(got) != len(got) || !bytes.Equal(got, want[:len(got)]) {
		t.Errorf("read back other bytes than collected")
	}
}
