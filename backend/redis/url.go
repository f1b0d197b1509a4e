package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
)

// The URL schemes this package registers with backend.Register.
const (
	Scheme    = "redis"
	SchemeTLS = "rediss"
)

// DefaultPort is the port used when a URL's host has none.
const DefaultPort = "6379"

func init() {
	backend.Register(Scheme, openURL)
	backend.Register(SchemeTLS, openURL)
	for _, s := range []string{Scheme, SchemeTLS} {
		backend.RegisterValidator(s, func(u *url.URL) error { _, _, _, err := parseURL(u); return err })
	}
}

// openURL is the backend.Opener for redis:// and rediss://.
func openURL(_ context.Context, u *url.URL) (backend.Backend, error) {
	uo, ring, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	switch {
	case ring:
		return NewRing(ringOptions(uo), opts...)
	case uo.MasterName != "":
		return NewSentinel(uo.Failover(), opts...)
	case uo.IsClusterMode:
		return NewCluster(uo.Cluster(), opts...)
	}
	return New(uo.Simple(), opts...)
}

// ParseURL turns a redis:// or rediss:// URL into go-redis options and this
// package's Options, as backend.Open does before calling New, NewCluster or
// NewSentinel.
// The URL forms and parameters are those of the package documentation:
//
//	redis://[user[:password]@]host[:port][/db][?param=value&...]
//	rediss://...                              (TLS)
//	redis://host1:port1,host2:port2,...?cluster=true   (Redis Cluster seeds)
//	redis://s1:26379,s2:26379,s3:26379/0?sentinel_master=NAME   (Redis Sentinel)
//	redis://host1:port1,host2:port2,.../0?ring=true    (Redis Ring shards)
//
// With sentinel_master, the hosts are sentinels (port 26379 by default)
// and the options have MasterName set: backend.Open then calls
// NewSentinel with uo.Failover().
//
// A Ring's options are not go-redis's UniversalOptions (go-redis would
// make a cluster client of several hosts): ParseURL returns an error for a
// URL with ring=true that says to use ParseRingURL.
//
// An unknown parameter, a malformed value or a TLS parameter on redis:// is
// an error that names it; errors never contain the password.
func ParseURL(u *url.URL) (*goredis.UniversalOptions, []Option, error) {
	uo, ring, opts, err := parseURL(u)
	if err != nil {
		return nil, nil, err
	}
	if ring {
		return nil, nil, errors.New("redis: ParseURL of a URL with ring=true: its options are a Ring's, use ParseRingURL")
	}
	return uo, opts, nil
}

// ParseRingURL turns a redis:// or rediss:// URL with ring=true into the
// go-redis options of a Ring and this package's Options, as backend.Open
// does before calling NewRing:
//
//	redis://[user[:password]@]host1[:port1],host2[:port2],...[/db]?ring=true[&param=value...]
//
// Each host is a shard (port 6379 by default), named by its address as
// the URL gives it (host:port): go-redis spreads the keys over the shards
// by consistent hashing of their names, so programs that share a Ring see
// the same keys on the same shards when their URLs list the same
// addresses, in any order (a program using NewRing names its shards so
// too). The user, password, database, TLS parameters and go-redis
// parameters (dial_timeout, pool_size, ...) apply to every shard; TLS
// verifies each shard's host unless tls_server_name says one. The
// parameters are ParseURL's; cluster=true and sentinel_master are errors
// with ring=true, as is a host given twice. ParseRingURL returns an error
// for a URL without ring=true that says to use ParseURL.
func ParseRingURL(u *url.URL) (*goredis.RingOptions, []Option, error) {
	uo, ring, opts, err := parseURL(u)
	if err != nil {
		return nil, nil, err
	}
	if !ring {
		return nil, nil, errors.New("redis: ParseRingURL of a URL without ring=true: use ParseURL")
	}
	return ringOptions(uo), opts, nil
}

// ringOptions returns the options of a Ring whose shards are uo.Addrs,
// each named by its address, with uo's other settings (those parseURL
// sets).
func ringOptions(uo *goredis.UniversalOptions) *goredis.RingOptions {
	addrs := make(map[string]string, len(uo.Addrs))
	for _, a := range uo.Addrs {
		addrs[a] = a
	}
	return &goredis.RingOptions{
		Addrs:        addrs,
		ClientName:   uo.ClientName,
		Protocol:     uo.Protocol,
		Username:     uo.Username,
		Password:     uo.Password,
		DB:           uo.DB,
		MaxRetries:   uo.MaxRetries,
		DialTimeout:  uo.DialTimeout,
		ReadTimeout:  uo.ReadTimeout,
		WriteTimeout: uo.WriteTimeout,
		PoolSize:     uo.PoolSize,
		MinIdleConns: uo.MinIdleConns,
		PoolTimeout:  uo.PoolTimeout,
		TLSConfig:    uo.TLSConfig,
	}
}

// parseURL is ParseURL and ParseRingURL: ring reports ring=true (the
// hosts are uo.Addrs; see ringOptions).
func parseURL(u *url.URL) (uo *goredis.UniversalOptions, ring bool, opts []Option, err error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != Scheme && scheme != SchemeTLS {
		return nil, false, nil, fmt.Errorf("redis: unsupported scheme %q (want %s:// or %s://)", u.Scheme, Scheme, SchemeTLS)
	}
	if u.Opaque != "" {
		return nil, false, nil, errors.New("redis: malformed URL: want redis://host:port")
	}
	if err := backend.SpilledPassword(u); err != nil {
		return nil, false, nil, fmt.Errorf("redis: malformed URL: %w", err)
	}
	p := backend.NewParams(u)
	o := &goredis.UniversalOptions{}
	o.IsClusterMode = p.Bool("cluster", false)
	ring = p.Bool("ring", false)
	o.MasterName = p.String("sentinel_master", "")
	o.SentinelUsername = p.String("sentinel_username", "")
	o.SentinelPassword = p.String("sentinel_password", "")
	defaultPort := DefaultPort
	if o.MasterName != "" {
		defaultPort = DefaultSentinelPort
	}
	o.DialTimeout = p.Duration("dial_timeout", 0)
	o.ReadTimeout = p.Duration("read_timeout", 0)
	o.WriteTimeout = p.Duration("write_timeout", 0)
	o.PoolSize = p.Int("pool_size", 0)
	o.MinIdleConns = p.Int("min_idle_conns", 0)
	o.PoolTimeout = p.Duration("pool_timeout", 0)
	o.MaxRetries = p.Int("max_retries", 0) // New turns 0 into -1, no retries
	o.Protocol = p.Int("protocol", 3)
	o.ClientName = p.String("client_name", "")
	p.Alias("max_value_length", "max_value_size")
	if p.Has("max_value_length") {
		opts = append(opts, WithMaxValueLen(p.Int("max_value_length", DefaultMaxValueLen)))
	}
	timeout := p.Duration("timeout", DefaultTimeout)
	failureLimit := p.Int("failure_limit", DefaultFailureLimit)
	retryInterval := p.Duration("retry_interval", DefaultRetryInterval)
	opts = append(opts, WithTimeout(timeout), WithFailureLimit(failureLimit), WithRetryInterval(retryInterval))
	opts = append(opts, WithFlush(p.Bool("allow_flush", false)),
		WithBatching(p.Bool("batch", true), p.Int("batch_inflight", 0), p.Int("batch_size", 0)))
	caFile := p.String("tls_ca", "")
	certFile := p.String("tls_cert", "")
	keyFile := p.String("tls_key", "")
	serverName := p.String("tls_server_name", "")
	insecure := p.Bool("tls_insecure_skip_verify", false)
	var errs []error
	if err := p.Err(); err != nil {
		errs = append(errs, err)
	}
	if timeout <= 0 {
		errs = append(errs, fmt.Errorf("parameter timeout=%v: must be positive", timeout))
	}
	if failureLimit < 0 {
		errs = append(errs, fmt.Errorf("parameter failure_limit=%d: must not be negative", failureLimit))
	}
	if retryInterval <= 0 {
		errs = append(errs, fmt.Errorf("parameter retry_interval=%v: must be positive", retryInterval))
	}
	if o.Protocol != 2 && o.Protocol != 3 {
		errs = append(errs, fmt.Errorf("parameter protocol=%d: want 2 or 3", o.Protocol))
	}
	switch {
	case o.MasterName != "" && o.IsClusterMode:
		errs = append(errs, errors.New("sentinel_master with cluster=true: the hosts are either sentinels or cluster seeds"))
	case ring && o.IsClusterMode:
		errs = append(errs, errors.New("ring=true with cluster=true: the hosts are either a Ring's shards or cluster seeds"))
	case ring && o.MasterName != "":
		errs = append(errs, errors.New("ring=true with sentinel_master: the hosts are either a Ring's shards or sentinels"))
	case o.MasterName == "" && (o.SentinelUsername != "" || o.SentinelPassword != ""):
		errs = append(errs, errors.New("sentinel_username or sentinel_password without sentinel_master"))
	}

	// Hosts.
	if u.Host == "" {
		errs = append(errs, errors.New("missing host (want redis://host:port)"))
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			errs = append(errs, fmt.Errorf("empty host in %q", u.Host))
			continue
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, defaultPort
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				host = h[1 : len(h)-1]
			}
		}
		if host == "" {
			errs = append(errs, fmt.Errorf("empty host name in %q", h))
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("bad port %q in %q", port, h))
		}
		a := net.JoinHostPort(host, port)
		if ring && slices.Contains(o.Addrs, a) {
			errs = append(errs, fmt.Errorf("host %s given twice: a Ring's shards are named by their addresses", a))
		}
		o.Addrs = append(o.Addrs, a)
	}
	if len(o.Addrs) > 1 && !o.IsClusterMode && o.MasterName == "" && !ring {
		errs = append(errs, fmt.Errorf("%d hosts given: several hosts are the seeds of a Redis Cluster and need cluster=true, sentinels and need sentinel_master=NAME, or a Ring's shards and need ring=true", len(o.Addrs)))
	}

	// Database.
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("bad database %q in the path (want a number, as in redis://host:6379/0)", db))
		} else if n != 0 && o.IsClusterMode {
			errs = append(errs, fmt.Errorf("database %d: a Redis Cluster has only database 0", n))
		} else {
			o.DB = n
		}
	}

	// Credentials.
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}

	// TLS.
	if scheme == SchemeTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
		// Through sentinels, each connection verifies the host it dials
		// (a sentinel's, the master's) unless tls_server_name says one;
		// so does each of a Ring's shards.
		if tc.ServerName == "" && len(o.Addrs) > 0 && o.MasterName == "" && !ring {
			tc.ServerName, _, _ = net.SplitHostPort(o.Addrs[0])
		}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("tls_ca: %w", err))
			} else {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					errs = append(errs, fmt.Errorf("tls_ca: no PEM certificate in %s", caFile))
				}
				tc.RootCAs = pool
			}
		}
		if (certFile == "") != (keyFile == "") {
			errs = append(errs, errors.New("tls_cert and tls_key must be given together"))
		} else if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("tls_cert/tls_key: %w", err))
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
		o.TLSConfig = tc
	} else {
		var bad []string
		for name, set := range map[string]bool{
			"tls_ca": caFile != "", "tls_cert": certFile != "", "tls_key": keyFile != "",
			"tls_server_name": serverName != "", "tls_insecure_skip_verify": insecure,
		} {
			if set {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			errs = append(errs, fmt.Errorf("TLS option(s) %s given on redis://: use rediss://", strings.Join(slices.Sorted(slices.Values(bad)), ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, nil, fmt.Errorf("redis: %w", err)
	}
	return o, ring, opts, nil
}
