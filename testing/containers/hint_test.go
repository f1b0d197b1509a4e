package containers

import (
	"strings"
	"testing"
)

// The skip message names what is missing in the user's terms, not
// memdict's own CI scripts.
func TestEngineHint(t *testing.T) {
	for _, c := range []struct {
		dockerHost string
		want       []string
	}{
		{"", []string{"start Docker", "podman", "DOCKER_HOST="}},
		{"unix:///run/podman/podman.sock", []string{"DOCKER_HOST is unix:///run/podman/podman.sock", "docker version"}},
	} {
		got := engineHint(c.dockerHost)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("engineHint(%q) = %q, want it to mention %q", c.dockerHost, got, w)
			}
		}
		if strings.Contains(got, ".ci") {
			t.Errorf("engineHint(%q) = %q names memdict's CI scripts", c.dockerHost, got)
		}
	}
	if !strings.Contains(ErrNoEngine.Error(), "Docker API endpoint") {
		t.Errorf("ErrNoEngine = %q", ErrNoEngine)
	}
}
