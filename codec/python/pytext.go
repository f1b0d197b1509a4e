package python

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// parseInt parses a decimal integer and returns it as int64 when it fits,
// else as a *big.Int (the other result is then nil). With pyInt it takes
// what Python's int() takes from bytes in base 10 (how python-memcached
// and pymemcache read values of flag 2): ASCII whitespace around the
// number and single underscores between digits; without it, only an
// optional sign and digits (the INT and LONG opcodes as Python writes
// them). Either way at most 4300 digits, as Python 3.11+.
func parseInt(s []byte, pyInt bool) (int64, *big.Int, error) {
	if pyInt {
		for len(s) > 0 && isSpace(s[0]) {
			s = s[1:]
		}
		for len(s) > 0 && isSpace(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
	}
	orig := s
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	digits := 0
	clean := true // only digits, so strconv can parse it as is
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '_' && pyInt && i > 0 && i+1 < len(s) && s[i-1] != '_' && s[i+1] >= '0' && s[i+1] <= '9':
			clean = false
		default:
			return 0, nil, fmt.Errorf("invalid literal for int() with base 10: %q", truncate(string(orig)))
		}
	}
	if digits == 0 {
		return 0, nil, fmt.Errorf("invalid literal for int() with base 10: %q", truncate(string(orig)))
	}
	if digits > maxIntDigits {
		return 0, nil, fmt.Errorf("an int of %d digits exceeds Python's limit of %d digits for integer string conversion", digits, maxIntDigits)
	}
	if clean && digits <= 18 {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err == nil {
			if neg {
				n = -n
			}
			return n, nil, nil
		}
	}
	buf := make([]byte, 0, len(s)+1)
	if neg {
		buf = append(buf, '-')
	}
	for _, c := range s {
		if c != '_' {
			buf = append(buf, c)
		}
	}
	n, ok := new(big.Int).SetString(string(buf), 10)
	if !ok {
		return 0, nil, fmt.Errorf("invalid literal for int() with base 10: %q", truncate(string(orig)))
	}
	if n.IsInt64() {
		return n.Int64(), nil, nil
	}
	return 0, n, nil
}

// parseDecimal is parseInt with the result as a *big.Int.
func parseDecimal(s []byte, pyInt bool) (*big.Int, error) {
	i, n, err := parseInt(s, pyInt)
	if err != nil {
		return nil, err
	}
	if n == nil {
		n = big.NewInt(i)
	}
	return n, nil
}

// isSpace reports whether c is ASCII whitespace as Python's bytes see it.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

var errTrailingBackslash = errors.New(`trailing \ in string`)

// escapeDecode decodes the backslash escapes of Python 2 string literals
// as Python's codecs.escape_decode does (the STRING opcode's argument).
func escapeDecode(s []byte) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errTrailingBackslash
		}
		switch c = s[i]; c {
		case '\n': // a line continuation
		case '\\', '\'', '"':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'v':
			out = append(out, '\v')
		case 'a':
			out = append(out, '\a')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			out = append(out, byte(v)) // Python keeps the low 8 bits of \777
		case 'x':
			if i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
				out = append(out, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
				i += 2
				break
			}
			return nil, fmt.Errorf(`invalid \x escape at position %d`, i-1)
		default:
			out = append(out, '\\', c)
		}
	}
	return out, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// rawUnicodeEscapeDecode decodes Python's raw-unicode-escape (the UNICODE
// opcode's argument): \uXXXX and \UXXXXXXXX after an odd number of
// backslashes are code points, every other byte is the code point of the
// same value (Latin-1). A code point Go strings cannot hold in UTF-8 (a
// lone surrogate) is an error.
func rawUnicodeEscapeDecode(s []byte) (string, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = utf8.AppendRune(out, rune(c))
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '\\' {
			j++
		}
		run := j - i
		out = append(out, s[i:j]...)
		i = j
		if run%2 == 0 || i >= len(s) || (s[i] != 'u' && s[i] != 'U') {
			continue
		}
		out = out[:len(out)-1] // the escaping backslash
		n := 4
		if s[i] == 'U' {
			n = 8
		}
		if i+1+n > len(s) {
			return "", fmt.Errorf(`truncated \%c escape`, s[i])
		}
		var r uint32
		for _, h := range s[i+1 : i+1+n] {
			d := unhex(h)
			if d < 0 {
				return "", fmt.Errorf(`truncated \%c escape`, s[i])
			}
			r = r<<4 | uint32(d)
		}
		if r > utf8.MaxRune {
			return "", fmt.Errorf(`\U%08x out of range`, r)
		}
		if r >= 0xd800 && r <= 0xdfff {
			return "", fmt.Errorf(`lone surrogate \u%04x`, r)
		}
		out = utf8.AppendRune(out, rune(r))
		i += 1 + n
	}
	return string(out), nil
}
