package memdict

import (
	"testing"
	"time"
)

// TestCoarseClock: the coarse clock is never ahead of the real one, lags
// it by about a tick while it is read, and its timer stops when it is not.
func TestCoarseClock(t *testing.T) {
	cc := &coarseClock{tick: 5 * time.Millisecond}
	end := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(end) {
		c := cc.read()
		real := mono()
		if c > real {
			t.Fatalf("coarse clock %d ahead of the real one %d", c, real)
		}
		// A tick, plus a generous allowance for a late timer on a loaded
		// machine.
		if lag := time.Duration(real - c); lag > cc.tick+250*time.Millisecond {
			t.Fatalf("coarse clock lags by %v, tick %v", lag, cc.tick)
		}
		time.Sleep(100 * time.Microsecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cc.active.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the coarse clock's timer still runs while nobody reads it")
		}
		time.Sleep(time.Millisecond)
	}
	before := mono()
	if c := cc.read(); c < before {
		t.Fatalf("after a pause the first read %d is older than the real time before it %d", c, before)
	}
}

func TestTrackPrefixAndDictKey(t *testing.T) {
	for _, c := range []struct{ ns, prefix string }{
		{"site:pre:12:", "site:pre:"},
		{"pre:0:", "pre:"},
		{"#abc:", "#abc:"},
	} {
		if got := trackPrefix(c.ns); got != c.prefix {
			t.Errorf("trackPrefix(%q) = %q, want %q", c.ns, got, c.prefix)
		}
	}
	for _, c := range []struct {
		prefix, bkey, key string
		ok                bool
	}{
		{"pre:", "pre:7:a%3Ab", "a:b", true},
		{"pre:", "pre:7:#hashedkeyxxxxxxxxxxxxxxxxxxxxxxxxxx", "", false},
		{"pre:", "other:7:k", "", false},
		{"pre:", "pre:nocolon", "", false},
		{"#abc:", "#abc:k%20", "k ", true},
	} {
		key, ok := dictKey(c.prefix, c.bkey)
		if key != c.key || ok != c.ok {
			t.Errorf("dictKey(%q, %q) = %q, %v; want %q, %v", c.prefix, c.bkey, key, ok, c.key, c.ok)
		}
	}
}
