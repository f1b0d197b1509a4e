package tool_test

import (
	"testing"

	"github.com/memdict/memdict/internal/leakcheck"
)

// No test leaves a goroutine behind: every backend a Tool opens is closed
// by Close, including those retired by reconfiguration.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
