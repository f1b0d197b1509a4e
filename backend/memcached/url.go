package memcached

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/memdict/memdict/backend"
)

func init() {
	backend.Register("memcached", open)
	backend.Register("memcacheds", open)
	backend.RegisterValidator("memcached", backend.ValidateByOpening(open))
	backend.RegisterValidator("memcacheds", backend.ValidateByOpening(open))
}

// Open opens a Client from a memcached:// or memcacheds:// URL; the
// parameters are listed in the package documentation. It is what
// backend.Open calls for these schemes. It returns an error naming the
// problem for a URL with user information, a path, a bad server address or
// port, an unknown or malformed parameter, or unreadable TLS files.
func Open(ctx context.Context, rawURL string) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("memcached: bad URL %q: %w", backend.Redact(rawURL), err)
	}
	return openURL(u)
}

func open(_ context.Context, u *url.URL) (backend.Backend, error) {
	c, err := openURL(u)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func openURL(u *url.URL) (*Client, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "memcached" && scheme != "memcacheds" {
		return nil, fmt.Errorf("memcached: URL scheme %q: want memcached or memcacheds", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("memcached: URL has user information, which the memcached text protocol cannot use")
	}
	if err := backend.SpilledPassword(u); err != nil {
		return nil, fmt.Errorf("memcached: malformed URL: %w (the text protocol cannot use a password)", err)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("memcached: URL path %q: memcached has no databases; put servers in the host part", u.Path)
	}
	if u.Host == "" {
		return nil, errors.New("memcached: URL names no server (want memcached://host:port[,host:port...])")
	}
	addrs := strings.Split(u.Host, ",")

	d := defaultConfig()
	p := backend.NewParams(u)
	p.Alias("max_value_length", "max_value_size")
	p.Alias("batch_size", "batch_max_keys")
	var opts []Option
	opts = append(opts,
		WithTimeout(p.Duration("timeout", d.timeout)),
		WithConns(p.Int("conns", d.conns)),
		WithMaxIdleConns(p.Int("max_idle_conns", d.maxIdleConns)),
		WithMaxValueSize(p.Int64("max_value_length", d.maxValueSize)),
		WithItemSizeMax(p.Int64("item_size_max", d.itemSizeMax)),
		WithFailureLimit(p.Int("failure_limit", d.failureLimit)),
		WithRetryInterval(p.Duration("retry_interval", d.retryInterval)),
		WithAutoEject(p.Bool("auto_eject", d.autoEject)),
		WithAutoEjectTTL(p.Duration("auto_eject_ttl", d.autoEjectTTL)),
		WithResolveInterval(p.Duration("resolve_interval", d.resolveEvery)),
	)
	opts = append(opts, WithHash(p.String("hash", d.hash)))
	// Accepted for older URLs (and still checked for their form), ignored:
	// the engine pipelines every call.
	_ = p.Bool("batch", true)
	if v := p.Int("batch_inflight", 1); v < 1 {
		return nil, fmt.Errorf("memcached: batch_inflight %d: the in-flight count must be at least 1", v)
	}
	if v := p.Int("batch_size", 1); v < 1 {
		return nil, fmt.Errorf("memcached: %s %d: must be at least 1", p.Name("batch_size"), v)
	}
	useTLS := p.Bool("tls", scheme == "memcacheds")
	ca := p.String("tls_ca", "")
	cert := p.String("tls_cert", "")
	key := p.String("tls_key", "")
	serverName := p.String("tls_server_name", "")
	insecure := p.Bool("tls_insecure_skip_verify", false)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("memcached: %w", err)
	}
	if scheme == "memcacheds" && !useTLS {
		return nil, errors.New("memcached: memcacheds:// with tls=false: use memcached:// for plain TCP")
	}
	if !useTLS && (ca != "" || cert != "" || key != "" || serverName != "" || insecure) {
		return nil, errors.New("memcached: tls_* parameters given without TLS (use memcacheds:// or tls=true)")
	}
	if useTLS {
		cfg, err := tlsConfig(ca, cert, key, serverName, insecure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithTLS(cfg))
	}
	return New(addrs, opts...)
}

func tlsConfig(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: insecure, //nolint:gosec // opt-in, documented as for testing
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("memcached: tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("memcached: tls_ca %s: no PEM certificate found", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("memcached: tls_cert and tls_key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("memcached: tls_cert/tls_key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
