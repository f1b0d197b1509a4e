package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// cutListings are the backends of the test-cutlist scheme, by host.
var cutListings sync.Map // host -> *cutListing

func init() {
	backend.Register("test-cutlist", func(_ context.Context, u *url.URL) (backend.Backend, error) {
		c, ok := cutListings.Load(u.Host)
		if !ok {
			return nil, fmt.Errorf("no cut listing %q", u.Host)
		}
		return keepOpenBackend{c.(*cutListing).be}, nil
	})
}

// keepOpenBackend is a backend that the command's Close does not close.
type keepOpenBackend struct{ *backend.Wrapped }

func (keepOpenBackend) Close() error { return nil }

// cutListing is an in-memory store whose listing fails after after keys,
// as a memcached crawl or a Redis SCAN cut by a server that goes away.
type cutListing struct {
	be     *backend.Wrapped
	after  int
	mu     sync.Mutex
	listed []string // the backend keys the last listing gave
}

// newCutListing returns a cutListing of after keys and the URL that opens
// it in the command.
func newCutListing(t *testing.T, after int) (*cutListing, string) {
	t.Helper()
	mem := memory.New()
	t.Cleanup(func() { mem.Close() })
	c := &cutListing{after: after}
	c.be = backend.Wrap(mem, func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, call backend.Call) backend.Result {
			r := next(ctx, call)
			if call.Op != backend.OpKeys || r.Err != nil {
				return r
			}
			keys := r.Keys
			r.Keys = func(yield func(string, error) bool) {
				c.mu.Lock()
				c.listed = nil
				c.mu.Unlock()
				n := 0
				for k, err := range keys {
					if err == nil && n == c.after {
						yield("", fmt.Errorf("listing: %w: connection reset", backend.ErrUnavailable))
						return
					}
					n++
					c.mu.Lock()
					c.listed = append(c.listed, k)
					c.mu.Unlock()
					if !yield(k, err) {
						return
					}
				}
			}
			return r
		}
	})
	host := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	cutListings.Store(host, c)
	t.Cleanup(func() { cutListings.Delete(host) })
	return c, "test-cutlist://" + host
}

// memdict keys over a listing that fails half-way dropped the keys listed
// since the last whole batch (up to 100, the listing's batch of value
// reads): it printed only the keys of whole batches, then the error. It
// now prints every live key listed before the failure, then the error,
// and exits non-zero; with --prefix and without.
func TestKeysListingCutPrintsListedKeys(t *testing.T) {
	c, u := newCutListing(t, 150)
	d, err := memdict.New[string](c.be, "p")
	if err != nil {
		t.Fatal(err)
	}
	const total = 250
	for i := range total {
		if err := d.Put(fmt.Sprintf("k%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"MEMDICT_URL": u}
	for _, args := range [][]string{{"keys", "--prefix", "p"}, {"keys"}} {
		r := runIn(t, env, "", args...)
		if r.code != exitError || !strings.HasPrefix(r.stderr, "memdict keys: ") || !strings.Contains(r.stderr, "connection reset") {
			t.Fatalf("memdict %q over a listing cut half-way: want exit %d and the error\n%v", args, exitError, r)
		}
		c.mu.Lock()
		var want []string
		for i := range total {
			k := fmt.Sprintf("k%03d", i)
			if slices.Contains(c.listed, d.BackendKey(k)) {
				if len(args) == 1 {
					k = "p\t" + k
				}
				want = append(want, k)
			}
		}
		c.mu.Unlock()
		got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.stdout == "" {
			got = nil
		}
		slices.Sort(got)
		if len(want) < 100 || !slices.Equal(got, want) {
			t.Errorf("memdict %q printed %d keys, want the %d listed before the failure; stderr: %s", args, len(got), len(want), r.stderr)
		}
	}
}
