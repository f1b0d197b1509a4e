package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/memdict/memdict/backend"
)

// summary is the part of a server's statistics an operator looks at
// first, from memcached's "stats" or Redis's INFO. A field is -1 when the
// server does not report it.
type summary struct {
	Addr      string  `json:"addr"`
	Items     int64   `json:"items"`
	Bytes     int64   `json:"bytes"`
	MaxBytes  int64   `json:"max_bytes"` // 0: no limit
	Hits      int64   `json:"hits"`
	Misses    int64   `json:"misses"`
	HitRatio  float64 `json:"hit_ratio"` // -1 before any read
	Evictions int64   `json:"evictions"`
	Uptime    int64   `json:"uptime_seconds"`
	Error     string  `json:"error,omitempty"`
}

// summarize reads a NodeStats in memcached's or Redis's vocabulary.
func summarize(ns backend.NodeStats) summary {
	s := summary{Addr: ns.Addr, Items: -1, Bytes: -1, MaxBytes: -1, Hits: -1, Misses: -1, HitRatio: -1, Evictions: -1, Uptime: -1}
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
		var keys int64 = -1
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
						if keys < 0 {
							keys = 0
						}
						keys += i
					}
				}
			}
		}
		if keys < 0 {
			keys = 0 // INFO lists no dbN line for an empty server
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

// Text forms of the summary's fields, "-" when unknown.

func (s summary) ItemsText() string { return countText(s.Items) }

func (s summary) MemoryText() string {
	if s.Bytes < 0 {
		return "-"
	}
	if s.MaxBytes > 0 {
		return fmt.Sprintf("%s / %s", bytesText(s.Bytes), bytesText(s.MaxBytes))
	}
	return bytesText(s.Bytes)
}

func (s summary) HitRatioText() string {
	if s.HitRatio < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*s.HitRatio, s.Hits, s.Hits+s.Misses)
}

func (s summary) EvictionsText() string { return countText(s.Evictions) }

func (s summary) UptimeText() string {
	if s.Uptime < 0 {
		return "-"
	}
	return (time.Duration(s.Uptime) * time.Second).String()
}

func countText(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
