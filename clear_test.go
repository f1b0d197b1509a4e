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

// A generation key lost right after a Clear elsewhere is written back by
// a Dict that has not seen the Clear yet, with the generation before it.
// The Dict that cleared (or any that saw the Clear) never goes back to it,
// and raises the stored generation again at its next refresh, so that the
// other Dicts, and new ones, see the Clear again: before, the stored
// generation stayed the one before the Clear for good, and every other
// Dict read the values it had cleared.
func TestClearGenerationKeyLostWrittenBackOlder(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	const refresh = 10 * time.Millisecond
	a := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	b := newDict[string](t, be, "p", memdict.WithGenerationRefresh(refresh))
	if err := a.Clear(ctx); err != nil { // a generation other than 0
		t.Fatal(err)
	}
	_ = a.Put("k", "old")
	if v, _ := b.Get("k"); v != "old" {
		t.Fatalf("b Get = %q before the Clear", v)
	}
	time.Sleep(2 * refresh) // a's view is due to be read again
	// b clears and writes; the generation key is lost before a reads it
	// again.
	if err := b.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	_ = b.Put("k", "new")
	for k := range be.Keys(ctx, "#!gen") {
		_ = be.Delete(ctx, k)
	}
	// a reads the generation again, finds none and writes back its own,
	// the one before b's Clear.
	if v, _ := a.Get("k"); v != "old" {
		t.Fatalf("a Get = %q, want the value of the generation it knows", v)
	}
	// b goes on with its own generation; a and a new Dict come to it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := b.Get("k"); v != "new" {
			t.Fatalf("b Get = %q after it cleared and wrote", v)
		}
		va, _ := a.Get("k")
		vn, _ := newDict[string](t, be, "p").Get("k")
		if va == "new" && vn == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after b's Clear, a reads %q and a new Dict %q: the values b cleared", va, vn)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
