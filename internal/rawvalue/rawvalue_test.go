package rawvalue

import (
	"math"
	"testing"

	"github.com/memdict/memdict/codec"
)

func TestParseJSONKeepsIntegers(t *testing.T) {
	v, err := ParseJSON([]byte(`{"a": 1, "b": 18446744073709551615, "c": 1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if _, ok := m["a"].(int64); !ok {
		t.Errorf("a = %T, want int64", m["a"])
	}
	if _, ok := m["b"].(uint64); !ok {
		t.Errorf("b = %T, want uint64", m["b"])
	}
	if _, ok := m["c"].(float64); !ok {
		t.Errorf("c = %T, want float64", m["c"])
	}
	if _, err := ParseJSON([]byte(`1 2`)); err == nil {
		t.Error("ParseJSON of two values: no error")
	}
}

func TestDecoded(t *testing.T) {
	mp, _ := codec.ByName("msgpack")
	b, err := mp.Marshal(map[string]any{"n": 3, "bin": []byte{0xff}})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := Stored{Codec: mp.ID(), Payload: b}.Decoded()
	if !ok {
		t.Fatal("msgpack value not decoded")
	}
	if m := v.(map[string]any); m["bin"] != "/w==" {
		t.Errorf("binary field = %v, want base64 /w==", m["bin"])
	}
	if _, ok := (Stored{Codec: codec.RawID, Payload: []byte{0xff}}).Decoded(); ok {
		t.Error("binary raw value decoded as text")
	}
	if s, ok := (Stored{Payload: []byte("text")}).Decoded(); !ok || s != "text" {
		t.Errorf("unframed text = %v, %v", s, ok)
	}
	if _, err := JSONReady(math.NaN()); err == nil {
		t.Error("JSONReady(NaN): no error")
	}
}

func TestPassthrough(t *testing.T) {
	c := Passthrough(codec.RawID)
	if c.ID() != codec.RawID {
		t.Fatalf("ID = %d", c.ID())
	}
	b, err := c.Marshal(Payload("abc"))
	if err != nil || string(b) != "abc" {
		t.Fatalf("Marshal = %q, %v", b, err)
	}
	var p Payload
	if err := c.Unmarshal(b, &p); err != nil || string(p) != "abc" {
		t.Fatalf("Unmarshal = %q, %v", p, err)
	}
	b[0] = 'x'
	if string(p) != "abc" {
		t.Error("Unmarshal shares the input bytes")
	}
	if _, err := c.Marshal(42); err == nil {
		t.Error("Marshal(42): no error")
	}
}
