package valuepool

import (
	"testing"
	"unsafe"
)

// Sizes are four classes per power of two, each a quarter of its octave
// apart; Get returns a buffer of the smallest class longer than its
// length, which Put takes back and a Get of that class reuses. Buffers of
// other capacities, buffers as long as their capacity, and lengths
// outside [MinSize-1, MaxSize-1], never enter the pool.
func TestGetPut(t *testing.T) {
	for k := 1; k < classes; k++ {
		if sizes[k] <= sizes[k-1] || sizes[k]-sizes[k-1] > sizes[k-1]/4 {
			t.Fatalf("class %d: %d after %d", k, sizes[k], sizes[k-1])
		}
	}
	if sizes[0] != MinSize || sizes[classes-1] != MaxSize {
		t.Fatalf("classes from %d to %d, want %d to %d", sizes[0], sizes[classes-1], MinSize, MaxSize)
	}
	// 100 bytes: a typical small record, which a Lookup over Redis read
	// into a new buffer each time when MinSize was 2 KiB.
	for _, n := range []int{MinSize - 1, MinSize, MinSize + 1, 100, 16<<10 + 100, 20 << 10, MaxSize - 1} {
		b := Get(n)
		k := class(n + 1)
		if k < 0 {
			t.Fatalf("Get(%d): no class holds it: a read of this length allocates", n)
		}
		if len(b) != n || cap(b) != sizes[k] || cap(b) <= n || k > 0 && sizes[k-1] > n {
			t.Fatalf("Get(%d): length %d, capacity %d (class %d)", n, len(b), cap(b), sizes[k])
		}
		// sync.Pool may drop what it is given (it does under -race at
		// random): reuse is only checked to be possible.
		reused := false
		for range 100 {
			Put(b)
			c := Get(n)
			if unsafe.SliceData(c) == unsafe.SliceData(b) {
				reused = true
				break
			}
		}
		if !reused {
			t.Errorf("Get(%d) never reused the buffer Put was given", n)
		}
	}
	for _, n := range []int{0, 1, MinSize - 2, MaxSize, MaxSize + 1} {
		if b := Get(n); len(b) != n || cap(b) != n {
			t.Errorf("Get(%d): length %d, capacity %d; want an allocation of its own", n, len(b), cap(b))
		}
	}
	// A capacity that is no class's is dropped: a later Get of that
	// length never returns it.
	odd := make([]byte, 16<<10+100, 16<<10+101)
	for range 10 {
		Put(odd)
		if c := Get(16<<10 + 100); unsafe.SliceData(c) == unsafe.SliceData(odd) {
			t.Fatal("Put kept a buffer whose capacity is no class's")
		}
	}
	// So is memory as long as its capacity, even a class's: a value that
	// is a slice of someone's memory (a go-redis reply string), not Get's.
	full := make([]byte, 20<<10)
	for range 10 {
		Put(full)
		if c := Get(16<<10 + 100); unsafe.SliceData(c) == unsafe.SliceData(full) {
			t.Fatal("Put kept a buffer as long as its capacity, which Get never returns")
		}
	}
}
