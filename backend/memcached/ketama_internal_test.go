package memcached

import (
	"fmt"
	"testing"
)

func TestKetamaName(t *testing.T) {
	for _, tc := range []struct{ host, port, want string }{
		{"10.0.0.1", "11211", "10.0.0.1"}, // libmemcached compatibility
		{"10.0.0.1", "11212", "10.0.0.1:11212"},
		{"cache-a", "22122", "cache-a:22122"},
		{"::1", "11212", "[::1]:11212"},
	} {
		if got := ketamaName(tc.host, tc.port); got != tc.want {
			t.Errorf("ketamaName(%q, %q) = %q, want %q", tc.host, tc.port, got, tc.want)
		}
	}
}

func TestHashKeySignedBytes(t *testing.T) {
	// twemproxy hashes bytes as signed chars: a byte >= 0x80 is
	// sign-extended before the xor. 0x84222325 is the truncated basis.
	if got := hashKey(""); got != 0x84222325 {
		t.Errorf("hashKey(\"\") = %#x", got)
	}
	basis, prime := uint32(0x84222325), uint32(0x1b3)
	a := (basis ^ 0xffffff80) * prime
	if got := hashKey("\x80"); got != a {
		t.Errorf("hashKey(0x80) = %#x, want %#x", got, a)
	}
}

func ring(n int) *ketama { return ringHash(n, nil) }

func ringHash(n int, hash func(string) uint32) *ketama {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("10.0.0.%d:11212", i+1)
	}
	return newKetama(names, nil, nil, hash)
}

func TestKetamaPoints(t *testing.T) {
	for n := 1; n <= 9; n++ {
		if got := len(ring(n).points); got != 160*n {
			t.Errorf("%d servers: %d points, want %d", n, got, 160*n)
		}
	}
}

// TestKetamaAddNode: adding a fourth server to three moves about a quarter
// of the keys, all of them to the new server.
func TestKetamaAddNode(t *testing.T) {
	for name, hash := range map[string]func(string) uint32{"fnv1a_64": hashKey, "md5": hashMD5} {
		r3, r4 := ringHash(3, hash), ringHash(4, hash)
		const n = 20000
		moved := 0
		counts := make([]int, 4)
		for i := range n {
			k := fmt.Sprintf("memdict/key/%d", i)
			a, b := r3.index(k), r4.index(k)
			counts[b]++
			if a != b {
				moved++
				if b != 3 {
					t.Fatalf("%s: key %q moved from server %d to old server %d", name, k, a, b)
				}
			}
		}
		frac := float64(moved) / n
		t.Logf("%s: 4th server: %.1f%% of keys moved; spread %v", name, 100*frac, counts)
		if frac < 0.15 || frac > 0.35 {
			t.Errorf("%s: %.1f%% of keys moved, want about 25%%", name, 100*frac)
		}
		for i, c := range counts {
			if c < n/8 {
				t.Errorf("%s: server %d got %d of %d keys", name, i, c, n)
			}
		}
	}
}

// TestKetamaSpread: sequential keys. twemproxy's fnv1a_64 crowds them (it
// is kept for compatibility); md5 spreads them evenly.
func TestKetamaSpread(t *testing.T) {
	names := []string{"127.0.0.1:38353", "127.0.0.1:39443", "127.0.0.1:37141"}
	for _, tc := range []struct {
		name string
		hash func(string) uint32
		min  float64
	}{
		{"fnv1a_64", hashKey, 0},
		{"md5", hashMD5, 0.2},
	} {
		r := newKetama(names, nil, nil, tc.hash)
		counts := make([]int, 3)
		for i := range 300 {
			counts[r.index(fmt.Sprintf("load-%d", i))]++
		}
		// fnv1a_64 gives [200 0 100] here: one server gets no key at all.
		t.Logf("%s: keys load-0..load-299 per server: %v", tc.name, counts)
		for i, c := range counts {
			if float64(c)/300 < tc.min {
				t.Errorf("%s: server %d got %d of 300 keys", tc.name, i, c)
			}
		}
	}
	if got, want := hashMD5(""), uint32(0xd98c1dd4); got != want {
		t.Errorf("hashMD5(\"\") = %#x, want %#x", got, want)
	}
}
