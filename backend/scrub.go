package backend

import (
	"net/url"
	"strings"
)

// Scrub returns msg with each URL of urls replaced by its redacted form
// (Redact), and the URL's password, wherever else msg repeats it (an
// error may quote it alone), by "xxxxx": for messages about configured
// URLs shown in logs, pages and terminals. Passwords shorter than three
// bytes are left alone, since replacing them would garble the rest.
func Scrub(msg string, urls ...string) string {
	for _, u := range urls {
		if u == "" {
			continue
		}
		if r := Redact(u); r != u {
			msg = strings.ReplaceAll(msg, u, r)
		}
		for _, pw := range urlPasswords(u) {
			if len(pw) >= 3 {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
	}
	return msg
}

// URLPassword returns the password in rawURL, or "": the password of its
// user information, else the value of its first query parameter whose
// name ends in "password" (see Redact). Of a string that does not parse,
// it takes what Redact would hide: the part after the first ':' between
// "://" and the last "@".
func URLPassword(rawURL string) string {
	if pws := urlPasswords(rawURL); len(pws) > 0 {
		return pws[0]
	}
	return ""
}

// urlPasswords returns every password in rawURL (see URLPassword): that
// of its user information first.
func urlPasswords(rawURL string) []string {
	var pws []string
	if pw := userPassword(rawURL); pw != "" {
		pws = append(pws, pw)
	}
	if u, err := url.Parse(rawURL); err == nil {
		pws = append(pws, queryPasswords(u.RawQuery)...)
	}
	return pws
}

// userPassword returns the password of rawURL's user information. A URL
// with an "@" after its host is taken as one that does not parse, as
// Redact takes it: its password holds a "/", "?" or "#" (and an "@", if
// it parsed with user information: "redis://u:p@ss?w#rd@h" has password
// "p" and host "ss").
func userPassword(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil || atAfterHost(u) {
		i, j := strings.Index(rawURL, "://"), strings.LastIndex(rawURL, "@")
		if i >= 0 && j > i {
			if _, pw, ok := strings.Cut(rawURL[i+3:j], ":"); ok {
				return pw
			}
		}
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}
