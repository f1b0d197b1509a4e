// Package decimal parses the unsigned decimal numbers of memcached's text
// protocol (sizes, CAS tokens, counter values) without allocating.
package decimal

// MaxDigits is the most digits a uint64 takes.
const MaxDigits = 20

// ParseUint parses 1 to MaxDigits ASCII digits that fit in a uint64. It
// reports false for anything else: empty input, a sign, spaces, other
// bytes, or overflow.
func ParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > MaxDigits {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
