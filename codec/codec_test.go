package codec_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/memdict/memdict/codec"
)

type order struct {
	ID       int64             `json:"id"`
	Customer string            `json:"customer"`
	Total    float64           `json:"total"`
	Paid     bool              `json:"paid"`
	Tags     []string          `json:"tags"`
	Extra    map[string]string `json:"extra,omitempty"`
}

var sample = order{ID: 42, Customer: "Nexedi", Total: 99.5, Paid: true, Tags: []string{"erp5", "memcached"}}

func TestRoundTrip(t *testing.T) {
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
		t.Run(c.Name(), func(t *testing.T) {
			b, err := c.Marshal(sample)
			if err != nil {
				t.Fatal(err)
			}
			var got order
			if err := c.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != sample.ID || got.Customer != sample.Customer || got.Total != sample.Total || !got.Paid || strings.Join(got.Tags, ",") != "erp5,memcached" {
				t.Fatalf("got %+v", got)
			}
			// Corrupt or truncated input is an error, never a panic.
			for i := 0; i < len(b); i++ {
				var o order
				_ = c.Unmarshal(b[:i], &o)
			}
			if err := c.Unmarshal(append(b, 0, 1), &got); err == nil && c != codec.JSON {
				t.Errorf("%s: trailing bytes accepted", c.Name())
			}
			if err := c.Unmarshal([]byte{0xc1, 0xff, 0x00}, &got); err == nil {
				t.Errorf("%s: garbage accepted", c.Name())
			}
		})
	}
}

func TestMsgPackHonoursJSONTags(t *testing.T) {
	b, err := codec.MsgPack.Marshal(sample)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := codec.MsgPack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["customer"]; !ok {
		t.Fatalf("fields named %v, want json tag names", m)
	}
}

func TestRaw(t *testing.T) {
	b, err := codec.Raw.Marshal("héllo")
	if err != nil || string(b) != "héllo" {
		t.Fatalf("Marshal = %q, %v", b, err)
	}
	in := []byte{0, 1, 2}
	b, _ = codec.Raw.Marshal(in)
	in[0] = 9
	if !bytes.Equal(b, []byte{0, 1, 2}) {
		t.Fatal("Raw.Marshal shares its input")
	}
	var s string
	if err := codec.Raw.Unmarshal([]byte("x"), &s); err != nil || s != "x" {
		t.Fatalf("Unmarshal = %q, %v", s, err)
	}
	if _, err := codec.Raw.Marshal(42); err == nil || !strings.Contains(err.Error(), "int") {
		t.Fatalf("Raw.Marshal(42) err = %v", err)
	}
	var n int
	if err := codec.Raw.Unmarshal([]byte("1"), &n); err == nil {
		t.Fatal("Raw.Unmarshal into *int accepted")
	}
	// Nil pointers are bad input, not a reason to panic.
	if _, err := codec.Raw.Marshal((*string)(nil)); err == nil {
		t.Fatal("Raw.Marshal((*string)(nil)) accepted")
	}
	if _, err := codec.Raw.Marshal((*[]byte)(nil)); err == nil {
		t.Fatal("Raw.Marshal((*[]byte)(nil)) accepted")
	}
	if err := codec.Raw.Unmarshal([]byte("x"), (*string)(nil)); err == nil {
		t.Fatal("Raw.Unmarshal into a nil *string accepted")
	}
}

type upper struct{}

func (upper) ID() byte                           { return 200 }
func (upper) Name() string                       { return "upper-json" }
func (upper) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (upper) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type reserved struct{ upper }

func (reserved) ID() byte { return 'x' }

type dupName struct{ upper }

func (dupName) ID() byte     { return 201 }
func (dupName) Name() string { return "json" }

func TestRegistry(t *testing.T) {
	for id, name := range map[byte]string{codec.RawID: "raw", codec.MsgPackID: "msgpack", codec.JSONID: "json", codec.GobID: "gob"} {
		c, ok := codec.ByID(id)
		if !ok || c.Name() != name {
			t.Errorf("ByID(%q) = %v, %v", id, c, ok)
		}
		if c2, ok := codec.ByName(name); !ok || c2.ID() != id {
			t.Errorf("ByName(%q) = %v, %v", name, c2, ok)
		}
	}
	if codec.Default() != codec.MsgPack {
		t.Error("default codec is not msgpack")
	}
	if err := codec.Register(upper{}); err != nil {
		t.Fatal(err)
	}
	if c, ok := codec.ByID(200); !ok || c.Name() != "upper-json" {
		t.Fatal("registered codec not found")
	}
	for _, bad := range []codec.Codec{nil, upper{}, reserved{}, dupName{}} {
		if err := codec.Register(bad); err == nil {
			t.Errorf("Register(%T) accepted", bad)
		}
	}
	if got := codec.NameOf(7); !strings.Contains(got, "unknown") {
		t.Errorf("NameOf(7) = %q", got)
	}
}

// BenchmarkCodecs compares the codecs on a five-field struct, encode and
// decode, in one run: go test -bench Codecs -benchmem ./codec/
func BenchmarkCodecs(b *testing.B) {
	type five struct {
		ID       int64   `json:"id"`
		Name     string  `json:"name"`
		Price    float64 `json:"price"`
		InStock  bool    `json:"in_stock"`
		Quantity int     `json:"quantity"`
	}
	v := five{ID: 123456, Name: "memcached tool", Price: 19.99, InStock: true, Quantity: 7}
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON, codec.Gob} {
		data, _ := c.Marshal(v)
		b.Run(c.Name()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.Name()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out five
				if err := c.Unmarshal(data, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
