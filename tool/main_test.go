package tool_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine behind: every backend a Tool opens is closed
// by Close, including those retired by reconfiguration.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
