package backend

import "context"

// TTLReader is implemented by backends that can tell how long an item has
// left to live, which a copy of the item on another backend needs: the
// Tool's warm migration copies items from a plugin's previous servers to
// its new ones with their remaining TTL (as mcrouter's warm-up route reads
// it with metaget).
type TTLReader interface {
	// GetTTL reads key as Get does, and sets the TTL of the item it returns
	// to the time the item has left to live, rounded up to the backend's
	// resolution (0: it does not expire). A missing or expired key gives
	// ErrNotFound; so does an item held only as stale (marked by a
	// Leaser's MarkStale) or as a lease placeholder, whose value is not
	// one to copy.
	GetTTL(ctx context.Context, key string) (Item, error)
}

// GetTTL reads key with its remaining TTL (see TTLReader) from be, found
// with Do. Over a backend without TTLReader it returns an error wrapping
// ErrNotSupported, having done nothing: a caller that must copy the item
// then reads it with Get and chooses a TTL itself.
func GetTTL(ctx context.Context, be Backend, key string) (Item, error) {
	r := Do(ctx, be, Call{Op: OpGetTTL, Key: key})
	return r.Item, r.Err
}
