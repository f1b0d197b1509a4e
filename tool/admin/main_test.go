package admin_test

import (
	"testing"

	"github.com/memdict/memdict/internal/leakcheck"
)

// No test leaves a goroutine behind: the handler starts none of its own,
// and the Tools and servers the tests start are closed.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
