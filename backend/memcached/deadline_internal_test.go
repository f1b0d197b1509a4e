package memcached

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// TestDeadline checks the due of a call: the timeout after the call
// starts, with a monotonic reading (which timers, comparisons and net
// deadlines read, so that a step of the wall clock moves none of them),
// or the context's deadline if that is sooner, whether or not it carries
// a monotonic reading.
func TestDeadline(t *testing.T) {
	const timeout = time.Second
	c := &Client{}
	c.cfg.timeout = timeout
	within := func(name string, d due, before, after time.Time) {
		t.Helper()
		if d.byCtx {
			t.Errorf("%s: the due is the context's, want the timeout's", name)
		}
		if d.at.Before(before.Add(timeout)) || d.at.After(after.Add(timeout)) {
			t.Errorf("%s: due %v, want between %v and %v", name, d.at, before.Add(timeout), after.Add(timeout))
		}
		if !strings.Contains(d.at.String(), " m=") {
			t.Errorf("%s: due %v has no monotonic reading", name, d.at)
		}
	}

	before := time.Now()
	d := c.deadline(context.Background())
	within("no context deadline", d, before, time.Now())

	long, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	before = time.Now()
	d = c.deadline(long)
	within("a later context deadline", d, before, time.Now())

	short, cancel := context.WithTimeout(context.Background(), timeout/10)
	defer cancel()
	cd, _ := short.Deadline()
	if d = c.deadline(short); !d.byCtx || !d.at.Equal(cd) {
		t.Errorf("sooner context deadline %v: got due %v (by context: %v)", cd, d.at, d.byCtx)
	}

	wall := time.Now().Add(timeout / 10).Round(0) // no monotonic reading
	short, cancel = context.WithDeadline(context.Background(), wall)
	defer cancel()
	if d = c.deadline(short); !d.byCtx || !d.at.Equal(wall) {
		t.Errorf("sooner wall-clock context deadline %v: got due %v (by context: %v)", wall, d.at, d.byCtx)
	}
}

// TestDeadlineLongestTimeout checks that a timeout meant as none
// (math.MaxInt64) gives a call without a context deadline a due far
// ahead, as time.Now().Add did: the monotonic sum of the time since epoch
// and the timeout wrapped to a due in the past, and every such call
// failed at once.
func TestDeadlineLongestTimeout(t *testing.T) {
	c := &Client{}
	c.cfg.timeout = math.MaxInt64
	d := c.deadline(context.Background())
	if want := time.Now().Add(100 * 365 * 24 * time.Hour); d.byCtx || d.at.Before(want) {
		t.Errorf("timeout %v: due %v (by context: %v), want after %v", c.cfg.timeout, d.at, d.byCtx, want)
	}
	if left := time.Until(d.at); left <= 0 {
		t.Errorf("timeout %v: due %v is %v away, want ahead", c.cfg.timeout, d.at, left)
	}
}
