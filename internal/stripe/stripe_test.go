package stripe

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestCounter(t *testing.T) {
	var c Counter
	if c.Load() != 0 {
		t.Fatal("zero Counter is not 0")
	}
	var ts []Ticket
	for range 100 {
		ts = append(ts, c.Add(1))
	}
	if got := c.Load(); got != 100 {
		t.Fatalf("Load = %d after 100 additions", got)
	}
	for _, tk := range ts {
		c.Done(tk, 1)
	}
	if got := c.Load(); got != 0 {
		t.Fatalf("Load = %d after undoing them", got)
	}
}

// While one addition stays in place, Load never reads less than 1,
// whatever other goroutines add and undo meanwhile: an undoing is never
// seen without its addition.
func TestCounterNeverUndercounts(t *testing.T) {
	var c Counter
	held := c.Add(1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				c.Done(c.Add(1), 1)
			}
		})
	}
	for i := 0; i < 200000; i++ {
		if n := c.Load(); n < 1 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("Load = %d with one addition held", n)
		}
	}
	stop.Store(true)
	wg.Wait()
	c.Done(held, 1)
	if n := c.Load(); n != 0 {
		t.Fatalf("Load = %d at the end", n)
	}
}
