package tool_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// The "tooltest" scheme opens handles on named in-memory stores that live
// as long as the test binary: tooltest://a and tooltest://b are two
// servers, each Open a new connection to one. A handle counts as open
// until closed, and fails every call after Close, so that a test sees a
// call that reached a backend the Tool had already closed.
func init() {
	backend.Register("tooltest", func(_ context.Context, u *url.URL) (backend.Backend, error) {
		if u.Query().Has("fail") {
			return nil, errors.New("refused to open (fail parameter)")
		}
		return servers.open(u.Host), nil
	})
}

var servers = &testServers{stores: map[string]*testServer{}}

type testServers struct {
	mu     sync.Mutex
	stores map[string]*testServer
}

type testServer struct {
	*memory.Store
	opens, closes atomic.Int64
	calls         atomic.Int64
}

// server returns the named store, created on first use.
func (s *testServers) server(name string) *testServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.stores[name]
	if ts == nil {
		ts = &testServer{Store: memory.New()}
		s.stores[name] = ts
	}
	return ts
}

func (s *testServers) open(name string) *handle {
	ts := s.server(name)
	ts.opens.Add(1)
	return &handle{srv: ts}
}

// handle is one open connection to a testServer.
type handle struct {
	srv    *testServer
	closed atomic.Bool
}

var errHandleClosed = errors.New("tooltest: call on a closed handle")

func (h *handle) check() error {
	h.srv.calls.Add(1)
	if h.closed.Load() {
		return errHandleClosed
	}
	return nil
}

func (h *handle) Get(ctx context.Context, key string) (backend.Item, error) {
	if err := h.check(); err != nil {
		return backend.Item{}, err
	}
	return h.srv.Get(ctx, key)
}

func (h *handle) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	return h.srv.GetMulti(ctx, keys)
}

func (h *handle) Set(ctx context.Context, item backend.Item) error {
	if err := h.check(); err != nil {
		return err
	}
	return h.srv.Set(ctx, item)
}

func (h *handle) Add(ctx context.Context, item backend.Item) error {
	if err := h.check(); err != nil {
		return err
	}
	return h.srv.Add(ctx, item)
}

func (h *handle) CompareAndSwap(ctx context.Context, item backend.Item) error {
	if err := h.check(); err != nil {
		return err
	}
	return h.srv.CompareAndSwap(ctx, item)
}

func (h *handle) Delete(ctx context.Context, key string) error {
	if err := h.check(); err != nil {
		return err
	}
	return h.srv.Delete(ctx, key)
}

func (h *handle) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := h.check(); err != nil {
		return err
	}
	return h.srv.Touch(ctx, key, ttl)
}

func (h *handle) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	return h.srv.Increment(ctx, key, delta)
}

func (h *handle) Close() error {
	if !h.closed.Swap(true) {
		h.srv.closes.Add(1)
	}
	return nil
}

// open returns how many handles on the server are open.
func (ts *testServer) open() int64 { return ts.opens.Load() - ts.closes.Load() }
