package codec_test

import (
	"fmt"

	"github.com/memdict/memdict/codec"
)

// A value round-trips through a codec; a codec is found again by the ID
// memdict stores in front of every value.
func Example() {
	type point struct {
		X, Y int
	}
	b, err := codec.MsgPack.Marshal(point{X: 1, Y: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	var p point
	if err := codec.MsgPack.Unmarshal(b, &p); err != nil {
		fmt.Println(err)
		return
	}
	c, _ := codec.ByID(codec.MsgPackID)
	fmt.Println(p, c.Name())
	// Output: {1 2} msgpack
}
