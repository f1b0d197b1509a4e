package admin

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
)

// nodeSummary is the part of a server's statistics an operator looks at
// first, from memcached's "stats" or Redis's INFO. A field is -1 when the
// server does not report it.
type nodeSummary struct {
	Addr      string
	Items     int64
	Bytes     int64
	MaxBytes  int64 // 0: no limit
	Hits      int64
	Misses    int64
	Evictions int64
	Uptime    int64
	Error     string
}

// summarize reads a NodeStats in memcached's or Redis's vocabulary.
func summarize(ns backend.NodeStats) nodeSummary {
	s := nodeSummary{Addr: ns.Addr, Items: -1, Bytes: -1, MaxBytes: -1, Hits: -1, Misses: -1, Evictions: -1, Uptime: -1}
	if ns.Err != nil {
		s.Error = ns.Err.Error()
		return s
	}
	st := ns.Stats
	num := func(names ...string) int64 {
		for _, n := range names {
			if v, ok := st[n]; ok {
				if i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					return i
				}
			}
		}
		return -1
	}
	if _, redis := st["redis_version"]; redis {
		var keys int64
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
		s.Items = keys // INFO lists no dbN line for an empty server
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
	return s
}

// Text forms of the summary's fields, "-" when unknown; the page's
// template calls them.

// ItemsText is the number of items, with thousands separators.
func (s nodeSummary) ItemsText() string { return countText(s.Items) }

// MemoryText is the memory used, and the limit if there is one.
func (s nodeSummary) MemoryText() string {
	if s.Bytes < 0 {
		return "-"
	}
	if s.MaxBytes > 0 {
		return fmt.Sprintf("%s / %s", bytesText(s.Bytes), bytesText(s.MaxBytes))
	}
	return bytesText(s.Bytes)
}

// HitRatioText is the server's hit ratio with its counts.
func (s nodeSummary) HitRatioText() string {
	if s.Hits < 0 || s.Misses < 0 {
		return "-"
	}
	return ratioText(uint64(s.Hits), uint64(s.Hits+s.Misses))
}

// EvictionsText is the number of evictions.
func (s nodeSummary) EvictionsText() string { return countText(s.Evictions) }

// UptimeText is the server's uptime.
func (s nodeSummary) UptimeText() string { return uptimeText(s.Uptime) }
