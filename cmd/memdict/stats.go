package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// summary is a server's statistics summary (tool.Summarize), as stats
// prints it: its fields in JSON, its text forms in the table.
type summary struct{ tool.ServerSummary }

// summarize reads a NodeStats in memcached's or Redis's vocabulary.
func summarize(ns backend.NodeStats) summary { return summary{tool.Summarize(ns)} }

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
