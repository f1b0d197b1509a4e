package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/testing/memdicttest"
	"github.com/memdict/memdict/tool"
)

// A Dict call is bounded by one timeout, whatever number of backend calls
// it makes (timeout.go). These tests measure real time: the deadline is
// what they test. The slow backend answers each call after a latency just
// under its timeout, as a slow server does: a Dict call that makes two
// backend calls in a row took nearly twice the timeout before, and must
// now end within it (plus a tolerance for a loaded machine, half the
// timeout, well under the 1.8x of two calls in a row).

// slowBackend is a backend whose server answers every call after a
// latency, as a driver with a timeout of its own sees a slow server: it
// reports its timeout (backend.Timeouter; 0: none), and each call waits
// for the latency, its own timeout or its context, whichever ends first.
// It records each call's context. It has no optional ability but
// Timeouter: writes of many keys go one key at a time.
type slowBackend struct {
	st      *memory.Store
	timeout time.Duration

	mu      sync.Mutex
	latency time.Duration
	calls   []*slowCall
}

// slowCall is a call the slow backend saw while it was slow.
type slowCall struct {
	op       string
	deadline time.Time // zero: the context had none
	cleanup  bool      // a context without cancellation: a release
	// late is how long after the end of its wait (the latency, the
	// backend's timeout or ctx's deadline, whichever came first) the
	// call's goroutine ran again: the scheduling delay of a loaded
	// machine, not time the Dict spent.
	late time.Duration
}

func newSlow(t *testing.T, timeout time.Duration) *slowBackend {
	s := &slowBackend{st: memory.New(), timeout: timeout}
	t.Cleanup(func() { s.st.Close() })
	return s
}

// slow sets the latency and forgets the calls recorded so far.
func (s *slowBackend) slow(latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency, s.calls = latency, nil
}

func (s *slowBackend) recorded() []slowCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := make([]slowCall, len(s.calls))
	for i, c := range s.calls {
		calls[i] = *c
	}
	return calls
}

// hold records a call of op and waits as the slow server makes it.
func (s *slowBackend) hold(ctx context.Context, op string) error {
	began := time.Now()
	dl, hasDeadline := ctx.Deadline()
	s.mu.Lock()
	latency := s.latency
	var call *slowCall
	if latency > 0 {
		call = &slowCall{op: op, deadline: dl, cleanup: ctx.Done() == nil}
		s.calls = append(s.calls, call)
	}
	s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("slow: %s: %w", op, err)
	}
	if latency == 0 {
		return nil
	}
	wait, late := latency, false
	if s.timeout > 0 && s.timeout < wait {
		wait, late = s.timeout, true
	}
	due := began.Add(wait)
	if hasDeadline && dl.Before(due) {
		due = dl
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	defer func() {
		s.mu.Lock()
		call.late = max(0, time.Since(due))
		s.mu.Unlock()
	}()
	select {
	case <-tm.C:
		if late {
			return fmt.Errorf("slow: %s: no reply within %v: %w", op, s.timeout, backend.ErrUnavailable)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slow: %s: %w", op, ctx.Err())
	}
}

func (s *slowBackend) Timeout() time.Duration { return s.timeout }

func (s *slowBackend) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := s.hold(ctx, "get"); err != nil {
		return backend.Item{}, err
	}
	return s.st.Get(ctx, key)
}

func (s *slowBackend) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := s.hold(ctx, "getmulti"); err != nil {
		return nil, err
	}
	return s.st.GetMulti(ctx, keys)
}

func (s *slowBackend) Set(ctx context.Context, it backend.Item) error {
	if err := s.hold(ctx, "set"); err != nil {
		return err
	}
	return s.st.Set(ctx, it)
}

func (s *slowBackend) Add(ctx context.Context, it backend.Item) error {
	if err := s.hold(ctx, "add"); err != nil {
		return err
	}
	return s.st.Add(ctx, it)
}

func (s *slowBackend) CompareAndSwap(ctx context.Context, it backend.Item) error {
	if err := s.hold(ctx, "cas"); err != nil {
		return err
	}
	return s.st.CompareAndSwap(ctx, it)
}

func (s *slowBackend) Delete(ctx context.Context, key string) error {
	if err := s.hold(ctx, "delete"); err != nil {
		return err
	}
	return s.st.Delete(ctx, key)
}

func (s *slowBackend) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.hold(ctx, "touch"); err != nil {
		return err
	}
	return s.st.Touch(ctx, key, ttl)
}

func (s *slowBackend) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	if err := s.hold(ctx, "increment"); err != nil {
		return 0, err
	}
	return s.st.Increment(ctx, key, delta)
}

func (s *slowBackend) Close() error { return nil }

// The timeout of the slow backend in these tests, its latency when slow
// (two calls in a row take 1.8 timeouts), and the tolerance of a call's
// end for scheduling noise (300 ms: a loaded 2-core machine stalls a
// process for 100 ms and more at times).
const (
	slowTimeout   = 600 * time.Millisecond
	slowLatency   = slowTimeout * 9 / 10
	slowTolerance = slowTimeout / 2
)

// checkBounded checks that a call that began at start and took elapsed
// ended within the timeout, that every backend call after its first (but
// the releases of what it held) carried its deadline, and that err, if
// any, says it ran out of its timeout.
//
// The time the call took is counted without the delays with which the
// slow backend's goroutines ran again after their waits ended (slowCall's
// late): on a loaded machine (load 12-16 on 2 cores) a goroutine woken by
// a timer runs hundreds of milliseconds late at times, and an Update
// that ended at its deadline took 1.13s, a Python-format one 902ms,
// beyond the timeout and the tolerance. Without them the tolerance still
// tells a call bounded by one deadline from one whose backend calls each
// waited their own latency in a row (1.08s).
func checkBounded(t *testing.T, start time.Time, elapsed time.Duration, calls []slowCall, err error) {
	t.Helper()
	var late time.Duration
	for _, c := range calls {
		late += c.late
	}
	if elapsed-late > slowTimeout+slowTolerance {
		t.Errorf("the call took %v (%v without the scheduling delays of the backend's calls, %v); its timeout is %v", elapsed, elapsed-late, late, slowTimeout)
	}
	if len(calls) < 2 {
		t.Fatalf("the call made %d backend calls, want at least 2: %+v", len(calls), calls)
	}
	for i, c := range calls[1:] {
		if c.cleanup {
			continue
		}
		if c.deadline.IsZero() || c.deadline.After(start.Add(slowTimeout+slowTolerance)) {
			t.Errorf("backend call %d (%s) had deadline %v, want the call's, at most %v after its start",
				i+2, c.op, c.deadline.Sub(start), slowTimeout)
		}
	}
	if err != nil && !(errors.Is(err, memdict.ErrUnavailable) && errors.Is(err, context.DeadlineExceeded) &&
		strings.Contains(err.Error(), "within its timeout of "+slowTimeout.String())) {
		t.Errorf("error %q: want one wrapping ErrUnavailable and context.DeadlineExceeded that names the timeout", err)
	}
}

// Every kind of Dict call that makes more than one backend call ends
// within the backend's timeout, with an error that says so.
func TestTimeoutBoundsTheWholeCall(t *testing.T) {
	type env struct {
		d *memdict.Dict[string]
		c *memdict.Counters
	}
	keys40 := map[string]string{}
	for i := range 40 {
		keys40[fmt.Sprint("m", i)] = "v"
	}
	cases := []struct {
		name string
		due  bool // the namespace generation is due
		run  func(ctx context.Context, e env) error
		// wantErr says the call must fail (it ran out of time); else it
		// must succeed (GetOrLoad hides backend failures).
		wantErr bool
	}{
		{"Lookup with the generation due", true, func(ctx context.Context, e env) error {
			_, _, err := e.d.Lookup(ctx, "k")
			return err
		}, true},
		{"Store with the generation due", true, func(ctx context.Context, e env) error {
			return e.d.Store(ctx, "k", "v2")
		}, true},
		{"Remove with the generation due", true, func(ctx context.Context, e env) error {
			return e.d.Remove(ctx, "k")
		}, true},
		{"GetMulti with the generation due", true, func(ctx context.Context, e env) error {
			_, err := e.d.GetMulti(ctx, []string{"k", "x"})
			return err
		}, true},
		{"Update", false, func(ctx context.Context, e env) error {
			_, err := e.d.Update(ctx, "k", func(old string, _ bool) (string, error) { return old + "+", nil })
			return err
		}, true},
		{"Touch", false, func(ctx context.Context, e env) error {
			return e.d.Touch(ctx, "k", time.Minute)
		}, true},
		{"Invalidate", false, func(ctx context.Context, e env) error {
			return e.d.Invalidate(ctx, "k")
		}, true},
		{"Counters.Add of a new counter", false, func(ctx context.Context, e env) error {
			_, err := e.c.Add(ctx, "new", 1)
			return err
		}, true},
		{"Tx.Commit", false, func(ctx context.Context, e env) error {
			tx := e.d.Begin()
			_ = tx.Put("a", "1")
			_ = tx.Delete("k")
			return tx.Commit(ctx)
		}, true},
		{"PutMulti one key at a time", false, func(ctx context.Context, e env) error {
			return e.d.PutMulti(ctx, keys40)
		}, true},
		{"Clear", false, func(ctx context.Context, e env) error {
			return e.d.Clear(ctx)
		}, true},
		{"GetOrLoad of a missing key", false, func(ctx context.Context, e env) error {
			v, err := e.d.GetOrLoad(ctx, "absent", func(ctx context.Context, key string) (string, error) {
				if _, has := ctx.Deadline(); has {
					return "", errors.New("the loader's context has the call's deadline")
				}
				return "loaded", nil
			})
			if err == nil && v != "loaded" {
				err = fmt.Errorf("GetOrLoad = %q", v)
			}
			return err
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newSlow(t, slowTimeout)
			d := newDict[string](t, be, "p")
			c, err := memdict.NewCounters(be, "c")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := d.Store(ctx, "k", "v", memdict.TTL(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Get(ctx, "new"); err != nil {
				t.Fatal(err)
			}
			if tc.due {
				memdict.MarkGenerationDue(d)
			}
			be.slow(slowLatency)
			start := time.Now()
			err = tc.run(ctx, env{d, c})
			elapsed := time.Since(start)
			calls := be.recorded()
			be.slow(0)
			if tc.wantErr && err == nil {
				t.Errorf("the call succeeded in %v, want it to run out of its timeout", elapsed)
			}
			if !tc.wantErr && err != nil {
				t.Errorf("the call failed: %v", err)
			}
			checkBounded(t, start, elapsed, calls, err)
		})
	}
}

// mustRunOut makes be slow, runs call (named what), and checks that it
// failed within the timeout, each backend call after the first bounded by
// the call's deadline (checkBounded).
func mustRunOut(t *testing.T, be *slowBackend, what string, call func() error) {
	t.Helper()
	be.slow(slowLatency)
	start := time.Now()
	err := call()
	elapsed := time.Since(start)
	calls := be.recorded()
	be.slow(0)
	if err == nil {
		t.Errorf("%s succeeded in %v, want it to run out of its timeout", what, elapsed)
	}
	checkBounded(t, start, elapsed, calls, err)
}

// appendPlus is an Update function.
func appendPlus(old string, _ bool) (string, error) { return old + "+", nil }

// A Dict in a Python format (the keys and values of ERP5 and Python
// programs) bounds its calls by the timeout as any Dict does: its view of
// the settings, which has no namespace generation, carries the timeout
// too.
func TestTimeoutPythonFormat(t *testing.T) {
	for _, f := range []memdict.Format{memdict.FormatPython, memdict.FormatERP5} {
		t.Run(string(f), func(t *testing.T) {
			be := newSlow(t, slowTimeout)
			d := newDict[string](t, be, "p:", memdict.WithFormat(f), memdict.WithSiteID("site"))
			ctx := context.Background()
			if err := d.Store(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
			mustRunOut(t, be, "Update", func() error {
				_, err := d.Update(ctx, "k", appendPlus)
				return err
			})
		})
	}
}

// slowByHost holds the slow backends that a Tool's plugin opens from a
// "slowtest://<host>" URL, by host (one per test).
var (
	slowByHost sync.Map
	slowHosts  atomic.Int64
)

func init() {
	backend.Register("slowtest", func(_ context.Context, u *url.URL) (backend.Backend, error) {
		if be, ok := slowByHost.Load(u.Host); ok {
			return be.(*slowBackend), nil
		}
		return nil, fmt.Errorf("slowtest: no backend %q", u.Host)
	})
}

// slowTool returns a Tool whose default plugin opens a new slow backend
// from its URL on first use, as a plugin configured by URL does, and that
// backend.
func slowTool(t *testing.T, format memdict.Format) (*tool.Tool, *slowBackend) {
	t.Helper()
	be := newSlow(t, slowTimeout)
	host := fmt.Sprintf("b%d", slowHosts.Add(1))
	slowByHost.Store(host, be)
	t.Cleanup(func() { slowByHost.Delete(host) })
	pc := tool.DefaultPluginConfig("slowtest://" + host)
	pc.Format = format
	pc.GenerationRefresh = time.Hour // no refresh to hide a view without a timeout
	tl, err := tool.New(tool.Config{SiteID: "s", Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: pc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	return tl, be
}

// A Dict from a Tool bounds its calls by the plugin's timeout from its
// first call, in every format, though the plugin's backend is opened only
// then: a plugin asked for its timeout before it was open answered none,
// so the first Update of a fresh Tool took 1.6 s, and every call of a
// Dict in a Python format 1.08 s, against 600 ms.
func TestTimeoutToolFirstCall(t *testing.T) {
	for _, f := range []memdict.Format{memdict.FormatMemdict, memdict.FormatPython} {
		t.Run(string(f), func(t *testing.T) {
			tl, be := slowTool(t, f)
			d, err := tool.Dict[string](tl, "p:", "")
			if err != nil {
				t.Fatal(err)
			}
			mustRunOut(t, be, "Update", func() error {
				_, err := d.Update(context.Background(), "k", appendPlus)
				return err
			})
		})
	}
}

// PutMulti through a Tool's plugin, over a backend that writes one key at
// a time, is bounded by the timeout as it is directly: a wrapper has
// SetMulti whatever the backend under it, and the call went out without
// a deadline (1.08 s against 600 ms).
func TestTimeoutToolPutMulti(t *testing.T) {
	tl, be := slowTool(t, memdict.FormatMemdict)
	d, err := tool.Dict[string](tl, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Put("warm", "x"); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i := range 32 {
		m[fmt.Sprint("k", i)] = "v"
	}
	mustRunOut(t, be, "PutMulti", func() error { return d.PutMulti(ctx, m) })
}

// A Tool's plugin that warms up from its previous backend
// (PluginConfig.Warm) bounds each call by its timeout as a whole: in the
// window a write deletes the key from the previous backend first, and a
// miss reads it there, copies it and reads the new backend again, each
// backend call bounded by its backend alone, while the Dict trusts the
// plugin's timeout. A Store took 1.08 s and a Lookup filled from the
// previous backend 2.7 s, against 600 ms.
func TestTimeoutToolWarmWindow(t *testing.T) {
	oldBe, newBe := newSlow(t, slowTimeout), newSlow(t, slowTimeout)
	ho, hn := fmt.Sprintf("w%d", slowHosts.Add(1)), fmt.Sprintf("w%d", slowHosts.Add(1))
	slowByHost.Store(ho, oldBe)
	slowByHost.Store(hn, newBe)
	t.Cleanup(func() { slowByHost.Delete(ho); slowByHost.Delete(hn) })
	pc := tool.DefaultPluginConfig("slowtest://" + ho)
	pc.GenerationRefresh = time.Hour
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: pc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	d, err := tool.Dict[string](tl, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if err := d.Store(ctx, k, "old "+k); err != nil {
			t.Fatal(err)
		}
	}
	pc.URL = "slowtest://" + hn
	pc.Warm = time.Minute
	if err := tl.SetPlugin(ctx, "", pc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		call func() error
	}{
		{"Store", func() error { return d.Store(ctx, "k", "v") }},
		{"Lookup of a key the previous backend holds", func() error { _, _, err := d.Lookup(ctx, "a"); return err }},
	} {
		oldBe.slow(slowLatency)
		newBe.slow(slowLatency)
		start := time.Now()
		err := c.call()
		elapsed := time.Since(start)
		oldBe.slow(0)
		newBe.slow(0)
		if elapsed > slowTimeout+slowTolerance {
			t.Errorf("%s in the warm window took %v (error %v); the timeout is %v", c.what, elapsed, err, slowTimeout)
		}
		if err != nil && !errors.Is(err, memdict.ErrUnavailable) {
			t.Errorf("%s in the warm window: %v, want an error wrapping ErrUnavailable", c.what, err)
		}
	}
	// The window still copies what the previous backend holds.
	if v, ok, err := d.Lookup(ctx, "b"); err != nil || !ok || v != "old b" {
		t.Errorf("Lookup in the window, the backends fast again = %q, %v, %v; want the previous backend's value", v, ok, err)
	}
}

// A Dict over memdicttest.Faulty with a latency longer than the wrapped
// backend's timeout ends within that timeout, as over a driver whose
// server is that slow: Faulty's latency was bounded by the call's context
// alone, which a Dict leaves without a deadline when the backend bounds
// its calls itself, so a Lookup took the whole 2 s latency.
func TestTimeoutFaultyLatency(t *testing.T) {
	f := memdicttest.NewFaulty(newSlow(t, slowTimeout))
	d := newDict[string](t, f, "p")
	if err := d.Put("k", "v"); err != nil {
		t.Fatal(err)
	}
	f.SetLatency(2 * time.Second)
	start := time.Now()
	_, _, err := d.Lookup(context.Background(), "k")
	elapsed := time.Since(start)
	if elapsed > slowTimeout+slowTolerance {
		t.Errorf("Lookup over Faulty with a 2s latency took %v; the backend's timeout is %v", elapsed, slowTimeout)
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Lookup over Faulty with a 2s latency: %v, want an error wrapping ErrUnavailable", err)
	}
	f.SetLatency(slowTimeout / 10)
	if v, ok, err := d.Lookup(context.Background(), "k"); err != nil || !ok || v != "v" {
		t.Errorf("Lookup with a latency under the timeout = %q, %v, %v", v, ok, err)
	}
}

// An Update queued behind a round in flight returns within its own
// timeout, and so does the caller that led that round: each caller runs
// one round at most, the next round's lead is handed to the first caller
// queued.
func TestTimeoutQueuedUpdate(t *testing.T) {
	be := newSlow(t, slowTimeout)
	d := newDict[string](t, be, "p")
	ctx := testCtx(t)
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	be.slow(slowLatency)
	incr := func(old string, _ bool) (string, error) { return old + "+", nil }
	type result struct {
		took time.Duration
		err  error
	}
	first := make(chan result, 1)
	go func() {
		start := time.Now()
		_, err := d.Update(ctx, "k", incr)
		first <- result{time.Since(start), err}
	}()
	waitFor(t, "the first Update's read", func() bool { return len(be.recorded()) > 0 })
	second := make(chan result, 1)
	go func() {
		start := time.Now()
		_, err := d.Update(ctx, "k", incr)
		second <- result{time.Since(start), err}
	}()
	waitFor(t, "the second Update to queue", func() bool { return memdict.UpdatesQueued(d, "k") == 1 })
	for i, ch := range []chan result{first, second} {
		r := <-ch
		if r.took > slowTimeout+slowTolerance {
			t.Errorf("Update %d took %v; the timeout is %v", i+1, r.took, slowTimeout)
		}
		if r.err == nil || !errors.Is(r.err, memdict.ErrUnavailable) {
			t.Errorf("Update %d: %v, want it to run out of its timeout", i+1, r.err)
		}
	}
}

// GetOrLoad does not count the loader's time against the timeout: a
// loader longer than the timeout still has its value stored, since the
// read before it and the fill after it fit in the timeout.
func TestTimeoutGetOrLoadLeavesOutTheLoader(t *testing.T) {
	be := newSlow(t, slowTimeout)
	d := newDict[string](t, be, "p")
	ctx := testCtx(t)
	if _, _, err := d.Lookup(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// Each backend call takes a tenth of the timeout: the read, the lock,
	// the read under the lock and the fill take less than half of it.
	be.slow(slowTimeout / 10)
	v, err := d.GetOrLoad(ctx, "k", func(ctx context.Context, key string) (string, error) {
		time.Sleep(slowTimeout * 3 / 2)
		return "loaded", ctx.Err()
	})
	be.slow(0)
	if err != nil || v != "loaded" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	if got, ok, err := d.Lookup(ctx, "k"); err != nil || !ok || got != "loaded" {
		t.Fatalf("after GetOrLoad the key holds %q, %v, %v; want the loaded value stored", got, ok, err)
	}
}

// WithTimeout: a timeout of the Dict's own bounds even a single backend
// call of a backend that has none (or a longer one), and a negative one
// turns the bound off.
func TestWithTimeout(t *testing.T) {
	ctx := t.Context() // no deadline of its own
	t.Run("backend without a timeout", func(t *testing.T) {
		be := newSlow(t, 0)
		d := newDict[string](t, be, "p", memdict.WithTimeout(slowTimeout))
		if _, _, err := d.Lookup(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		be.slow(time.Hour)
		start := time.Now()
		_, _, err := d.Lookup(ctx, "k")
		elapsed := time.Since(start)
		calls := be.recorded()
		be.slow(0)
		if elapsed > slowTimeout+slowTolerance || err == nil {
			t.Fatalf("Lookup took %v and returned %v; want it to run out of its timeout of %v", elapsed, err, slowTimeout)
		}
		if len(calls) != 1 || calls[0].deadline.IsZero() {
			t.Errorf("calls %+v: want one, with the call's deadline", calls)
		}
	})
	t.Run("shorter than the backend's", func(t *testing.T) {
		be := newSlow(t, time.Hour)
		d := newDict[string](t, be, "p", memdict.WithTimeout(slowTimeout))
		if _, _, err := d.Lookup(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		be.slow(slowTimeout * 2)
		start := time.Now()
		err := d.Store(ctx, "k", "v")
		elapsed := time.Since(start)
		be.slow(0)
		if elapsed > slowTimeout+slowTolerance || err == nil {
			t.Fatalf("Store took %v and returned %v; want it to run out of its timeout of %v", elapsed, err, slowTimeout)
		}
	})
	t.Run("negative: none", func(t *testing.T) {
		be := newSlow(t, slowTimeout)
		d := newDict[string](t, be, "p", memdict.WithTimeout(-1))
		if err := d.Store(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		// Two calls of 0.3 timeouts each: 0.6 in all, bounded by nothing
		// but the backend per call.
		be.slow(slowTimeout * 3 / 10)
		_, err := d.Update(ctx, "k", func(old string, _ bool) (string, error) { return old + "+", nil })
		calls := be.recorded()
		be.slow(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			if !c.deadline.IsZero() {
				t.Errorf("call %s had a deadline with the timeout turned off", c.op)
			}
		}
	})
}

// The drivers say their timeout, and the Dict takes it by default.
func TestBackendTimeouts(t *testing.T) {
	mc, err := memcached.New([]string{"127.0.0.1:1"}, memcached.WithTimeout(123*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	rd, err := redis.New(&goredis.Options{Addr: "127.0.0.1:1"}, redis.WithTimeout(234*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for _, c := range []struct {
		be   backend.Backend
		want time.Duration
	}{{mc, 123 * time.Millisecond}, {rd, 234 * time.Millisecond}, {memory.New(), 0}} {
		if got := backend.Timeout(c.be); got != c.want {
			t.Errorf("backend.Timeout(%T) = %v, want %v", c.be, got, c.want)
		}
	}
}

// The bound costs a single-call Get or Put no allocation when the backend
// bounds its calls itself: no context is derived for one backend call.
func TestTimeoutCostsNoAllocation(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		be   backend.Backend
	}{{"memory", memory.New()}, {"a backend with a timeout", newSlow(t, time.Second)}} {
		d := newDict[string](t, c.be, "p")
		if err := d.Store(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		get := testing.AllocsPerRun(100, func() { _, _, _ = d.Lookup(ctx, "k") })
		put := testing.AllocsPerRun(100, func() { _ = d.Store(ctx, "k", "v") })
		if get > 1 || put > 2 {
			t.Errorf("%s: Lookup %v allocs, Store %v; want at most 1 and 2 (the backend key, the framed value)", c.name, get, put)
		}
	}
}

// A call that waits for another caller's read of the namespace
// generation waits within its own bound: its ctx's deadline, or the
// timeout of the backend it is for. The wait was on a mutex: a Lookup
// with a 100 ms context waited for the whole of another caller's read
// over a server that did not answer (2 s), and so did the first Lookup
// after a Tool moved its plugin to a sound server with a 200 ms timeout,
// behind a read of the server it had left.
func TestTimeoutGenerationWait(t *testing.T) {
	const hung = 2 * time.Second
	started := func(be *slowBackend) func() bool { return func() bool { return len(be.recorded()) > 0 } }
	lookup := func(ctx context.Context, d *memdict.Dict[string], key string) (time.Duration, error) {
		start := time.Now()
		_, _, err := d.Lookup(ctx, key)
		return time.Since(start), err
	}
	t.Run("context", func(t *testing.T) {
		be := newSlow(t, hung)
		d := newDict[string](t, be, "p")
		be.slow(2 * hung) // no answer: each read runs out of the timeout
		go lookup(context.Background(), d, "a")
		waitFor(t, "the generation read", started(be))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		took, err := lookup(ctx, d, "b")
		if took > time.Second || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup with a 100ms context, behind a generation read that hangs: %v after %v", err, took)
		}
	})
	t.Run("tool", func(t *testing.T) {
		old, sound := newSlow(t, hung), newSlow(t, 200*time.Millisecond)
		for host, be := range map[string]*slowBackend{"genwait-old": old, "genwait-sound": sound} {
			slowByHost.Store(host, be)
			t.Cleanup(func() { slowByHost.Delete(host) })
		}
		tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig("slowtest://genwait-old")}})
		if err != nil {
			t.Fatal(err)
		}
		defer tl.Close()
		d, err := tool.Dict[string](tl, "p", "")
		if err != nil {
			t.Fatal(err)
		}
		old.slow(2 * hung)
		go lookup(context.Background(), d, "a")
		waitFor(t, "the generation read", started(old))
		if err := tl.SetPlugin(context.Background(), "", tool.DefaultPluginConfig("slowtest://genwait-sound")); err != nil {
			t.Fatal(err)
		}
		if took, err := lookup(context.Background(), d, "b"); took > time.Second {
			t.Errorf("Lookup on the plugin's new backend (timeout 200ms), behind a generation read of the old one that hangs: %v after %v", err, took)
		}
	})
}

// The Dict calls and wrappers TestTimeoutBoundsTheWholeCall leaves out
// that make more than one backend call are bounded by the one timeout
// too: counters set, reset, deleted and read (each with the counter's
// generation read first), Add with the generation due, a near cache's
// Update and Touch, and GetOrLoad stale-while-revalidate's fill.
func TestTimeoutBoundsTheWrappers(t *testing.T) {
	near := memdict.WithNearCache(memdict.NearCache{MaxStale: time.Minute})
	load := func(context.Context, string) (string, error) { return "loaded", nil }
	cases := []struct {
		name    string
		opts    []memdict.Option
		due     bool
		run     func(ctx context.Context, d *memdict.Dict[string], c *memdict.Counters) error
		wantErr bool
	}{
		{"Counters.Set", nil, false, func(ctx context.Context, _ *memdict.Dict[string], c *memdict.Counters) error {
			return c.Set(ctx, "n", 5)
		}, true},
		{"Counters.Reset", nil, false, func(ctx context.Context, _ *memdict.Dict[string], c *memdict.Counters) error {
			return c.Reset(ctx, "n")
		}, true},
		{"Counters.Delete", nil, false, func(ctx context.Context, _ *memdict.Dict[string], c *memdict.Counters) error {
			return c.Delete(ctx, "n")
		}, true},
		{"Counters.Dec", nil, false, func(ctx context.Context, _ *memdict.Dict[string], c *memdict.Counters) error {
			_, err := c.Dec(ctx, "n")
			return err
		}, true},
		{"Add with the generation due", nil, true, func(ctx context.Context, d *memdict.Dict[string], _ *memdict.Counters) error {
			_, err := d.Add(ctx, "new", "v")
			return err
		}, true},
		{"near cache Update", []memdict.Option{near}, false, func(ctx context.Context, d *memdict.Dict[string], _ *memdict.Counters) error {
			_, err := d.Update(ctx, "k", appendPlus)
			return err
		}, true},
		{"near cache Touch", []memdict.Option{near}, false, func(ctx context.Context, d *memdict.Dict[string], _ *memdict.Counters) error {
			return d.Touch(ctx, "k", time.Minute)
		}, true},
		{"GetOrLoad stale-while-revalidate of a missing key", []memdict.Option{memdict.WithStaleWhileRevalidate(time.Minute)}, false,
			func(ctx context.Context, d *memdict.Dict[string], _ *memdict.Counters) error {
				v, err := d.GetOrLoad(ctx, "absent", load)
				if err == nil && v != "loaded" {
					err = fmt.Errorf("GetOrLoad = %q", v)
				}
				return err
			}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newSlow(t, slowTimeout)
			d := newDict[string](t, be, "p", tc.opts...)
			c, err := memdict.NewCounters(be, "c")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := d.Store(ctx, "k", "v", memdict.TTL(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if tc.due {
				memdict.MarkGenerationDue(d)
			}
			be.slow(slowLatency)
			start := time.Now()
			err = tc.run(ctx, d, c)
			elapsed := time.Since(start)
			calls := be.recorded()
			be.slow(0)
			if tc.wantErr && err == nil {
				t.Errorf("the call succeeded in %v, want it to run out of its timeout", elapsed)
			}
			if !tc.wantErr && err != nil {
				t.Errorf("the call failed: %v", err)
			}
			checkBounded(t, start, elapsed, calls, err)
		})
	}
}
