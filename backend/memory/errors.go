package memory

import (
	"fmt"
	"strconv"

	"github.com/memdict/memdict/backend"
)

// opErr wraps err, a backend sentinel or a context error, with op.
func opErr(op string, err error) error {
	return fmt.Errorf("memory: %s: %w", op, err)
}

// keyErr wraps err, a backend sentinel, with op and key. (A Get miss
// returns backend.ErrNotFound bare: it is frequent and must not allocate.)
func keyErr(op, key string, err error) error {
	return fmt.Errorf("memory: %s %s: %w", op, quoteKey(key), err)
}

// quoteKey quotes key for an error message, shortening a long one.
func quoteKey(key string) string {
	const maxShown = 64
	if len(key) <= maxShown {
		return strconv.Quote(key)
	}
	return strconv.Quote(key[:maxShown]) + "... (" + strconv.Itoa(len(key)) + " bytes)"
}

// checkKey returns a wrapped backend.ErrInvalidKey if key is not one
// memcached accepts, or nil.
func (s *Store) checkKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("memory: %s: %w: empty key", op, backend.ErrInvalidKey)
	}
	if s.maxKeyLen >= 0 && len(key) > s.maxKeyLen {
		return fmt.Errorf("memory: %s: %w: key %s is longer than %d bytes", op, backend.ErrInvalidKey, quoteKey(key), s.maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("memory: %s: %w: key %s has byte %#02x at offset %d (spaces and control bytes are not allowed)",
				op, backend.ErrInvalidKey, quoteKey(key), c, i)
		}
	}
	return nil
}
