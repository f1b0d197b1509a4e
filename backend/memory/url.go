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
// path; its query parameters max_bytes, max_item_size and max_key_len are
// those of WithMaxBytes, WithMaxItemSize and WithMaxKeyLen (0 or absent:
// the default).
func openURL(_ context.Context, u *url.URL) (backend.Backend, error) {
	if u.Opaque != "" || u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return nil, errors.New("memory: a mem URL takes no host, user or path: use mem:// with optional query parameters")
	}
	p := backend.NewParams(u)
	maxBytes := p.Int64("max_bytes", 0)
	maxItem := p.Int("max_item_size", 0)
	maxKey := p.Int("max_key_len", 0)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	return New(WithMaxBytes(maxBytes), WithMaxItemSize(maxItem), WithMaxKeyLen(maxKey)), nil
}
