package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/controls"
	"github.com/memdict/memdict/internal/jsonvalue"
	"github.com/memdict/memdict/internal/pyvalues"
	"github.com/memdict/memdict/tool"
)

// The key tester reads, writes and deletes one key through a Dict of its
// own of memdict.Raw values, opened over the Tool's backend with the
// plugin's settings, so that it can write values of any codec and read
// whatever is stored.

// stored is a value as memdict stores it: its codec ID and payload.
type stored = memdict.Raw

// codecName is "raw", "msgpack", ..., "python" for a value of Python's
// memcached clients (client flags), or "unframed" for another value
// memdict did not write.
func codecName(s stored) string {
	switch {
	case s.Codec == 0 && s.Flags != 0:
		return "python"
	case s.Codec == 0:
		return "unframed"
	}
	return codec.NameOf(s.Codec)
}

// pythonFormat reports whether the plugin's Dicts are Python's (format
// erp5 or python), whose values are codec/python's.
func pythonFormat(info tool.PluginInfo) bool {
	return info.Format == memdict.FormatERP5 || info.Format == memdict.FormatPython
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
// plugin's codec). On a plugin of a Python format it returns a value of
// Python's memcached clients and its client flags instead (codec 0): a
// str (asString), else the JSON value as Python's.
func encodeValue(info tool.PluginInfo, text []byte, asString bool, codecName string) (byte, []byte, uint32, error) {
	if pythonFormat(info) {
		var v any = string(text)
		if !asString {
			if codecName != "" {
				return 0, nil, 0, fmt.Errorf("plugin %s has format %s, whose values are Python's: choose the plugin's codec or string", info.Name, info.Format)
			}
			var err error
			// Python's ints have no bounds: an integer beyond 64 bits
			// stays one (jsonvalue.ParsePython), rather than the nearest float.
			if v, err = jsonvalue.ParsePython(text); err != nil {
				return 0, nil, 0, fmt.Errorf("the value is not JSON (%v); choose \"string\" to store text as it is", err)
			}
		}
		py := pyvalues.Get() // registered: a plugin of a Python format exists only then
		if py == nil {
			return 0, nil, 0, pyvalues.Missing(string(info.Format))
		}
		p, flags, err := py.Marshal(v)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("%w: %w", memdict.ErrEncode, err)
		}
		return 0, p, flags, nil
	}
	id, p, err := encodeCodec(info, text, asString, codecName)
	return id, p, 0, err
}

// encodeCodec is encodeValue on a plugin of memdict's own format.
func encodeCodec(info tool.PluginInfo, text []byte, asString bool, codecName string) (byte, []byte, error) {
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
// otherwise (controls.QuoteKey, as the memdict command does): a key with
// a space at either end showed as it was, and the page's text collapses
// that space ("Key k holds" for the key " k"). A key longer than
// maxKeyShown bytes shows its start, quoted, and its length: a key of
// 300 KiB typed in the form made a message of 1.2 MB, held in the
// session.
func quoteKey(key string) string {
	if len(key) <= maxKeyShown {
		return controls.QuoteKey(key)
	}
	cut := maxKeyShown
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (a key of %s bytes)", strconv.Quote(key[:cut]), groupDigits(int64(len(key))))
}

// cutText returns s cut to its first max bytes (at a character's start),
// followed by "…" and its length, when it is longer.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%s bytes in all)", s[:cut], groupDigits(int64(len(s))))
}

// dictSet holds the key tester's Dict of one plugin and prefix. It is
// safe for concurrent use.
type dictSet struct {
	info   tool.PluginInfo
	be     backend.Backend // the plugin's, when ds was made
	prefix string
	d      *memdict.Dict[memdict.Raw]
}

// openDicts returns the key tester's Dict of prefix in the plugin info
// describes, over be, its backend. It is made with memdict.New, not
// tool.Dict, so that the page does not list it among the program's Dicts.
func openDicts(info tool.PluginInfo, be backend.Backend, prefix string) (*dictSet, error) {
	d, err := memdict.New[memdict.Raw](be, prefix,
		memdict.WithSiteID(info.SiteID),
		memdict.WithDefaultTTL(info.Expiration),
		memdict.WithMaxKeyLen(info.MaxKeyLen),
		memdict.WithMaxValueLen(info.MaxValueLen),
		memdict.WithFormat(info.Format),
	)
	if err != nil {
		return nil, err
	}
	return &dictSet{info: info, be: be, prefix: prefix, d: d}, nil
}

// follows reports whether ds (nil: none) was made with the plugin's
// settings info and its backend be, as they are now.
func (ds *dictSet) follows(info tool.PluginInfo, be backend.Backend) bool {
	return ds != nil && ds.be == be && ds.info.PluginConfig == info.PluginConfig && ds.info.SiteID == info.SiteID
}

// put stores p, encoded by codec id (0 in a Python format) with client
// flags (Python formats only), under key.
func (ds *dictSet) put(ctx context.Context, key string, id byte, p []byte, flags uint32, opts ...memdict.ItemOption) error {
	return ds.d.Store(ctx, key, stored{Codec: id, Payload: p, Flags: flags}, opts...)
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
