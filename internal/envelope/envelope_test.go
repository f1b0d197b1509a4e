package envelope

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key     string
		withKey bool
		payload string
	}{
		{"", false, ""},
		{"k", false, "payload"},
		{"k", true, "payload"},
		{"", true, ""},
		{strings.Repeat("long", 100), true, "\xc1\x00"},
	} {
		b := Append(nil, 'm', tc.key, tc.withKey)
		if len(b) != Size(tc.key, tc.withKey) {
			t.Fatalf("Size = %d, Append wrote %d", Size(tc.key, tc.withKey), len(b))
		}
		b = append(b, tc.payload...)
		h, p, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if h.Codec != 'm' || h.HasKey != tc.withKey || (tc.withKey && string(h.Key) != tc.key) || string(p) != tc.payload {
			t.Fatalf("Parse = %+v %q", h, p)
		}
	}
}

func TestNotOurs(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {Magic}, {Magic, 'm'}, []byte("hello"), {0x93, 1, 2, 3}, {Magic, 'm', 0x80}, {Magic, 'm', 1, 50, 'x'}, {Magic, 'm', 1, 0xff}, {Magic, 'm', 1, 0x80, 0x00}} {
		if _, _, err := Parse(b); !errors.Is(err, ErrNotOurs) {
			t.Errorf("Parse(%q) err = %v, want ErrNotOurs", b, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Append(nil, 'j', "key", true))
	f.Add([]byte{Magic, 'r', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := Parse(b)
		if err != nil {
			return
		}
		again := append(Append(nil, h.Codec, string(h.Key), h.HasKey), p...)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %q gives %q", b, again)
		}
	})
}
