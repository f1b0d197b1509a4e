package backendtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
)

// RoundTripProxy is a TCP proxy for tests that counts request/response
// round trips between clients and one server: each time a client sends
// data after the server last spoke on that connection (or first), it
// counts one. A pipelined batch of commands sent at once and answered at
// once therefore counts one round trip per connection, and N commands sent
// one after another count N.
type RoundTripProxy struct {
	// Addr is the address clients dial instead of the server's.
	Addr string

	ln     net.Listener
	target string
	trips  atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// NewRoundTripProxy starts a proxy to the server at addr and stops it when
// the test ends.
func NewRoundTripProxy(t testing.TB, addr string) *RoundTripProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("RoundTripProxy: %v", err)
	}
	p := &RoundTripProxy{Addr: ln.Addr().String(), ln: ln, target: addr}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// RoundTrips returns the number of round trips counted so far.
func (p *RoundTripProxy) RoundTrips() int64 { return p.trips.Load() }

// Reset sets the count to zero.
func (p *RoundTripProxy) Reset() { p.trips.Store(0) }

func (p *RoundTripProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *RoundTripProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		// serverSpoke is true when the server sent data since the client
		// last did; the first client data counts as a round trip.
		var serverSpoke atomic.Bool
		serverSpoke.Store(true)
		p.wg.Add(2)
		go p.pipe(s, c, func() {
			if serverSpoke.Swap(false) {
				p.trips.Add(1)
			}
		})
		go p.pipe(c, s, func() { serverSpoke.Store(true) })
	}
}

// pipe copies from src to dst, calling seen before forwarding each chunk.
func (p *RoundTripProxy) pipe(dst, src net.Conn, seen func()) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = src.Close()
			}
			return
		}
	}
}

// CommitRoundTrips measures the round trips of a Tx.Commit of n keys: it
// starts a RoundTripProxy to the server at addr, opens a backend through it
// with open, writes n keys in one Tx and returns the round trips the
// Commit took (the namespace generation read and other warm-up are not
// counted). A driver with backend.MultiWriter should need about one per
// server; without it, Commit sends one write per key.
//
//	n := backendtest.CommitRoundTrips(t, srv.Addr, 100, func(t *testing.T, addr string) backend.Backend {
//		be, err := backend.Open(t.Context(), "memcached://"+addr)
//		...
//	})
//	if n > 3 { t.Errorf("100-key commit took %d round trips", n) }
func CommitRoundTrips(t *testing.T, addr string, n int, open func(t *testing.T, addr string) backend.Backend) int64 {
	t.Helper()
	p := NewRoundTripProxy(t, addr)
	be := open(t, p.Addr)
	t.Cleanup(func() { _ = be.Close() })
	prefix := RandomPrefix()
	d, err := memdict.New[string](be, prefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Warm up: read the generation and open connections.
	if _, _, err := d.Lookup(ctx, "warm-up"); err != nil {
		t.Fatalf("Lookup through the proxy: %v", err)
	}
	tx := d.Begin()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%04d", i)
		_ = tx.Put(keys[i], "value")
	}
	p.Reset()
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	trips := p.RoundTrips()
	t.Cleanup(func() {
		for _, k := range keys {
			_ = d.Delete(k)
		}
	})
	got, err := d.GetMulti(ctx, keys)
	if err != nil || len(got) != n {
		t.Fatalf("after Commit, GetMulti found %d of %d keys (%v)", len(got), n, err)
	}
	return trips
}
