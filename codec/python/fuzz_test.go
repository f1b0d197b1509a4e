package python

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"
)

// FuzzUnmarshal: no input panics, every failure is ErrDecode, and what
// decodes into an empty interface and encodes again decodes to the same
// value. The seed corpus (run by go test) holds Python's pickles of every
// protocol (testdata/pickles.json), Python 2's, hostile ones and values of
// each flag; go test -fuzz=FuzzUnmarshal explores from there.
func FuzzUnmarshal(f *testing.F) {
	if b, err := os.ReadFile("testdata/pickles.json"); err == nil {
		var pickles map[string][][]byte
		if err := json.Unmarshal(b, &pickles); err != nil {
			f.Fatal(err)
		}
		for _, ps := range pickles {
			for _, p := range ps {
				if len(p) < 4096 {
					f.Add(p, FlagPickle)
				}
			}
		}
	}
	for _, c := range python2Pickles {
		f.Add([]byte(c.pickle), FlagPickle)
	}
	for name, p := range hostile() {
		if len(p) < 4096 || name == "dag" {
			f.Add(p, FlagPickle)
		}
	}
	f.Add([]byte("\x80\x03}q\x00C\x010q\x01C\x010q\x02s."), FlagPickle) // {b'0': b'0'}: comes back with a str key
	f.Add([]byte("héllo"), FlagText)
	f.Add([]byte(" -4_2\n"), FlagInt)
	f.Add([]byte("\x00\xff"), FlagBytes)
	f.Add(zlibOf([]byte("\x80\x02]q\x00(K\x01X\x01\x00\x00\x00ae.")), FlagPickle|FlagZlib)
	f.Fuzz(func(t *testing.T, data []byte, flags uint32) {
		c := Codec{MaxBytes: 1 << 20}
		var v any
		err := c.Unmarshal(data, flags, &v)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error without ErrDecode: %v", err)
			}
		} else if out, fl, err := c.Marshal(v); err == nil {
			var back any
			if err := (Codec{MaxBytes: 1 << 26}).Unmarshal(out, fl, &back); err != nil {
				t.Fatalf("%#v: Marshal gave %q (flags %d), which does not decode: %v", v, out, fl, err)
			}
			// Bytes keys become strings in Go and go back as str:
			// a dict of bytes keys comes back as one of str keys
			// (documented on Unmarshal), the same entries.
			if !equal(back, strKeys(v)) {
				t.Fatalf("%#v came back as %#v", v, back)
			}
		} else if !errors.Is(err, ErrEncode) {
			t.Fatalf("Marshal error without ErrEncode: %v", err)
		}
		var typed struct {
			A []int
			B map[string]string
			C *float64
			D [2]bool
			E map[int64][]byte
			F [4]myByte
			G []myByte
			H *big.Int
			I time.Time
			J map[string]any
			K any
			L map[float64]uint8
		}
		if err := c.Unmarshal(data, flags, &typed); err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("error without ErrDecode: %v", err)
		}
	})
}

// strKeys returns v with every map[any]any whose keys are all strings
// (a Python dict of bytes keys, or of bytes and str keys that do not
// clash) turned into the map[string]any its Marshal reads back as.
func strKeys(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = strKeys(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = strKeys(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			s, ok := k.(string)
			if !ok {
				m := make(map[any]any, len(v))
				for k, e := range v {
					m[k] = strKeys(e)
				}
				return m
			}
			out[s] = strKeys(e)
		}
		return out
	}
	return v
}
