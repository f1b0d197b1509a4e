package memcached_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
	"github.com/memdict/memdict/internal/testserver"
)

func TestTLS(t *testing.T) {
	t.Parallel()
	p, files := testserver.MemcachedTLS(t)
	ctx := context.Background()

	be, err := backend.Open(ctx, "memcacheds://"+p.Addr+"?timeout=5s&tls_ca="+files.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.Set(ctx, backend.Item{Key: "secure", Value: []byte("yes")}); err != nil {
		t.Fatalf("Set over TLS: %v", err)
	}
	it, err := be.Get(ctx, "secure")
	if err != nil || string(it.Value) != "yes" {
		t.Fatalf("Get over TLS: %q, %v", it.Value, err)
	}
	// The admin commands use TLS too.
	c := be.(*memcached.Client)
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping over TLS: %v", err)
	}
	stats, err := c.ServerStats(ctx)
	if err != nil || stats[0].Err != nil || stats[0].Stats["pid"] == "" {
		t.Errorf("stats over TLS: %v %v", err, stats)
	}
	n := 0
	for k, err := range c.Keys(ctx, "") {
		if err != nil {
			t.Errorf("Keys over TLS: %v", err)
		} else if k == "secure" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Keys over TLS found the key %d times", n)
	}

	// A CA that did not sign the server's certificate: a clear error.
	other := testserver.WriteTLSFiles(t)
	bad, err := backend.Open(ctx, "memcacheds://"+p.Addr+"?timeout=5s&tls_ca="+other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Set(ctx, backend.Item{Key: "k", Value: []byte("v")})
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong CA: %v, want unavailable with a certificate error", err)
	} else {
		t.Logf("wrong CA: %v", err)
	}
	if err := bad.(*memcached.Client).Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Ping with the wrong CA: %v", err)
	}

	// Plain TCP to a TLS server fails within the timeout, without hanging.
	plain, err := memcached.New([]string{p.Addr}, memcached.WithTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	start := time.Now()
	if _, err := plain.Get(ctx, "secure"); err == nil {
		t.Error("plain TCP Get from a TLS server: no error")
	} else {
		t.Logf("plain TCP to a TLS server: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
}
