package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/rawvalue"
	"github.com/memdict/memdict/tool"
)

// The key tester reads, writes and deletes one key through Dicts of its
// own, opened over the Tool's backend with the plugin's settings, so that
// it can write values of any codec and read whatever is stored.

// payload and stored are the raw value forms shared with the memdict
// command.
type (
	payload = rawvalue.Payload
	stored  = rawvalue.Stored
)

// codecName is "raw", "msgpack", ..., or "unframed" for a value memdict
// did not write.
func codecName(s stored) string {
	if s.Codec == 0 {
		return "unframed"
	}
	return codec.NameOf(s.Codec)
}

// prettyJSON prints v indented, without HTML escaping (the template
// escapes).
func prettyJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // JSONReady checked it
	return strings.TrimSuffix(b.String(), "\n")
}

// encodeValue encodes the text of the key form: as it is with the raw
// codec (asString), else as a JSON value with codecName ("" for the
// plugin's codec).
func encodeValue(info tool.PluginInfo, text []byte, asString bool, codecName string) (byte, []byte, error) {
	if asString {
		return codec.RawID, text, nil
	}
	if codecName == "" {
		codecName = info.Codec
	}
	c := codec.Default()
	if codecName != "" {
		var ok bool
		if c, ok = codec.ByName(codecName); !ok {
			return 0, nil, fmt.Errorf("unknown codec %q (known: %s)", codecName, strings.Join(codec.Names(), ", "))
		}
	}
	v, err := rawvalue.ParseJSON(text)
	if err != nil {
		return 0, nil, fmt.Errorf("the value is not JSON (%v); choose \"string\" to store text as it is", err)
	}
	if c.ID() == codec.RawID {
		s, ok := v.(string)
		if !ok {
			return 0, nil, fmt.Errorf("the raw codec stores strings only; the value is a JSON %T", v)
		}
		return codec.RawID, []byte(s), nil
	}
	p, err := c.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %w", memdict.ErrEncode, c.Name(), err)
	}
	return c.ID(), p, nil
}

// quoteKey shows a key as it is when it prints plainly, Go-quoted
// otherwise.
func quoteKey(key string) string {
	if key == "" || !utf8.ValidString(key) || strings.IndexFunc(key, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(key)
	}
	return key
}

// dictSet holds the key tester's Dicts of one plugin and prefix: one that
// reads and deletes (and finds backend keys), and writers for the codecs
// used. It is safe for concurrent use.
type dictSet struct {
	info   tool.PluginInfo
	siteID string
	prefix string
	be     backend.Backend
	d      *memdict.Dict[payload]

	mu      sync.Mutex // guards writers
	writers map[byte]*memdict.Dict[payload]
}

// openDicts returns the key tester's Dicts of prefix in a plugin.
func openDicts(ctx context.Context, t *tool.Tool, plugin, prefix string) (*dictSet, error) {
	info, err := t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	be, err := t.Backend(ctx, info.Path)
	if err != nil {
		return nil, err
	}
	ds := &dictSet{info: info, siteID: t.SiteID(), prefix: prefix, be: be, writers: map[byte]*memdict.Dict[payload]{}}
	c := codec.Default()
	if cc, ok := codec.ByName(info.Codec); ok {
		c = cc
	}
	if ds.d, err = ds.newDict(c.ID()); err != nil {
		return nil, err
	}
	return ds, nil
}

// newDict returns a Dict that stores payloads under codec id, with the
// plugin's settings (site id, expiration, limits).
func (ds *dictSet) newDict(id byte) (*memdict.Dict[payload], error) {
	return memdict.New[payload](ds.be, ds.prefix,
		memdict.WithSiteID(ds.siteID),
		memdict.WithCodec(rawvalue.Passthrough(id)),
		memdict.WithDefaultTTL(ds.info.Expiration),
		memdict.WithMaxKeyLen(ds.info.MaxKeyLen),
		memdict.WithMaxValueLen(ds.info.MaxValueLen),
	)
}

// writer returns the Dict that stores payloads under codec id.
func (ds *dictSet) writer(id byte) (*memdict.Dict[payload], error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if w, ok := ds.writers[id]; ok {
		return w, nil
	}
	w, err := ds.newDict(id)
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

// get reads key's stored value; ok is false on a miss. Once the raw read
// has told the codec, the value is read again through a Dict of that
// codec, so that the read is checked and counted as an application's is.
func (ds *dictSet) get(ctx context.Context, key string) (stored, bool, error) {
	if _, err := ds.d.Generation(ctx); err != nil {
		return stored{}, false, err
	}
	bk := ds.d.BackendKey(key)
	it, err := ds.be.Get(ctx, bk)
	if errors.Is(err, backend.ErrNotFound) {
		_, _, _ = ds.d.Lookup(ctx, key) // count the miss, as an application's read
		return stored{}, false, nil
	}
	if err != nil {
		return stored{}, false, err
	}
	h, _, err := envelope.Parse(it.Value)
	if err != nil {
		return stored{Payload: it.Value}, true, nil // not framed by memdict
	}
	if h.HasKey && string(h.Key) != key {
		_, _, _ = ds.d.Lookup(ctx, key)
		return stored{}, false, nil // another key under the same hash: a miss
	}
	w, err := ds.writer(h.Codec)
	if err != nil {
		return stored{}, false, err
	}
	v, ok, err := w.Lookup(ctx, key)
	if err != nil || !ok {
		return stored{}, ok, err
	}
	return stored{Codec: h.Codec, Payload: v}, true, nil
}

// remove deletes key; the error wraps ErrNotFound if it was absent.
func (ds *dictSet) remove(ctx context.Context, key string) error {
	return ds.d.Remove(ctx, key)
}

// stats returns the sum of the statistics of the Dicts in ds.
func (ds *dictSet) stats() memdict.Stats {
	t := ds.d.Stats()
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, w := range ds.writers {
		s := w.Stats()
		t.Hits += s.Hits
		t.Misses += s.Misses
		t.Errors += s.Errors
		t.Sets += s.Sets
		t.Deletes += s.Deletes
	}
	return t
}
