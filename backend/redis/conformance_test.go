package redis

import (
	"context"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/testing/backendtest"
)

// conformanceOptions are the suite's options for Redis: millisecond TTLs,
// any key bytes, and a 1 MiB value limit (set with max_value_size so the
// suite can test the limit).
//
// On a real server (advance nil) the suite sleeps, and its TTLs are
// multiples of TTLGranularity with a floor of 200ms for items that must
// outlive the next call: on a loaded CI machine a call can take longer than
// that. So real servers get TTLs of half a second and more; millisecond
// TTLs are checked on miniredis, whose clock the suite moves (module
// internal/miniredistest, so that miniredis is no requirement of memdict).
func conformanceOptions(advance func(time.Duration)) backendtest.Options {
	g := time.Millisecond
	if advance == nil {
		g = 500 * time.Millisecond
	}
	return backendtest.Options{
		Advance:        advance,
		TTLGranularity: g,
		MaxValueSize:   1 << 20,
		AnyKeyBytes:    true,
		NoFlags:        true,
		Concurrency:    16,
	}
}

func opener(rawURL string) func(t *testing.T) backend.Backend {
	return func(t *testing.T) backend.Backend {
		be, err := backend.Open(context.Background(), rawURL)
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
}

func TestConformanceServer(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	backendtest.Run(t, opener("redis://"+p.Addr+"/0?max_value_size=1048576&timeout="+loadedTimeout), conformanceOptions(nil))
}
