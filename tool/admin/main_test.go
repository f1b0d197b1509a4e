package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine behind: the handler starts none of its own,
// and the Tools and servers the tests start are closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
