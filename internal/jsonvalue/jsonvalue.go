// Package jsonvalue reads one JSON value as the memdict command and the
// Tool's admin page take a typed value to write: integers stay integers,
// and, for memdict's Python formats (codec/python), integers beyond 64
// bits stay integers too, as Python's ints have no bounds.
package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Parse parses one JSON value: integers are int64, or uint64 above its
// range; other numbers are float64. A number no float64 holds (1e999) is
// an error, not an infinity stored in its place. More than one value is an
// error.
func Parse(b []byte) (any, error) { return parse(b, false) }

// ParsePython is Parse for a value of a Python format: a JSON integer
// beyond 64 bits is a *big.Int (a Python int), not the nearest float64
// (which Python would read as a float). One of more than the 4300 digits
// Python reads is an error.
func ParsePython(b []byte) (any, error) { return parse(b, true) }

func parse(b []byte, bigInts bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return numbers(v, bigInts)
}

// numbers turns the json.Numbers in v into the numbers of Parse (or of
// ParsePython, with bigInts).
func numbers(v any, bigInts bool) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return number(x, bigInts)
	case map[string]any:
		for k, e := range x {
			n, err := numbers(e, bigInts)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := numbers(e, bigInts)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

// number is one JSON number as numbers makes it.
func number(x json.Number, bigInts bool) (any, error) {
	if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
		return u, nil
	}
	if bigInts && !strings.ContainsAny(string(x), ".eE") {
		if len(x) > 4301 { // and not parsed: that is slow
			return nil, fmt.Errorf("integer %.40s... has more than the 4300 digits Python reads", x)
		}
		if n, ok := new(big.Int).SetString(string(x), 10); ok {
			return n, nil // python.Marshal refuses more than 4300 digits
		}
	}
	f, err := x.Float64()
	if err != nil {
		return nil, fmt.Errorf("number %.40s is out of range", x)
	}
	return f, nil
}
