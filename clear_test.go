package memdict_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

func TestClear(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	a := newDict[string](t, be, "p")
	other := newDict[string](t, be, "q")
	// Another "process": its own Dict on the same prefix, refreshing fast.
	peer := newDict[string](t, be, "p", memdict.WithGenerationRefresh(20*time.Millisecond))
	_ = a.Put("k", "v")
	_ = other.Put("k", "other")
	if v, _ := peer.Get("k"); v != "v" {
		t.Fatalf("peer Get = %q", v)
	}
	before := a.BackendKey("k")
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("k"); ok {
		t.Fatal("value still there after Clear")
	}
	if after := a.BackendKey("k"); after == before || !strings.HasPrefix(after, "p:") {
		t.Fatalf("backend key %q -> %q", before, after)
	}
	if v, _ := other.Get("k"); v != "other" {
		t.Fatal("Clear touched another prefix")
	}
	deadline := time.Now().Add(10 * time.Second) // generous: a loaded machine delays the refresh timer
	for {
		if _, ok := peer.Get("k"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("peer never saw the Clear")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Writes after the clear are shared again.
	_ = peer.Put("k", "new")
	if v, _ := a.Get("k"); v != "new" {
		t.Fatalf("Get after Clear and Put = %q", v)
	}
	g1, _ := a.Generation(ctx)
	_ = a.Clear(ctx)
	g2, _ := a.Generation(ctx)
	if g2 <= g1 {
		t.Fatalf("generation %d -> %d", g1, g2)
	}
}

// If the server loses the generation key, a Dict that knows the generation
// writes it back rather than falling back to generation 0.
func TestClearGenerationKeyLost(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	a := newDict[string](t, be, "p", memdict.WithGenerationRefresh(10*time.Millisecond))
	_ = a.Put("k", "old")
	_ = a.Clear(ctx)
	_ = a.Put("k", "new")
	for k := range be.Keys(ctx, "#!gen") {
		_ = be.Delete(ctx, k)
	}
	// a notices at its next refresh and writes the generation back.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := a.Get("k"); v != "new" {
			t.Fatalf("Get = %q after the generation key was lost", v)
		}
		n := 0
		for range be.Keys(ctx, "#!gen") {
			n++
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the generation key was not written back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := newDict[string](t, be, "p")
	if v, _ := b.Get("k"); v != "new" {
		t.Fatalf("new Dict Get = %q; the generation was not written back", v)
	}
}

// Clear drops every key of a Dict at once, without touching other prefixes.
func ExampleDict_Clear() {
	ctx := context.Background()
	be := memory.New()
	sessions, _ := memdict.New[string](be, "sessions")
	carts, _ := memdict.New[string](be, "carts")
	_ = sessions.Put("s1", "ada")
	_ = carts.Put("c1", "tea")

	_ = sessions.Clear(ctx)
	_, s := sessions.Get("s1")
	_, c := carts.Get("c1")
	fmt.Println(s, c)
	// Output: false true
}
