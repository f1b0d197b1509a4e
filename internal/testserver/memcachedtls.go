package testserver

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
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
	pem, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ready := func(addr string) error {
		d := &net.Dialer{Timeout: time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("version\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "VERSION ") {
			return fmt.Errorf("unexpected answer to version: %q", line)
		}
		return nil
	}
	args := []string{"-l", "127.0.0.1", "-p", PortPlaceholder, "-U", "0", "-m", "64", "-I", "2m",
		"-Z", "-o", "ssl_chain_cert=" + files.CertFile + ",ssl_key=" + files.KeyFile}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, extra...)
	return StartWith(t, Options{Ready: ready}, "memcached", args...), files
}
