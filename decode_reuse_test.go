package memdict_test

import (
	"encoding/json"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// shortName keeps a name of up to 8 bytes in an array of its own, which
// its slice points into: its UnmarshalJSON takes the address of the
// value it decodes into and keeps it in the value.
type shortName struct {
	buf  [8]byte
	name []byte
}

func (s shortName) MarshalJSON() ([]byte, error) { return json.Marshal(string(s.name)) }

func (s *shortName) UnmarshalJSON(p []byte) error {
	var v string
	if err := json.Unmarshal(p, &v); err != nil {
		return err
	}
	s.name = s.buf[:copy(s.buf[:], v)]
	return nil
}

type named struct {
	ID   int
	Name shortName
}

// A value whose decoding method points it into the V it decodes into (a
// slice into an array of its own) is decoded into a V of its own, not
// one of the Dict's pool: the V handed back to the pool was zeroed and
// decoded into by the next Lookup, under the first value returned, so
// that a value of "alice" read "bob" once "bob" was looked up.
func TestLookupSelfReferringValueNotReused(t *testing.T) {
	ctx := t.Context()
	d := newDict[named](t, memory.New(), "p", memdict.WithCodec(codec.JSON))
	for k, v := range map[string]string{"a": "alice", "b": "bob"} {
		var n named
		n.Name.name = []byte(v)
		if err := d.Store(ctx, k, n); err != nil {
			t.Fatal(err)
		}
	}
	var kept []named
	for range 20 {
		va, _, errA := d.Lookup(ctx, "a")
		vb, _, errB := d.Lookup(ctx, "b")
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		kept = append(kept, va, vb)
	}
	for i, v := range kept {
		if want := []string{"alice", "bob"}[i%2]; string(v.Name.name) != want {
			t.Fatalf("value %d looked up reads %q now, want %q", i, v.Name.name, want)
		}
	}
}
