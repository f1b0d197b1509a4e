package tool_test

import (
	"os/exec"
	"strings"
	"testing"

	// The tests use every driver and the Python formats; the tool package
	// itself imports only the in-memory driver (drivers.go), and not
	// codec/python.
	_ "github.com/memdict/memdict/backend/memcached"
	_ "github.com/memdict/memdict/backend/redis"
	_ "github.com/memdict/memdict/codec/python"
	"github.com/memdict/memdict/internal/testserver"
)

// TestDriversLinkedOnlyWhenImported: the tool package links no driver but
// the in-memory one, nor their client libraries, nor codec/python (the
// Python formats); a program that did not import a URL's driver, or
// codec/python for a plugin or Dict of a Python format, gets an error that
// names the import.
func TestDriversLinkedOnlyWhenImported(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testserver.SkipOrFail(t, "no go command: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/memdict/memdict/tool").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, unwanted := range []string{"memdict/backend/memcached", "memdict/backend/redis", "github.com/bradfitz/gomemcache", "github.com/redis/go-redis", "memdict/codec/python"} {
			if strings.Contains(d, unwanted) {
				t.Errorf("package tool depends on %s", d)
			}
		}
	}
	if !strings.Contains(string(out), "github.com/memdict/memdict/backend/memory\n") {
		t.Errorf("package tool does not link the in-memory driver, its default:\n%s", out)
	}

	// testdata/nodriver.go configures a Tool without importing a driver.
	out, err = exec.Command(goTool, "run", "./testdata/nodriver.go").CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./testdata/nodriver.go: %v\n%s", err, out)
	}
	for _, want := range []string{
		`mem:// works`,
		`memcached://127.0.0.1:11211: ErrUnknownScheme: true`,
		`import _ "github.com/memdict/memdict/backend/memcached"`,
		`redis://127.0.0.1:6379/0: ErrUnknownScheme: true`,
		`import _ "github.com/memdict/memdict/backend/redis"`,
		`registered: mem (`,
		`plugin format erp5: tool: config: plugin "default": field "format": format erp5 needs package codec/python, which this program does not link: forgotten import? add import _ "github.com/memdict/memdict/codec/python"`,
		`Dict format python: memdict: New "p": WithFormat: format python needs package codec/python`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the program without drivers printed no %q:\n%s", want, out)
		}
	}
}
