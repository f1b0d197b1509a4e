package backend_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

type nopBackend struct{ backend.Backend }

func (nopBackend) Close() error { return nil }

func openNop(_ context.Context, u *url.URL) (backend.Backend, error) {
	p := backend.NewParams(u)
	p.Duration("timeout", time.Second)
	p.Int("n", 1)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return nopBackend{}, nil
}

// opened counts the backends test-check's opener made.
var opened int

func init() {
	backend.Register("test-nop", openNop)
	backend.RegisterValidator("test-nop", backend.ValidateByOpening(openNop))
	backend.Register("test-check", func(ctx context.Context, u *url.URL) (backend.Backend, error) {
		opened++
		return openNop(ctx, u)
	})
	backend.RegisterValidator("test-check", func(u *url.URL) error {
		if u.Host == "" {
			return errors.New("no host")
		}
		return nil
	})
	backend.Register("test-unchecked", openNop)
}

// Validate checks a URL as Open would, without opening: the scheme, and the
// form and parameters through the scheme's Validator.
func TestValidate(t *testing.T) {
	for _, ok := range []string{"test-nop://h?timeout=2s&n=3", "TEST-NOP://h", "test-check://h", "test-unchecked://h?anything=1"} {
		if err := backend.Validate(ok); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
	if opened != 0 {
		t.Errorf("Validate opened %d backends through a scheme with its own Validator", opened)
	}
	tests := []struct {
		url  string
		want []string
	}{
		{"nosuch://h", []string{`unknown URL scheme "nosuch"`, "test-nop", "forgotten import"}},
		{"memcacheds://h", []string{`unknown URL scheme "memcacheds"`, `import _ "github.com/memdict/memdict/backend/memcached"`}},
		{"Redis://h", []string{`unknown URL scheme "redis"`, `import _ "github.com/memdict/memdict/backend/redis"`}},
		{"//h", []string{"missing scheme"}},
		{"test-nop://h?timeout=fast", []string{`timeout="fast"`, "duration"}},
		{"test-nop://h?bogus=1&timeout=1s", []string{`backend: URL "test-nop://h?bogus=1&timeout=1s": unknown parameter(s) bogus`, "known: n, timeout"}},
		{"test-nop://user:s3cret@h?bogus=1", []string{"xxxxx"}},
		{"test-check://", []string{"no host"}},
	}
	for _, tt := range tests {
		err := backend.Validate(tt.url)
		if err == nil {
			t.Errorf("Validate(%q) = nil", tt.url)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%q) = %q; want it to mention %q", tt.url, err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate(%q) shows the password: %v", tt.url, err)
		}
	}
	if err := backend.Validate("nosuch://h"); !errors.Is(err, backend.ErrUnknownScheme) {
		t.Errorf("Validate of an unknown scheme: %v, want ErrUnknownScheme", err)
	}
}

// RegisterValidator panics on programming errors, as Register does.
func TestRegisterValidatorPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"empty scheme": func() { backend.RegisterValidator("", func(*url.URL) error { return nil }) },
		"nil":          func() { backend.RegisterValidator("x", nil) },
		"duplicate":    func() { backend.RegisterValidator("TEST-NOP", func(*url.URL) error { return nil }) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	if _, err := backend.Open(ctx, "test-nop://host?timeout=2s&n=3"); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.Open(ctx, "TEST-NOP://host"); err != nil {
		t.Fatalf("scheme is not case-insensitive: %v", err)
	}
	tests := []struct {
		url  string
		want []string
	}{
		{"nosuch://h", []string{`unknown URL scheme "nosuch"`, "test-nop", "forgotten import"}},
		{"memcacheds://h", []string{`unknown URL scheme "memcacheds"`, `import _ "github.com/memdict/memdict/backend/memcached"`}},
		{"Redis://h", []string{`unknown URL scheme "redis"`, `import _ "github.com/memdict/memdict/backend/redis"`}},
		{"host:11211", []string{"unknown URL scheme"}},
		{"127.0.0.1:11211", []string{"first path segment in URL cannot contain colon"}},
		{"//h", []string{"missing scheme"}},
		{"test-nop://h?timeout=fast", []string{`timeout="fast"`, "duration"}},
		{"test-nop://h?n=-1", []string{`n="-1"`, "non-negative integer"}},
		{"test-nop://h?bogus=1&timeout=1s", []string{"unknown parameter(s) bogus", "known: n, timeout"}},
		{"test-nop://h?n=1&n=2", []string{`"n" given 2 times`}},
		{"test-nop://h?n=%zz", []string{"malformed query"}},
		{"test-nop://user:s3cret@h?bogus=1", []string{"xxxxx"}},
	}
	for _, tt := range tests {
		_, err := backend.Open(ctx, tt.url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", tt.url)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %q; want it to mention %q", tt.url, err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", tt.url, err)
		}
	}
	if _, err := backend.Open(ctx, "nosuch://h"); !errors.Is(err, backend.ErrUnknownScheme) {
		t.Errorf("unknown scheme is not ErrUnknownScheme: %v", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"duplicate": func() {
			backend.Register("test-nop", func(context.Context, *url.URL) (backend.Backend, error) { return nil, nil })
		},
		"nil opener": func() { backend.Register("test-x", nil) },
		"empty scheme": func() {
			backend.Register("", func(context.Context, *url.URL) (backend.Backend, error) { return nil, nil })
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			fn()
		}()
	}
	if s := backend.Schemes(); len(s) == 0 || !strings.Contains(strings.Join(s, ","), "test-nop") {
		t.Errorf("Schemes() = %v", s)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:pw@h:6379/0":  "redis://user:xxxxx@h:6379/0",
		"memcached://h:11211":       "memcached://h:11211",
		"mem://?max_bytes=1":        "mem://?max_bytes=1",
		"redis://u:p w%zz@h:1/0":    "redis://xxxxx@h:1/0",
		"rediss://:secret@h:6380/1": "rediss://:xxxxx@h:6380/1",
		"redis://s1:26379,s2:26379/0?sentinel_master=m&sentinel_password=s3cret&timeout=1s": "redis://s1:26379,s2:26379/0?sentinel_master=m&sentinel_password=xxxxx&timeout=1s",
		"redis://u:pw@s1:26379/0?sentinel_password=s3cret":                                  "redis://u:xxxxx@s1:26379/0?sentinel_password=xxxxx",
		"redis://s1:26379/0?sentinel_master=m":                                              "redis://s1:26379/0?sentinel_master=m",
	} {
		if got := backend.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactUnparsedQuery guards against a password parameter shown as
// written when the URL fails to parse for another reason: a space in the
// host or a bad port made Redact return the string whole, and config
// errors quoted it ("redis://cache local:6379/0?password=s3cret": invalid
// character " " in host name). And against a password with an unescaped
// "/" after digits, which parses with no user information: config errors
// quoted it whole ("redis://u:123/456@h:6379/0": bad database
// "456@h:6379/0").
func TestRedactUnparsedQuery(t *testing.T) {
	for in, want := range map[string]string{
		"redis://cache local:6379/0?password=s3cret&timeout=1s":        "redis://cache local:6379/0?password=xxxxx&timeout=1s",
		"redis://h:63 79/0?sentinel_master=m&sentinel_password=s3cret": "redis://h:63 79/0?sentinel_master=m&sentinel_password=xxxxx",
		"redis://h:6379/0%?password=s3cret":                            "redis://h:6379/0%?password=xxxxx",
		"redis://u:pw@h x:1/0?password=s3cret":                         "redis://xxxxx@h x:1/0?password=xxxxx",
		"redis://h x:1/0?db=1":                                         "redis://h x:1/0?db=1",
		// A password with an unescaped "/" after digits parses, as host
		// "u", port 123 and a path holding the rest.
		"redis://u:123/456@h:6379/0": "redis://xxxxx@h:6379/0",
		"redis://:9999/abc@h:6379/0": "redis://xxxxx@h:6379/0",
		"memcached://u:1/2@h:11211":  "memcached://xxxxx@h:11211",
		"redis://u:pw@h:6379/0":      "redis://u:xxxxx@h:6379/0",
		// Or a "?" or "#", whose rest is the query or the fragment; or
		// an "@" as well, which ends the user information early.
		"redis://u:123?s3cret@h:6379/0":      "redis://xxxxx@h:6379/0",
		"redis://u:123#s3cret@h:6379/0":      "redis://xxxxx@h:6379/0",
		"memcached://:123#s3cret@h:11211":    "memcached://xxxxx@h:11211",
		"redis://u:p@ss?w#rd@h:6379/0":       "redis://xxxxx@h:6379/0",
		"redis://u:p@ss/word@h:6379/0":       "redis://xxxxx@h:6379/0",
		"redis://h:6379/0?client_name=a%40b": "redis://h:6379/0?client_name=a%40b",
	} {
		if got := backend.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParamsBool(t *testing.T) {
	u, _ := url.Parse("x://h?tls=true&cluster=maybe")
	p := backend.NewParams(u)
	if !p.Bool("tls", false) {
		t.Error("tls=true read as false")
	}
	p.Bool("cluster", false)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), `cluster="maybe"`) {
		t.Errorf("Err = %v", err)
	}
	if !p.Has("tls") || p.Has("absent") {
		t.Error("Has is wrong")
	}
}
