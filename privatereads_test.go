package memdict_test

import (
	"context"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
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
