package python

import "testing"

type benchUser struct {
	Name   string   `pickle:"name"`
	Visits int      `pickle:"visits"`
	Tags   []string `pickle:"tags"`
	Email  *string  `pickle:"email"`
	Ratio  float64  `pickle:"ratio"`
}

// pickle.dumps({'name': 'Ada', 'visits': 3, 'tags': ['admin'],
// 'email': None, 'ratio': 0.5}, protocol=5): what ERP5 stores.
var benchPickle = []byte("\x80\x05\x95D\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x03Ada\x94\x8c\x06visits\x94K\x03\x8c\x04tags\x94]\x94\x8c\x05admin\x94a\x8c\x05email\x94N\x8c\x05ratio\x94G?\xe0\x00\x00\x00\x00\x00\x00u.")

func BenchmarkUnmarshalPickleStruct(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var u benchUser
		if err := Unmarshal(benchPickle, FlagPickle, &u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalPickleStruct(b *testing.B) {
	u := benchUser{Name: "Ada", Visits: 3, Tags: []string{"admin"}, Ratio: 0.5}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Marshal(u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalText(b *testing.B) {
	data := []byte("héllo wörld")
	b.ReportAllocs()
	for b.Loop() {
		var s string
		if err := Unmarshal(data, FlagText, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalInt(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Marshal(123456); err != nil {
			b.Fatal(err)
		}
	}
}
