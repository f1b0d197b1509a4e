package python_test

import (
	"errors"
	"fmt"

	"github.com/memdict/memdict/codec/python"
)

// A value python-memcached stored (ERP5's pickleProtocol=-1: a pickle of
// protocol 5, flag 1) read into a struct, and a Go value written as
// python-memcached writes it.
func Example() {
	// pickle.dumps({'name': 'Ada', 'visits': 3, 'tags': ['admin'],
	// 'email': None}, protocol=5), as mg returns it with its flags.
	data := []byte("\x80\x05\x958\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x03Ada\x94\x8c\x06visits\x94K\x03\x8c\x04tags\x94]\x94\x8c\x05admin\x94a\x8c\x05email\x94Nu.")
	flags := python.FlagPickle

	type user struct {
		Name   string   `pickle:"name"`
		Visits int      `pickle:"visits"`
		Tags   []string `pickle:"tags"`
		Email  *string  `pickle:"email"`
	}
	var u user
	if err := python.Unmarshal(data, flags, &u); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %d %v %v\n", u.Name, u.Visits, u.Tags, u.Email)

	u.Visits++
	data, flags, err := python.Marshal(u) // a dict Python reads back
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("flags", flags)

	// Strings, ints and bytes need no pickle, as in python-memcached.
	for _, v := range []any{"héllo", 42, []byte{0, 1}} {
		data, flags, _ := python.Marshal(v)
		fmt.Printf("%q %d\n", data, flags)
	}
	// Output:
	// Ada 3 [admin] <nil>
	// flags 1
	// "héllo" 16
	// "42" 2
	// "\x00\x01" 0
}

// Into an empty interface, a pickle becomes plain Go values; a value that
// does not fit the Go type asked for is an error wrapping ErrDecode.
func ExampleUnmarshal() {
	// pickle.dumps({'a': [1, 2.5, None], 'b': b'\x00'}, protocol=2)
	data := []byte("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00NeX\x01\x00\x00\x00bq\x03c_codecs\nencode\nq\x04X\x01\x00\x00\x00\x00q\x05X\x06\x00\x00\x00latin1q\x06\x86q\x07Rq\x08u.")
	var v any
	if err := python.Unmarshal(data, python.FlagPickle, &v); err != nil {
		fmt.Println(err)
		return
	}
	m := v.(map[string]any)
	fmt.Printf("%#v %#v\n", m["a"], m["b"])

	var n int
	err := python.Unmarshal(data, python.FlagPickle, &n)
	fmt.Println(errors.Is(err, python.ErrDecode), err)
	// Output:
	// []interface {}{1, 2.5, interface {}(nil)} []byte{0x0}
	// true python: cannot decode value: Python dict cannot go into Go int
}

// A Codec sets the pickle protocol Marshal writes and compression; its
// zero value writes protocol 2, which Python 2 and 3 read.
func ExampleCodec() {
	c := python.Codec{Protocol: python.HighestProtocol, MinCompressLen: 100}
	data, flags, err := c.Marshal(map[string]string{"page": string(make([]byte, 1000))})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(flags == python.FlagPickle|python.FlagZlib, len(data) < 1000)
	// Output: true true
}
