package decimal

import (
	"strconv"
	"testing"
)

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "7": 7, "0042": 42, "18446744073709551615": 1<<64 - 1,
	} {
		if got, ok := ParseUint([]byte(in)); !ok || got != want {
			t.Errorf("ParseUint(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", " 1", "1 ", "1a", "18446744073709551616", "99999999999999999999", "000000000000000000001"} {
		if got, ok := ParseUint([]byte(in)); ok {
			t.Errorf("ParseUint(%q) = %d, true; want false", in, got)
		}
	}
}

func FuzzParseUint(f *testing.F) {
	f.Add("123")
	f.Add("18446744073709551616")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseUint([]byte(s))
		want, err := strconv.ParseUint(s, 10, 64)
		plain := len(s) > 0 && len(s) <= MaxDigits && s[0] != '+' && s[0] != '-' && !containsUnderscore(s)
		if ok != (err == nil && plain) || (ok && got != want) {
			t.Fatalf("ParseUint(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, err)
		}
	})
}

func containsUnderscore(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			return true
		}
	}
	return false
}
