package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/tool"
)

// payload is the encoded bytes of one value, without memdict's header. A
// named type, so that a Dict of payload goes through its codec (Dicts of
// []byte store their bytes under the raw codec's ID).
type payload []byte

// passthrough is a codec that stores payloads as they are under the ID of
// another codec, so that the command writes values encoded by any codec
// (or copied from a dump) through a Dict, with the Dict's key layout.
type passthrough struct{ id byte }

func (p passthrough) ID() byte     { return p.id }
func (p passthrough) Name() string { return codec.NameOf(p.id) }

func (p passthrough) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case payload:
		return b, nil
	case *payload:
		return *b, nil
	}
	return nil, fmt.Errorf("passthrough codec: unexpected %T", v)
}

func (p passthrough) Unmarshal(data []byte, v any) error {
	pp, ok := v.(*payload)
	if !ok {
		return fmt.Errorf("passthrough codec: unexpected %T", v)
	}
	*pp = bytes.Clone(data)
	return nil
}

// stored is one value as read from the backend.
type stored struct {
	// Codec is the ID of the codec that wrote it; 0 for a value that
	// memdict did not frame (written by another program).
	Codec byte
	// Payload is the encoded value without the header (the whole value
	// for an unframed one).
	Payload []byte
}

// CodecName returns the codec's name for output: "raw", "msgpack", ...,
// or "none" for an unframed value.
func (s stored) CodecName() string {
	if s.Codec == 0 {
		return "none"
	}
	return codec.NameOf(s.Codec)
}

// Decoded returns the value as a JSON-ready Go value: text for raw values
// that are valid UTF-8, the codec's decoding for the others. ok is false
// when the value cannot be shown as JSON (binary raw values, gob, unknown
// codecs, decode failures); the caller then shows it in base64.
func (s stored) Decoded() (v any, ok bool) {
	switch s.Codec {
	case 0, codec.RawID:
		if utf8.Valid(s.Payload) {
			return string(s.Payload), true
		}
		return nil, false
	}
	c, found := codec.ByID(s.Codec)
	if !found {
		return nil, false
	}
	var x any
	if err := c.Unmarshal(s.Payload, &x); err != nil {
		return nil, false
	}
	x, err := jsonReady(x)
	if err != nil {
		return nil, false
	}
	return x, true
}

// jsonReady converts what codecs decode into `any` (maps with non-string
// keys, []byte, NaN, ...) into values encoding/json can print.
func jsonReady(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	case []any:
		for i, e := range x {
			e, err := jsonReady(e)
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
		return x, nil
	case []byte:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return base64.StdEncoding.EncodeToString(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("not a JSON number")
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, errors.New("not a JSON number")
		}
	}
	if _, err := json.Marshal(v); err != nil {
		return nil, err
	}
	return v, nil
}

// parseJSONValue parses a JSON value as put and load take it: integers
// stay integers (int64 or uint64), so that a Go program reading them into
// an int gets them back.
func parseJSONValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromNumbers(e)
		}
	}
	return v
}

// dictSet opens Dicts of one plugin and prefix: one Dict (of any value)
// to list, clear and find backend keys, and writers for the codecs used.
type dictSet struct {
	t      *tool.Tool
	plugin string
	prefix string
	info   tool.PluginInfo
	be     backend.Backend
	d      *memdict.Dict[any]

	mu      sync.Mutex // guards writers
	writers map[byte]*memdict.Dict[payload]
}

// openDicts returns the Dicts of prefix in plugin, opening its backend.
func openDicts(ctx context.Context, t *tool.Tool, plugin, prefix string) (*dictSet, error) {
	info, err := t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	d, err := tool.Dict[any](t, prefix, plugin)
	if err != nil {
		return nil, err
	}
	be, err := t.Backend(ctx, plugin)
	if err != nil {
		return nil, err
	}
	return &dictSet{t: t, plugin: plugin, prefix: prefix, info: info, be: be, d: d, writers: map[byte]*memdict.Dict[payload]{}}, nil
}

// writer returns a Dict that stores payloads under codec id, with the
// plugin's settings (site id, expiration, limits).
func (ds *dictSet) writer(id byte) (*memdict.Dict[payload], error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if w, ok := ds.writers[id]; ok {
		return w, nil
	}
	w, err := memdict.New[payload](ds.be, ds.prefix,
		memdict.WithSiteID(ds.t.SiteID()),
		memdict.WithCodec(passthrough{id}),
		memdict.WithDefaultTTL(ds.info.Expiration),
		memdict.WithMaxKeyLen(ds.info.MaxKeyLen),
		memdict.WithMaxValueLen(ds.info.MaxValueLen),
	)
	if err != nil {
		return nil, err
	}
	ds.writers[id] = w
	return w, nil
}

// put stores p, encoded by codec id, under key.
func (ds *dictSet) put(ctx context.Context, key string, id byte, p []byte, opts ...memdict.ItemOption) error {
	w, err := ds.writer(id)
	if err != nil {
		return err
	}
	return w.Store(ctx, key, payload(p), opts...)
}

// backendKeys returns the backend keys of keys in the Dict's current
// namespace generation.
func (ds *dictSet) backendKeys(ctx context.Context, keys []string) ([]string, error) {
	if _, err := ds.d.Generation(ctx); err != nil {
		return nil, err
	}
	bk := make([]string, len(keys))
	for i, k := range keys {
		bk[i] = ds.d.BackendKey(k)
	}
	return bk, nil
}

// get reads key's stored value; ok is false on a miss. Once the raw
// read has told the codec, the value is read again through a Dict of that
// codec, so that the read is checked and counted as an application's is.
func (ds *dictSet) get(ctx context.Context, key string) (stored, bool, error) {
	m, err := ds.getMulti(ctx, []string{key})
	if err != nil {
		return stored{}, false, err
	}
	s, ok := m[key]
	if !ok {
		// Count the miss in the Dict's metrics, as an application's
		// read would be counted (the admin page shows them).
		_, _, _ = ds.d.Lookup(ctx, key)
		return s, false, nil
	}
	if s.Codec == 0 {
		return s, true, nil
	}
	w, err := ds.writer(s.Codec)
	if err != nil {
		return stored{}, false, err
	}
	p, ok, err := w.Lookup(ctx, key)
	if err != nil || !ok {
		return stored{}, ok, err
	}
	return stored{Codec: s.Codec, Payload: p}, true, nil
}

// getMulti reads the stored values of keys; missing keys are absent from
// the map.
func (ds *dictSet) getMulti(ctx context.Context, keys []string) (map[string]stored, error) {
	bk, err := ds.backendKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	items, err := ds.be.GetMulti(ctx, bk)
	if err != nil {
		return nil, err
	}
	out := make(map[string]stored, len(items))
	for i, k := range keys {
		it, ok := items[bk[i]]
		if !ok {
			continue
		}
		h, p, err := envelope.Parse(it.Value)
		if err != nil {
			out[k] = stored{Payload: it.Value}
			continue
		}
		if h.HasKey && string(h.Key) != k {
			continue // another key under the same hash: a miss
		}
		out[k] = stored{Codec: h.Codec, Payload: p}
	}
	return out, nil
}

// remove deletes key; the error wraps ErrNotFound if it was absent.
func (ds *dictSet) remove(ctx context.Context, key string) error {
	return ds.d.Remove(ctx, key)
}
