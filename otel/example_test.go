package otel_test

import (
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	memdictotel "github.com/memdict/memdict/otel"
)

// The instrumentation observes a Dict (a span per operation) and wraps
// its backend (a span per call, the operation's child).
func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tel, err := memdictotel.New(memdictotel.WithTracerProvider(tp)) // the global providers by default
	if err != nil {
		fmt.Println(err)
		return
	}
	be := backend.Wrap(memory.New(), tel.Middleware)
	users, _ := memdict.New[string](be, "users", memdict.WithObserver(tel))
	_ = users.Put("ada", "Ada Lovelace")
	users.Get("ada")
	for _, s := range spans.Ended() {
		fmt.Println(s.SpanKind(), s.Name())
	}
	// The first two client spans read the Dict's namespace generation
	// (with its key's TTL, which the Dict renews) and store one (a new
	// namespace has none).

	// Output:
	// client getttl
	// client add
	// client set
	// internal put users
	// client get
	// internal get users
}
