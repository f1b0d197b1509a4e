// Package controls escapes the characters of other programs' text that
// act on whatever shows it instead of showing: the C1 controls (U+0080 to
// U+009F), which a terminal acts on (U+009B is CSI, U+009D OSC), and the
// bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066
// to U+2069), which reorder the text around them in a terminal or a web
// page (a key "report\u202etxt.exe" shows as "reportexe.txt"). Keys and
// values are other programs' text: the memdict command's JSON output and
// the admin page show them escaped, as \u202e, with this one rule, and
// quote keys that do not show plainly with QuoteKey.
package controls

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escaped reports whether Escape escapes r: a C1 or bidirectional
// control.
func Escaped(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r)
}

// Escape returns b with each C1 and bidirectional control written as
// \u0080, \u202e, ..., as encoding/json writes the C0 controls: in a
// JSON string the text reads back as the same value. b itself is
// returned when it holds none.
func Escape(b []byte) []byte {
	if !bytes.ContainsFunc(b, Escaped) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if Escaped(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// EscapeString is Escape of a string.
func EscapeString(s string) string {
	if !strings.ContainsFunc(s, Escaped) {
		return s
	}
	return string(Escape([]byte(s)))
}

// QuoteKey returns key as it is when it shows plainly, else Go-quoted
// ("\u202e", "\xff"): when it is empty, is not UTF-8, starts or ends with
// white space (which a web page collapses and a terminal hides), or holds
// a double quote or a character that does not print (controls, U+202E).
func QuoteKey(key string) string {
	if key == "" || !utf8.ValidString(key) || strings.TrimSpace(key) != key ||
		strings.IndexFunc(key, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(key)
	}
	return key
}
