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
		if h.Meta != (Meta{}) {
			t.Fatalf("Parse of a value without times: Meta = %+v", h.Meta)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	const now = 1_790_000_000_000 // Unix ms, late 2026
	for _, tc := range []struct {
		key     string
		withKey bool
		m       Meta
		payload string
	}{
		{"", false, Meta{}, "p"},
		{"", false, Meta{Expiry: now}, "p"},
		{"k", true, Meta{Expiry: now, FreshUntil: now - 5000}, "payload"},
		{"k", false, Meta{Expiry: 1, FreshUntil: 1, Stale: true}, ""},
		{"k", true, Meta{Stale: true}, "x"},
		{"k", true, Meta{Expiry: now, Absent: true}, ""},
		{"", false, Meta{Absent: true}, ""},
		{strings.Repeat("long", 100), true, Meta{Expiry: 1<<63 - 1, FreshUntil: 1 << 62, Stale: true}, "\xc1\x00"},
	} {
		b := AppendMeta(nil, 'j', tc.key, tc.withKey, tc.m)
		if len(b) != SizeMeta(tc.key, tc.withKey, tc.m) {
			t.Fatalf("%+v: SizeMeta = %d, AppendMeta wrote %d", tc.m, SizeMeta(tc.key, tc.withKey, tc.m), len(b))
		}
		if tc.m == (Meta{}) && !bytes.Equal(b, Append(nil, 'j', tc.key, tc.withKey)) {
			t.Fatalf("AppendMeta with no meta = %q, Append = %q", b, Append(nil, 'j', tc.key, tc.withKey))
		}
		b = append(b, tc.payload...)
		h, p, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%q): %v", b, err)
		}
		if h.Codec != 'j' || h.HasKey != tc.withKey || (tc.withKey && string(h.Key) != tc.key) || string(p) != tc.payload || h.Meta != tc.m {
			t.Fatalf("Parse = %+v %q, want meta %+v payload %q", h, p, tc.m, tc.payload)
		}
		if h.HasTime() != (tc.m.Expiry != 0 || tc.m.FreshUntil != 0) {
			t.Fatalf("HasTime of %+v = %v", h.Meta, h.HasTime())
		}
	}
}

func TestMetaTimes(t *testing.T) {
	m := Meta{Expiry: 100, FreshUntil: 50}
	for _, tc := range []struct {
		now            int64
		expired, stale bool
	}{{0, false, false}, {49, false, false}, {50, false, true}, {99, false, true}, {100, true, true}} {
		if m.Expired(tc.now) != tc.expired || m.IsStale(tc.now) != tc.stale {
			t.Errorf("at %d: Expired %v, IsStale %v; want %v, %v", tc.now, m.Expired(tc.now), m.IsStale(tc.now), tc.expired, tc.stale)
		}
	}
	if (Meta{}).Expired(1<<62) || (Meta{}).IsStale(1<<62) {
		t.Error("an entry without times expired or went stale")
	}
	if !(Meta{Stale: true}).IsStale(0) {
		t.Error("a marked entry is not stale")
	}
}

func TestReframe(t *testing.T) {
	b := append(AppendMeta(nil, 'j', "key", true, Meta{Expiry: 500, FreshUntil: 400}), "payload"...)
	out, err := Reframe(b, Meta{Expiry: 300, FreshUntil: 400, Stale: true})
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := Parse(out)
	if err != nil || string(h.Key) != "key" || !h.HasKey || h.Codec != 'j' || string(p) != "payload" ||
		h.Meta != (Meta{Expiry: 300, FreshUntil: 400, Stale: true}) {
		t.Fatalf("Parse(Reframe) = %+v %q %v", h, p, err)
	}
	if &out[0] == &b[0] {
		t.Fatal("Reframe wrote into its input")
	}
	if _, err := Reframe([]byte("plain"), Meta{}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Reframe of a foreign value: %v", err)
	}
	if _, err := Reframe(b, Meta{Absent: true}); err == nil {
		t.Fatal("Reframe made an absent entry with a payload")
	}
}

// A compressed value's flag is read, and kept by Reframe; values written
// before the flag existed parse as before.
func TestCompressed(t *testing.T) {
	b := append(AppendMeta(nil, 'j', "key", true, Meta{Expiry: 500}), "zstd"...)
	SetCompressed(b)
	h, p, err := Parse(b)
	if err != nil || !h.Compressed || string(p) != "zstd" || string(h.Key) != "key" || h.Expiry != 500 {
		t.Fatalf("Parse = %+v %q %v", h, p, err)
	}
	out, err := Reframe(b, Meta{Stale: true})
	if h, p, err := Parse(out); err != nil || !h.Compressed || !h.Stale || h.Expiry != 0 || string(p) != "zstd" {
		t.Fatalf("Parse(Reframe) = %+v %q %v", h, p, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	old := append(Append(nil, 'm', "", false), "payload"...)
	if h, _, err := Parse(old); err != nil || h.Compressed {
		t.Fatalf("an old value: %+v %v", h, err)
	}
}

func TestNotOurs(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {Magic}, {Magic, 'm'}, []byte("hello"), {0x93, 1, 2, 3}, {Magic, 'm', 0x80}, {Magic, 'm', 1, 50, 'x'}, {Magic, 'm', 1, 0xff}, {Magic, 'm', 1, 0x80, 0x00},
		{Magic, 'm', 0x40},                      // unknown flag
		{Magic, 'm', flagAbsent | flagZstd},     // absent and compressed
		{Magic, 'm', flagExpiry},                // truncated expiry
		{Magic, 'm', flagExpiry, 0x80},          // truncated expiry
		{Magic, 'm', flagExpiry, 0},             // zero expiry
		{Magic, 'm', flagExpiry, 0x81, 0},       // non-minimal expiry
		{Magic, 'm', flagFresh, 0},              // zero fresh time
		{Magic, 'm', flagExpiry | flagFresh, 5}, // truncated fresh time
		{Magic, 'm', flagExpiry, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}, // over int64
		{Magic, 'm', flagAbsent, 'x'},              // absent with a payload
		{Magic, 'm', flagKey | flagExpiry, 1, 'k'}, // key, then no expiry
	} {
		if _, _, err := Parse(b); !errors.Is(err, ErrNotOurs) {
			t.Errorf("Parse(%q) err = %v, want ErrNotOurs", b, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Append(nil, 'j', "key", true))
	f.Add([]byte{Magic, 'r', 0})
	f.Add(append(AppendMeta(nil, 'j', "key", true, Meta{Expiry: 1_790_000_000_000, FreshUntil: 1_789_999_990_000}), "v"...))
	f.Add(AppendMeta(nil, 'r', "", false, Meta{Expiry: 1, Stale: true, Absent: true}))
	f.Add([]byte{Magic, 'm', flagExpiry, 0x81, 0})
	f.Add([]byte{Magic, 'm', flagAbsent, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := Parse(b)
		if err != nil {
			return
		}
		again := AppendMeta(nil, h.Codec, string(h.Key), h.HasKey, h.Meta)
		if h.Compressed {
			SetCompressed(again)
		}
		again = append(again, p...)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %q gives %q", b, again)
		}
		if SizeMeta(string(h.Key), h.HasKey, h.Meta) != len(b)-len(p) {
			t.Fatalf("SizeMeta of %q = %d, header is %d bytes", b, SizeMeta(string(h.Key), h.HasKey, h.Meta), len(b)-len(p))
		}
		if h.Absent && len(p) != 0 {
			t.Fatalf("absent entry %q with payload %q", b, p)
		}
		if h.Expiry < 0 || h.FreshUntil < 0 {
			t.Fatalf("negative time in %+v", h.Meta)
		}
	})
}
