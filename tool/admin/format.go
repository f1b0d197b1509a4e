package admin

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// groupDigits returns n in decimal with a comma between groups of three
// digits: 967639 gives "967,639".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// groupUint is groupDigits for counters.
func groupUint(n uint64) string {
	if n > 1<<63-1 {
		s := strconv.FormatUint(n, 10)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return groupDigits(int64(n))
}

// countText is a count with separators, "-" when unknown (negative).
func countText(n int64) string {
	if n < 0 {
		return "-"
	}
	return groupDigits(n)
}

// bytesText is a size in binary units: "512 B", "1 MiB", "1.5 GiB".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return groupDigits(n) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	v = strings.TrimSuffix(v, ".0")
	return fmt.Sprintf("%s %ciB", v, "KMGTPE"[exp])
}

// limitText is a plugin's key or value limit: "no limit" for 0, else
// "250 B" or "1,048,576 B (1 MiB)".
func limitText(n int) string {
	if n <= 0 {
		return "no limit"
	}
	if n < 1024 {
		return groupDigits(int64(n)) + " B"
	}
	return fmt.Sprintf("%s B (%s)", groupDigits(int64(n)), bytesText(int64(n)))
}

// ratioText is a hit ratio with its counts: "99.9% (967,639 / 967,723)",
// "-" before any read.
func ratioText(hits, total uint64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%s / %s)", 100*float64(hits)/float64(total), groupUint(hits), groupUint(total))
}

// expirationText is a plugin's expiration: "never" for 0.
func expirationText(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

// latencyText is a latency in milliseconds: "0.42 ms".
func latencyText(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
}

// uptimeText is a server's uptime in seconds, "-" when unknown.
func uptimeText(s int64) string {
	if s < 0 {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}
