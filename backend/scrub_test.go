package backend_test

import (
	"testing"

	"github.com/memdict/memdict/backend"
)

func TestScrub(t *testing.T) {
	u := "redis://:hunter2@h:6379/0"
	msg := backend.Scrub("dial "+u+" failed; auth hunter2 refused; other redis://h", u, "", "redis://h", "memcached://h:1")
	if want := "dial redis://:xxxxx@h:6379/0 failed; auth xxxxx refused; other redis://h"; msg != want {
		t.Errorf("Scrub = %q, want %q", msg, want)
	}
	for raw, want := range map[string]string{
		u: "hunter2", "redis://h": "", "redis://u:pa ss@h:port:x": "pa ss", "not a url": "",
	} {
		if got := backend.URLPassword(raw); got != want {
			t.Errorf("URLPassword(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := backend.Scrub("pw ab", "redis://:ab@h"); got != "pw ab" {
		t.Errorf("a two-byte password was replaced: %q", got)
	}
}
