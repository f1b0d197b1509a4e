package testserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NutcrackerProcess is a running nutcracker (twemproxy) started by
// Nutcracker.
type NutcrackerProcess struct {
	// Process is the nutcracker process. Its Addr and Port are those of
	// the stats listener (nutcracker's -s).
	*Process
	// Listen is the "127.0.0.1:port" address of the proxied pool: clients
	// speak the memcached protocol to it.
	Listen string
	// ConfFile is the configuration file written for it.
	ConfFile string
}

// Nutcracker starts nutcracker (Debian package nutcracker) as a memcached
// proxy on a free loopback port, in front of servers ("host:port" each,
// weight 1, named by nutcracker's default rule), with
//
//	distribution: ketama
//	hash: fnv1a_64
//
// plus poolConf, extra YAML lines for the pool (for example
// "    auto_eject_hosts: true", or "    hash: md5" to replace the default
// hash), indented by the caller with four spaces. It
// waits until the proxy port accepts connections. A t.Cleanup stops it.
func Nutcracker(t testing.TB, servers []string, poolConf ...string) *NutcrackerProcess {
	t.Helper()
	LookPath(t, "nutcracker")
	dir := t.TempDir()
	listen := addr(FreePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "memdict:\n    listen: %s\n    distribution: ketama\n    timeout: 2000\n", listen)
	hash := "    hash: fnv1a_64\n"
	for _, line := range poolConf {
		if strings.HasPrefix(strings.TrimSpace(line), "hash:") {
			hash = ""
		}
	}
	b.WriteString(hash)
	for _, line := range poolConf {
		b.WriteString(line)
		b.WriteString("\n")
	}
	b.WriteString("    servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "        - %s:1\n", s)
	}
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("testserver: nutcracker config: %v", err)
	}
	ready := func(string) error {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
	p := StartWith(t, Options{Ready: ready}, "nutcracker",
		"-c", conf, "-s", PortPlaceholder, "-a", "127.0.0.1", "-p", filepath.Join(dir, "nutcracker.pid"))
	return &NutcrackerProcess{Process: p, Listen: listen, ConfFile: conf}
}
