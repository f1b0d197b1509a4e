package main

import (
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

// A Redis user that may only read, on a prefix that has no namespace
// generation yet: get misses (exit 1) and keys lists nothing, not errors
// (before, both failed with the refused add of the generation); a put
// fails; once a writer stores the key, get reads it.
func TestReadOnlyUserGetMisses(t *testing.T) {
	rd := testserver.Redis(t, "--user", "rw", "on", ">rwpw", "~*", "&*", "+@all",
		"--user", "ro", "on", ">ropw", "~*", "&*", "+@read", "+@connection",
		"--user", "default", "off")
	ro := map[string]string{"MEMDICT_URL": "redis://ro:ropw@" + rd.Addr + "/0"}
	rw := map[string]string{"MEMDICT_URL": "redis://rw:rwpw@" + rd.Addr + "/0"}
	if r := mustRunIn(t, ro, exitMiss, "", "get", "--prefix", "shop", "greeting"); r.stdout != "" || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get as the read-only user:\n%v", r)
	}
	if r := mustRunIn(t, ro, exitOK, "", "keys", "--prefix", "shop"); r.stdout != "" {
		t.Errorf("keys as the read-only user:\n%v", r)
	}
	if r := runIn(t, ro, "", "put", "--prefix", "shop", "greeting", "lost"); r.code == exitOK || !strings.Contains(r.stderr, "write") {
		t.Errorf("put as the read-only user:\n%v", r)
	}
	mustRunIn(t, rw, exitOK, "", "put", "--prefix", "shop", "greeting", "hello")
	if r := mustRunIn(t, ro, exitOK, "", "get", "--prefix", "shop", "greeting"); !strings.Contains(r.stdout, "hello") {
		t.Errorf("get as the read-only user after the put:\n%v", r)
	}
}
