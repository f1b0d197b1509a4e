package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// noLister hides the memory Store's Keys method.
type noLister struct{ backend.Backend }

func TestKeysAndAll(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[string](t, be, "p")
	long := strings.Repeat("λ", 200)
	want := []string{"", "a", "with space", "colon:hash#", long}
	for _, k := range want {
		_ = d.Put(k, "v:"+k)
	}
	for i := range 150 { // more than one batch
		k := fmt.Sprintf("n%03d", i)
		want = append(want, k)
		_ = d.Put(k, "v:"+k)
	}
	// Neighbours that must not be listed.
	_ = newDict[string](t, be, "p:x").Put("k", "v")
	_ = newDict[string](t, be, "0", memdict.WithSiteID("p")).Put("k", "v")
	_ = newDict[string](t, be, "pp").Put("k", "v")
	slices.Sort(want)

	var got []string
	for k, err := range d.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Keys = %d keys, want %d: %q", len(got), len(want), got[:min(5, len(got))])
	}
	got = got[:0]
	for e, err := range d.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Value != "v:"+e.Key {
			t.Fatalf("All: %q = %q", e.Key, e.Value)
		}
		got = append(got, e.Key)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("All = %d keys, want %d", len(got), len(want))
	}
	// Early break.
	n := 0
	for range d.Keys(ctx) {
		n++
		break
	}
	if n != 1 {
		t.Fatal("break did not stop Keys")
	}
	// Clear: nothing is listed any more.
	_ = d.Clear(ctx)
	for k, err := range d.Keys(ctx) {
		t.Fatalf("after Clear Keys yielded %q, %v", k, err)
	}
}

func TestKeysNotSupported(t *testing.T) {
	d := newDict[int](t, noLister{memory.New()}, "p")
	for k, err := range d.Keys(context.Background()) {
		if k != "" || !errors.Is(err, memdict.ErrNotSupported) {
			t.Fatalf("Keys = %q, %v", k, err)
		}
	}
	for _, err := range d.All(context.Background()) {
		if !errors.Is(err, memdict.ErrNotSupported) {
			t.Fatalf("All err = %v", err)
		}
	}
}

func TestAllDecodeError(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	d := newDict[int](t, be, "p")
	_ = d.Put("good", 1)
	_ = newDict[string](t, be, "p").Put("bad", "text")
	var good, bad int
	for e, err := range d.All(ctx) {
		switch {
		case err == nil && e.Key == "good":
			good++
		case errors.Is(err, memdict.ErrDecode) && e.Key == "bad":
			bad++
		default:
			t.Fatalf("All yielded %+v, %v", e, err)
		}
	}
	if good != 1 || bad != 1 {
		t.Fatalf("good %d bad %d", good, bad)
	}
}

// Keys and All iterate over a Dict on backends that can list keys.
func ExampleDict_All() {
	ctx := context.Background()
	d, _ := memdict.New[int](memory.New(), "stock")
	_ = d.Put("tea", 3)
	_ = d.Put("milk", 1)
	var lines []string
	for e, err := range d.All(ctx) {
		if err != nil {
			fmt.Println(err)
			break
		}
		lines = append(lines, fmt.Sprintf("%s=%d", e.Key, e.Value))
	}
	slices.Sort(lines) // the order is the backend's
	fmt.Println(lines)
	// Output: [milk=1 tea=3]
}

// Keys lists a Dict's keys; a failure, or a backend that cannot list,
// comes as a final error.
func ExampleDict_Keys() {
	ctx := context.Background()
	d, _ := memdict.New[int](memory.New(), "stock")
	_ = d.Put("tea", 3)
	_ = d.Put("milk", 1)
	var keys []string
	for k, err := range d.Keys(ctx) {
		if err != nil {
			fmt.Println(err)
			break
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Println(keys)
	// Output: [milk tea]
}

// KeysOf sorts one listing of the backend among Dicts: each yields, of the
// backend keys it is given, its own live keys only (not its neighbours',
// not those of a generation before its Clear), long keys as written.
func TestKeysOf(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	a := newDict[string](t, be, "a")
	b := newDict[string](t, be, "b")
	long := strings.Repeat("λ", 200)
	_ = a.Put("gone", "x")
	_ = a.Clear(ctx)
	for _, k := range []string{"k1", "k2", long} {
		_ = a.Put(k, "v")
	}
	_ = b.Put("k1", "v")
	_ = newDict[string](t, be, "a:x").Put("k", "v")
	var bkeys []string
	for bk, err := range be.Keys(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		bkeys = append(bkeys, bk)
	}
	for _, tc := range []struct {
		d    *memdict.Dict[string]
		want []string
	}{{a, []string{"k1", "k2", long}}, {b, []string{"k1"}}} {
		var got []string
		for k, err := range tc.d.KeysOf(ctx, bkeys) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("KeysOf of %d backend keys = %q, want %q", len(bkeys), got, tc.want)
		}
	}
	// An absent key and one removed since the listing are left out.
	_ = a.Delete("k2")
	var got []string
	for k, err := range a.KeysOf(ctx, append(bkeys, a.BackendKey("never"))) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{"k1", long}; !slices.Equal(got, want) {
		t.Errorf("KeysOf after a Delete = %q, want %q", got, want)
	}
}

func ExampleDict_KeysOf() {
	ctx := context.Background()
	be := memory.New()
	tea, _ := memdict.New[int](be, "tea")
	milk, _ := memdict.New[int](be, "milk")
	_ = tea.Put("green", 3)
	_ = milk.Put("oat", 1)
	// List the backend once, then let each Dict pick its own keys.
	var bkeys []string
	for bk, err := range backend.Keys(ctx, be, "") {
		if err != nil {
			fmt.Println(err)
			return
		}
		bkeys = append(bkeys, bk)
	}
	for _, d := range []*memdict.Dict[int]{tea, milk} {
		for k, err := range d.KeysOf(ctx, bkeys) {
			if err != nil {
				fmt.Println(err)
				break
			}
			fmt.Println(d.Prefix(), k)
		}
	}
	// Output:
	// tea green
	// milk oat
}
