package tool

import (
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/jsonvalue"
)

// What the memdict command and the admin page share to show values and
// servers to people: a JSON reader for typed values, and the summary of a
// server's statistics. Values themselves are read and written as
// memdict.Raw, through a Dict[memdict.Raw] of the plugin.

// ParseJSON parses one JSON value as the memdict command and the admin
// page take a typed value: integers stay integers (int64, or uint64 above
// its range), so that a Go program reading them into an int gets them
// back; other numbers are float64 (a number no float64 holds, 1e999, is
// an error). More than one value is an error.
func ParseJSON(b []byte) (any, error) { return jsonvalue.Parse(b) }

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

// The names of the summary's counts (items, bytes, max bytes, hits,
// misses, evictions, uptime) in memcached's "stats" and Redis's INFO,
// where the items are the sum of the dbN lines' keys.
var (
	memcachedStats = [7]string{"curr_items", "bytes", "limit_maxbytes", "get_hits", "get_misses", "evictions", "uptime"}
	redisStats     = [7]string{"", "used_memory", "maxmemory", "keyspace_hits", "keyspace_misses", "evicted_keys", "uptime_in_seconds"}
)

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
	names := memcachedStats
	if _, redis := st["redis_version"]; redis {
		names = redisStats
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
	}
	for i, f := range []*int64{&s.Items, &s.Bytes, &s.MaxBytes, &s.Hits, &s.Misses, &s.Evictions, &s.Uptime} {
		if names[i] != "" {
			*f = num(names[i])
		}
	}
	if s.Hits >= 0 && s.Misses >= 0 && s.Hits+s.Misses > 0 {
		s.HitRatio = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}
