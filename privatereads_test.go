package memdict_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/testserver"
)

// privateBackend is a memory backend that says its Get and GetMulti
// values are the caller's own, and keeps the last values it returned to
// check that.
type privateBackend struct {
	backend.Backend
	last  []byte
	multi map[string]backend.Item
}

func (p *privateBackend) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	items, err := p.Backend.GetMulti(ctx, keys)
	for k, it := range items {
		it.Value = append([]byte(nil), it.Value...)
		items[k] = it
	}
	p.multi = items
	return items, err
}

func (p *privateBackend) PrivateReads() bool { return true }

func (p *privateBackend) Get(ctx context.Context, key string) (backend.Item, error) {
	it, err := p.Backend.Get(ctx, key)
	if err == nil {
		it.Value = append([]byte(nil), it.Value...)
		p.last = it.Value
	}
	return it, err
}

// A Dict[[]byte] over a backend.PrivateReader returns the value the
// backend read without a copy; over the memory backend, whose values share
// its storage, it copies, so a caller writing to the value changes nothing
// stored.
func TestPrivateReadsAlias(t *testing.T) {
	ctx := context.Background()
	pb := &privateBackend{Backend: memory.New()}
	d, err := memdict.New[[]byte](pb, "p", memdict.WithCodec(codec.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, ok := d.Get("k")
	if !ok || string(v) != "hello" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if &v[0] != &pb.last[len(pb.last)-len(v)] {
		t.Fatalf("the value of a private read was copied")
	}
	if cap(v) != len(v) {
		t.Fatalf("cap(value) = %d, len %d: appending could write past it", cap(v), len(v))
	}
	v[0] = 'j'
	if w, _ := d.Get("k"); string(w) != "hello" {
		t.Fatalf("after writing to a returned value, Get = %q", w)
	}
	m, err := d.GetMulti(ctx, []string{"k", "absent"})
	if err != nil || len(m) != 1 || string(m["k"]) != "hello" {
		t.Fatalf("GetMulti = %q, %v", m, err)
	}
	var bk string
	for k := range pb.multi {
		bk = k
	}
	if got, read := m["k"], pb.multi[bk].Value; &got[0] != &read[len(read)-len(got)] {
		t.Fatalf("the value of a private GetMulti was copied")
	}

	mem := memory.New()
	dm, err := memdict.New[[]byte](mem, "p", memdict.WithCodec(codec.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, _ = dm.Get("k")
	v[0] = 'j'
	if w, _, err := dm.Lookup(ctx, "k"); err != nil || string(w) != "hello" {
		t.Fatalf("memory backend: after writing to a returned value, Get = %q, %v", w, err)
	}
	m, err = dm.GetMulti(ctx, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	m["k"][0] = 'j'
	if w, _, err := dm.Lookup(ctx, "k"); err != nil || string(w) != "hello" {
		t.Fatalf("memory backend: after writing to a value GetMulti returned, Get = %q, %v", w, err)
	}
}

// A Dict[[]byte] over memcached or Redis returns the very buffer the
// driver read the value into, one copy from the socket (over Redis it used
// to copy it again). A middleware records what the driver returned.
func TestPrivateReadsDrivers(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"memcached://" + testserver.Memcached(t).Addr,
		"redis://" + testserver.Redis(t).Addr,
	} {
		t.Run(strings.Split(url, ":")[0], func(t *testing.T) {
			be, err := backend.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { be.Close() })
			var read []byte
			var readMulti map[string]backend.Item
			w := backend.Wrap(be, func(next backend.CallFunc) backend.CallFunc {
				return func(ctx context.Context, c backend.Call) backend.Result {
					r := next(ctx, c)
					switch c.Op {
					case backend.OpGet:
						read = r.Item.Value
					case backend.OpGetMulti:
						readMulti = r.Items
					}
					return r
				}
			})
			for _, format := range []string{"raw", "default"} {
				opts := []memdict.Option{}
				if format == "raw" {
					opts = append(opts, memdict.WithCodec(codec.Raw))
				}
				d, err := memdict.New[[]byte](w, "private", opts...)
				if err != nil {
					t.Fatal(err)
				}
				big := bytes.Repeat([]byte("v"), 16<<10)
				if err := d.Put("k", big); err != nil {
					t.Fatal(err)
				}
				v, ok := d.Get("k")
				if !ok || !bytes.Equal(v, big) {
					t.Fatalf("Get = %d bytes, %v", len(v), ok)
				}
				if &v[0] != &read[len(read)-len(v)] {
					t.Errorf("%s codec: the value the driver read was copied", format)
				}

				// GetMulti: small values (packed into one buffer by the
				// memcached driver) and a large one.
				keys := []string{"a", "b", "c", "k"}
				for _, k := range keys[:3] {
					if err := d.Put(k, []byte(k+k+k)); err != nil {
						t.Fatal(err)
					}
				}
				m, err := d.GetMulti(ctx, keys)
				if err != nil || len(m) != 4 || !bytes.Equal(m["k"], big) || string(m["b"]) != "bbb" {
					t.Fatalf("GetMulti = %d values, %v", len(m), err)
				}
				driverValues := map[*byte]bool{}
				for _, it := range readMulti {
					driverValues[&it.Value[len(it.Value)-1]] = true
				}
				for _, k := range keys {
					v := m[k]
					if !driverValues[&v[len(v)-1]] {
						t.Errorf("%s codec: GetMulti: the value of %q the driver read was copied", format, k)
					}
				}
				// Each value is capped: appending to one does not write
				// into the next.
				_ = append(m["a"], "XYZ"...)
				_ = append(m["b"], "XYZ"...)
				if string(m["b"]) != "bbb" || string(m["c"]) != "ccc" {
					t.Errorf("%s codec: appending to a GetMulti value changed another: b=%q c=%q", format, m["b"], m["c"])
				}
			}
		})
	}
}

// Two keys of ERP5's format may name one backend key (its keys lose some
// bytes, such as a newline): over a backend whose reads are private, the
// value GetMulti hands out under each key is still its own.
func TestPrivateReadsSharedBackendKey(t *testing.T) {
	ctx := context.Background()
	pb := &privateBackend{Backend: memory.New()}
	d, err := memdict.New[memdict.Raw](pb, "p", memdict.WithFormat(memdict.FormatERP5), memdict.WithSiteID("s"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := d.BackendKey("ab"), d.BackendKey("a\nb"); a != b {
		t.Fatalf("backend keys %q and %q: the test needs two keys that meet", a, b)
	}
	if err := d.Store(ctx, "ab", memdict.Raw{Payload: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	m, err := d.GetMulti(ctx, []string{"ab", "a\nb"})
	if err != nil || len(m) != 2 {
		t.Fatalf("GetMulti = %v, %v", m, err)
	}
	m["ab"].Payload[0] = 'J'
	if got := string(m["a\nb"].Payload); got != "hello" {
		t.Fatalf("writing to the value of one key changed the other's: %q", got)
	}
}

// GetOrLoad over a backend whose reads are private does not hand out the
// bytes it puts in the near cache: the caller may modify its value
// without changing what later hits return (it did, for Dict[[]byte]).
func TestPrivateReadsGetOrLoadNearCache(t *testing.T) {
	ctx := context.Background()
	pb := &privateBackend{Backend: memory.New()}
	d := newDict[[]byte](t, pb, "p", memdict.WithCodec(codec.Raw),
		memdict.WithNearCache(memdict.NearCache{MaxStale: time.Minute}))
	if err := d.Put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, err := d.GetOrLoad(ctx, "k", func(context.Context, string) ([]byte, error) { return []byte("loaded"), nil })
	if err != nil || string(v) != "hello" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
	v[0] = 'J' // the caller's own
	w, ok := d.Get("k")
	if st := d.Stats().NearCache; st.Hits != 1 {
		t.Fatalf("near cache: %d hits, want the Get to be one", st.Hits)
	}
	if !ok || string(w) != "hello" {
		t.Fatalf("after the caller changed GetOrLoad's value, a near-cache hit = %q, %v; want \"hello\"", w, ok)
	}
}
