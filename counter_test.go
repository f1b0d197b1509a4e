package memdict_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

func TestCounters(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	c, err := memdict.NewCounters(be, "hits")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, err := c.Get(ctx, "x"); n != 0 || ok || err != nil {
		t.Fatalf("Get missing = %d, %v, %v", n, ok, err)
	}
	if n, err := c.Dec(ctx, "x"); n != 0 || err != nil {
		t.Fatalf("Dec missing = %d, %v", n, err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				if _, err := c.Inc(ctx, "page"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, ok, _ := c.Get(ctx, "page"); n != 1000 || !ok {
		t.Fatalf("Get = %d, %v", n, ok)
	}
	if n, _ := c.Add(ctx, "page", -1001); n != 0 {
		t.Fatalf("decrement below 0 = %d", n)
	}
	_ = c.Set(ctx, "page", 41)
	if n, _ := c.Inc(ctx, "page"); n != 42 {
		t.Fatalf("Inc after Set = %d", n)
	}
	// Stored as decimal text, readable by others.
	d := newDict[string](t, be, "hits")
	it, _ := be.Get(ctx, d.BackendKey("page"))
	if string(it.Value) != "42" {
		t.Fatalf("stored %q", it.Value)
	}
	_ = c.Reset(ctx, "page")
	if n, _, _ := c.Get(ctx, "page"); n != 0 {
		t.Fatalf("after Reset = %d", n)
	}
	if err := c.Delete(ctx, "page"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "page"); err != nil {
		t.Fatal(err)
	}
	_ = d.Put("text", "not a number")
	if _, _, err := c.Get(ctx, "text"); !errors.Is(err, memdict.ErrDecode) {
		t.Fatalf("Get non-number: %v", err)
	}
	if _, err := c.Inc(ctx, "text"); err == nil {
		t.Fatal("Inc non-number succeeded")
	}
}

// Counters count on the server, atomically across processes.
func ExampleCounters() {
	ctx := context.Background()
	views, _ := memdict.NewCounters(memory.New(), "views")
	_, _ = views.Inc(ctx, "home")
	_, _ = views.Add(ctx, "home", 10)
	n, _ := views.Dec(ctx, "home")
	fmt.Println(n)
	// Output: 10
}

// A counter's key may hold any value another program stored there: one
// that is no number is an ErrDecode naming the counter that quotes a
// little of the value, not all of it (a 512 KiB value was an error of 2
// MiB, logged on every read).
func TestCounterGetErrorQuotesLittle(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	c, err := memdict.NewCounters(be, "hits")
	if err != nil {
		t.Fatal(err)
	}
	d := newDict[[]byte](t, be, "hits")
	if err := d.Put("junk", bytes.Repeat([]byte{0xff}, 1<<19)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Get(ctx, "junk")
	if !errors.Is(err, memdict.ErrDecode) || !strings.Contains(err.Error(), "junk") {
		t.Fatalf("Get of a 512 KiB non-number: %.200v, want ErrDecode naming the counter", err)
	}
	if len(err.Error()) > 1024 {
		t.Errorf("an error of %d bytes: %.150s...", len(err.Error()), err)
	}
}
