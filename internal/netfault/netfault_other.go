//go:build !linux

package netfault

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/memdict/memdict/internal/testserver"
)

// Net is a network namespace; there are none outside Linux.
type Net struct {
	// Name is the namespace's name.
	Name string
}

var errNoNetns = errors.New("netfault: network namespaces need Linux")

// New skips t, or fails it when MEMDICT_REQUIRE_SERVERS=1: network
// namespaces need Linux.
func New(t testing.TB) *Net {
	t.Helper()
	testserver.SkipOrFail(t, "%v", errNoNetns)
	return nil
}

// Exec fails: there is no namespace.
func (n *Net) Exec(args ...string) error { return errNoNetns }

// DialContext fails: there is no namespace.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errNoNetns
}

// Memcached skips or fails t.
func (n *Net) Memcached(t testing.TB, extra ...string) *testserver.Process {
	t.Helper()
	testserver.SkipOrFail(t, "%v", errNoNetns)
	return nil
}

// Redis skips or fails t.
func (n *Net) Redis(t testing.TB, extra ...string) *testserver.Process {
	t.Helper()
	testserver.SkipOrFail(t, "%v", errNoNetns)
	return nil
}

// Drop fails: there is no namespace.
func (n *Net) Drop(port int) error { return errNoNetns }

// Loss fails: there is no namespace.
func (n *Net) Loss(port int, percent float64) error { return errNoNetns }

// Heal fails: there is no namespace.
func (n *Net) Heal() error { return errNoNetns }
