package memdicttest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/testing/backendtest"
	"github.com/memdict/memdict/testing/memdicttest"
)

// With no fault set, a Faulty keeps the backend contract: the conformance
// suite over a Faulty around an in-memory store, whose abilities it keeps.
func TestFaultyConformance(t *testing.T) {
	clock := memory.NewFakeClock(memdicttest.Start)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return memdicttest.NewFaulty(memory.New(memory.WithClock(clock)))
	}, backendtest.Options{Advance: clock.Advance})
}

// Around a backend without the optional abilities, a Faulty says each is
// not supported, Ping included, as package backend's helpers do.
func TestFaultyWithoutAbilities(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	f := memdicttest.NewFaulty(struct{ backend.Backend }{store})
	errs := []error{f.Ping(ctx), f.Flush(ctx)}
	_, err := f.ServerStats(ctx)
	errs = append(errs, err)
	for _, err := range f.Keys(ctx, "") {
		errs = append(errs, err)
	}
	if len(errs) != 4 {
		t.Fatalf("Keys yielded %d errors, want 1", len(errs)-3)
	}
	for i, err := range errs {
		if !errors.Is(err, backend.ErrNotSupported) {
			t.Errorf("%d: %v, want ErrNotSupported", i, err)
		}
	}
}
