package memory

import (
	"context"

	"github.com/memdict/memdict/backend"
)

var _ backend.MultiWriter = (*Store)(nil)

// SetMulti stores every item as Set does, trying each even when some fail.
// It returns nil, a *backend.MultiError naming the items that failed, or
// the error of a done ctx or a closed Store (then nothing was stored).
func (s *Store) SetMulti(ctx context.Context, items []backend.Item) error {
	if err := s.enter(ctx, "set multi"); err != nil {
		return err
	}
	return backend.SetEach(ctx, s, items)
}

// DeleteMulti removes every key as Delete does, trying each even when some
// fail; absent keys are reported in the *backend.MultiError with
// backend.ErrNotFound.
func (s *Store) DeleteMulti(ctx context.Context, keys []string) error {
	if err := s.enter(ctx, "delete multi"); err != nil {
		return err
	}
	return backend.DeleteEach(ctx, s, keys)
}
