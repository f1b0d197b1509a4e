package testserver

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// MemcachedTLS starts memcached speaking only TLS on a free loopback port,
// with a certificate from WriteTLSFiles:
//
//	memcached -l 127.0.0.1 -p PORT -U 0 -m 64 -I 2m -Z -o ssl_chain_cert=F,ssl_key=F
//
// plus extra arguments. It waits until the server answers "version" over
// TLS, and returns the process and the certificate files (clients verify
// the server with files.CAFile). A memcached built without TLS fails to
// start, which fails the test with its output.
func MemcachedTLS(t testing.TB, extra ...string) (*Process, TLSFiles) {
	t.Helper()
	files := WriteTLSFiles(t)
	ready := tlsReady(t, files, "version\r\n", func(line string) error {
		if !strings.HasPrefix(line, "VERSION ") {
			return fmt.Errorf("unexpected answer to version: %q", line)
		}
		return nil
	})
	args := []string{"-l", "127.0.0.1", "-p", PortPlaceholder, "-U", "0", "-m", "64", "-I", "2m",
		"-Z", "-o", "ssl_chain_cert=" + files.CertFile + ",ssl_key=" + files.KeyFile}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, extra...)
	return StartWith(t, Options{Ready: ready}, "memcached", args...), files
}
