package tool

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
)

// What the memdict command and the admin page share to show values and
// servers to people: a JSON reader for typed values, and the summary of a
// server's statistics. Values themselves are read and written as
// memdict.Raw, through a Dict[memdict.Raw] of the plugin.

// ParseJSON parses one JSON value as the memdict command and the admin
// page take a typed value: integers stay integers (int64, or uint64 above
// its range), so that a Go program reading them into an int gets them
// back; other numbers are float64. More than one value is an error.
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
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromNumbers(e)
		}
	}
	return v
}

// ServerSummary is the part of a server's statistics an operator looks at
// first, read from memcached's "stats" or Redis's INFO. A count is -1 when
// the server does not report it.
type ServerSummary struct {
	Addr      string  `json:"addr"`
	Items     int64   `json:"items"`
	Bytes     int64   `json:"bytes"`
	MaxBytes  int64   `json:"max_bytes"` // 0: no limit
	Hits      int64   `json:"hits"`
	Misses    int64   `json:"misses"`
	HitRatio  float64 `json:"hit_ratio"` // hits/(hits+misses); -1 before any read
	Evictions int64   `json:"evictions"`
	Uptime    int64   `json:"uptime_seconds"`
	Error     string  `json:"error,omitempty"` // why the server could not be asked
}

// Summarize reads ns, one server's statistics, in memcached's or Redis's
// vocabulary.
func Summarize(ns backend.NodeStats) ServerSummary {
	s := ServerSummary{Addr: ns.Addr, Items: -1, Bytes: -1, MaxBytes: -1, Hits: -1, Misses: -1, HitRatio: -1, Evictions: -1, Uptime: -1}
	if ns.Err != nil {
		s.Error = ns.Err.Error()
		return s
	}
	st := ns.Stats
	num := func(name string) int64 {
		if v, ok := st[name]; ok {
			if i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return i
			}
		}
		return -1
	}
	if _, redis := st["redis_version"]; redis {
		var keys int64 // INFO lists no dbN line for an empty server
		for k, v := range st {
			if !strings.HasPrefix(k, "db") {
				continue
			}
			if _, err := strconv.Atoi(k[2:]); err != nil {
				continue
			}
			for f := range strings.SplitSeq(v, ",") {
				if n, ok := strings.CutPrefix(f, "keys="); ok {
					if i, err := strconv.ParseInt(n, 10, 64); err == nil {
						keys += i
					}
				}
			}
		}
		s.Items = keys
		s.Bytes = num("used_memory")
		s.MaxBytes = num("maxmemory")
		s.Hits = num("keyspace_hits")
		s.Misses = num("keyspace_misses")
		s.Evictions = num("evicted_keys")
		s.Uptime = num("uptime_in_seconds")
	} else {
		s.Items = num("curr_items")
		s.Bytes = num("bytes")
		s.MaxBytes = num("limit_maxbytes")
		s.Hits = num("get_hits")
		s.Misses = num("get_misses")
		s.Evictions = num("evictions")
		s.Uptime = num("uptime")
	}
	if s.Hits >= 0 && s.Misses >= 0 && s.Hits+s.Misses > 0 {
		s.HitRatio = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}
