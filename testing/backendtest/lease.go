package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// runLease runs the subtests of GetOrLoad across processes: each uses two
// Dicts on one backend, whose separate flight groups stand for two
// processes, and checks what the fleet sees.
func runLease(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	tests := []struct {
		name  string
		fn    func(h *harness)
		sleep bool // sleeps on a real clock: runs in parallel
	}{
		{"OneLoad", leaseOneLoad, false},
		{"StaleWhileRevalidate", leaseStaleWhileRevalidate, true},
		{"Invalidate", leaseInvalidate, false},
		{"InvalidateTouch", leaseInvalidateTouch, false},
		{"Negative", leaseNegative, true},
		{"LogicalExpiry", leaseLogicalExpiry, true},
		{"Takeover", leaseTakeover, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newBackend, opts)
			if tt.sleep && h.realTime() {
				t.Parallel()
			}
			tt.fn(h)
		})
	}
}

// leaseBackend wraps the backend under test: it counts the reads of each
// key (Get and GetLease), so that subtests wait for callers to have read
// instead of sleeping, and can drop the TTL of every write (a store that
// ignores TTLs). It keeps the backend's Leaser and Locker: a Leaser
// method of a backend without one returns ErrNotSupported, which makes
// the Dict use locks, and TryLock and Unlock go to backend.TryLock and
// backend.Unlock.
type leaseBackend struct {
	backend.Backend
	dropTTL bool

	mu    sync.Mutex
	reads map[string]int
}

func (h *harness) leaseBackend(dropTTL bool) *leaseBackend {
	return &leaseBackend{Backend: h.be, dropTTL: dropTTL, reads: map[string]int{}}
}

func (b *leaseBackend) read(key string) {
	b.mu.Lock()
	b.reads[key]++
	b.mu.Unlock()
}

// readsOf returns how many times key was read.
func (b *leaseBackend) readsOf(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads[key]
}

func (b *leaseBackend) Get(ctx context.Context, key string) (backend.Item, error) {
	b.read(key)
	return b.Backend.Get(ctx, key)
}

func (b *leaseBackend) item(it backend.Item) backend.Item {
	if b.dropTTL {
		it.TTL = 0
	}
	return it
}

func (b *leaseBackend) Set(ctx context.Context, it backend.Item) error {
	return b.Backend.Set(ctx, b.item(it))
}

func (b *leaseBackend) Add(ctx context.Context, it backend.Item) error {
	return b.Backend.Add(ctx, b.item(it))
}

func (b *leaseBackend) CompareAndSwap(ctx context.Context, it backend.Item) error {
	return b.Backend.CompareAndSwap(ctx, b.item(it))
}

func (b *leaseBackend) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if b.dropTTL {
		ttl = 0
	}
	return b.Backend.Touch(ctx, key, ttl)
}

func (b *leaseBackend) GetLease(ctx context.Context, key string, o backend.LeaseOptions) (backend.Lease, error) {
	l, ok := b.Backend.(backend.Leaser)
	if !ok || b.dropTTL {
		return backend.Lease{}, fmt.Errorf("backendtest: GetLease: %w", backend.ErrNotSupported)
	}
	b.read(key)
	return l.GetLease(ctx, key, o)
}

func (b *leaseBackend) ReleaseLease(ctx context.Context, lease backend.Lease) error {
	l, ok := b.Backend.(backend.Leaser)
	if !ok || b.dropTTL {
		return fmt.Errorf("backendtest: ReleaseLease: %w", backend.ErrNotSupported)
	}
	return l.ReleaseLease(ctx, lease)
}

func (b *leaseBackend) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	l, ok := b.Backend.(backend.Leaser)
	if !ok || b.dropTTL {
		return fmt.Errorf("backendtest: MarkStale: %w", backend.ErrNotSupported)
	}
	return l.MarkStale(ctx, key, ttl)
}

// TryLock goes to the backend itself, with its TTL kept even when writes
// drop theirs: a lock must expire.
func (b *leaseBackend) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	return backend.TryLock(ctx, b.Backend, key, token, ttl)
}

func (b *leaseBackend) Unlock(ctx context.Context, key, token string) (bool, error) {
	return backend.Unlock(ctx, b.Backend, key, token)
}

var (
	_ backend.Leaser = (*leaseBackend)(nil)
	_ backend.Locker = (*leaseBackend)(nil)
)

// leaseDicts returns two Dicts of strings on be under sub, as two
// processes have, and tracks key's backend key and lock key for cleanup.
func leaseDicts(h *harness, be backend.Backend, sub, key string, opts ...memdict.Option) (*memdict.Dict[string], *memdict.Dict[string]) {
	h.t.Helper()
	d1, d2 := dictOn[string](h, be, sub, opts...), dictOn[string](h, be, sub, opts...)
	track(h, d1, key)
	trackMeta(h, d1)
	h.mu.Lock()
	h.keys = append(h.keys, lockKey(d1, key))
	h.mu.Unlock()
	return d1, d2
}

// lockKey is the key of the lock with which d's GetOrLoad fills key on a
// backend without a Leaser.
func lockKey(d *memdict.Dict[string], key string) string { return d.LockKey(key) }

// loader is a GetOrLoad loader that counts its calls and, while gate is
// open (not nil and not closed), blocks them.
type loader struct {
	calls atomic.Int64
	gate  chan struct{}
	value string
	err   error
}

func (l *loader) load(ctx context.Context, _ string) (string, error) {
	l.calls.Add(1)
	if l.gate != nil {
		select {
		case <-l.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return l.value, l.err
}

// waitUntil polls cond until it holds, failing the test after a deadline
// generous enough for a loaded machine and a server that counts whole
// seconds.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// leaseTTLs returns the TTLs of the Lease subtests: a fresh time, and a
// window long enough not to run out during a subtest.
func (h *harness) leaseTTLs() (fresh, window time.Duration) {
	if h.opts.Advance != nil {
		return 10 * h.opts.TTLGranularity, 1000 * h.opts.TTLGranularity
	}
	return max(h.opts.TTLGranularity, time.Second), time.Minute
}

// A cold key read by many callers of two processes at once: one load.
func leaseOneLoad(h *harness) {
	t, ctx := h.t, h.ctx()
	be := h.leaseBackend(false)
	// The value stays fresh while the test runs: on a loaded machine a
	// waiter may read it again more than a fresh time after the load.
	_, window := h.leaseTTLs()
	d1, d2 := leaseDicts(h, be, "one", "k", memdict.WithDefaultTTL(window))
	l := &loader{gate: make(chan struct{}), value: "v"}
	n := 2 * h.opts.Concurrency
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		d := []*memdict.Dict[string]{d1, d2}[i%2]
		wg.Go(func() {
			v, err := d.GetOrLoad(ctx, "k", l.load)
			if err == nil && v != "v" {
				err = fmt.Errorf("GetOrLoad = %q, want v", v)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	bk := d1.BackendKey("k")
	h.waitUntil("every caller to read the key", func() bool { return be.readsOf(bk) >= n })
	h.waitUntil("the load", func() bool { return l.calls.Load() >= 1 })
	close(l.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := l.calls.Load(); got != 1 {
		t.Fatalf("%d GetOrLoad calls across two Dicts made %d loads, want 1", n, got)
	}
	if v, ok := d2.Get("k"); !ok || v != "v" {
		t.Fatalf("Get after the load = %q, %v", v, ok)
	}
}

// refreshOnce checks that, while key's entry is stale, GetOrLoad on d1 and
// d2 returns old at once and exactly one of them reloads it (the loader
// blocks until the check is done), and that the reloaded value is then
// read.
func refreshOnce(h *harness, d1, d2 *memdict.Dict[string], key, old, newer string) {
	t, ctx := h.t, h.ctx()
	l := &loader{gate: make(chan struct{}), value: newer}
	call := func(i int) {
		t.Helper()
		d := []*memdict.Dict[string]{d1, d2}[i%2]
		if v, err := d.GetOrLoad(ctx, key, l.load); err != nil || v != old {
			t.Fatalf("GetOrLoad of a stale entry = %q, %v; want %q at once", v, err, old)
		}
	}
	i := 0
	// A server that counts whole seconds may hand out the refresh a
	// second late: until then callers get the stale value, unrefreshed.
	h.waitUntil("one caller to reload the stale entry", func() bool {
		call(i)
		i++
		return l.calls.Load() >= 1
	})
	for j := range 10 {
		call(j)
	}
	if v, ok := d2.Get(key); !ok || v != old {
		t.Fatalf("Get during the reload = %q, %v; want the stale %q", v, ok, old)
	}
	close(l.gate)
	h.waitUntil("the reloaded value", func() bool { v, _ := d1.Get(key); return v == newer })
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d reloads of a stale entry, want 1", n)
	}
	if v, err := d2.GetOrLoad(ctx, key, l.load); err != nil || v != newer || l.calls.Load() != 1 {
		t.Fatalf("GetOrLoad after the reload = %q, %v (%d loads)", v, err, l.calls.Load())
	}
}

func leaseStaleWhileRevalidate(h *harness) {
	t, ctx := h.t, h.ctx()
	fresh, window := h.leaseTTLs()
	d1, d2 := leaseDicts(h, h.be, "swr", "k", memdict.WithDefaultTTL(fresh), memdict.WithStaleWhileRevalidate(window))
	first := &loader{value: "v1"}
	if v, err := d1.GetOrLoad(ctx, "k", first.load); err != nil || v != "v1" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	h.pass(fresh + h.opts.TTLGranularity)
	refreshOnce(h, d1, d2, "k", "v1", "v2")
}

func leaseInvalidate(h *harness) {
	t, ctx := h.t, h.ctx()
	d1, d2 := leaseDicts(h, h.be, "inv", "k", memdict.WithDefaultTTL(h.longTTL()))
	track(h, d1, "absent")
	noErr(t, "Invalidate of an absent key", d1.Invalidate(ctx, "absent"))
	noErr(t, "Put", d1.Put("k", "v1"))
	noErr(t, "Invalidate", d2.Invalidate(ctx, "k"))
	if v, ok := d1.Get("k"); !ok || v != "v1" {
		t.Fatalf("Get after Invalidate = %q, %v; want the old value", v, ok)
	}
	refreshOnce(h, d1, d2, "k", "v1", "v2")
}

// Touch gives an invalidated entry a new TTL and leaves it stale: the
// next GetOrLoad still reloads it once, in the background. Touch changes
// when the entry ends, not whether it needs reloading.
func leaseInvalidateTouch(h *harness) {
	t, ctx := h.t, h.ctx()
	d1, d2 := leaseDicts(h, h.be, "invtouch", "k", memdict.WithDefaultTTL(h.longTTL()))
	noErr(t, "Put", d1.Put("k", "v1"))
	noErr(t, "Invalidate", d2.Invalidate(ctx, "k"))
	noErr(t, "Touch after Invalidate", d1.Touch(ctx, "k", h.longTTL()))
	if v, ok := d1.Get("k"); !ok || v != "v1" {
		t.Fatalf("Get after Invalidate and Touch = %q, %v; want the old value", v, ok)
	}
	refreshOnce(h, d1, d2, "k", "v1", "v2")
}

func leaseNegative(h *harness) {
	t, ctx := h.t, h.ctx()
	d1, d2 := leaseDicts(h, h.be, "neg", "k", memdict.WithNegativeTTL(h.longTTL()))
	l := &loader{err: fmt.Errorf("no row: %w", memdict.ErrNoValue)}
	for i := range 4 {
		d := []*memdict.Dict[string]{d1, d2}[i%2]
		_, err := d.GetOrLoad(ctx, "k", l.load)
		var oe *memdict.OpError
		if !errors.Is(err, memdict.ErrNoValue) || !errors.As(err, &oe) || oe.Op != "load" {
			t.Fatalf("GetOrLoad with a loader reporting no value = %v; want an *OpError of load wrapping ErrNoValue", err)
		}
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d loads within the negative TTL, want 1", n)
	}
	if v, ok, err := d2.Lookup(ctx, "k"); ok || err != nil {
		t.Fatalf("Lookup of a cached absence = %q, %v, %v; want a miss", v, ok, err)
	}
	if m, err := d1.GetMulti(ctx, []string{"k"}); len(m) != 0 || err != nil {
		t.Fatalf("GetMulti of a cached absence = %v, %v; want none", m, err)
	}
	// A short negative TTL runs out.
	short := h.shortTTL()
	s1, _ := leaseDicts(h, h.be, "negshort", "k", memdict.WithNegativeTTL(short))
	ls := &loader{err: memdict.ErrNoValue}
	if _, err := s1.GetOrLoad(ctx, "k", ls.load); !errors.Is(err, memdict.ErrNoValue) {
		t.Fatalf("GetOrLoad = %v", err)
	}
	h.expire(short)
	ls.err, ls.value = nil, "exists"
	if v, err := s1.GetOrLoad(ctx, "k", ls.load); err != nil || v != "exists" || ls.calls.Load() != 2 {
		t.Fatalf("GetOrLoad after the negative TTL = %q, %v (%d loads)", v, err, ls.calls.Load())
	}
}

// On a store that ignores TTLs, values expire by their envelope.
func leaseLogicalExpiry(h *harness) {
	t, ctx := h.t, h.ctx()
	be := h.leaseBackend(true)
	ttl := h.shortTTL()
	if h.realTime() {
		// The store keeps values: only the envelope's millisecond expiry
		// counts, whatever the server's TTL resolution.
		ttl = 300 * time.Millisecond
	}
	d, _ := leaseDicts(h, be, "exp", "a", memdict.WithDefaultTTL(ttl))
	track(h, d, "b", "c")
	written := time.Now()
	noErr(t, "PutMulti", d.PutMulti(ctx, map[string]string{"a": "1", "b": "2", "c": "3"}))
	// (Unless the machine stalled for the whole TTL since the write.)
	if v, ok, err := d.Lookup(ctx, "a"); (!ok || v != "1") && (!h.realTime() || time.Since(written) < ttl) || err != nil {
		t.Fatalf("Lookup before expiry = %q, %v, %v", v, ok, err)
	}
	h.pass(2 * ttl)
	if _, err := h.be.Get(ctx, d.BackendKey("c")); err != nil {
		t.Fatalf("the store dropped a value it should keep: %v", err)
	}
	if v, ok, err := d.Lookup(ctx, "a"); ok || err != nil {
		t.Fatalf("Lookup of a value past its envelope's expiry = %q, %v, %v; want a miss", v, ok, err)
	}
	if m, err := d.GetMulti(ctx, []string{"a", "b"}); len(m) != 0 || err != nil {
		t.Fatalf("GetMulti past expiry = %v, %v; want none", m, err)
	}
	v, err := d.Update(ctx, "b", func(old string, ok bool) (string, error) {
		if ok {
			return "", fmt.Errorf("update saw the expired %q", old)
		}
		return "new", nil
	})
	if err != nil || v != "new" {
		t.Fatalf("Update of an expired value = %q, %v", v, err)
	}
	l := &loader{value: "loaded"}
	if v, err := d.GetOrLoad(ctx, "c", l.load); err != nil || v != "loaded" || l.calls.Load() != 1 {
		t.Fatalf("GetOrLoad of an expired value = %q, %v (%d loads)", v, err, l.calls.Load())
	}
}

// A winner that takes the lease and never fills: another caller takes
// over after the lease TTL.
func leaseTakeover(h *harness) {
	t, ctx := h.t, h.ctx()
	be := h.leaseBackend(false)
	leaseTTL := 10 * h.opts.TTLGranularity
	if h.realTime() {
		leaseTTL = 2 * max(h.opts.TTLGranularity, time.Second)
	}
	d, _ := leaseDicts(h, be, "takeover", "k", memdict.WithLeaseTTL(leaseTTL))
	bk := d.BackendKey("k")
	if l, ok := h.be.(backend.Leaser); ok {
		lease, err := l.GetLease(ctx, bk, backend.LeaseOptions{TTL: leaseTTL})
		if errors.Is(err, backend.ErrNotSupported) {
			ok = false
		} else if err != nil || !lease.Won {
			t.Fatalf("GetLease of a cold key = %+v, %v; want it won", lease, err)
		}
		if !ok {
			takeLock(h, lockKey(d, "k"), leaseTTL)
		}
	} else {
		takeLock(h, lockKey(d, "k"), leaseTTL)
	}
	l := &loader{value: "v"}
	done := make(chan error, 1)
	go func() {
		v, err := d.GetOrLoad(ctx, "k", l.load)
		if err == nil && v != "v" {
			err = fmt.Errorf("GetOrLoad = %q, want v", v)
		}
		done <- err
	}()
	before := be.readsOf(bk)
	h.waitUntil("the caller to wait for the lease and read again", func() bool { return be.readsOf(bk) >= before+3 })
	if n := l.calls.Load(); n != 0 {
		t.Fatalf("the loader ran while another caller held the lease")
	}
	if !h.realTime() {
		h.expire(leaseTTL)
	} // on a real clock the caller takes over when the lease runs out
	select {
	case err := <-done:
		noErr(t, "GetOrLoad after the lease expired", err)
	case <-time.After(leaseTTL + 30*time.Second):
		t.Fatalf("GetOrLoad still waits 30s after the lease TTL (%v) ran out", leaseTTL)
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

// takeLock takes the lock key for ttl with a token of its own, as a
// winner that then dies would.
func takeLock(h *harness, key string, ttl time.Duration) {
	h.t.Helper()
	won, err := backend.TryLock(h.ctx(), h.be, key, backend.NewLockToken(), ttl)
	if err != nil || !won {
		h.t.Fatalf("TryLock(%q) = %v, %v; want it taken", key, won, err)
	}
}
