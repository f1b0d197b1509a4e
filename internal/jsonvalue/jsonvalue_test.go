package jsonvalue

import (
	"math/big"
	"strings"
	"testing"
)

func TestParseAndParsePython(t *testing.T) {
	two70 := new(big.Int).Lsh(big.NewInt(1), 70)
	v, err := Parse([]byte(`[1, 18446744073709551615, 1.5, 1180591620717411303424]`))
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]any)
	if got[0] != int64(1) || got[1] != uint64(18446744073709551615) || got[2] != 1.5 || got[3] != 1.1805916207174113e+21 {
		t.Fatalf("Parse = %#v", got)
	}
	v, err = ParsePython([]byte(`{"n": [1180591620717411303424, -1180591620717411303424, 2.5]}`))
	if err != nil {
		t.Fatal(err)
	}
	n := v.(map[string]any)["n"].([]any)
	if b, ok := n[0].(*big.Int); !ok || b.Cmp(two70) != 0 {
		t.Fatalf("ParsePython of 2**70 = %T %v", n[0], n[0])
	}
	if b, ok := n[1].(*big.Int); !ok || b.Cmp(new(big.Int).Neg(two70)) != 0 {
		t.Fatalf("ParsePython of -2**70 = %T %v", n[1], n[1])
	}
	if n[2] != 2.5 {
		t.Fatalf("ParsePython of 2.5 = %#v", n[2])
	}
	for _, bad := range []string{`1e999`, `1 2`, strings.Repeat("9", 4302)} {
		if _, err := ParsePython([]byte(bad)); err == nil {
			t.Errorf("ParsePython(%.20q) succeeded, want an error", bad)
		}
	}
	if _, err := ParsePython([]byte(strings.Repeat("9", 4300))); err != nil {
		t.Errorf("ParsePython of 4300 nines: %v", err)
	}
}
