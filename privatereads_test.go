package memdict_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/testserver"
)

// privateBackend is a memory backend that says its Get values are the
// caller's own, and keeps the last value it returned to check that.
type privateBackend struct {
	backend.Backend
	last []byte
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
			w := backend.Wrap(be, func(next backend.CallFunc) backend.CallFunc {
				return func(ctx context.Context, c backend.Call) backend.Result {
					r := next(ctx, c)
					if c.Op == backend.OpGet {
						read = r.Item.Value
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
			}
		})
	}
}
