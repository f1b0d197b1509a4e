package memdict

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// dedupeRef is dedupe's definition: the keys without repeats, in their
// first order.
func dedupeRef(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// TestDedupe checks dedupe against its definition on lists short (compared
// pairwise), mid-sized (a table on the stack) and long (on the heap), with
// and without repeats, and that a list without repeats comes back as it
// is, without allocating.
func TestDedupe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 16, 17, 100, 128, 129, 1000, 5000} {
		distinct := make([]string, n)
		for i := range distinct {
			distinct[i] = fmt.Sprintf("key-%d-%d", i, rng.Uint64())
		}
		got := dedupe(distinct)
		if !slices.Equal(got, distinct) {
			t.Fatalf("%d distinct keys: dedupe changed them", n)
		}
		if n > 0 && &got[0] != &distinct[0] {
			t.Errorf("%d distinct keys: dedupe copied them", n)
		}
		if allocs := testing.AllocsPerRun(10, func() { dedupe(distinct) }); n <= 128 && allocs != 0 {
			t.Errorf("%d distinct keys: dedupe allocates %v times", n, allocs)
		}
		if n == 0 {
			continue
		}
		for _, repeats := range []int{1, 3, n} {
			keys := slices.Clone(distinct)
			for range repeats {
				// A repeat anywhere: the first, the last, or in between.
				keys = slices.Insert(keys, rng.IntN(len(keys)+1), keys[rng.IntN(len(keys))])
			}
			want := dedupeRef(keys)
			if got := dedupe(keys); !slices.Equal(got, want) {
				t.Fatalf("%d keys with %d repeats: dedupe = %d keys, want %d", len(keys), repeats, len(got), len(want))
			}
		}
	}
}

// BenchmarkDedupe: 1000 distinct keys (go test -bench Dedupe -benchmem).
func BenchmarkDedupe(b *testing.B) {
	for _, n := range []int{100, 1000} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("user:%d:profile", i)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dedupe(keys)
			}
		})
	}
}
