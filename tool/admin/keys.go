package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

// The key tester reads, writes and deletes one key through a Dict of its
// own of memdict.Raw values, opened over the Tool's backend with the
// plugin's settings, so that it can write values of any codec and read
// whatever is stored.

// stored is a value as memdict stores it: its codec ID and payload.
type stored = memdict.Raw

// codecName is "raw", "msgpack", ..., or "unframed" for a value memdict
// did not write.
func codecName(s stored) string {
	if s.Codec == 0 {
		return "unframed"
	}
	return codec.NameOf(s.Codec)
}

// prettyJSON prints v indented, without HTML escaping (the page
// escapes).
func prettyJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // memdict.Raw.Decoded made it printable
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
	v, err := tool.ParseJSON(text)
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

// dictSet holds the key tester's Dict of one plugin and prefix. It is
// safe for concurrent use.
type dictSet struct {
	info   tool.PluginInfo
	prefix string
	d      *memdict.Dict[memdict.Raw]
}

// openDicts returns the key tester's Dict of prefix in a plugin. It is
// made with memdict.New, not tool.Dict, so that the page does not list it
// among the program's Dicts.
func openDicts(ctx context.Context, t *tool.Tool, plugin, prefix string) (*dictSet, error) {
	info, err := t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	be, err := t.Backend(ctx, info.Path)
	if err != nil {
		return nil, err
	}
	d, err := memdict.New[memdict.Raw](be, prefix,
		memdict.WithSiteID(t.SiteID()),
		memdict.WithDefaultTTL(info.Expiration),
		memdict.WithMaxKeyLen(info.MaxKeyLen),
		memdict.WithMaxValueLen(info.MaxValueLen),
	)
	if err != nil {
		return nil, err
	}
	return &dictSet{info: info, prefix: prefix, d: d}, nil
}

// put stores p, encoded by codec id, under key.
func (ds *dictSet) put(ctx context.Context, key string, id byte, p []byte, opts ...memdict.ItemOption) error {
	return ds.d.Store(ctx, key, stored{Codec: id, Payload: p}, opts...)
}

// get reads key's stored value; ok is false on a miss.
func (ds *dictSet) get(ctx context.Context, key string) (stored, bool, error) {
	return ds.d.Lookup(ctx, key)
}

// remove deletes key; the error wraps ErrNotFound if it was absent.
func (ds *dictSet) remove(ctx context.Context, key string) error {
	return ds.d.Remove(ctx, key)
}

// stats returns the statistics of the key tester's Dict.
func (ds *dictSet) stats() memdict.Stats { return ds.d.Stats() }
