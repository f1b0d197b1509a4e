package controls

import "testing"

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "",
		"plain é ✓":                       "plain é ✓",
		"report\u202etxt.exe":             `report\u202etxt.exe`,
		"\u2066x\u2069\u200e\u200f\u061c": `\u2066x\u2069\u200e\u200f\u061c`,
		"a\u009bb\u0080":                  `a\u009bb\u0080`,
		"bad \xff byte":                   "bad \xff byte",
	} {
		if got := EscapeString(in); got != want {
			t.Errorf("EscapeString(%q) = %q, want %q", in, got, want)
		}
		if got := string(Escape([]byte(in))); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteKey(t *testing.T) {
	for in, want := range map[string]string{
		"k":                   "k",
		"a b":                 "a b",
		"é✓":                  "é✓",
		"":                    `""`,
		" k":                  `" k"`,
		"k\t":                 `"k\t"`,
		`a"b`:                 `"a\"b"`,
		"report\u202etxt.exe": `"report\u202etxt.exe"`,
		"\xff":                `"\xff"`,
	} {
		if got := QuoteKey(in); got != want {
			t.Errorf("QuoteKey(%q) = %s, want %s", in, got, want)
		}
	}
}
