package backend_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/memdict/memdict/backend"
)

// params reads a URL's query as a driver with one renamed parameter does:
// size, formerly old_size, beside timeout.
func params(t *testing.T, query string) (size int, err error) {
	t.Helper()
	p := backend.NewParams(&url.URL{Scheme: "x", RawQuery: query})
	p.Alias("size", "old_size")
	size = p.Int("size", 7)
	p.Duration("timeout", 0)
	return size, p.Err()
}

func TestParamsAlias(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    int
		wantErr []string // substrings of the error; nil: no error
		notErr  []string // substrings the error must not have
	}{
		{query: "", want: 7},
		{query: "size=3", want: 3},
		{query: "old_size=4", want: 4},
		{query: "old_size=4&timeout=1s", want: 4},
		// Both names: an error naming both, whatever the order.
		{query: "size=3&old_size=4", want: 3, wantErr: []string{"size", "old_size", "both given", "deprecated"}},
		{query: "old_size=4&size=3", want: 3, wantErr: []string{"size", "old_size", "both given"}},
		// A bad value is reported under the name the URL used.
		{query: "old_size=lots", want: 7, wantErr: []string{`old_size="lots"`}},
		{query: "size=lots", want: 7, wantErr: []string{`size="lots"`}, notErr: []string{"old_size"}},
		{query: "old_size=1&old_size=2", want: 1, wantErr: []string{`"old_size" given 2 times`}},
		// An unknown parameter lists the new name, not the alias.
		{query: "old_size=4&sise=1", want: 4, wantErr: []string{"unknown parameter(s) sise", "known: size, timeout)"}, notErr: []string{"old_size"}},
	} {
		got, err := params(t, tc.query)
		if got != tc.want {
			t.Errorf("%q: size %d, want %d", tc.query, got, tc.want)
		}
		if tc.wantErr == nil {
			if err != nil {
				t.Errorf("%q: %v", tc.query, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: no error, want one with %q", tc.query, tc.wantErr)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tc.query, err, w)
			}
		}
		for _, w := range tc.notErr {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q contains %q", tc.query, err, w)
			}
		}
	}
}

func TestParamsName(t *testing.T) {
	p := backend.NewParams(&url.URL{RawQuery: "old_size=4&other=1"})
	p.Alias("size", "old_size")
	p.Alias("gone", "never_given")
	for name, want := range map[string]string{"size": "old_size", "gone": "gone", "other": "other"} {
		if got := p.Name(name); got != want {
			t.Errorf("Name(%q) = %q, want %q", name, got, want)
		}
	}
}
