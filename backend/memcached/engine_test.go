package memcached_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/testserver"
)

// sizeEdge checks one write of a value of size bytes over a previous
// value: either it is stored and reads back whole, or it fails with
// ErrValueTooLarge and the previous value is still there. It reports
// whether the write was accepted.
func sizeEdge(t *testing.T, what string, size int, write func(v []byte) error, read func() ([]byte, error), old []byte) bool {
	t.Helper()
	v := bytes.Repeat([]byte{'x'}, size)
	err := write(v)
	got, rerr := read()
	switch {
	case err == nil:
		if rerr != nil || len(got) != size {
			t.Fatalf("%s of %d bytes: accepted, then read back %d bytes, %v", what, size, len(got), rerr)
		}
		return true
	case errors.Is(err, backend.ErrValueTooLarge) || errors.Is(err, memdict.ErrValueTooLarge):
		if rerr != nil || !bytes.Equal(got, old) {
			t.Fatalf("%s of %d bytes refused (%v), and the stored value is lost: read %d bytes, %v", what, size, err, len(got), rerr)
		}
		return false
	default:
		t.Fatalf("%s of %d bytes: %v", what, size, err)
	}
	return false
}

// TestValueSizeEdge: memcached (default -I 1m) refuses items whose value,
// key and item header together exceed 1 MiB, and drops the stored value
// when it does. The driver refuses such writes itself, so that a refused
// write never costs the stored value. Byte by byte across the edge, for
// Set, CompareAndSwap and SetMulti.
func TestValueSizeEdge(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t, "-I", "1m")
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	old := []byte("the previous value")
	for _, key := range []string{"edge", strings.Repeat("k", 200)} {
		read := func() ([]byte, error) { it, err := c.Get(ctx, key); return it.Value, err }
		accepted, refused := 0, 0
		for size := 1<<20 - 300; size <= 1<<20+2; size++ {
			if err := c.Set(ctx, backend.Item{Key: key, Value: old}); err != nil {
				t.Fatal(err)
			}
			var ok bool
			switch size % 3 {
			case 0:
				ok = sizeEdge(t, "Set", size, func(v []byte) error { return c.Set(ctx, backend.Item{Key: key, Value: v}) }, read, old)
			case 1:
				cas := func(v []byte) error {
					it, err := c.Get(ctx, key)
					if err != nil {
						return err
					}
					return c.CompareAndSwap(ctx, backend.Item{Key: key, Value: v, CAS: it.CAS})
				}
				ok = sizeEdge(t, "CompareAndSwap", size, cas, read, old)
			case 2:
				multi := func(v []byte) error {
					err := c.SetMulti(ctx, []backend.Item{{Key: key, Value: v}})
					if kes, isMulti := backend.KeyErrors(err); isMulti && len(kes) == 1 {
						return kes[0].Err
					}
					return err
				}
				ok = sizeEdge(t, "SetMulti", size, multi, read, old)
			}
			if ok {
				accepted++
			} else {
				refused++
			}
		}
		if accepted == 0 || refused == 0 {
			t.Errorf("key of %d bytes: %d sizes accepted, %d refused: the edge is not in the range tested", len(key), accepted, refused)
		}
		t.Logf("key of %d bytes: %d sizes accepted, %d refused", len(key), accepted, refused)
	}
}

// TestDictValueSizeEdge: the same through memdict.Dict (its key
// namespace and codec header change where the edge is), for Put, PutMulti
// and Tx.Commit.
func TestDictValueSizeEdge(t *testing.T) {
	t.Parallel()
	p := testserver.Memcached(t, "-I", "1m")
	be, err := backend.Open(t.Context(), "memcached://"+p.Addr+"?timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	d, err := memdict.New[[]byte](be, "edge", memdict.WithCodec(codec.Raw))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := []byte("the previous value")
	const key = "user:42"
	read := func() ([]byte, error) {
		v, ok, err := d.Lookup(ctx, key)
		if err == nil && !ok {
			err = errors.New("missing")
		}
		return v, err
	}
	paths := map[string]func(v []byte) error{
		"Put":      func(v []byte) error { return d.Put(key, v) },
		"PutMulti": func(v []byte) error { return d.PutMulti(ctx, map[string][]byte{key: v}) },
		"Tx.Commit": func(v []byte) error {
			tx := d.Begin()
			if err := tx.Put(key, v); err != nil {
				return err
			}
			return tx.Commit(ctx)
		},
	}
	for _, name := range []string{"Put", "PutMulti", "Tx.Commit"} {
		accepted, refused := 0, 0
		for size := 1<<20 - 160; size <= 1<<20+1; size++ {
			if err := d.Put(key, old); err != nil {
				t.Fatal(err)
			}
			if sizeEdge(t, name, size, paths[name], read, old) {
				accepted++
			} else {
				refused++
			}
		}
		if accepted == 0 || refused == 0 {
			t.Errorf("%s: %d sizes accepted, %d refused: the edge is not in the range tested", name, accepted, refused)
		}
		t.Logf("%s: %d sizes accepted, %d refused", name, accepted, refused)
	}
}

// TestHostileValueSize: a reply declaring a 1 GiB value is a protocol
// error: nothing of that size is allocated, and the connection is closed.
// On the meta protocol and on the text protocol (gomemcache would allocate
// what a VALUE line declares, up to 4 GiB: the driver refuses it first).
func TestHostileValueSize(t *testing.T) {
	const huge = 1 << 30
	for _, meta := range []bool{true, false} {
		t.Run(map[bool]string{true: "meta", false: "text"}[meta], func(t *testing.T) {
			var mu sync.Mutex
			var closed int
			s := newProtoFake(t, meta, func(line string, c net.Conn, r *bufio.Reader) bool {
				switch {
				case strings.HasPrefix(line, "mg "):
					fmt.Fprintf(c, "VA %d c1%s\r\n", huge, metaFlags(line))
				case strings.HasPrefix(line, "gets "):
					fmt.Fprintf(c, "VALUE k 0 %d 1\r\n", huge)
				default:
					return false
				}
				// Send a little of the "value", then wait for the client to hang up.
				_, _ = c.Write(bytes.Repeat([]byte{'x'}, 4096))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var ne net.Error
				for {
					_, err := r.ReadByte() // the rest of what was sent, then the hang-up
					if err == nil {
						continue
					}
					if !(errors.As(err, &ne) && ne.Timeout()) {
						mu.Lock()
						closed++
						mu.Unlock()
					}
					return false
				}
			})
			c := fakeClient(t, s, memcached.WithTimeout(2*time.Second), memcached.WithFailureLimit(0))
			ctx := context.Background()
			for i, op := range []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := c.Get(ctx, "k"); return err }},
				{"GetMulti", func() error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err }},
			} {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				err := op.call()
				runtime.ReadMemStats(&after)
				if !errors.Is(err, memcached.ErrProtocol) {
					t.Errorf("%s with a reply declaring %d bytes: %v, want a protocol error", op.name, huge, err)
				} else {
					t.Logf("%s: %v", op.name, err)
				}
				if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
					t.Errorf("%s allocated %d bytes for a reply declaring %d", op.name, n, huge)
				}
				deadline := time.Now().Add(5 * time.Second)
				for {
					mu.Lock()
					n := closed
					mu.Unlock()
					if n > i {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: the client did not close the connection after the hostile reply", op.name)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

// TestHostileItemSizeMax: what a server says of itself never raises the
// bound of the values the client reads. A meta server that reports, in its
// "stats settings" (read at connect and in the hello of every
// reconnection), memcached's largest item_size_max (1 GiB, accepted: it
// only makes the size check of writes stricter) or an absurd one (2^39,
// ignored), then declares a 256 MiB value, gets a protocol error, and
// nothing of that size is allocated: the bound is the client's own
// max_value_length and item_size_max. It used to be the larger of
// max_value_length and the server's item_size_max, so a server declaring
// 2^39 and then a value of 2^39 bytes killed the process (out of memory).
// Get (mg) and GetMulti (gets).
func TestHostileItemSizeMax(t *testing.T) {
	const size = 256 << 20
	for _, declared := range []int64{1 << 30, 1 << 39} {
		t.Run(fmt.Sprint(declared), func(t *testing.T) {
			s := newFakeServer(t, func(line string, c net.Conn, r *bufio.Reader) bool {
				switch {
				case line == "mn":
					fmt.Fprintf(c, "MN\r\n")
					return true
				case line == "stats settings":
					fmt.Fprintf(c, "STAT item_size_max %d\r\nSTAT cas_enabled yes\r\nEND\r\n", declared)
					return true
				case line == "stats":
					fmt.Fprintf(c, "END\r\n")
					return true
				case strings.HasPrefix(line, "mg "):
					fmt.Fprintf(c, "VA %d c1%s\r\n", size, metaFlags(line))
				case strings.HasPrefix(line, "gets "):
					fmt.Fprintf(c, "VALUE k 0 %d 1\r\n", size)
				default:
					return false
				}
				// A little of the value, then wait for the client to hang up.
				_, _ = c.Write(bytes.Repeat([]byte{'x'}, 4096))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, r)
				return false
			})
			c := fakeClient(t, s, memcached.WithTimeout(2*time.Second), memcached.WithFailureLimit(0))
			ctx := context.Background()
			for _, op := range []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := c.Get(ctx, "k"); return err }},
				{"GetMulti", func() error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err }},
			} {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				err := op.call()
				runtime.ReadMemStats(&after)
				if !errors.Is(err, memcached.ErrProtocol) {
					t.Errorf("%s, item_size_max %d, a reply declaring %d bytes: %v, want a protocol error", op.name, declared, size, err)
				} else {
					t.Logf("%s: %v", op.name, err)
				}
				if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
					t.Errorf("%s allocated %d bytes for a reply declaring %d: the server's item_size_max (%d) raised the bound", op.name, n, size, declared)
				}
			}
		})
	}
}

// TestQueuedBehindTimeout: a Get made while another waits on a server that
// does not answer ends within its own timeout (plus scheduling noise),
// counted from when it was made, not after the other one's timeout plus
// its own; a cancelled context returns at once.
func TestQueuedBehindTimeout(t *testing.T) {
	hang := make(chan struct{})
	s := newProtoFake(t, true, func(string, net.Conn, *bufio.Reader) bool {
		<-hang
		return false
	})
	defer close(hang)
	const timeout = 500 * time.Millisecond
	c := fakeClient(t, s, memcached.WithTimeout(timeout), memcached.WithFailureLimit(0))
	ctx := context.Background()
	var wg sync.WaitGroup
	durs := make([]time.Duration, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			start := time.Now()
			_, errs[i] = c.Get(ctx, fmt.Sprintf("k%d", i))
			durs[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range 4 {
		t.Logf("Get %d: %v after %v", i, errs[i], durs[i].Round(time.Millisecond))
		if !errors.Is(errs[i], backend.ErrUnavailable) {
			t.Errorf("Get %d: %v, want unavailable", i, errs[i])
		}
		// What is asserted is the deadline: generous for a loaded machine,
		// well below the 2x of a call that waits for another's timeout.
		if durs[i] > timeout+300*time.Millisecond {
			t.Errorf("Get %d took %v, timeout %v", i, durs[i], timeout)
		}
	}
	// A cancelled context wins at once, queued or not.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Get(cctx, "k")
	if d := time.Since(start); !errors.Is(err, context.Canceled) || d > 50*time.Millisecond+250*time.Millisecond {
		t.Errorf("Get cancelled after 50ms: %v after %v", err, d)
	}
}

// TestGetMultiOneServerDown: GetMulti over three servers with one dead
// returns what the two others hold, and a *backend.MultiError naming
// every key of the dead one (and only those), each wrapping
// backend.ErrUnavailable and naming its server.
func TestGetMultiOneServerDown(t *testing.T) {
	t.Parallel()
	procs, addrs := startMemcacheds(t, 3)
	c, err := memcached.New(addrs, memcached.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("gm:%d", i)
	}
	if err := c.SetMulti(ctx, itemsOf(keys)); err != nil {
		t.Fatal(err)
	}
	dead := procs[1].Addr
	procs[1].Stop(t)
	for round := range 2 { // the connection's failure, then the server marked down
		got, err := c.GetMulti(ctx, keys)
		kes, ok := backend.KeyErrors(err)
		if !ok {
			t.Fatalf("round %d: GetMulti with a dead server: %v, want a *backend.MultiError", round, err)
		}
		failed := map[string]error{}
		for _, ke := range kes {
			failed[ke.Key] = ke.Err
		}
		for _, k := range keys {
			onDead := c.ServerFor(k) == dead
			switch {
			case onDead && failed[k] == nil:
				t.Errorf("round %d: key %q on the dead server is not named", round, k)
			case onDead && (!errors.Is(failed[k], backend.ErrUnavailable) || !strings.Contains(failed[k].Error(), dead)):
				t.Errorf("round %d: key %q: %v, want unavailable naming %s", round, k, failed[k], dead)
			case !onDead && failed[k] != nil:
				t.Errorf("round %d: key %q on a live server named as failed: %v", round, k, failed[k])
			case !onDead && string(got[k].Value) != k:
				t.Errorf("round %d: key %q on a live server: %q", round, k, got[k].Value)
			}
		}
		t.Logf("round %d: %d found, %d failed; first: %v", round, len(got), len(kes), kes[0])
	}
}

func itemsOf(keys []string) []backend.Item {
	items := make([]backend.Item, len(keys))
	for i, k := range keys {
		items[i] = backend.Item{Key: k, Value: []byte(k)}
	}
	return items
}

// TestServerRestartIdle: after the server restarts, the connections the
// Client kept are closed; the first Set and Get afterwards go through on
// new ones.
func TestServerRestartIdle(t *testing.T) {
	t.Parallel()
	c, p := newClient(t)
	ctx := context.Background()
	if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	if err := c.Set(ctx, backend.Item{Key: "k", Value: []byte("again")}); err != nil {
		t.Fatalf("Set after a restart: %v", err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "again" {
		t.Fatalf("Get after a restart: %q, %v", it.Value, err)
	}
}

// TestServerRestartIdleQueued: a connection the server closed while it
// was idle (a restart) is asked again on a new one for a Get or a Set made
// on it alone, as the package documents, also when the call goes through
// the writer rather than its caller: a Set of a large value, or a Get
// while another call of the Client (here to another server, which does
// not answer) is in progress. Such calls failed once with the error of
// the closed connection (broken pipe, unexpected EOF).
func TestServerRestartIdleQueued(t *testing.T) {
	p := testserver.Memcached(t)
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			nc, err := mute.Accept()
			if err != nil {
				return
			}
			accepted <- nc // never answered
		}
	}()
	defer func() {
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	// One connection per server: every call finds the one the restart closed.
	c, err := memcached.New([]string{p.Addr, mute.Addr().String()}, memcached.WithTimeout(testTimeout), memcached.WithConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keyOn := func(addr string) string {
		for i := 0; ; i++ {
			if k := fmt.Sprintf("k%d", i); c.ServerFor(k) == addr {
				return k
			}
		}
	}
	k, onMute := keyOn(p.Addr), keyOn(mute.Addr().String())
	if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	p.Restart(t)
	big := bytes.Repeat([]byte("x"), 64<<10)
	if err := c.Set(ctx, backend.Item{Key: k, Value: big}); err != nil {
		t.Errorf("Set of %d bytes after a restart: %v", len(big), err)
	}

	p.Restart(t)
	if err := c.Set(ctx, backend.Item{Key: k, Value: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	// A call in progress on the other server meanwhile.
	hctx, cancel := context.WithCancel(ctx)
	hung := make(chan error, 1)
	go func() {
		_, err := c.Get(hctx, onMute)
		hung <- err
	}()
	select {
	case <-accepted:
	case <-time.After(testTimeout):
		t.Fatal("the call to the silent server did not connect")
	}
	// The restarted server has lost its items: a miss is the answer.
	if _, err := c.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get after a restart, another call in progress: %v, want a miss", err)
	}
	cancel()
	<-hung
}

// TestCloseDuringDial: Close while a dial finishes. Close marks the Client
// closed, then fails the connections its slots hold and waits for their
// goroutines; a dial that had checked for Close just before, and stored
// its connection just after Close looked at the slot, left a connection
// that nobody failed, and Close waited for its goroutines for ever (a
// GetMulti whose context ended during a dial, then Close: it hung). The
// dial is held between its check and its store here while Close runs.
func TestCloseDuringDial(t *testing.T) {
	p := testserver.Memcached(t)
	inDial, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func(where string) {
		if where == "dialed" {
			once.Do(func() {
				close(inDial)
				<-release
			})
		}
	}
	c, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(testTimeout), memcached.WithConns(1),
		memcached.WithTestHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "k")
		got <- err
	}()
	<-inDial
	cancel() // the Get returns, the dial goes on
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v, want context.Canceled", err)
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	// Let Close get past the slots (without the fix: to its wait for the
	// connections' goroutines) before the dial stores its connection.
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return 5s after a dial in progress finished")
	}
}

// TestAnnouncedLengthNotAllocated: a value declared long but not sent
// costs about what arrived. A server that declares a 256 MiB value (under
// a max_value_length raised to 256 MiB), sends 1 KiB of it and stalls
// fails the call at its timeout having allocated little: the reader (the
// meta protocol's, gomemcache for the text protocol) allocated the
// declared size first (256 MiB per Get and per GetMulti, held until the
// timeout; with 8 concurrent Gets 512 MiB on the meta protocol's two
// connections, 2 GiB on the text protocol's), so that a broken or hostile
// server could exhaust the client's memory. Get (mg, or gets) and
// GetMulti (gets).
func TestAnnouncedLengthNotAllocated(t *testing.T) {
	const size = 256 << 20
	for _, meta := range []bool{true, false} {
		s := newProtoFake(t, meta, func(line string, c net.Conn, _ *bufio.Reader) bool {
			switch {
			case strings.HasPrefix(line, "mg "):
				fmt.Fprintf(c, "VA %d c1%s\r\n", size, metaFlags(line))
			case strings.HasPrefix(line, "gets "):
				fmt.Fprintf(c, "VALUE %s 0 %d 1\r\n", strings.Fields(line)[1], size)
			default:
				return true
			}
			_, _ = c.Write(bytes.Repeat([]byte{'x'}, 1<<10))
			return true
		})
		c := fakeClient(t, s, memcached.WithTimeout(300*time.Millisecond), memcached.WithFailureLimit(0), memcached.WithMaxValueLen(size))
		ctx := context.Background()
		for _, op := range []struct {
			name string
			call func() error
		}{
			{"Get", func() error { _, err := c.Get(ctx, "k"); return err }},
			{"GetMulti", func() error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err }},
		} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := op.call()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, backend.ErrUnavailable) {
				t.Errorf("meta %v: %s with a reply declaring %d bytes and sending 1 KiB: %v, want the timeout's error", meta, op.name, size, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
				t.Errorf("meta %v: %s allocated %d MiB for a reply declaring %d MiB and sending 1 KiB", meta, op.name, n>>20, size>>20)
			}
		}
	}
}

// Long values that arrive in pieces are read whole, one or two in a
// reply, on the meta protocol and on the text protocol.
func TestLongValueInPieces(t *testing.T) {
	value := make([]byte, 3<<20+5)
	for i := range value {
		value[i] = byte(i*7 + i>>16)
	}
	send := func(c net.Conn, head string) {
		for rest := head + string(value) + "\r\n"; rest != ""; {
			k := min(len(rest), 200<<10+7)
			_, _ = c.Write([]byte(rest[:k]))
			rest = rest[k:]
			time.Sleep(time.Millisecond)
		}
	}
	for _, meta := range []bool{true, false} {
		s := newProtoFake(t, meta, func(line string, c net.Conn, r *bufio.Reader) bool {
			f := strings.Fields(line)
			switch {
			case f[0] == "mg" && strings.Contains(line, " v"):
				send(c, fmt.Sprintf("VA %d c1%s\r\n", len(value), metaFlags(line)))
			case f[0] == "mg":
				fmt.Fprintf(c, "EN%s\r\n", metaFlags(line))
			case f[0] == "gets":
				for _, k := range f[1:] {
					send(c, fmt.Sprintf("VALUE %s 0 %d 1\r\n", k, len(value)))
				}
				fmt.Fprintf(c, "END\r\n")
			}
			return true
		})
		c := fakeClient(t, s, memcached.WithTimeout(5*time.Second), memcached.WithFailureLimit(0), memcached.WithMaxValueLen(4<<20))
		ctx := context.Background()
		if it, err := c.Get(ctx, "k"); err != nil || !bytes.Equal(it.Value, value) {
			t.Errorf("meta %v: Get read %d bytes (equal %v), %v", meta, len(it.Value), bytes.Equal(it.Value, value), err)
		}
		got, err := c.GetMulti(ctx, []string{"a", "b"})
		for _, k := range []string{"a", "b"} {
			if err != nil || !bytes.Equal(got[k].Value, value) {
				t.Errorf("meta %v: GetMulti read %d bytes for %s (equal %v), %v", meta, len(got[k].Value), k, bytes.Equal(got[k].Value, value), err)
			}
		}
	}
}
