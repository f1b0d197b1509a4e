package keyspace

import (
	"errors"
	"fmt"
)

// ERP5's Memcached Tool names a key of the Dict of key_prefix on a site
// with the global id site_id
//
//	quopri.encodestring(site_id + "_" + key_prefix + "_" + key, quotetabs=True)
//
// with every "\n" and "\r" of the result removed (no site_id part when the
// site has none). quopri.encodestring is binascii.b2a_qp (CPython's
// Modules/binascii.c) in text mode, which erp5QP reproduces byte for
// byte. The mapping is not one-to-one: "=" and "=3D" differ but a key
// with a newline equals the key without it, and the quoted-printable soft
// line break a text longer than 76 characters gets leaves a stray "=" in
// the key.

// ErrKeyTooLong: a key is longer than the limit python-memcached enforces
// (its server_max_key_length, ERP5's plugin setting).
var ErrKeyTooLong = errors.New("keyspace: key too long")

// qpLineMax is binascii's MAXLINESIZE: the longest quoted-printable line.
const qpLineMax = 76

// ERP5Key returns the memcached key ERP5's Memcached Tool uses for key in
// the Dict of keyPrefix of the site whose global id is siteID ("" for
// none). Texts are taken as the UTF-8 bytes a Python str encodes to.
// maxLen is ERP5's server_max_key_length (250 by default; 0 for no
// limit): a longer key is an error wrapping ErrKeyTooLong, as
// python-memcached refuses it. The key never holds a space or a control
// byte, as memcached requires.
func ERP5Key(siteID, keyPrefix, key string, maxLen int) (string, error) {
	full := keyPrefix + "_" + key
	if siteID != "" {
		full = siteID + "_" + full
	}
	k := erp5QP(full)
	if maxLen > 0 && len(k) > maxLen {
		return "", fmt.Errorf("%w: ERP5 key %q is %d bytes, more than the limit of %d", ErrKeyTooLong, truncateKey(k), len(k), maxLen)
	}
	return k, nil
}

// erp5QP returns quopri.encodestring(s, quotetabs=True) with "\n" and
// "\r" removed: binascii.b2a_qp(s, quotetabs=True, istext=True,
// header=False), step by step, without the line ends it writes.
func erp5QP(s string) string {
	out := make([]byte, 0, len(s)+len(s)/2)
	linelen := 0
	for in := 0; in < len(s); in++ {
		c := s[in]
		next := byte(0)
		last := in+1 == len(s)
		if !last {
			next = s[in+1]
		}
		encode := c > 126 || c == '=' ||
			(c == '.' && linelen == 0 && (last || next == '\n' || next == '\r' || next == 0)) ||
			((c == '\t' || c == ' ') && last) ||
			(c < 33 && c != '\r' && c != '\n') // quotetabs: space and tab too
		switch {
		case encode:
			if linelen+3 >= qpLineMax {
				out = append(out, '=') // soft line break; its "\n" is removed
				linelen = 0
			}
			out = append(out, '=', hexdigits[c>>4], hexdigits[c&15])
			linelen += 3
		case c == '\n' || (c == '\r' && next == '\n'):
			// A line end, which ERP5 removes. (b2a_qp would quote a space
			// or tab before it, but with quotetabs none is left bare.)
			linelen = 0
			if c == '\r' {
				in++
			}
		default:
			if !last && next != '\n' && linelen+1 >= qpLineMax {
				out = append(out, '=')
				linelen = 0
			}
			linelen++
			if c != '\r' { // a lone CR is copied by b2a_qp, then removed by ERP5
				out = append(out, c)
			}
		}
	}
	return string(out)
}

func truncateKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}
