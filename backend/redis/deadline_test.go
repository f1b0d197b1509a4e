package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// The tests of this file check that a server that stops answering
// (SIGSTOP) or dies (SIGKILL) costs each call at most the timeout, with
// context.Background(), then fails calls fast once it is marked down, and
// is used again once it answers. The only real-time margins are on the
// deadline, which is what they test, and they are generous: scheduling
// noise on a loaded 2-core machine must not break them.

const (
	hungTimeout = 300 * time.Millisecond
	hungRetry   = 300 * time.Millisecond
	// noise is the scheduling slack allowed on top of the timeout.
	noise = 500 * time.Millisecond
	// fast is the bound of a call refused because its server is down.
	fast = 100 * time.Millisecond
)

// callStats records the outcome of calls made under a fault.
type callStats struct {
	mu        sync.Mutex
	n         int           // calls
	failed    int           // calls that failed
	downFast  int           // failed as marked down within fast
	slowest   time.Duration // longest call
	slowestOp string
	slowestAt time.Time // when the slowest call started
	slowErr   error     // its error
	wrong     []string  // errors that do not wrap ErrUnavailable
}

func (s *callStats) add(op string, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if d > s.slowest {
		s.slowest, s.slowestOp, s.slowestAt, s.slowErr = d, op, time.Now().Add(-d), err
	}
	if err == nil {
		return
	}
	s.failed++
	if !errors.Is(err, backend.ErrUnavailable) {
		if len(s.wrong) < 5 {
			s.wrong = append(s.wrong, fmt.Sprintf("%s: %v", op, err))
		}
		return
	}
	if strings.Contains(err.Error(), "marked down") && d < fast {
		s.downFast++
	}
}

// ops are the single-key calls, each with context.Background().
func ops(b *Backend, key string) map[string]func() error {
	ctx := context.Background()
	return map[string]func() error{
		"get": func() error { _, err := b.Get(ctx, key); return err },
		"set": func() error { return b.Set(ctx, backend.Item{Key: key, Value: []byte("v")}) },
		"add": func() error {
			err := b.Add(ctx, backend.Item{Key: key, Value: []byte("v")})
			if errors.Is(err, backend.ErrNotStored) {
				return nil
			}
			return err
		},
		"delete": func() error {
			if err := b.Delete(ctx, key); !errors.Is(err, backend.ErrNotFound) {
				return err
			}
			return nil
		},
		"touch": func() error {
			if err := b.Touch(ctx, key, time.Hour); !errors.Is(err, backend.ErrNotFound) {
				return err
			}
			return nil
		},
		"incr": func() error {
			_, err := b.Increment(ctx, key, 1)
			if errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrNotNumeric) {
				return nil
			}
			return err
		},
		"cas": func() error {
			err := b.CompareAndSwap(ctx, backend.Item{Key: key, Value: []byte("v"), CAS: 1})
			if errors.Is(err, backend.ErrCASConflict) || errors.Is(err, backend.ErrNotFound) {
				return nil
			}
			return err
		},
		"getmulti": func() error {
			_, err := b.GetMulti(ctx, []string{key, key + "/2"})
			return err
		},
		"trylock": func() error {
			_, err := b.TryLock(ctx, key, "t", time.Hour)
			return err
		},
		"unlock": func() error {
			_, err := b.Unlock(ctx, key, "other")
			return err
		},
	}
}

// hammer runs every op from g goroutines on keys (keys[i] for goroutine
// i%len(keys)) until stop is closed, recording each in st.
func hammer(b *Backend, keys []string, g int, stop <-chan struct{}, st *callStats) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			all := ops(b, keys[i%len(keys)])
			for {
				for op, fn := range all {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					err := fn()
					st.add(op, time.Since(start), err)
					time.Sleep(time.Millisecond) // no busy loop: it would starve the others
				}
			}
		})
	}
	return &wg
}

// hammerFor runs hammer on keys from g goroutines for d and returns what
// it recorded.
func hammerFor(b *Backend, keys []string, g int, d time.Duration) *callStats {
	var st callStats
	stop := make(chan struct{})
	wg := hammer(b, keys, g, stop, &st)
	time.Sleep(d) // how long the calls go on, not a synchronisation
	close(stop)
	wg.Wait()
	return &st
}

// wantBounded fails t for each recorded error that does not wrap
// ErrUnavailable and if the slowest call (what: to which server)
// outlasted the timeout.
func (s *callStats) wantBounded(t *testing.T, what string) {
	t.Helper()
	for _, w := range s.wrong {
		t.Errorf("want an error wrapping ErrUnavailable: %s", w)
	}
	if s.slowest > hungTimeout+noise {
		t.Errorf("slowest call%s took %v (%s), timeout %v", what, s.slowest, s.slowestOp, hungTimeout)
	}
}

// waitServing polls fn until it succeeds, for at most limit.
func waitServing(t *testing.T, what string, limit time.Duration, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := fn()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still failing %v later: %v", what, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoppedServerBounded freezes a real redis-server with SIGSTOP while
// 16 goroutines call it with context.Background(): no call lasts longer
// than the timeout (plus scheduling noise), although the socket timeouts
// are 10s; once the server is marked down calls fail fast; after SIGCONT
// the background probe brings it back.
func TestStoppedServerBounded(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=%v&retry_interval=%v&read_timeout=10s&write_timeout=10s",
		p.Addr, hungTimeout, hungRetry))
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			p.Signal(syscall.SIGCONT)
		}
	}()

	st := hammerFor(b, keys, 16, 2*time.Second)
	t.Logf("server stopped: %d calls, %d failed, %d refused fast as marked down; slowest %v (%s, %v after SIGSTOP: %v)",
		st.n, st.failed, st.downFast, st.slowest.Round(time.Millisecond), st.slowestOp, st.slowestAt.Sub(stopped).Round(time.Millisecond), st.slowErr)
	st.wantBounded(t, "")
	if st.failed != st.n {
		t.Errorf("%d of %d calls to a stopped server succeeded", st.n-st.failed, st.n)
	}
	if st.downFast < st.n/2 {
		t.Errorf("only %d of %d calls were refused fast as marked down", st.downFast, st.n)
	}

	// A lone call while down is refused without I/O ("marked down"),
	// naming the server.
	start := time.Now()
	_, err := b.Get(ctx, "a")
	d := time.Since(start)
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), p.Addr) || !strings.Contains(err.Error(), "marked down") {
		t.Errorf("get while marked down: %v after %v, want ErrUnavailable naming %s as marked down", err, d, p.Addr)
	}
	if got := backend.ServerOf(err); got != p.Addr {
		t.Errorf("backend.ServerOf(%v) = %q, want %q", err, got, p.Addr)
	}
	t.Logf("while down, after %v: %v", d, err)

	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := waitServing(t, "after SIGCONT", 5*time.Second, func() error {
		return b.Set(ctx, backend.Item{Key: "a", Value: []byte("a")})
	})
	t.Logf("serving again %v after SIGCONT", back.Round(time.Millisecond))
	for _, k := range keys {
		if err := b.Set(ctx, backend.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		if it, err := b.Get(ctx, k); err != nil || string(it.Value) != k {
			t.Errorf("get %s after SIGCONT: %q, %v", k, it.Value, err)
		}
	}
}

// TestStoppedServerNoFailureLimit: with failure_limit=0 the server is
// never marked down, and every call still ends within the timeout.
func TestStoppedServerNoFailureLimit(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=%v&failure_limit=0&read_timeout=10s&write_timeout=10s", p.Addr, hungTimeout))
	if err := b.Set(context.Background(), backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGCONT)
	st := hammerFor(b, []string{"k"}, 8, time.Second)
	t.Logf("%d calls, %d failed, slowest %v (%s)", st.n, st.failed, st.slowest.Round(time.Millisecond), st.slowestOp)
	st.wantBounded(t, "")
	if st.downFast > 0 {
		t.Errorf("%d calls refused as marked down with failure_limit=0", st.downFast)
	}
}

// TestKilledServerRestart kills the server with SIGKILL: calls fail with
// ErrUnavailable (fast once it is marked down), and after a restart on the
// same port the probe brings it back.
func TestKilledServerRestart(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, fmt.Sprintf("redis://%s?timeout=%v&retry_interval=%v", p.Addr, hungTimeout, hungRetry))
	ctx := context.Background()
	if err := b.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	st := hammerFor(b, []string{"k", "j"}, 8, time.Second)
	t.Logf("server killed: %d calls, %d failed, %d refused fast as marked down; slowest %v (%s)",
		st.n, st.failed, st.downFast, st.slowest.Round(time.Millisecond), st.slowestOp)
	st.wantBounded(t, "")
	if st.failed != st.n || st.downFast < st.n/2 {
		t.Errorf("%d calls, %d failed, %d refused fast as marked down", st.n, st.failed, st.downFast)
	}
	p.Restart(t)
	back := waitServing(t, "after restart", 5*time.Second, func() error {
		return b.Set(ctx, backend.Item{Key: "k", Value: []byte("v2")})
	})
	t.Logf("serving again %v after the restart", back.Round(time.Millisecond))
	// The restarted server has lost its scripts (and its data): scripts
	// are loaded again transparently.
	if _, err := b.Increment(ctx, "k", 1); !errors.Is(err, backend.ErrNotNumeric) {
		t.Errorf("increment of a non-number after restart: %v", err)
	}
	if err := b.Set(ctx, backend.Item{Key: "n", Value: []byte("41")}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Increment(ctx, "n", 1); err != nil || n != 42 {
		t.Errorf("increment after restart: %d, %v", n, err)
	}
}

// TestCallerDeadlineAndCancel: a caller's shorter deadline, or a
// cancellation, still ends a call on a stopped server early, with the
// context's error rather than ErrUnavailable.
func TestCallerDeadlineAndCancel(t *testing.T) {
	t.Parallel()
	p := testserver.Redis(t)
	b := mustOpen(t, "redis://"+p.Addr+"?timeout=5s&read_timeout=10s&write_timeout=10s")
	if err := b.Set(context.Background(), backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGCONT)
	for _, name := range []string{"get", "set", "add", "delete", "touch", "incr", "cas", "getmulti"} {
		for _, cancelIt := range []bool{false, true} {
			var ctx context.Context
			var cancel context.CancelFunc
			if cancelIt {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
			} else {
				ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
			}
			start := time.Now()
			err := withCtx(b, ctx, name)
			d := time.Since(start)
			cancel()
			want := context.DeadlineExceeded
			if cancelIt {
				want = context.Canceled
			}
			if !errors.Is(err, want) || d > 100*time.Millisecond+noise {
				t.Errorf("%s with a 100ms %v: %v after %v", name, want, err, d)
			}
		}
	}
}

// withCtx runs op name with ctx.
func withCtx(b *Backend, ctx context.Context, name string) error {
	item := backend.Item{Key: "k", Value: []byte("v")}
	var err error
	switch name {
	case "get":
		_, err = b.Get(ctx, "k")
	case "set":
		err = b.Set(ctx, item)
	case "add":
		err = b.Add(ctx, item)
	case "delete":
		err = b.Delete(ctx, "k")
	case "touch":
		err = b.Touch(ctx, "k", time.Hour)
	case "incr":
		_, err = b.Increment(ctx, "k", 1)
	case "cas":
		err = b.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("v"), CAS: 1})
	case "getmulti":
		_, err = b.GetMulti(ctx, []string{"k", "j"})
	}
	return err
}

// TestClusterStoppedNode freezes one master of a three-master cluster:
// keys on the other masters keep working, calls for the frozen master's
// keys end within the timeout and then fail fast, a GetMulti across
// masters returns what the others hold and a *backend.MultiError naming
// each of the frozen master's keys; after SIGCONT the master is used
// again. Then the master is killed and restarted.
func TestClusterStoppedNode(t *testing.T) {
	t.Parallel()
	// Without full coverage the other masters keep serving when one is
	// seen as failing.
	c := testserver.RedisCluster(t, 3, "--cluster-require-full-coverage", "no")
	b := mustOpen(t, fmt.Sprintf("redis://%s,%s?cluster=true&timeout=%v&retry_interval=%v&read_timeout=10s&write_timeout=10s",
		c.Addrs[0], c.Addrs[1], hungTimeout, hungRetry))
	ctx := context.Background()
	victim := c.Nodes[2]
	frozen, live := storeSplit(t, b, victim.Addr, 20, 40)
	for _, k := range frozen[:len(frozen)/2] {
		if err := b.Delete(ctx, k); err != nil { // misses, too, must be named
			t.Fatal(err)
		}
	}

	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			victim.Signal(syscall.SIGCONT)
		}
	}()
	var frozenSt, liveSt callStats
	stop := make(chan struct{})
	wgF := hammer(b, frozen, 8, stop, &frozenSt)
	var liveErrs atomic.Int64
	var wgL sync.WaitGroup
	for g := range 8 {
		wgL.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := live[(g*7+i)%len(live)]
				start := time.Now()
				it, err := b.Get(ctx, k)
				liveSt.add("get", time.Since(start), err)
				if err != nil || string(it.Value) != k {
					if liveErrs.Add(1) <= 3 {
						t.Errorf("get %s on a live master: %q, %v", k, it.Value, err)
					}
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)

	// GetMulti across all masters, while one is frozen (and marked down).
	all := append(append([]string{}, live...), frozen...)
	m, err := b.GetMulti(ctx, all)
	var me *backend.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("getmulti with a master down: %v, want a *backend.MultiError", err)
	}
	named := map[string]bool{}
	for _, ke := range me.Errors {
		named[ke.Key] = true
		if !errors.Is(ke.Err, backend.ErrUnavailable) || !strings.Contains(ke.Err.Error(), victim.Addr) {
			t.Errorf("getmulti: key %s: %v, want ErrUnavailable naming %s", ke.Key, ke.Err, victim.Addr)
		}
	}
	for _, k := range frozen {
		if !named[k] {
			t.Errorf("getmulti: key %s of the frozen master not named in the error", k)
		}
	}
	for _, k := range live {
		if named[k] || string(m[k].Value) != k {
			t.Errorf("getmulti: live key %s: %q, named %v", k, m[k].Value, named[k])
		}
	}
	t.Logf("getmulti: %d found, %d keys named: %.200s", len(m), len(me.Errors), err)

	close(stop)
	wgF.Wait()
	wgL.Wait()
	t.Logf("frozen master: %d calls, %d failed, %d refused fast; slowest %v (%s)",
		frozenSt.n, frozenSt.failed, frozenSt.downFast, frozenSt.slowest.Round(time.Millisecond), frozenSt.slowestOp)
	t.Logf("live masters: %d calls, slowest %v", liveSt.n, liveSt.slowest.Round(time.Millisecond))
	frozenSt.wantBounded(t, " to the frozen master")
	if liveSt.slowest > hungTimeout+noise {
		t.Errorf("slowest call to a live master took %v, timeout %v", liveSt.slowest, hungTimeout)
	}
	if frozenSt.failed != frozenSt.n || frozenSt.downFast < frozenSt.n/2 {
		t.Errorf("frozen master: %d calls, %d failed, %d refused fast as marked down", frozenSt.n, frozenSt.failed, frozenSt.downFast)
	}

	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := waitServing(t, "frozen master after SIGCONT", 5*time.Second, func() error {
		return b.Set(ctx, backend.Item{Key: frozen[0], Value: []byte("again")})
	})
	t.Logf("frozen master serving again %v after SIGCONT", back.Round(time.Millisecond))

	// kill -9 and restart (the node keeps its identity and slots).
	victim.Stop(t)
	killedSt := hammerFor(b, frozen, 8, time.Second)
	t.Logf("killed master: %d calls, %d failed, %d refused fast; slowest %v (%s)",
		killedSt.n, killedSt.failed, killedSt.downFast, killedSt.slowest.Round(time.Millisecond), killedSt.slowestOp)
	killedSt.wantBounded(t, " to the killed master")
	victim.Restart(t)
	back = waitServing(t, "killed master after restart", 10*time.Second, func() error {
		return b.Set(ctx, backend.Item{Key: frozen[0], Value: []byte("back")})
	})
	t.Logf("killed master serving again %v after the restart", back.Round(time.Millisecond))
	if it, err := b.Get(ctx, frozen[0]); err != nil || string(it.Value) != "back" {
		t.Errorf("after restart: %q, %v", it.Value, err)
	}
}
