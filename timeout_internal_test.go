package memdict

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// passedCtx is a context whose deadline has passed but whose timer has
// not fired yet: Err is still nil, as a context.WithDeadline's is for a
// moment after its deadline.
type passedCtx struct{ context.Context }

func (passedCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestTimedOutDeadlinePassed: a backend error wrapping
// context.DeadlineExceeded whose context's deadline has passed is the
// call's timeout (a *timeoutError, ErrUnavailable) even before the
// context's timer says so: a backend whose socket carries the deadline
// (the Redis driver's) may report it a hair earlier.
func TestTimedOutDeadlinePassed(t *testing.T) {
	b := bound{parent: context.Background(), timeout: 300 * time.Millisecond}
	err := fmt.Errorf("redis: get \"k\": %w", context.DeadlineExceeded)
	got := b.timedOut(passedCtx{context.Background()}, err)
	if !errors.Is(got, backend.ErrUnavailable) || !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("timedOut after the deadline, before ctx's timer: %v; want a *timeoutError", got)
	}
	// A deadline not yet passed, ctx live: the error is the backend's own.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if got := b.timedOut(ctx, err); got != err {
		t.Errorf("timedOut before the deadline: %v; want the error unchanged", got)
	}
}

// TestCheckCallerDeadlinePassed: a backend error wrapping
// context.DeadlineExceeded when the caller's deadline, earlier than the
// call's, has passed but its timer has not fired yet is the caller's
// deadline, not the call's timeout: check returns it unchanged (not
// ErrUnavailable), as it does once the caller's ctx reports it.
func TestCheckCallerDeadlinePassed(t *testing.T) {
	b := bound{parent: pastCtx{context.Background(), time.Now().Add(-time.Millisecond)}, timeout: time.Hour}
	defer b.end()
	_ = b.deadlined() // a second backend call: ctx carries the call's deadline
	err := fmt.Errorf("redis: getmulti: %w", context.DeadlineExceeded)
	if got := b.check(err); got != err {
		t.Errorf("check after the caller's deadline, before its ctx's timer: %v; want the error unchanged", got)
	}
}

// pastCtx is passedCtx with a fixed deadline.
type pastCtx struct {
	context.Context
	dl time.Time
}

func (c pastCtx) Deadline() (time.Time, bool) { return c.dl, true }
