package admin

import (
	"fmt"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// nodeSummary is a server's statistics summary (tool.Summarize), with
// the text forms the page shows.
type nodeSummary struct{ tool.ServerSummary }

// summarize reads a NodeStats in memcached's or Redis's vocabulary.
func summarize(ns backend.NodeStats) nodeSummary { return nodeSummary{tool.Summarize(ns)} }

// Text forms of the summary's fields, "-" when unknown, for the page.

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
