package testserver

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSFiles names the PEM files of a test certificate authority and of a
// server certificate it signed, as written by WriteTLSFiles.
type TLSFiles struct {
	// CAFile holds the CA certificate: clients verify the server with it.
	CAFile string
	// CertFile and KeyFile hold the server's certificate and private key,
	// valid for 127.0.0.1, ::1 and localhost.
	CertFile, KeyFile string
}

// WriteTLSFiles generates, in a new temporary directory of t, a self-signed
// CA and a server certificate it signs (ECDSA P-256, valid for an hour
// around now, for 127.0.0.1, ::1 and localhost), and returns the files'
// names. It fails the test on error.
func WriteTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testserver: CA key: %v", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "memdict test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testserver: CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testserver: CA certificate: %v", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testserver: server key: %v", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testserver: server certificate: %v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatalf("testserver: server key: %v", err)
	}
	f := TLSFiles{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
	}
	for name, block := range map[string]*pem.Block{
		f.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
		f.CertFile: {Type: "CERTIFICATE", Bytes: srvDER},
		f.KeyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatalf("testserver: %v", err)
		}
	}
	return f
}

// tlsReady returns an Options.Ready function that dials the server over
// TLS, verifying it with files.CAFile as 127.0.0.1, sends request and
// hands the first reply line, without its CRLF, to check. It fails the test
// if the CA file cannot be read or holds no certificate.
func tlsReady(t testing.TB, files TLSFiles, request string, check func(line string) error) func(addr string) error {
	t.Helper()
	caPEM, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("testserver: no certificate in %s", files.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return func(addr string) error {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: cfg}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(request)); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		return check(strings.TrimRight(line, "\r\n"))
	}
}

// RedisTLS starts redis-server speaking only TLS on a free loopback port,
// with a certificate from WriteTLSFiles:
//
//	redis-server --port 0 --tls-port PORT --bind 127.0.0.1 --save "" --appendonly no
//	    --tls-cert-file F --tls-key-file F --tls-ca-cert-file F --tls-auth-clients no
//
// plus extra arguments. It waits until the server answers PING over TLS,
// and returns the process and the certificate files (clients verify the
// server with files.CAFile). A redis-server built without TLS fails to
// start, which fails the test with its output.
func RedisTLS(t testing.TB, extra ...string) (*Process, TLSFiles) {
	t.Helper()
	files := WriteTLSFiles(t)
	args := []string{"--port", "0", "--tls-port", PortPlaceholder, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--tls-cert-file", files.CertFile, "--tls-key-file", files.KeyFile,
		"--tls-ca-cert-file", files.CAFile, "--tls-auth-clients", "no"}
	args = append(args, extra...)
	ready := tlsReady(t, files, "PING\r\n", func(line string) error {
		switch {
		case line == "+PONG", strings.HasPrefix(line, "-NOAUTH"), strings.HasPrefix(line, "-WRONGPASS"):
			return nil
		}
		return fmt.Errorf("unexpected answer to PING over TLS: %q", line)
	})
	return StartWith(t, Options{Ready: ready}, "redis-server", args...), files
}
