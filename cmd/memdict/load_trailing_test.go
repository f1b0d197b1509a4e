package main

import (
	"strings"
	"testing"
)

// TestLoadLineWithTrailingRecord guards against load storing the first
// record of a line and dropping what follows it unseen: two records run
// together on one line (a dump whose newline was lost: files joined with
// cat when the first lacked its last newline) stored "a", dropped "b" and
// reported success ("1 record stored", exit 0). Such a line is a bad line.
func TestLoadLineWithTrailingRecord(t *testing.T) {
	rd, _ := newRedis(t)
	env := map[string]string{"MEMDICT_URL": "redis://" + rd.Addr + "/0"}
	for _, tail := range []string{`{"key":"b","codec":"raw","value":"y"}`, `garbage`, `]`} {
		in := `{"key":"z","codec":"raw","value":"w"}` + "\n" + `{"key":"a","codec":"raw","value":"x"}` + tail + "\n"
		r := runIn(t, env, in, "load", "--prefix", "p")
		if r.code != exitError || !strings.Contains(r.stderr, "line 2: ") || !strings.Contains(r.stderr, "1 record stored") {
			t.Errorf("load of a line with %q after its record:\n%v", tail, r)
		}
	}
}
