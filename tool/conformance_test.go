package tool_test

import (
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/testing/backendtest"
	"github.com/memdict/memdict/tool"
)

// pluginBackend is what Tool.Backend returns: a backend.Backend with every
// optional ability, forwarded to the plugin's current backend.
type pluginBackend interface {
	backend.Backend
	backend.Lister
	backend.StatsReporter
	backend.Flusher
	backend.Pinger
	backend.MultiWriter
	backend.Leaser
	backend.Locker
	backend.TTLReader
}

// closingTool is a plugin's backend whose Close closes its Tool, as the
// suite expects of a backend it closes (the plugin's own Close does
// nothing: the Tool owns its backends).
type closingTool struct {
	pluginBackend
	tl *tool.Tool
}

func (c closingTool) Close() error { return c.tl.Close() }

// The backend of a plugin, which forwards every call and every optional
// ability through the Tool, keeps the backend contract: the conformance
// suite over a plugin on an in-memory store.
func TestConformance(t *testing.T) {
	clock := memory.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		store := memory.New(memory.WithClock(clock))
		t.Cleanup(func() { store.Close() })
		tl, err := tool.New(tool.Config{}, tool.WithBackend("p", store))
		if err != nil {
			t.Fatal(err)
		}
		be, err := tl.Backend(t.Context(), "p")
		if err != nil {
			t.Fatal(err)
		}
		pb, ok := be.(pluginBackend)
		if !ok {
			t.Fatalf("Tool.Backend returned a %T without every optional ability", be)
		}
		return closingTool{pb, tl}
	}, backendtest.Options{Advance: clock.Advance})
}
