package memcached_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

// TestURLParameterNames checks max_value_length and batch_size, and their
// deprecated aliases max_value_size and batch_max_keys: old and new names
// validate and open, and a URL with both names of one parameter is an
// error naming both, from Open and from Validate.
func TestURLParameterNames(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{
		"memcached://h:1?max_value_length=2097152&batch_size=64",
		"memcached://h:1?max_value_size=2097152&batch_max_keys=64",
	} {
		if err := backend.Validate(u); err != nil {
			t.Errorf("Validate(%q): %v", u, err)
		}
		be, err := backend.Open(ctx, u)
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		be.Close()
	}
	for _, tc := range []struct{ url, old, new string }{
		{"memcached://h:1?max_value_size=1&max_value_length=1", "max_value_size", "max_value_length"},
		{"memcached://h:1?batch_size=8&batch_max_keys=8", "batch_max_keys", "batch_size"},
	} {
		_, oerr := backend.Open(ctx, tc.url)
		for what, err := range map[string]error{"Open": oerr, "Validate": backend.Validate(tc.url)} {
			if err == nil || !strings.Contains(err.Error(), tc.old) || !strings.Contains(err.Error(), tc.new) || !strings.Contains(err.Error(), "both given") {
				t.Errorf("%s(%q) = %v, want an error naming %s and %s", what, tc.url, err, tc.old, tc.new)
			}
		}
	}
	// Errors about a value name the parameter as the URL wrote it.
	for u, want := range map[string]string{
		"memcached://h:1?batch_max_keys=0": "batch_max_keys 0",
		"memcached://h:1?batch_size=0":     "batch_size 0",
		"memcached://h:1?max_value_size=x": `max_value_size="x"`,
	} {
		if err := backend.Validate(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %v, want an error containing %q", u, err, want)
		}
	}
	// The list of known parameters teaches the new names.
	err := backend.Validate("memcached://h:1?bogus=1")
	if err == nil || !strings.Contains(err.Error(), "max_value_length") || strings.Contains(err.Error(), "max_value_size") || strings.Contains(err.Error(), "batch_max_keys") {
		t.Errorf("unknown parameter: %v, want the known list with max_value_length and without the deprecated names", err)
	}
}

// TestMaxValueLen checks that the value limit applies by either name, as
// an option and as a URL parameter: a value one byte over it fails with
// backend.ErrValueTooLarge, one at the limit is stored.
func TestMaxValueLen(t *testing.T) {
	ctx := context.Background()
	p := testserver.Memcached(t)
	opened := func(u string) backend.Backend {
		be, err := backend.Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		return be
	}
	news := func(opt memcached.Option) backend.Backend {
		c, err := memcached.New([]string{p.Addr}, opt, memcached.WithTimeout(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for name, be := range map[string]backend.Backend{
		"WithMaxValueLen":  news(memcached.WithMaxValueLen(1000)),
		"WithMaxValueSize": news(memcached.WithMaxValueSize(1000)),
		"max_value_length": opened("memcached://" + p.Addr + "?max_value_length=1000&timeout=" + testTimeout.String()),
		"max_value_size":   opened("memcached://" + p.Addr + "?max_value_size=1000&timeout=" + testTimeout.String()),
	} {
		key := "mvl:" + name
		if err := be.Set(ctx, backend.Item{Key: key, Value: make([]byte, 1001)}); !errors.Is(err, backend.ErrValueTooLarge) {
			t.Errorf("%s: 1001-byte value: %v, want ErrValueTooLarge", name, err)
		}
		if err := be.Set(ctx, backend.Item{Key: key, Value: make([]byte, 1000)}); err != nil {
			t.Errorf("%s: 1000-byte value: %v", name, err)
		}
	}
	if memcached.DefaultMaxValueSize != memcached.DefaultMaxValueLen {
		t.Errorf("DefaultMaxValueSize %d, DefaultMaxValueLen %d", memcached.DefaultMaxValueSize, memcached.DefaultMaxValueLen)
	}
}
