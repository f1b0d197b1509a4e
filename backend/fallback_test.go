package backend_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
)

// plain has only the methods of backend.Backend, and fails every write
// and delete of a key starting "bad".
type plain struct {
	backend.Backend
	sets, dels atomic.Int64
}

var errBad = errors.New("bad key")

func (p *plain) Set(ctx context.Context, it backend.Item) error {
	p.sets.Add(1)
	if strings.HasPrefix(it.Key, "bad") {
		return errBad
	}
	return p.Backend.Set(ctx, it)
}

func (p *plain) Delete(ctx context.Context, key string) error {
	p.dels.Add(1)
	if strings.HasPrefix(key, "bad") {
		return errBad
	}
	return p.Backend.Delete(ctx, key)
}

// multi is a memory store that counts its SetMulti and DeleteMulti calls.
type multi struct {
	*memory.Store
	calls atomic.Int64
}

func (m *multi) SetMulti(ctx context.Context, items []backend.Item) error {
	m.calls.Add(1)
	return m.Store.SetMulti(ctx, items)
}

func (m *multi) DeleteMulti(ctx context.Context, keys []string) error {
	m.calls.Add(1)
	return m.Store.DeleteMulti(ctx, keys)
}

func newPlain(t *testing.T) *plain {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return &plain{Backend: struct{ backend.Backend }{s}}
}

// failedKeys returns the keys err names, in its order.
func failedKeys(t *testing.T, err error) []string {
	t.Helper()
	kes, ok := backend.KeyErrors(err)
	if !ok {
		t.Fatalf("error %v is not a *backend.MultiError", err)
	}
	var keys []string
	for _, ke := range kes {
		keys = append(keys, ke.Key)
	}
	return keys
}

// Without a MultiWriter, SetMulti and DeleteMulti make one call per key,
// try every key, and name the failed ones in key order.
func TestSetDeleteMultiFallback(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 5, 16, 17, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			be := newPlain(t)
			var items []backend.Item
			var keys, wantFailed []string
			for i := range n {
				k := fmt.Sprintf("k%03d", i)
				if i%3 == 1 {
					k = fmt.Sprintf("bad%03d", i)
					wantFailed = append(wantFailed, k)
				}
				items = append(items, backend.Item{Key: k, Value: []byte(k)})
				keys = append(keys, k)
			}
			err := backend.SetMulti(ctx, be, items)
			if len(wantFailed) == 0 {
				if err != nil {
					t.Fatalf("SetMulti: %v", err)
				}
			} else {
				if got := failedKeys(t, err); strings.Join(got, ",") != strings.Join(wantFailed, ",") {
					t.Fatalf("SetMulti failed %q, want %q", got, wantFailed)
				}
				if !errors.Is(err, errBad) {
					t.Errorf("SetMulti error %v does not wrap the cause", err)
				}
			}
			if got := be.sets.Load(); got != int64(n) {
				t.Errorf("%d Set calls, want %d", got, n)
			}
			for _, it := range items {
				_, err := be.Get(ctx, it.Key)
				if bad := strings.HasPrefix(it.Key, "bad"); bad != errors.Is(err, backend.ErrNotFound) {
					t.Errorf("Get %q after SetMulti: %v", it.Key, err)
				}
			}
			// Delete every key twice: the second time each is absent.
			err = backend.DeleteMulti(ctx, be, keys)
			if len(wantFailed) > 0 && strings.Join(failedKeys(t, err), ",") != strings.Join(wantFailed, ",") {
				t.Fatalf("DeleteMulti: %v, want %q failed", err, wantFailed)
			} else if len(wantFailed) == 0 && err != nil {
				t.Fatalf("DeleteMulti: %v", err)
			}
			err = backend.DeleteMulti(ctx, be, keys)
			if got := failedKeys(t, err); len(got) != n {
				t.Fatalf("second DeleteMulti named %d keys, want %d", len(got), n)
			}
			kes, _ := backend.KeyErrors(err)
			for _, ke := range kes {
				if !strings.HasPrefix(ke.Key, "bad") && !errors.Is(ke.Err, backend.ErrNotFound) {
					t.Errorf("absent %q: %v, want ErrNotFound", ke.Key, ke.Err)
				}
			}
		})
	}
}

// A done context fails every key, and every key is still tried.
func TestSetMultiFallbackDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	be := newPlain(t)
	items := make([]backend.Item, 40)
	for i := range items {
		items[i] = backend.Item{Key: fmt.Sprint("k", i), Value: []byte("v")}
	}
	err := backend.SetMulti(ctx, be, items)
	if got := failedKeys(t, err); len(got) != len(items) {
		t.Fatalf("%d keys failed, want %d", len(got), len(items))
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

// With a MultiWriter, SetMulti and DeleteMulti make one call of it; with
// nothing to do they make none.
func TestSetDeleteMultiUseMultiWriter(t *testing.T) {
	ctx := context.Background()
	m := &multi{Store: memory.New()}
	defer m.Close()
	if err := backend.SetMulti(ctx, m, nil); err != nil || m.calls.Load() != 0 {
		t.Fatalf("empty SetMulti: %v, %d calls", err, m.calls.Load())
	}
	if err := backend.DeleteMulti(ctx, m, nil); err != nil || m.calls.Load() != 0 {
		t.Fatalf("empty DeleteMulti: %v, %d calls", err, m.calls.Load())
	}
	items := []backend.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	if err := backend.SetMulti(ctx, m, items); err != nil {
		t.Fatal(err)
	}
	if err := backend.DeleteMulti(ctx, m, []string{"a", "absent"}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("DeleteMulti of an absent key: %v", err)
	}
	if m.calls.Load() != 2 {
		t.Errorf("%d MultiWriter calls, want 2", m.calls.Load())
	}
	if _, err := m.Get(ctx, "b"); err != nil {
		t.Errorf("b: %v", err)
	}
}

// Keys, ServerStats, Flush and Ping use the ability, or say it is not
// supported, naming what was asked.
func TestAbilities(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	if err := s.Set(ctx, backend.Item{Key: "p:k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, err := range backend.Keys(ctx, s, "p:") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != "p:k" {
		t.Errorf("Keys = %q", keys)
	}
	if st, err := backend.ServerStats(ctx, s); err != nil || len(st) != 1 {
		t.Errorf("ServerStats = %v, %v", st, err)
	}
	if err := backend.Ping(ctx, s); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := backend.Flush(ctx, s); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if _, err := s.Get(ctx, "p:k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get after Flush: %v", err)
	}

	be := newPlain(t)
	errs := map[string]error{"ping": backend.Ping(ctx, be), "flush": backend.Flush(ctx, be)}
	_, errs["server statistics"] = backend.ServerStats(ctx, be)
	n := 0
	for k, err := range backend.Keys(ctx, be, "") {
		if k != "" {
			t.Errorf("Keys yielded %q", k)
		}
		errs["listing keys"] = err
		n++
	}
	if n != 1 {
		t.Errorf("Keys yielded %d pairs, want 1", n)
	}
	for what, err := range errs {
		if !errors.Is(err, backend.ErrNotSupported) || err.Error() != what+": backend: not supported" {
			t.Errorf("%s without the ability: %v", what, err)
		}
	}
}
