package tool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// hammer runs workers that use Dicts of tl's default plugin — Dicts made
// before and during the run — while switch is called switches times, and
// fails the test if any call fails (a miss is fine: the servers differ).
func hammer(t *testing.T, tl *tool.Tool, switches int, switchTo func(i int) error) {
	t.Helper()
	const workers = 16
	var (
		stop     atomic.Bool
		ops      atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		if failures.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	early := make([]*memdict.Dict[int], workers)
	for i := range early {
		d := mustDict[int](t, tl, fmt.Sprint("w", i%4), "portal_memcached/default_memcached_plugin")
		early[i] = d
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			d := early[w]
			for i := 0; !stop.Load(); i++ {
				if w%4 == 0 && i%50 == 0 { // a Dict made during the run
					nd, err := tool.Dict[int](tl, fmt.Sprint("w", w), "")
					if err != nil {
						fail(err)
						return
					}
					d = nd
				}
				key := fmt.Sprint("k", r.IntN(20))
				var err error
				switch r.IntN(7) {
				case 0, 1:
					err = d.Store(ctx, key, i)
				case 2, 3:
					_, _, err = d.Lookup(ctx, key)
				case 4:
					_, err = d.Add(ctx, key, i)
				case 5:
					err = d.Remove(ctx, key)
					if errors.Is(err, memdict.ErrNotFound) {
						err = nil
					}
				case 6:
					_, err = d.GetMulti(ctx, []string{key, "k1", "k2"})
				}
				if err != nil {
					fail(err)
				}
				ops.Add(1)
			}
		}()
	}
	for i := range switches {
		before := ops.Load()
		if err := switchTo(i); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("switch %d: %v", i, err)
		}
		// Let some calls run on each backend.
		for deadline := time.Now().Add(time.Second); ops.Load() < before+workers && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed during %d switches; first: %v", n, ops.Load(), switches, firstErr.Load())
	}
	t.Logf("%d calls during %d switches", ops.Load(), switches)
}

// Switching the default plugin between two servers under load: no call
// fails, each old backend is closed once its calls are done, and after
// the last switch the Dicts use the last server.
func TestReconfigureUnderLoad(t *testing.T) {
	srvA, urlA := freshServer()
	srvB, urlB := freshServer()
	tl := newTool(t, tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(urlA)}})
	ctx := context.Background()
	urls := []string{urlB, urlA}
	switches := 100
	if testing.Short() {
		switches = 20
	}
	hammer(t, tl, switches, func(i int) error {
		cfg := tool.DefaultPluginConfig(urls[i%2])
		cfg.Expiration = time.Duration(i%3) * time.Hour // the defaults change too
		cfg.MaxValueLen = 1<<20 + i
		return tl.SetPlugin(ctx, "", cfg)
	})
	if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig(urlB)); err != nil { // the last switch went to a
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srvA.open() == 0 && srvB.open() == 1 }, "every old backend closed")
	if got, want := srvA.opens.Load()+srvB.opens.Load(), int64(switches+2); got < want-1 || got > want {
		t.Errorf("%d backends opened for %d switches", got, switches)
	}
	d := mustDict[string](t, tl, "final", "")
	if err := d.Store(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := srvB.Get(ctx, d.BackendKey("k")); err != nil {
		t.Errorf("last server lacks the key written after the last switch: %v", err)
	}
	if _, err := srvA.Get(ctx, d.BackendKey("k")); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("old server has the key written after the last switch: %v", err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if srvA.open() != 0 || srvB.open() != 0 {
		t.Errorf("handles open after Close: a %d, b %d", srvA.open(), srvB.open())
	}
}

// Close under load: calls in flight finish, later ones fail with ErrClosed,
// and nothing else goes wrong.
func TestCloseUnderLoad(t *testing.T) {
	srv, url := freshServer()
	tl, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(url)}})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tool.Dict[int](tl, "x", "")
	var wg sync.WaitGroup
	var bad atomic.Value
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := d.Store(context.Background(), fmt.Sprint(w), i)
				if errors.Is(err, backend.ErrClosed) {
					return
				}
				if err != nil {
					bad.Store(err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := bad.Load(); err != nil {
		t.Fatalf("call failed with something else than ErrClosed: %v", err)
	}
	if srv.open() != 0 {
		t.Errorf("%d handles open after Close", srv.open())
	}
}

// The same against real servers: two redis-server or two memcached
// processes, switched back and forth under load.
func TestReconfigureRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	tests := []struct {
		name  string
		start func(t *testing.T) string // returns a URL
	}{
		{"redis", func(t *testing.T) string { return "redis://" + testserver.Redis(t).Addr + "/0" }},
		{"memcached", func(t *testing.T) string { return "memcached://" + testserver.Memcached(t).Addr }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			urlA, urlB := tt.start(t), tt.start(t)
			ctx := context.Background()
			tl := newTool(t, tool.Config{SiteID: "reconf", Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(urlA)}})
			urls := []string{urlB, urlA}
			hammer(t, tl, 40, func(i int) error {
				return tl.SetPlugin(ctx, "", tool.DefaultPluginConfig(urls[i%2]))
			})
			// 40 switches end on urlA; one more goes to urlB.
			if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig(urlB)); err != nil {
				t.Fatal(err)
			}
			d, _ := tool.Dict[string](tl, "final", "")
			if err := d.Store(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
			for url, want := range map[string]bool{urlA: false, urlB: true} {
				be, err := backend.Open(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				_, err = be.Get(ctx, d.BackendKey("k"))
				if got := err == nil; got != want {
					t.Errorf("%s has the final key: %v (%v), want %v", url, got, err, want)
				}
				be.Close()
			}
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An Update whose read went to the plugin's old backend and whose
// compare-and-swap goes to the new one, SetPlugin having switched in
// between, does not swap with the old backend's CAS token: on the new
// backend the same token (both servers count from 1) names another write,
// and the swap stored a value computed from the old backend's (5+1) over
// the new one's (100). The token is the old backend's: the swap conflicts,
// and the Update reads the new backend again (100+1).
func TestUpdateAcrossSetPlugin(t *testing.T) {
	ctx := context.Background()
	srvA, urlA := freshServer()
	srvB, urlB := freshServer()
	var armed atomic.Bool
	read, resume := make(chan struct{}), make(chan struct{})
	var bkey string
	pause := func(next backend.CallFunc) backend.CallFunc {
		return func(ctx context.Context, c backend.Call) backend.Result {
			r := next(ctx, c)
			if c.Op == backend.OpGet && c.Key == bkey && armed.CompareAndSwap(true, false) {
				close(read) // the Update's read is done: switch now
				<-resume
			}
			return r
		}
	}
	tl := newTool(t, tool.Config{SiteID: "s", Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(urlA)}},
		tool.WithMiddleware(pause))
	d := mustDict[int](t, tl, "p", "")
	bkey = d.BackendKey("n")
	if err := d.Store(ctx, "n", 5); err != nil {
		t.Fatal(err)
	}
	onB, err := memdict.New[int](srvB.Store, "p", memdict.WithSiteID("s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := onB.Store(ctx, "n", 100); err != nil {
		t.Fatal(err)
	}
	ia, errA := srvA.Get(ctx, bkey)
	ib, errB := srvB.Get(ctx, bkey)
	if errA != nil || errB != nil || ia.CAS != ib.CAS {
		t.Fatalf("want the key under the same CAS on both servers: %d (%v), %d (%v)", ia.CAS, errA, ib.CAS, errB)
	}
	armed.Store(true)
	type result struct {
		v   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := d.Update(ctx, "n", func(old int, _ bool) (int, error) { return old + 1, nil })
		done <- result{v, err}
	}()
	<-read
	if err := tl.SetPlugin(ctx, "", tool.DefaultPluginConfig(urlB)); err != nil {
		t.Fatal(err)
	}
	close(resume)
	res := <-done
	got, _, err := onB.Lookup(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if res.err != nil || res.v != 101 || got != 101 {
		t.Fatalf("Update across the switch returned %d, %v and left %d on the new server; want 101 (its 100, plus one)", res.v, res.err, got)
	}
}
