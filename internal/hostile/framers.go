package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// MemcachedFramer cuts a memcached server's stream into replies: one line,
// with the data block a VA (meta) or VALUE (text) line announces and its
// CRLF; a "STAT ..." block up to and including its END line is one reply,
// so that a handshake's stats settings are one reply.
func MemcachedFramer(br *bufio.Reader) ([]byte, error) {
	line, err := readLine(br)
	if err != nil {
		return line, err
	}
	switch {
	case bytes.HasPrefix(line, []byte("VA ")):
		f := bytes.Fields(line[3:])
		if len(f) == 0 {
			return line, nil
		}
		return withData(br, line, f[0])
	case bytes.HasPrefix(line, []byte("VALUE ")):
		f := bytes.Fields(line[6:])
		if len(f) < 3 {
			return line, nil
		}
		return withData(br, line, f[2])
	case bytes.HasPrefix(line, []byte("STAT ")):
		out := line
		for {
			l, err := readLine(br)
			out = append(out, l...)
			if err != nil || bytes.Equal(l, []byte("END\r\n")) {
				return out, err
			}
		}
	}
	return line, nil
}

// withData appends to line the data block of size (a decimal) and its
// CRLF.
func withData(br *bufio.Reader, line, size []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(size))
	if err != nil || n < 0 {
		return line, nil
	}
	out := make([]byte, len(line)+n+2)
	copy(out, line)
	_, err = io.ReadFull(br, out[len(line):])
	return out, err
}

// readLine reads up to and including '\n', however long.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		out = append(out, b...)
		if err != bufio.ErrBufferFull {
			return out, err
		}
	}
}

// RESPFramer cuts a Redis server's stream (RESP2 or RESP3) into replies:
// one complete value, aggregates with all their elements. An attribute
// (|) is a reply of its own, as is a push (>).
func RESPFramer(br *bufio.Reader) ([]byte, error) {
	var out []byte
	err := respValue(br, &out, 0)
	return out, err
}

func respValue(br *bufio.Reader, out *[]byte, depth int) error {
	if depth > 1000 {
		return fmt.Errorf("hostile: RESP nesting deeper than 1000")
	}
	line, err := readLine(br)
	*out = append(*out, line...)
	if err != nil {
		return err
	}
	if len(line) < 3 {
		return nil
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil
		}
		start := len(*out)
		*out = append(*out, make([]byte, n+2)...)
		_, err = io.ReadFull(br, (*out)[start:])
		return err
	case '*', '~', '>':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil
		}
		for range n {
			if err := respValue(br, out, depth+1); err != nil {
				return err
			}
		}
	case '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil
		}
		for range 2 * n {
			if err := respValue(br, out, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
