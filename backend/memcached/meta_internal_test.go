package memcached

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestReadGets: the reply to a multi-key gets is accepted only if it
// answers the request: VALUE blocks for keys asked, in the order asked,
// each at most once, END, then the ending mg's reply with the request's
// opaque. Anything else is a protocol error, never a value.
func TestReadGets(t *testing.T) {
	const opaque = 7
	keys := []string{"a", "b", "a", "c"}
	val := func(k, v string) string { return "VALUE " + k + " 0 " + strconv.Itoa(len(v)) + " 11\r\n" + v + "\r\n" }
	for _, tc := range []struct {
		name  string
		reply string
		want  string // the values found, by index: "0=x 1=y"; "" for none
		bad   bool   // a protocol error
	}{
		{"all", val("a", "1") + val("b", "2") + val("a", "3") + val("c", "4") + "END\r\nHD O7\r\n", "0=1 1=2 2=3 3=4", false},
		{"some", val("b", "2") + val("c", "") + "END\r\nEN O7\r\n", "1=2 3=", false},
		{"none", "END\r\nEN O7\r\n", "", false},
		{"client flags", "VALUE b 4294967295 1 11\r\n2\r\nEND\r\nHD O7\r\n", "1=2/4294967295", false},
		{"client flags too large", "VALUE b 4294967296 1 11\r\n2\r\nEND\r\nHD O7\r\n", "", true},
		{"repeated key, second only", val("b", "2") + val("a", "3") + "END\r\nHD O7\r\n", "1=2 2=3", false},
		{"key not asked", val("x", "1") + "END\r\nHD O7\r\n", "", true},
		{"out of order", val("c", "4") + val("b", "2") + "END\r\nHD O7\r\n", "", true},
		{"key once too often", val("a", "1") + val("a", "3") + val("a", "5") + "END\r\nHD O7\r\n", "", true},
		{"wrong opaque", val("a", "1") + "END\r\nHD O8\r\n", "", true},
		{"no opaque", val("a", "1") + "END\r\nHD\r\n", "", true},
		{"no END", val("a", "1") + "HD O7\r\n", "", true},
		{"two ENDs", val("a", "1") + "END\r\nEND\r\nHD O7\r\n", "", true},
		{"a meta reply instead", "VA 1 O7\r\nx\r\nEND\r\nHD O7\r\n", "", true},
		{"VALUE with an opaque", "VALUE a 0 1 11 O7\r\nx\r\nEND\r\nHD O7\r\n", "", true},
		{"VALUE without CAS", "VALUE a 0 1\r\nx\r\nEND\r\nHD O7\r\n", "", true},
		{"VALUE with two spaces", "VALUE a  0 1 11\r\nx\r\nEND\r\nHD O7\r\n", "", true},
		{"bad length", "VALUE a 0 1x 11\r\nx\r\nEND\r\nHD O7\r\n", "", true},
		{"value too long", "VALUE a 0 2 11\r\nxyz\r\nEND\r\nHD O7\r\n", "", true},
		{"value over the limit", "VALUE a 0 9223372036854775807 11\r\n", "", true},
		{"server error", "SERVER_ERROR out of memory\r\n", "", true},
		{"server error at the end", "END\r\nSERVER_ERROR busy\r\n", "", true},
		{"truncated", val("a", "1") + "EN", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &request{kind: kindGets, keys: keys, opaque: opaque, limit: 1 << 20}
			err := readGets(bufio.NewReader(strings.NewReader(tc.reply)), r)
			var got []string
			for _, f := range r.founds {
				g := strconv.Itoa(f.index) + "=" + string(f.value)
				if f.flags != 0 {
					g += "/" + strconv.FormatUint(uint64(f.flags), 10)
				}
				got = append(got, g)
				if f.cas != 11 {
					t.Errorf("CAS %d, want 11", f.cas)
				}
			}
			var pe protoErr
			switch {
			case tc.bad && err != nil && !errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("error %v, want a protocol error", err)
			case tc.bad && err == nil:
				t.Errorf("accepted, found %q; want a protocol error", got)
			case !tc.bad && err != nil:
				t.Errorf("error %v", err)
			case !tc.bad && strings.Join(got, " ") != tc.want:
				t.Errorf("found %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

// TestFoundsGrowOnce: the items of a large multi-key reply are gathered in
// a slice that grows once, to the number of keys left, not by doubling
// (a dozen allocations and copies for 1000 keys).
func TestFoundsGrowOnce(t *testing.T) {
	const n = 1000
	keys := make([]string, n)
	var reply strings.Builder
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		reply.WriteString("VALUE " + keys[i] + " 0 0 11\r\n\r\n") // empty values: no arena
	}
	reply.WriteString("END\r\nHD O7\r\n")
	sr := strings.NewReader(reply.String())
	br := bufio.NewReaderSize(sr, 64<<10)
	r := &request{kind: kindGets, keys: keys, opaque: 7, limit: 1 << 20}
	allocs := testing.AllocsPerRun(10, func() {
		sr.Reset(reply.String())
		br.Reset(sr)
		r.founds = nil
		if err := readGets(br, r); err != nil {
			t.Fatal(err)
		}
		if len(r.founds) != n {
			t.Fatalf("%d items found, want %d", len(r.founds), n)
		}
	})
	if allocs > 1 {
		t.Errorf("reading %d items allocated %v times, want 1", n, allocs)
	}
}

// TestCarve: the values of a multi-key reply are carved from arenas sized
// for the values left (a short reply does not take arenaSize), never
// larger than arenaSize, each value capped so that appending to it cannot
// reach the next; a large value gets a buffer of its own.
func TestCarve(t *testing.T) {
	for _, c := range []struct {
		n, size  int
		maxAlloc int // the most bytes the n values may allocate in all
	}{
		{1, 0, 0},
		{1, 10, arenaSize / 8},
		{10, 100, arenaSize / 8},
		{100, 100, 100*100 + arenaSize/8},
		{1000, 100, 1000*100 + arenaSize},
		{3, arenaSize / 4, 3 * arenaSize / 4},
		{3, arenaSize/4 + 1, 3 * (arenaSize/4 + 1)},
	} {
		var arena []byte
		total := 0
		var vals [][]byte
		for i := range c.n {
			before := cap(arena)
			var v []byte
			v, arena = carve(arena, c.size, c.n-i)
			if len(v) != c.size || cap(v) != c.size {
				t.Fatalf("%d values of %d: value %d has len %d, cap %d", c.n, c.size, i, len(v), cap(v))
			}
			if cap(arena) > before || c.size > arenaSize/4 {
				total += cap(v) + cap(arena) // a new buffer: this value and what is left
			}
			if cap(arena) > arenaSize {
				t.Fatalf("%d values of %d: an arena of %d bytes", c.n, c.size, cap(arena))
			}
			for j := range v {
				v[j] = byte(i)
			}
			vals = append(vals, v)
		}
		for i, v := range vals {
			for _, b := range v {
				if b != byte(i) {
					t.Fatalf("%d values of %d: value %d overwritten", c.n, c.size, i)
				}
			}
			_ = append(v, 0xff) // must not reach the next value
		}
		for i, v := range vals {
			for _, b := range v {
				if b != byte(i) {
					t.Fatalf("%d values of %d: appending to a value overwrote value %d", c.n, c.size, i)
				}
			}
		}
		if total > c.maxAlloc {
			t.Errorf("%d values of %d bytes allocated %d bytes, want at most %d", c.n, c.size, total, c.maxAlloc)
		}
	}
}

// TestReadSettingsItemSizeMax: a server's item_size_max is taken up to
// memcached's largest -I (1 GiB); above that, or not a positive number,
// it is ignored, as if the server had not said it (the size check of
// writes then uses WithItemSizeMax). It never bounds what the client reads
// (TestHostileItemSizeMax).
func TestReadSettingsItemSizeMax(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64
	}{
		{"1048576", 1 << 20},
		{"1073741824", 1 << 30},
		{"1073741825", 0},
		{"549755813888", 0},
		{"18446744073709551616", 0},
		{"0", 0},
		{"-1", 0},
		{"1m", 0},
	} {
		reply := "STAT item_size_max " + tc.value + "\r\nSTAT cas_enabled no\r\nEND\r\n"
		info, err := readSettings(bufio.NewReader(strings.NewReader(reply)))
		if err != nil || info.itemSizeMax != tc.want || info.casEnabled {
			t.Errorf("item_size_max %s: %+v, %v; want item size max %d, CAS off", tc.value, info, err, tc.want)
		}
	}
}
