package admin

import "testing"

func TestNumberFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{groupDigits(0), "0"},
		{groupDigits(999), "999"},
		{groupDigits(1000), "1,000"},
		{groupDigits(967639), "967,639"},
		{groupDigits(1048576), "1,048,576"},
		{groupDigits(-1234567), "-1,234,567"},
		{groupUint(18446744073709551615), "18,446,744,073,709,551,615"},
		{countText(-1), "-"},
		{countText(12345), "12,345"},
		{bytesText(512), "512 B"},
		{bytesText(1 << 20), "1 MiB"},
		{bytesText(1536), "1.5 KiB"},
		{bytesText(64 << 20), "64 MiB"},
		{limitText(0), "no limit"},
		{limitText(250), "250 B"},
		{limitText(1 << 20), "1,048,576 B (1 MiB)"},
		{ratioText(967639, 967723), "100.0% (967,639 / 967,723)"},
		{ratioText(1, 3), "33.3% (1 / 3)"},
		{ratioText(0, 0), "-"},
		{uptimeText(3661), "1h1m1s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
