// Package pyjson reads JSON text as a value of memdict's Python formats
// (codec/python), for the programs that write such values from text: the
// memdict command (put --typed) and the Tool's admin page.
package pyjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ParseJSON parses b, one JSON value, as a value of a Python format, whose
// ints have no bounds: a JSON integer beyond 64 bits is a *big.Int (a
// Python int), not the nearest float64 (which Python would read as a
// float). Other numbers are int64, uint64 or float64.
func ParseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return pythonNumbers(v)
}

// isInteger reports whether a JSON number has neither fraction nor
// exponent.
func isInteger(x json.Number) bool { return !strings.ContainsAny(string(x), ".eE") }

// pythonNumbers turns the json.Numbers in v into the numbers of
// ParseJSON.
func pythonNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u, nil
		}
		if isInteger(x) {
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
	case map[string]any:
		for k, e := range x {
			n, err := pythonNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := pythonNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}
