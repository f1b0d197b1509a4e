package main

import (
	"os/exec"
	"strings"
	"testing"
)

// hasControl reports whether s holds a byte a terminal acts on: C0
// controls but newline, DEL, and C1 controls (as bytes or as UTF-8).
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return strings.ContainsAny(s, "\x9b\x9d")
}

// A get that misses without --prefix hints at prefixes found in the
// server's key space, which other programs write: a prefix holding
// terminal escapes (a window title, a cursor move) must not reach the
// terminal as they are, and the hint stays a command that a shell runs
// as it reads.
func TestGetHintQuotesHostilePrefix(t *testing.T) {
	_, u := newFaulty(t)
	env := map[string]string{"MEMDICT_URL": u}
	hostile := "\x1b]0;owned\x07\x1b[2J"
	mustRunIn(t, env, exitOK, "", "put", "--prefix", hostile, "greeting", "hello")
	r := mustRunIn(t, env, exitMiss, "", "get", "greeting")
	if hasControl(r.stderr) {
		t.Errorf("get greeting printed the prefix's control bytes to the terminal:\n%q", r.stderr)
	}
	want := `memdict get --prefix $'\x1b]0;owned\x07\x1b[2J' greeting`
	if !strings.Contains(r.stderr, want) {
		t.Errorf("get greeting: want a hint with %s, got\n%q", want, r.stderr)
	}
}

// shellQuote quotes a word with characters that do not print in bash's
// $'...', whose escapes give back its very bytes.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"shop":       "shop",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"":           "''",
		"é":          "'é'",
		"a\nb":       `$'a\nb'`,
		"\x1b[1m'\\": `$'\x1b[1m\'\\'`,
		"\xff\xfe":   `$'\xff\xfe'`,
		"a\u009bb":   `$'a\xc2\x9bb'`,
		"a\u202eb":   `$'a\xe2\x80\xaeb'`,
		"tab\there":  `$'tab\there'`,
		"del\x7f":    `$'del\x7f'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
		if _, err := exec.LookPath("bash"); err != nil {
			continue
		}
		out, err := exec.Command("bash", "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("bash reads shellQuote(%q) = %s back as %q (%v)", in, shellQuote(in), out, err)
		}
	}
}
