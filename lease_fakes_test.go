package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// Backends for the tests of GetOrLoad across processes, logical expiry
// and Invalidate.

// spy is a memory Store (Locker included) that counts the reads of each
// key, so that tests wait for callers to have read instead of sleeping.
type spy struct {
	*memory.Store
	mu    sync.Mutex
	reads map[string]int
}

func newSpy(s *memory.Store) *spy { return &spy{Store: s, reads: map[string]int{}} }

func (s *spy) count(key string) {
	s.mu.Lock()
	s.reads[key]++
	s.mu.Unlock()
}

// readsOf returns how many times key was read.
func (s *spy) readsOf(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[key]
}

func (s *spy) Get(ctx context.Context, key string) (backend.Item, error) {
	s.count(key)
	return s.Store.Get(ctx, key)
}

// persistent is a memory Store that ignores TTLs, as the persistent stores
// of ERP5's Flare-style plugins do.
type persistent struct{ *memory.Store }

func (p persistent) Set(ctx context.Context, it backend.Item) error {
	it.TTL = 0
	return p.Store.Set(ctx, it)
}

func (p persistent) Add(ctx context.Context, it backend.Item) error {
	it.TTL = 0
	return p.Store.Add(ctx, it)
}

func (p persistent) CompareAndSwap(ctx context.Context, it backend.Item) error {
	it.TTL = 0
	return p.Store.CompareAndSwap(ctx, it)
}

func (p persistent) Touch(ctx context.Context, key string, _ time.Duration) error {
	return p.Store.Touch(ctx, key, 0)
}

// fakeLeaser is a memory Store with a backend.Leaser that behaves as
// memcached's meta protocol does: GetLease hands the fill lease of a
// missing, stale or nearly expired key to one caller and reports the
// others Busy; the winner fills with CompareAndSwap and the lease's CAS.
// Placeholders are kept beside the Store, so plain reads never see them.
type fakeLeaser struct {
	*memory.Store
	clock *memory.FakeClock

	mu      sync.Mutex
	expiry  map[string]time.Time // of each key written with a TTL
	leases  map[string]fakeLease // handed out, by key
	stale   map[string]uint64    // CAS of the item marked stale, by key
	tokens  atomic.Uint64
	noMeta  atomic.Bool // the server has no meta protocol: ErrNotSupported
	leasesN atomic.Int64
}

type fakeLease struct {
	cas   uint64 // the placeholder's token, or the item's CAS
	until time.Time
}

func newFakeLeaser(clock *memory.FakeClock) *fakeLeaser {
	return &fakeLeaser{
		Store: memory.New(memory.WithClock(clock)), clock: clock,
		expiry: map[string]time.Time{}, leases: map[string]fakeLease{}, stale: map[string]uint64{},
	}
}

var _ backend.Leaser = (*fakeLeaser)(nil)

const placeholderBit = 1 << 62

func (f *fakeLeaser) wrote(key string, ttl time.Duration) {
	if ttl > 0 {
		f.expiry[key] = f.clock.Now().Add(ttl)
	} else {
		delete(f.expiry, key)
	}
	delete(f.leases, key)
	delete(f.stale, key)
}

func (f *fakeLeaser) Set(ctx context.Context, it backend.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.Store.Set(ctx, it)
	if err == nil {
		f.wrote(it.Key, it.TTL)
	}
	return err
}

func (f *fakeLeaser) CompareAndSwap(ctx context.Context, it backend.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if it.CAS&placeholderBit != 0 {
		l, ok := f.leases[it.Key]
		if !ok || l.cas != it.CAS || !f.clock.Now().Before(l.until) {
			return fmt.Errorf("fake: cas %q: %w", it.Key, backend.ErrNotFound)
		}
		err := f.Store.Add(ctx, it)
		if errors.Is(err, backend.ErrNotStored) {
			return fmt.Errorf("fake: cas %q: %w", it.Key, backend.ErrCASConflict)
		}
		if err == nil {
			f.wrote(it.Key, it.TTL)
		}
		return err
	}
	err := f.Store.CompareAndSwap(ctx, it)
	if err == nil {
		f.wrote(it.Key, it.TTL)
	}
	return err
}

func (f *fakeLeaser) GetLease(ctx context.Context, key string, o backend.LeaseOptions) (backend.Lease, error) {
	if f.noMeta.Load() {
		return backend.Lease{}, fmt.Errorf("fake: get lease: %w", backend.ErrNotSupported)
	}
	f.leasesN.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	l, held := f.leases[key]
	if held && !now.Before(l.until) {
		delete(f.leases, key)
		held = false
	}
	it, err := f.Store.Get(ctx, key)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		if held {
			return backend.Lease{Item: backend.Item{Key: key}, Busy: true}, nil
		}
		l = fakeLease{cas: placeholderBit | f.tokens.Add(1), until: now.Add(o.TTL)}
		f.leases[key] = l
		return backend.Lease{Item: backend.Item{Key: key, CAS: l.cas}, Won: true}, nil
	case err != nil:
		return backend.Lease{}, err
	}
	out := backend.Lease{Item: it, Found: true}
	out.Stale = f.stale[key] == it.CAS && it.CAS != 0
	exp, hasExp := f.expiry[key]
	due := out.Stale || (o.RefreshWithin > 0 && hasExp && exp.Sub(now) < o.RefreshWithin)
	switch {
	case due && held:
		out.Busy = true
	case due:
		f.leases[key] = fakeLease{cas: it.CAS, until: now.Add(o.TTL)}
		out.Won = true
	}
	return out, nil
}

func (f *fakeLeaser) ReleaseLease(ctx context.Context, l backend.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.leases[l.Item.Key]; ok && !l.Found && cur.cas == l.Item.CAS {
		delete(f.leases, l.Item.Key)
	}
	return nil
}

func (f *fakeLeaser) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	if f.noMeta.Load() {
		return fmt.Errorf("fake: mark stale: %w", backend.ErrNotSupported)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, err := f.Store.Get(ctx, key)
	if err != nil {
		return err
	}
	if ttl > 0 {
		if err := f.Store.Touch(ctx, key, ttl); err != nil {
			return err
		}
		f.expiry[key] = f.clock.Now().Add(ttl)
	}
	f.stale[key] = it.CAS
	delete(f.leases, key)
	return nil
}

// Get is the Store's, and reports an item marked stale (Item.Stale) as
// memcached's meta protocol does.
func (f *fakeLeaser) Get(ctx context.Context, key string) (backend.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it, err := f.Store.Get(ctx, key)
	if err == nil {
		it.Stale = f.stale[key] == it.CAS && it.CAS != 0
	}
	return it, err
}

// Add, Delete are the Store's, but a write ends a lease too.
func (f *fakeLeaser) Add(ctx context.Context, it backend.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.Store.Add(ctx, it)
	if err == nil {
		f.wrote(it.Key, it.TTL)
	}
	return err
}

func (f *fakeLeaser) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.Store.Delete(ctx, key)
	if err == nil {
		f.wrote(key, 0)
	}
	return err
}
