package memcached

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Option configures a Client made by New.
type Option func(*config)

type config struct {
	timeout       time.Duration
	maxIdleConns  int
	maxValueSize  int64
	failureLimit  int
	retryInterval time.Duration
	batch         bool
	batchInFlight int
	batchMaxKeys  int
	tls           *tls.Config
	hash          string
	errs          []error
}

func defaultConfig() config {
	return config{
		timeout:       DefaultTimeout,
		maxIdleConns:  DefaultMaxIdleConns,
		maxValueSize:  DefaultMaxValueSize,
		failureLimit:  DefaultFailureLimit,
		retryInterval: DefaultRetryInterval,
		batch:         true,
		batchInFlight: DefaultBatchInFlight,
		batchMaxKeys:  DefaultBatchMaxKeys,
		hash:          "md5",
	}
}

func (c *config) validate() error {
	if c.timeout <= 0 {
		c.errs = append(c.errs, fmt.Errorf("timeout %v: must be positive", c.timeout))
	}
	if c.maxIdleConns < 1 {
		c.errs = append(c.errs, fmt.Errorf("max idle connections %d: must be at least 1", c.maxIdleConns))
	}
	if c.maxValueSize < 0 {
		c.errs = append(c.errs, fmt.Errorf("max value size %d: must not be negative", c.maxValueSize))
	}
	if c.failureLimit < 0 {
		c.errs = append(c.errs, fmt.Errorf("failure limit %d: must not be negative", c.failureLimit))
	}
	if c.failureLimit > 0 && c.retryInterval <= 0 {
		c.errs = append(c.errs, fmt.Errorf("retry interval %v: must be positive", c.retryInterval))
	}
	if c.batchInFlight < 1 || c.batchMaxKeys < 1 {
		c.errs = append(c.errs, fmt.Errorf("batching: in-flight %d and max keys %d must be at least 1", c.batchInFlight, c.batchMaxKeys))
	}
	if c.hash != "fnv1a_64" && c.hash != "md5" {
		c.errs = append(c.errs, fmt.Errorf("hash %q: want fnv1a_64 or md5", c.hash))
	}
	if len(c.errs) > 0 {
		return fmt.Errorf("memcached: %w", errors.Join(c.errs...))
	}
	return nil
}

// WithTimeout bounds every call, connecting included (default
// DefaultTimeout, 500ms).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithMaxIdleConns sets the number of idle connections kept per server
// (default DefaultMaxIdleConns, 16). Set it above the number of concurrent
// writes you expect, or connections are opened and closed under load.
func WithMaxIdleConns(n int) Option { return func(c *config) { c.maxIdleConns = n } }

// WithMaxValueSize sets the largest value accepted (default 1 MiB,
// memcached's -I default). Larger values fail with backend.ErrValueTooLarge
// before anything is sent.
func WithMaxValueSize(n int64) Option { return func(c *config) { c.maxValueSize = n } }

// WithFailureLimit sets how many consecutive failures mark a server down
// (default 3); 0 never marks servers down.
func WithFailureLimit(n int) Option { return func(c *config) { c.failureLimit = n } }

// WithRetryInterval sets how long a server stays marked down before a call
// probes it again (default 2s).
func WithRetryInterval(d time.Duration) Option { return func(c *config) { c.retryInterval = d } }

// WithBatching sets whether concurrent Gets are coalesced into multi-gets
// (default true), with at most inFlight requests per server at once and
// maxKeys keys per request (zero: the defaults, 1 and 256). One request in
// flight per server makes the largest batches, which suits a nearby server;
// a far one (a long round trip) may do better with 2 or more.
func WithBatching(on bool, inFlight, maxKeys int) Option {
	return func(c *config) {
		c.batch = on
		if inFlight != 0 {
			c.batchInFlight = inFlight
		}
		if maxKeys != 0 {
			c.batchMaxKeys = maxKeys
		}
	}
}

// WithHash sets the key hash of the ketama ring: "md5" (the default,
// nutcracker's "hash: md5") or "fnv1a_64" (nutcracker's own default
// "hash: fnv1a_64"). Use the same as the nutcracker or other clients that
// share the servers. md5 is the default because fnv1a_64, as twemproxy
// implements it, is weak: keys that differ only in their last bytes
// (user:1, user:2, ...) — as the keys of one Dict do — can crowd onto one
// server. Choose fnv1a_64 only to share servers with a nutcracker left at
// its default.
func WithHash(name string) Option { return func(c *config) { c.hash = name } }

// WithTLS makes the Client talk TLS with cfg (memcached started with
// -Z/--enable-ssl). When cfg.ServerName is empty each server's host is
// used.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }
