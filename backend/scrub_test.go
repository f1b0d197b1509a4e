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
		// A "/", "?" or "#" in the password: the host ends there (an "@"
		// before it ends the user information too), as Redact knows.
		"redis://u:p@ss?w#rd@h:6379/0": "p@ss?w#rd", "redis://u:p@ss/word@h:6379/0": "p@ss/word",
		"redis://u:123#s3cret@h:6379/0": "123#s3cret",
	} {
		if got := backend.URLPassword(raw); got != want {
			t.Errorf("URLPassword(%q) = %q, want %q", raw, got, want)
		}
	}
	// A sentinel password, in the query, is scrubbed too, with the user's.
	su := "redis://:userpw@s1:26379/0?sentinel_master=m&sentinel_password=sentpw"
	if got, want := backend.Scrub("open "+su+": sentinel refused sentpw, master userpw", su),
		"open redis://:xxxxx@s1:26379/0?sentinel_master=m&sentinel_password=xxxxx: sentinel refused xxxxx, master xxxxx"; got != want {
		t.Errorf("Scrub with a sentinel password = %q, want %q", got, want)
	}
	if got := backend.URLPassword("redis://s1/0?sentinel_master=m&sentinel_password=sentpw"); got != "sentpw" {
		t.Errorf("URLPassword of a sentinel URL = %q", got)
	}
	if got := backend.Scrub("pw ab", "redis://:ab@h"); got != "pw ab" {
		t.Errorf("a two-byte password was replaced: %q", got)
	}
}
