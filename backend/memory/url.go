package memory

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/memdict/memdict/backend"
)

func init() {
	backend.Register("mem", openURL)
	backend.RegisterValidator("mem", backend.ValidateByOpening(openURL))
}

// openURL opens a new Store from a "mem://" URL. The URL takes no host or
// path; its query parameters max_bytes, max_value_length and max_key_length
// are those of WithMaxBytes, WithMaxValueLen and WithMaxKeyLen (0 or
// absent: the default). The deprecated max_item_size and max_key_len are
// read as max_value_length and max_key_length.
func openURL(_ context.Context, u *url.URL) (backend.Backend, error) {
	if u.Opaque != "" || u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return nil, errors.New("memory: a mem URL takes no host, user or path: use mem:// with optional query parameters")
	}
	p := backend.NewParams(u)
	maxBytes := p.Int64("max_bytes", 0)
	p.Alias("max_value_length", "max_item_size")
	p.Alias("max_key_length", "max_key_len")
	maxValue := p.Int("max_value_length", 0)
	maxKey := p.Int("max_key_length", 0)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	return New(WithMaxBytes(maxBytes), WithMaxValueLen(maxValue), WithMaxKeyLen(maxKey)), nil
}
