package redis

import (
	"context"
	"math"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// A key whose expiry is far in the future (PEXPIREAT in the year 287000,
// which Redis takes) has a PTTL in milliseconds beyond the largest
// Duration: GetTTL gives the largest Duration, a TTL that does not end,
// not the product's overflow. Before, it gave -1057708h33m31.7s, a
// negative TTL that a copy (the Tool's warm migration) could not be
// written with, and that memdict read as "not known".
func TestGetTTLBeyondDuration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr)
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer c.Close()
	const at = 9_000_000_000_000_000 // ms since 1970
	if err := c.Do(ctx, "PEXPIREAT", "k", at).Err(); err != nil {
		t.Fatal(err)
	}
	it, err := b.GetTTL(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if it.TTL != math.MaxInt64 {
		t.Fatalf("GetTTL of a key expiring in the year 287000: TTL %v, want the largest Duration", it.TTL)
	}
}
