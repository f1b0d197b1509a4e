package keyspace

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/pyinterop"
)

// erp5Keys are keys as ERP5's Memcached Tool makes them, computed by
// Python 3.11 (quopri.encodestring(k.encode(), quotetabs=True) with "\n"
// and "\r" removed).
var erp5Keys = []struct{ site, prefix, key, want string }{
	{"erp5_site", "my_app", "user/é 1", "erp5_site_my_app_user/=C3=A9=201"},
	{"", "my_first_test", "some_key", "my_first_test_some_key"},
	{"", "a_b", "c", "a_b_c"},
	{"", "a", "b_c", "a_b_c"}, // ERP5's scheme collides
	{"", "p", "", "p_"},
	{"", "p", "tab\there", "p_tab=09here"},
	{"", "p", "a=b", "p_a=3Db"},
	{"", "p", ".", "p_."},
	{"", "p", "a\n.", "p_a=2E"},
	{"", "p", "a\n.b", "p_a.b"},
	{"s", "p", "line1\nline2", "s_p_line1line2"},
	{"", "p", "crlf\r\nx", "p_crlfx"},
	{"", "p", "lone\rcr", "p_lonecr"},
	{"", "p", "nul\x00\x7f\x1f", "p_nul=00=7F=1F"},
	{"", "p", "ends with space ", "p_ends=20with=20space=20"},
	{"", "p", "日本語のキー", "p_=E6=97=A5=E6=9C=AC=E8=AA=9E=E3=81=AE=E3=82=AD=E3=83=BC"},
	// Longer than 76 bytes: a stray "=" where the soft line break was.
	{"", "p", strings.Repeat("x", 100), "p_" + strings.Repeat("x", 73) + "=" + strings.Repeat("x", 27)},
	{"", "p", strings.Repeat("x", 72) + ".", "p_" + strings.Repeat("x", 72) + "."},
	{"", "p", strings.Repeat("x", 73) + "é", "p_" + strings.Repeat("x", 73) + "==C3=A9"},
	{"", "p", strings.Repeat("=", 30), "p_" + strings.Repeat("=3D", 24) + "=" + strings.Repeat("=3D", 6)},
	{"", "p", strings.Repeat("é", 40), "p_=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9==C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3==A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9==C3=A9=C3=A9=C3=A9"},
}

func TestERP5Key(t *testing.T) {
	for _, tt := range erp5Keys {
		got, err := ERP5Key(tt.site, tt.prefix, tt.key, 0)
		if err != nil || got != tt.want {
			t.Errorf("ERP5Key(%q, %q, %q) = %q, %v; want %q", tt.site, tt.prefix, tt.key, got, err, tt.want)
		}
		for i := 0; i < len(got); i++ {
			if got[i] <= ' ' || got[i] >= 0x7f {
				t.Errorf("ERP5Key(%q, %q, %q) = %q holds byte %#x, which memcached refuses", tt.site, tt.prefix, tt.key, got, got[i])
			}
		}
	}
}

// ERP5's length rule is python-memcached's check_key: the encoded key may
// not be longer than server_max_key_length (0: no limit).
func TestERP5KeyLength(t *testing.T) {
	key := strings.Repeat("k", 248) // "p_" + 248 bytes, with 3 soft breaks: 253
	if _, err := ERP5Key("", "p", key, 250); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("a %d-byte key: err = %v, want ErrKeyTooLong", len(erp5QP("p_"+key)), err)
	}
	if got, err := ERP5Key("", "p", key, 0); err != nil || len(got) != 253 {
		t.Errorf("no limit: %d bytes, %v; want 253, nil", len(got), err)
	}
	exact := strings.Repeat("k", 245) // 2 + 245 + 3 soft breaks = 250
	if got, err := ERP5Key("", "p", exact, 250); err != nil || len(got) != 250 {
		t.Errorf("a 250-byte key: %d bytes, %v; want accepted", len(got), err)
	}
	if _, err := ERP5Key("", "p", "é", 5); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("the limit applies to the encoded key (p_=C3=A9, 8 bytes): err = %v", err)
	}
}

// TestERP5KeyMatchesPython compares ERP5Key with Python's quopri over
// random keys made of the bytes that matter (line ends, '.', '=', space,
// tab, controls, UTF-8) and lengths around the 76-byte line limit.
func TestERP5KeyMatchesPython(t *testing.T) {
	py := pyinterop.Find(t)
	rng := rand.New(rand.NewPCG(27, 1))
	alphabet := []string{"a", "Z", "_", ".", "=", " ", "\t", "\n", "\r", "\r\n", "\x00", "\x1f", "\x7f", "é", "€", "/", ":"}
	var ops []pyinterop.Op
	type kase struct{ site, prefix, key string }
	var cases []kase
	for i := 0; i < 400; i++ {
		var b strings.Builder
		for n := rng.IntN(180); b.Len() < n; {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		c := kase{prefix: "pre", key: b.String()}
		if i%2 == 0 {
			c.site = "erp5_site"
		}
		cases = append(cases, c)
		ops = append(ops, pyinterop.Op{Op: "erp5key", Site: c.site, Prefix: c.prefix, Key: c.key})
	}
	for _, tt := range erp5Keys {
		cases = append(cases, kase{tt.site, tt.prefix, tt.key})
		ops = append(ops, pyinterop.Op{Op: "erp5key", Site: tt.site, Prefix: tt.prefix, Key: tt.key})
	}
	res := py.Batch(t, "", ops...)
	for i, c := range cases {
		if res[i].Error != "" {
			t.Fatalf("python: %s", res[i].Error)
		}
		got, err := ERP5Key(c.site, c.prefix, c.key, 0)
		if err != nil || got != res[i].Key {
			t.Errorf("ERP5Key(%q, %q, %q) = %q, %v; Python says %q", c.site, c.prefix, c.key, got, err, res[i].Key)
		}
	}
}

// FuzzERP5Key: any key maps to a memcached-safe key, and the limit holds.
func FuzzERP5Key(f *testing.F) {
	for _, tt := range erp5Keys {
		f.Add(tt.site, tt.prefix, tt.key)
	}
	f.Fuzz(func(t *testing.T, site, prefix, key string) {
		k, err := ERP5Key(site, prefix, key, 250)
		if err != nil {
			if !errors.Is(err, ErrKeyTooLong) {
				t.Fatalf("error without ErrKeyTooLong: %v", err)
			}
			return
		}
		if len(k) > 250 {
			t.Fatalf("%d bytes", len(k))
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] >= 0x7f {
				t.Fatalf("%q holds byte %#x", k, k[i])
			}
		}
	})
}
