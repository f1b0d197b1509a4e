package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/memdict/memdict/internal/webtest"
	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// A sign-in form holds a token: one of a megabyte is refused as too large
// at once, with a message that says so, instead of being parsed whole and
// held while it waits its turn among the failed sign-ins (a flood of
// them held 2 MB each); the right token still signs in.
func TestAdminSignInBodyLimit(t *testing.T) {
	tl := newTool(t, tool.Config{})
	hs, _ := serveAdmin(t, tl, "/", admin.Options{Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := webtest.New(t, hs.URL+"/", hs.URL)
	code, body := b.Post("login", url.Values{"token": {"wrong-token"}, "pad": {strings.Repeat("x", 1<<20)}})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "sign-in form") || !strings.Contains(body, "larger than") {
		t.Errorf("a sign-in of 1 MB: %d, want 413 saying the form is too large\n%.2000s", code, body)
	}
	code, body = b.Post("login", url.Values{"token": {testToken}})
	if code != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
		t.Errorf("sign-in after the refused one: %d", code)
	}
}
