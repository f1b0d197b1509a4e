package memdict_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// countingGets counts the Gets of a backend, and of its generation key.
type countingGets struct {
	backend.Backend
	gets int
}

func (c *countingGets) Get(ctx context.Context, key string) (backend.Item, error) {
	c.gets++
	return c.Backend.Get(ctx, key)
}

// Options that set one setting override it over WithSettings, in any
// order, and the Dict follows the shared settings for the others; the
// overrides are kept across Stores of the shared settings.
func TestSettingsLayered(t *testing.T) {
	base := memdict.Settings{SiteID: "site", TTL: time.Hour, Codec: codec.JSON, MaxKeyLen: 100, MaxValueLen: 1000, GenerationRefresh: time.Minute, GenerationTTL: 48 * time.Hour}
	sh, err := memdict.NewSharedSettings(base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opt  memdict.Option
		want func(*memdict.Settings)
	}{
		{memdict.WithSiteID("mine"), func(s *memdict.Settings) { s.SiteID = "mine" }},
		{memdict.WithDefaultTTL(time.Minute), func(s *memdict.Settings) { s.TTL = time.Minute }},
		{memdict.WithCodec(codec.Gob), func(s *memdict.Settings) { s.Codec = codec.Gob }},
		{memdict.WithMaxKeyLen(0), func(s *memdict.Settings) { s.MaxKeyLen = 0 }},
		{memdict.WithMaxValueLen(5), func(s *memdict.Settings) { s.MaxValueLen = 5 }},
		{memdict.WithGenerationRefresh(-1), func(s *memdict.Settings) { s.GenerationRefresh = -1 }},
		{memdict.WithGenerationTTL(time.Hour), func(s *memdict.Settings) { s.GenerationTTL = time.Hour }},
	}
	be := memory.New()
	for _, tt := range tests {
		for _, opts := range [][]memdict.Option{{memdict.WithSettings(sh), tt.opt}, {tt.opt, memdict.WithSettings(sh)}} {
			d := newDict[int](t, be, "p", opts...)
			want := sh.Load()
			tt.want(&want)
			if got := d.Settings(); got != want {
				t.Errorf("Settings = %+v, want %+v", got, want)
			}
			// The shared settings change: the override stays, the rest
			// follows.
			next := base
			next.MaxValueLen, next.TTL = 2000, 2*time.Hour
			if err := sh.Store(next); err != nil {
				t.Fatal(err)
			}
			want = sh.Load()
			tt.want(&want)
			if got := d.Settings(); got != want {
				t.Errorf("after Store, Settings = %+v, want %+v", got, want)
			}
			if err := sh.Store(base); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A Dict with layered settings keeps its view, and so its namespace
// generation, between calls: it reads the generation once, not at every
// call.
func TestSettingsLayeredKeepTheView(t *testing.T) {
	sh, _ := memdict.NewSharedSettings(memdict.DefaultSettings())
	be := &countingGets{Backend: memory.New()}
	d := newDict[string](t, be, "p", memdict.WithSettings(sh), memdict.WithDefaultTTL(time.Minute))
	for range 10 {
		d.Get("k")
	}
	if be.gets != 11 { // the generation, then the ten keys
		t.Fatalf("%d Gets for ten reads, want 11", be.gets)
	}
}

// WithSettings can be given once.
func TestSettingsTwice(t *testing.T) {
	sh, _ := memdict.NewSharedSettings(memdict.DefaultSettings())
	_, err := memdict.New[int](memory.New(), "p", memdict.WithSettings(sh), memdict.WithSettings(sh))
	if err == nil {
		t.Fatal("two WithSettings accepted")
	}
}

// The near cache of the settings applies to Dicts that set none; a
// Dict's WithNearCache replaces it, WithoutNearCache removes it; an
// invalid one is refused by Store.
func TestSettingsNearCache(t *testing.T) {
	s := memdict.DefaultSettings()
	s.NearCache = &memdict.NearCache{MaxEntries: 10, MaxStale: time.Second}
	sh, err := memdict.NewSharedSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	be := memory.New()
	if d := newDict[int](t, be, "p", memdict.WithSettings(sh)); !d.Stats().NearCache.Enabled {
		t.Error("the settings' near cache was not applied")
	}
	if d := newDict[int](t, be, "p", memdict.WithSettings(sh), memdict.WithoutNearCache()); d.Stats().NearCache.Enabled {
		t.Error("WithoutNearCache: the Dict has a near cache")
	}
	// memory cannot report changes: MaxStale 0 is refused, naming the
	// source.
	s.NearCache = &memdict.NearCache{}
	if err := sh.Store(s); err != nil {
		t.Fatal(err)
	}
	if _, err := memdict.New[int](be, "p", memdict.WithSettings(sh)); err == nil || !errors.Is(err, backend.ErrNotSupported) {
		t.Errorf("a near cache with MaxStale 0 over memory: %v", err)
	}
	if d := newDict[int](t, be, "p", memdict.WithSettings(sh), memdict.WithNearCache(memdict.NearCache{MaxStale: time.Second})); !d.Stats().NearCache.Enabled {
		t.Error("WithNearCache over the settings' near cache")
	}
	s.NearCache = &memdict.NearCache{MaxEntries: -1}
	if err := sh.Store(s); err == nil {
		t.Error("a negative MaxEntries stored")
	}
}
