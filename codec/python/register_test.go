package python

import (
	"testing"

	"github.com/memdict/memdict/internal/pyvalues"
)

// TestRegistersPythonFormats: importing the package registers its codec
// for memdict's Python formats, with the client flag of an int that the
// formats' counters write.
func TestRegistersPythonFormats(t *testing.T) {
	if _, ok := pyvalues.Get().(Codec); !ok {
		t.Fatalf("registered codec %T, want python.Codec", pyvalues.Get())
	}
	if err := pyvalues.Missing("erp5"); err != nil {
		t.Errorf("Missing with the package linked: %v", err)
	}
	if pyvalues.FlagInt != FlagInt {
		t.Errorf("pyvalues.FlagInt = %d, FlagInt = %d", pyvalues.FlagInt, FlagInt)
	}
}
