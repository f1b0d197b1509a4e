package redis

import (
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

func TestParseURL(t *testing.T) {
	ca := testserver.WriteTLSFiles(t).CAFile
	for _, c := range []struct {
		url     string
		check   func(t *testing.T, u *parsed)
		wantErr string // substring; "" means success
	}{
		{url: "redis://localhost", check: func(t *testing.T, u *parsed) {
			eq(t, u.addrs, "localhost:6379")
			eq(t, u.db, 0)
			eq(t, u.cluster, false)
		}},
		{url: "redis://alice:pw@10.0.0.1:7000/3?dial_timeout=200ms&pool_size=7&protocol=2", check: func(t *testing.T, u *parsed) {
			eq(t, u.addrs, "10.0.0.1:7000")
			eq(t, u.db, 3)
			eq(t, u.user+"/"+u.password, "alice/pw")
			eq(t, u.o.DialTimeout, 200*time.Millisecond)
			eq(t, u.o.PoolSize, 7)
			eq(t, u.o.Protocol, 2)
		}},
		{url: "redis://:pw@h:1", check: func(t *testing.T, u *parsed) { eq(t, u.user+"/"+u.password, "/pw") }},
		{url: "redis://[::1]:7000", check: func(t *testing.T, u *parsed) { eq(t, u.addrs, "[::1]:7000") }},
		{url: "redis://h1,h2:7001,h3:7002?cluster=true", check: func(t *testing.T, u *parsed) {
			eq(t, u.addrs, "h1:6379,h2:7001,h3:7002")
			eq(t, u.cluster, true)
		}},
		{url: "redis://h1:7000?cluster=1", check: func(t *testing.T, u *parsed) { eq(t, u.cluster, true) }},
		{url: "rediss://h:6380?tls_ca=" + ca + "&tls_server_name=cache.local", check: func(t *testing.T, u *parsed) {
			if u.o.TLSConfig == nil || u.o.TLSConfig.RootCAs == nil || u.o.TLSConfig.ServerName != "cache.local" {
				t.Errorf("TLS config %+v", u.o.TLSConfig)
			}
		}},
		{url: "rediss://h:6380?tls_insecure_skip_verify=true", check: func(t *testing.T, u *parsed) {
			if u.o.TLSConfig == nil || !u.o.TLSConfig.InsecureSkipVerify || u.o.TLSConfig.ServerName != "h" {
				t.Errorf("TLS config %+v", u.o.TLSConfig)
			}
		}},
		{url: "redis://h?max_retries=2", check: func(t *testing.T, u *parsed) { eq(t, u.o.MaxRetries, 2) }},
		{url: "redis://h?max_value_size=100&allow_flush=true&batch=false", check: func(t *testing.T, u *parsed) {
			eq(t, u.cfg.maxValueSize, 100)
			eq(t, u.cfg.flush, true)
			eq(t, u.cfg.batch, false)
		}},
		// max_value_length is the name; max_value_size its deprecated alias.
		{url: "redis://h?max_value_length=100", check: func(t *testing.T, u *parsed) { eq(t, u.cfg.maxValueSize, 100) }},
		{url: "redis://h?max_value_length=0", check: func(t *testing.T, u *parsed) { eq(t, u.cfg.maxValueSize, DefaultMaxValueLen) }},
		{url: "redis://h?max_value_size=100&max_value_length=100", wantErr: "parameters max_value_length and max_value_size both given"},
		{url: "redis://h?max_value_size=big", wantErr: `max_value_size="big"`},
		{url: "redis://h", check: func(t *testing.T, u *parsed) {
			eq(t, u.cfg.timeout, DefaultTimeout)
			eq(t, u.cfg.failureLimit, DefaultFailureLimit)
			eq(t, u.cfg.retryInterval, DefaultRetryInterval)
		}},
		{url: "redis://h?timeout=250ms&failure_limit=0&retry_interval=100ms", check: func(t *testing.T, u *parsed) {
			eq(t, u.cfg.timeout, 250*time.Millisecond)
			eq(t, u.cfg.failureLimit, 0)
			eq(t, u.cfg.retryInterval, 100*time.Millisecond)
		}},
		{url: "redis://h?timeout=0s", wantErr: "timeout=0s: must be positive"},
		{url: "redis://h?retry_interval=0s", wantErr: "retry_interval=0s: must be positive"},
		{url: "redis://h?failure_limit=-1", wantErr: `failure_limit="-1": want a non-negative integer`},
		{url: "redis://h?retry_interval=-1s", wantErr: `retry_interval="-1s": want a non-negative duration`},

		{url: "redis://h?bogus=1&other=2", wantErr: "unknown parameter(s) bogus, other (known: allow_flush, batch,"},
		{url: "redis://h1:1,h2:2", wantErr: "need cluster=true"},
		{url: "redis://h1:1,h2:2/2?cluster=true", wantErr: "only database 0"},
		{url: "redis://h/abc", wantErr: `bad database "abc"`},
		{url: "redis://h:99999", wantErr: `bad port "99999"`},
		{url: "redis:///0", wantErr: "missing host"},
		{url: "redis://h?dial_timeout=soon", wantErr: "dial_timeout"},
		{url: "redis://h?protocol=4", wantErr: "want 2 or 3"},
		{url: "redis://h?cluster=maybe", wantErr: "cluster"},
		{url: "redis://h?tls_ca=/x", wantErr: "TLS option(s) tls_ca given on redis://: use rediss://"},
		{url: "rediss://h?tls_ca=/does/not/exist", wantErr: "tls_ca"},
		{url: "rediss://h?tls_cert=/x", wantErr: "tls_cert and tls_key must be given together"},
		{url: "memcached://h", wantErr: "unsupported scheme"},
	} {
		t.Run(c.url, func(t *testing.T) {
			u, err := url.Parse(c.url)
			if err != nil {
				t.Fatal(err)
			}
			uo, opts, err := ParseURL(u)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := &parsed{o: uo, addrs: strings.Join(uo.Addrs, ","), db: uo.DB, cluster: uo.IsClusterMode,
				user: uo.Username, password: uo.Password, cfg: newConfig(opts)}
			c.check(t, p)
		})
	}
}

func TestParseURLHidesPassword(t *testing.T) {
	for _, raw := range []string{
		"redis://u:hunter2@h:1/x", "redis://u:hunter2@h:1,h2:2", "rediss://u:hunter2@h?tls_ca=/nope",
	} {
		u, _ := url.Parse(raw)
		_, _, err := ParseURL(u)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", u.Redacted(), err)
		}
	}
}

type parsed struct {
	o              *goredis.UniversalOptions
	addrs          string
	db             int
	cluster        bool
	user, password string
	cfg            config
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestValidateParameterNames checks through backend.Validate, as the Tool
// checks its configuration, that the deprecated max_value_size still
// validates and that giving it with max_value_length is an error naming
// both.
func TestValidateParameterNames(t *testing.T) {
	for _, u := range []string{"redis://h?max_value_length=1048576", "redis://h?max_value_size=1048576"} {
		if err := backend.Validate(u); err != nil {
			t.Errorf("Validate(%q): %v", u, err)
		}
	}
	u := "redis://h?max_value_length=1048576&max_value_size=1048576"
	if err := backend.Validate(u); err == nil || !strings.Contains(err.Error(), "max_value_length") || !strings.Contains(err.Error(), "max_value_size") {
		t.Errorf("Validate(%q) = %v, want an error naming max_value_length and max_value_size", u, err)
	}
}
