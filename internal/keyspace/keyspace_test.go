package keyspace

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyReadable(t *testing.T) {
	tests := []struct {
		site, prefix, key string
		want              string
	}{
		{"", "my_first_test", "some_key", "my_first_test:0:some_key"},
		{"site1", "my_first_test", "some_key", "site1:my_first_test:0:some_key"},
		{"", "a_b", "c", "a_b:0:c"},
		{"", "a", "b_c", "a:0:b_c"},
		{"", "p", "", "p:0:"},
		{"", "p", "with space", "p:0:with%20space"},
		{"", "p:q", "k", "p%3Aq:0:k"},
		{"", "p", "100%", "p:0:100%25"},
		{"", "p", "#tag", "p:0:%23tag"},
		{"", "p", "naïve", "p:0:naïve"},
		{"", "p", "nl\n\x7f", "p:0:nl%0A%7F"},
	}
	for _, tt := range tests {
		ns := Namespace(tt.site, tt.prefix, 0, 250)
		got, hashed := Key(ns, tt.key, 250)
		if got != tt.want || hashed {
			t.Errorf("Key(%q,%q,%q) = %q, %v; want %q, false", tt.site, tt.prefix, tt.key, got, hashed, tt.want)
		}
		back, hashed, err := Split(ns, got)
		if err != nil || hashed || back != tt.key {
			t.Errorf("Split(%q) = %q, %v, %v; want %q", got, back, hashed, err, tt.key)
		}
	}
}

// ERP5's "<prefix>_<key>" scheme makes prefix a_b + key c and prefix a +
// key b_c the same memcached key; ours must not.
func TestNoERP5Collision(t *testing.T) {
	k1, _ := Key(Namespace("", "a_b", 0, 250), "c", 250)
	k2, _ := Key(Namespace("", "a", 0, 250), "b_c", 250)
	if k1 == k2 {
		t.Fatalf("collision: %q", k1)
	}
	k3, _ := Key(Namespace("x", "y", 0, 250), "z", 250)
	k4, _ := Key(Namespace("", "x:y", 0, 250), "z", 250)
	k5, _ := Key(Namespace("", "x", 0, 250), "y:z", 250)
	if k3 == k4 || k3 == k5 || k4 == k5 {
		t.Fatalf("collision among %q %q %q", k3, k4, k5)
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	ns := Namespace("site", "prefix", 7, 250)
	long := strings.Repeat("k", 1000)
	k, hashed := Key(ns, long, 250)
	if !hashed || len(k) > 250 || !strings.HasPrefix(k, ns+"#") {
		t.Fatalf("Key(long) = %q (%d bytes), hashed=%v", k, len(k), hashed)
	}
	k2, _ := Key(ns, long+"x", 250)
	if k == k2 {
		t.Fatal("two long keys share a hash")
	}
	// An escaped key that grows past the limit is hashed too.
	k3, hashed := Key(ns, strings.Repeat(" ", 100), 250)
	if !hashed || len(k3) > 250 {
		t.Fatalf("escaped key not hashed: %q", k3)
	}
	if _, h, err := Split(ns, k3); err != nil || !h {
		t.Fatalf("Split(hashed) = %v, %v", h, err)
	}
	// No limit: never hashed.
	if k, hashed := Key(ns, long, 0); hashed || len(k) != len(ns)+1000 {
		t.Fatalf("Key with no limit hashed: %v", hashed)
	}
}

func TestLongNamespaceIsHashed(t *testing.T) {
	ns := Namespace(strings.Repeat("s", 300), strings.Repeat("p", 300), 0, 250)
	if !strings.HasPrefix(ns, "#") || len(ns) != 2+HashLen {
		t.Fatalf("Namespace = %q", ns)
	}
	k, _ := Key(ns, strings.Repeat("k", 300), 250)
	if len(k) > 250 {
		t.Fatalf("key %d bytes", len(k))
	}
	for _, max := range []int{MinMaxLen, 100, 250} {
		ns := Namespace(strings.Repeat("s", 300), "p", 0, max)
		if k, _ := Key(ns, strings.Repeat("\x00", 500), max); len(k) > max {
			t.Fatalf("max %d: key %d bytes", max, len(k))
		}
	}
}

func TestMetaKeysNeverMeetDataKeys(t *testing.T) {
	m := MetaKey("", "p", "gen", 250)
	if !strings.HasPrefix(m, "#!") {
		t.Fatalf("MetaKey = %q", m)
	}
	for _, ns := range []string{Namespace("", "#!gen", 0, 250), Namespace("", strings.Repeat("x", 400), 0, 250)} {
		for _, key := range []string{"", "#!gen:p", strings.Repeat("y", 400)} {
			if k, _ := Key(ns, key, 250); strings.HasPrefix(k, "#!") {
				t.Fatalf("data key %q looks like a meta key", k)
			}
		}
	}
	if MetaKey("a", "b", "gen", 250) == MetaKey("", "a:b", "gen", 250) {
		t.Fatal("meta keys collide")
	}
	if m := MetaKey("", strings.Repeat("p", 400), "gen", 250); len(m) > 250 {
		t.Fatalf("meta key %d bytes", len(m))
	}
}

func TestUnescapeRejects(t *testing.T) {
	for _, s := range []string{"%", "%4", "%ZZ", "%41", "a b", "a:b", "#x"} {
		if _, err := Unescape(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("Unescape(%q) err = %v, want ErrMalformed", s, err)
		}
	}
	if _, _, err := Split("p:0:", "q:0:k"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Split outside namespace: %v", err)
	}
}

func memcachedSafe(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] == 0x7f {
			return false
		}
	}
	return true
}

// FuzzInjective checks that distinct (site, prefix, key) triples never give
// one backend key, that keys are memcached-safe and within the limit, and
// that Split inverts Key.
func FuzzInjective(f *testing.F) {
	f.Add("", "a_b", "c", "", "a", "b_c")
	f.Add("x", "y", "z", "", "x:y", "z")
	f.Add("", "p", "%3A", "", "p", ":")
	f.Add("s", "", "", "", "s", "")
	f.Add("", "p", strings.Repeat("k", 300), "", "p", strings.Repeat("k", 301))
	f.Add("\xff", "\x00", " ", "%FF", "%00", "%20")
	f.Fuzz(func(t *testing.T, s1, p1, k1, s2, p2, k2 string) {
		for _, max := range []int{0, 250, MinMaxLen} {
			ns1, ns2 := Namespace(s1, p1, 0, max), Namespace(s2, p2, 0, max)
			b1, h1 := Key(ns1, k1, max)
			b2, _ := Key(ns2, k2, max)
			if (s1 != s2 || p1 != p2 || k1 != k2) && b1 == b2 {
				t.Fatalf("max %d: (%q,%q,%q) and (%q,%q,%q) both map to %q", max, s1, p1, k1, s2, p2, k2, b1)
			}
			if !memcachedSafe(b1) {
				t.Fatalf("unsafe key %q", b1)
			}
			if max > 0 && len(b1) > max {
				t.Fatalf("key %d bytes > %d", len(b1), max)
			}
			got, hashed, err := Split(ns1, b1)
			if err != nil || hashed != h1 || (!hashed && got != k1) {
				t.Fatalf("Split(%q) = %q, %v, %v; want %q", b1, got, hashed, err, k1)
			}
			if utf8.ValidString(k1) && !h1 && !needsEscape(k1) && !strings.HasSuffix(b1, k1) {
				t.Fatalf("plain key not readable in %q", b1)
			}
			// AppendKey builds the same key after what a buffer holds.
			buf, ah := AppendKey([]byte(k2), ns1, k1, max)
			if string(buf[len(k2):]) != b1 || ah != h1 || string(buf[:len(k2)]) != k2 {
				t.Fatalf("AppendKey(%q, %q, %q, %d) = %q, %v; Key = %q, %v", k2, ns1, k1, max, buf, ah, b1, h1)
			}
		}
	})
}

// TestKeyAllocatesItsLength checks that Key allocates a key that needs
// escaping at its own size, not at the size a hashed key would take: a
// key of the benchmark programs ("user:<n>" in a namespace with a
// generation of ten digits, 27 bytes) took the 64-byte size class
// rather than the 32-byte one, twice what a Dict's Get then allocates
// for its key, every call. Plain, escaped and hashed keys still come out
// as AppendKey builds them.
func TestKeyAllocatesItsLength(t *testing.T) {
	ns := Namespace("", "bench", 1765000000, 250)
	for _, c := range []struct {
		key  string
		want string
	}{
		{"user:123", "bench:1765000000:user%3A123"},
		{"plain", "bench:1765000000:plain"},
		{"a b#c%d", "bench:1765000000:a%20b%23c%25d"},
	} {
		if got, hashed := Key(ns, c.key, 250); got != c.want || hashed {
			t.Errorf("Key(%q, %q) = %q, %v; want %q, false", ns, c.key, got, hashed, c.want)
		}
	}
	long := strings.Repeat(":", 100) // 300 bytes escaped
	if got, hashed := Key(ns, long, 250); !hashed || len(got) != len(ns)+1+HashLen {
		t.Errorf("Key of a key of 300 escaped bytes = %q, %v; want it hashed", got, hashed)
	}

	const n = 1000
	var keep [n]string
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i], _ = Key(ns, "user:123", 250)
	}
	runtime.ReadMemStats(&after)
	if per := float64(after.TotalAlloc-before.TotalAlloc) / n; per > 40 {
		t.Errorf("Key of a 27-byte escaped key allocates %.0f bytes a call; want the 32-byte size class", per)
	}
	runtime.KeepAlive(&keep)
}

func BenchmarkKeyPlain(b *testing.B) {
	ns := Namespace("", "my_first_test", 0, 250)
	b.ReportAllocs()
	for b.Loop() {
		Key(ns, "some_key", 250)
	}
}

func TestLeaseKey(t *testing.T) {
	ns := Namespace("site", "prefix", 3, 250)
	bk, _ := Key(ns, "k", 250)
	if got := LeaseKey(bk, 250); got != "#!lease:site:prefix:3:k" {
		t.Fatalf("LeaseKey = %q", got)
	}
	long, hashed := Key(ns, strings.Repeat("x", 300), 250)
	if !hashed {
		t.Fatal("long key not hashed")
	}
	lk := LeaseKey(long, 250)
	if len(lk) > 250 || !strings.HasPrefix(lk, "#!lease") {
		t.Fatalf("LeaseKey of %d bytes = %q (%d bytes)", len(long), lk, len(lk))
	}
	if LeaseKey(long, 250) != lk || LeaseKey(long+"y", 250) == lk {
		t.Fatal("LeaseKey is not a function of its key")
	}
	if got := LeaseKey(long, 0); got != LeasePrefix+long {
		t.Fatalf("LeaseKey without a limit = %q", got)
	}
	if _, _, err := Split(ns, lk); err == nil {
		t.Fatalf("lock key %q splits as a data key", lk)
	}
}

// Parse gives back what Key was given, and refuses what Key cannot make.
func TestParse(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tt := range []struct{ site, prefix, key string }{
		{"", "p", "k"}, {"s", "p", "k"}, {"s:1", "a b", "c:d"}, {"", "", ""}, {"", "p", long},
	} {
		ns := Namespace(tt.site, tt.prefix, 42, 250)
		full, hashed := Key(ns, tt.key, 250)
		p, err := Parse(full)
		want := Parts{Site: tt.site, Prefix: tt.prefix, Gen: 42, Key: tt.key, Hashed: hashed}
		if hashed {
			want.Key = ""
		}
		if err != nil || p != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", full, p, err, want)
		}
	}
	for _, bad := range []string{
		"", "k", "a:b:c:d:e", "p:x:k", "p:01:k", "#!gen:p", "#" + Hash("ns") + ":k", ":p:0:k", "p:0:a b", "p:0:#short",
	} {
		if p, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrMalformed", bad, p, err)
		}
	}
}

// BenchmarkKeyEscaped is Key of a key that needs escaping, as the
// benchmark programs' "user:<n>" keys do, in a namespace with a
// generation of ten digits.
func BenchmarkKeyEscaped(b *testing.B) {
	ns := Namespace("", "bench", 1765000000, 250)
	b.ReportAllocs()
	for b.Loop() {
		Key(ns, "user:123", 250)
	}
}

// BenchmarkAppendKeyEscaped is AppendKey of such keys into one buffer,
// as GetMulti builds them.
func BenchmarkAppendKeyEscaped(b *testing.B) {
	ns := Namespace("", "bench", 1765000000, 250)
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for range 100 {
			buf, _ = AppendKey(buf, ns, "user:123", 250)
		}
	}
}
