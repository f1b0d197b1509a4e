package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/codec/python"
	"github.com/memdict/memdict/internal/controls"
	"github.com/memdict/memdict/internal/jsonvalue"
	"github.com/memdict/memdict/tool"
)

func init() {
	commands = []*command{
		getCmd, putCmd, delCmd, keysCmd, clearCmd, statsCmd, pingCmd,
		dumpCmd, loadCmd, pluginsCmd, serveCmd, versionCmd,
	}
}

// withRaw opens the chosen plugin's backend for --raw-key, runs fn, and
// closes it. It is called within withDicts, which checked the
// configuration and the plugin.
func (e *env) withRaw(ctx context.Context, cmd string, fn func(rs *rawStore) int) int {
	rs, err := openRaw(ctx, e.chosenURL)
	if err != nil {
		return e.fail(cmd, err)
	}
	defer rs.Close()
	return fn(rs)
}

// withDicts opens the Tool and the Dicts of the chosen plugin and prefix,
// runs fn, and closes the Tool.
func (e *env) withDicts(ctx context.Context, cmd string, fn func(ds *dictSet) int) int {
	t, err := e.openTool()
	if err != nil {
		return e.fail(cmd, err)
	}
	defer t.Close()
	ds, err := openDicts(ctx, t, e.plugin, e.prefix)
	if err != nil {
		return e.fail(cmd, err)
	}
	return fn(ds)
}

// printJSON writes v as indented JSON, or on one line with compact,
// without HTML escaping ("<" stays "<"), as jq and redis-cli show text.
func printJSON(w io.Writer, v any, compact bool) error {
	var b []byte
	var err error
	if compact {
		b, err = marshalJSON(v)
	} else {
		b, err = marshalJSONIndent(v)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// marshalJSON is json.Marshal without HTML escaping, with the C1 and
// bidirectional controls escaped (controls.Escape): a terminal acts on
// the C1 controls, the bidirectional ones reorder the text around them,
// and keys and values are other programs' text.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return controls.Escape(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// marshalJSONIndent is json.MarshalIndent(v, "", "  ") without HTML
// escaping, with the C1 and bidirectional controls escaped
// (controls.Escape).
func marshalJSONIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return controls.Escape(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// record is a key and its value as get --json and dump print them, and
// load reads them: Value when the value shows as JSON, else Base64 (the
// encoded payload); Flags, the client flags of a value of Python's
// memcached clients (codec "python"). A key that is not UTF-8, which JSON
// text cannot hold, is in KeyBase64 too, Key showing it with U+FFFD for
// its bad bytes.
type record struct {
	Key       string          `json:"key"`
	KeyBase64 string          `json:"key_base64,omitempty"`
	Codec     string          `json:"codec"`
	Flags     uint32          `json:"flags,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Base64    string          `json:"base64,omitempty"`
}

// key returns the record's key: KeyBase64 decoded if it is there, else
// Key.
func (r record) key() (string, error) {
	if r.KeyBase64 == "" {
		return r.Key, nil
	}
	k, err := base64.StdEncoding.DecodeString(r.KeyBase64)
	if err != nil {
		return "", fmt.Errorf("key %s: bad key_base64: %w", quoteKey(r.Key), err)
	}
	return string(k), nil
}

// newRecord returns the record of a stored value; exact makes it carry the
// payload in base64 even when the value shows as JSON.
func newRecord(key string, s stored, exact bool) (record, error) {
	r := record{Key: key, Codec: codecName(s), Flags: s.Flags}
	if !utf8.ValidString(key) {
		r.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(key))
	}
	if !exact {
		if v, ok := s.Decoded(); ok {
			b, err := marshalJSON(v)
			if err != nil {
				return r, err
			}
			r.Value = b
			return r, nil
		}
	}
	r.Base64 = base64.StdEncoding.EncodeToString(s.Payload)
	return r, nil
}

var getCmd = &command{
	name: "get", args: "KEY", nargs: 1,
	summary: "print the value stored under KEY",
	help: `
The value is decoded with the codec it was written with and printed as
JSON; a string value prints as a JSON string. A value that cannot be shown
as JSON (gob, binary bytes, an unknown codec) prints in base64, with a note
on stderr. --raw prints the stored bytes (the payload, without memdict's
header); --json prints {"key", "codec", "value" or "base64"} on one line.

A missing key prints a message on stderr and exits with status 1; a key
that cannot be read (its server is down) is an error, status 3. Without
--prefix, a miss also says under which prefixes KEY holds a value: KEY
"shop:greeting" is tried as key "greeting" of prefix "shop", and KEY under
each prefix that the first 10,000 keys of the site show (at most 32
reads, within 2s).

--raw-key reads KEY as a backend key, as it is, without memdict's key
layout: for values other programs wrote (memccat, redis-cli); a value
without memdict's header shows as codec "none", and one with memcached
client flags (python-memcached's, pymemcache's) is decoded by them, as
codec "python".

On a plugin of format erp5 (ERP5's Memcached Tool) or python, KEY is the
key of the ERP5 Dict of --prefix (or the Python program's key after
--prefix), and the value, a str, int, bytes or pickle told apart by its
client flags, prints as JSON (a dict as an object).

Examples:
  memdict get --prefix shop cart:42
  memdict get --prefix shop cart:42 --json | jq .value.items
  memdict get --prefix images logo --raw > logo.png
  memdict get --plugin sessions --prefix carts abc
  memdict get --raw-key legacy:motd
  memdict --config erp5.yaml get --prefix my_app 'user/1'   # format: erp5`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("raw", false, "print the stored bytes as they are")
		fs.Bool("raw-key", false, "KEY is a backend key, read as it is (a value another program wrote)")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		key := args[0]
		raw := boolFlag(fs, "raw")
		rawKey := boolFlag(fs, "raw-key")
		return e.withDicts(ctx, "get", func(ds *dictSet) int {
			var s stored
			var ok bool
			var err error
			if rawKey {
				code := e.withRaw(ctx, "get", func(rs *rawStore) int {
					s, ok, err = rs.get(ctx, key)
					return exitOK
				})
				if code != exitOK {
					return code
				}
			} else {
				s, ok, err = ds.get(ctx, key)
			}
			if err != nil {
				return e.fail("get", err)
			}
			if !ok {
				fmt.Fprintf(e.stderr, "memdict get: %s: not found\n", quoteKey(key))
				if !rawKey && !e.prefixSet && !flagSet(fs, "prefix") {
					e.hintPrefixes(ctx, ds, key)
				}
				return exitMiss
			}
			switch {
			case raw:
				_, err = e.stdout.Write(s.Payload)
			case e.json:
				var r record
				if r, err = newRecord(key, s, false); err == nil {
					err = printJSON(e.stdout, r, true)
				}
			default:
				v, decoded := s.Decoded()
				if !decoded {
					fmt.Fprintf(e.stderr, "memdict get: the %s value cannot be shown as JSON; printing its %d bytes in base64 (--raw prints them as they are)\n", codecName(s), len(s.Payload))
					v = base64.StdEncoding.EncodeToString(s.Payload)
				}
				err = printJSON(e.stdout, v, false)
			}
			if err != nil {
				return e.fail("get", err)
			}
			return exitOK
		})
	},
}

var putCmd = &command{
	name: "put", args: "KEY [VALUE]", nargs: -1,
	summary: "store a value under KEY",
	help: `
VALUE is stored as text, as it is, as memccat and redis-cli store it (the
raw codec: a Go program reads it into a Dict[string] or Dict[[]byte]).
--typed parses VALUE as JSON ('42', '"text"', '{"a":[1,2]}') and encodes
it with the codec --codec names (default: the plugin's codec, msgpack
unless configured), so that Go programs read it back into the matching
type; integers stay integers. --codec implies --typed. Without VALUE, or
with "-", the value is read from standard input, at most the plugin's
max_value_length (4 times it with --typed, as JSON text may be longer
than its encoding; 64 MiB on a plugin without max_value_length). Use "--"
before a VALUE that starts with "-".

--raw-key stores VALUE's bytes under KEY as the backend key itself,
without memdict's key layout or value header, for other programs to read.

On a plugin of format erp5 or python, values are Python's: VALUE is
stored as a str (bytes if it is not UTF-8), and --typed stores the JSON
value as python-memcached stores the Python value (an object as a pickled
dict, an integer as an int, a string as a str), which ERP5 and Python
programs read back; --codec does not apply.

put refuses to write to the built-in in-memory backend (no configuration),
where the value would be gone when the command ends, unless --mem is given.

Examples:
  memdict put --prefix shop greeting 'hello, world'
  memdict put --prefix shop --typed cart:42 '{"items":[1,2,3],"total":9.5}'
  memdict put --prefix shop --ttl 10m --typed token:7 '"abc"'
  memdict put --prefix shop --codec json config - < config.json
  memdict put --prefix counters --typed -- balance -5
  memdict put --raw-key legacy:motd 'read me with memccat'
  memdict --config erp5.yaml put --prefix my_app --typed user/1 '{"name":"Ada"}'`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("typed", false, "parse VALUE as JSON and store it typed, encoded by the codec")
		fs.Bool("string", false, "store VALUE as text (the default; for compatibility)")
		fs.String("codec", "", "`name` of the codec that encodes a typed value: "+strings.Join(codec.Names(), ", ")+" (default: the plugin's; implies --typed)")
		ttlFlag(fs, "time to live: `seconds` or a duration (\"90s\", \"1h\"); 0: the plugin's expiration")
		fs.Bool("raw-key", false, "KEY is a backend key, VALUE its bytes, both as they are")
		fs.Bool("mem", false, "write even to the in-memory backend, whose data is gone when the command ends")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if len(args) < 1 || len(args) > 2 {
			return e.fail("put", usagef("want KEY [VALUE], got %d arguments", len(args)))
		}
		key := args[0]
		asString := boolFlag(fs, "string")
		codecName := fs.Lookup("codec").Value.String()
		typed := boolFlag(fs, "typed") || codecName != ""
		rawKey := boolFlag(fs, "raw-key")
		switch {
		case asString && typed:
			return e.fail("put", usagef("--string stores text with the raw codec; leave out --typed and --codec"))
		case rawKey && typed:
			return e.fail("put", usagef("--raw-key stores VALUE's bytes as they are; leave out --typed and --codec"))
		}
		ttl, err := ttlOf(fs)
		if err != nil {
			return e.fail("put", err)
		}
		if ttl < 0 {
			return e.fail("put", usagef("--ttl must not be negative"))
		}
		var opts []memdict.ItemOption
		if ttl > 0 {
			opts = append(opts, memdict.TTL(ttl))
		}
		return e.withDicts(ctx, "put", func(ds *dictSet) int {
			var text []byte
			if len(args) == 2 && args[1] != "-" {
				text = []byte(args[1])
			} else {
				if f, ok := e.stdin.(*os.File); ok && isTerminal(f) {
					fmt.Fprintln(e.stderr, "memdict put: reading the value from standard input (end it with Ctrl-D)")
				}
				var err error
				if text, err = readValue(e.stdin, ds.info, typed); err != nil {
					return e.fail("put", err)
				}
			}
			var id byte
			var p []byte
			var flags uint32
			var err error
			if !rawKey {
				if id, p, flags, err = encodeValue(ds, text, !typed, codecName); err != nil {
					return e.fail("put", err)
				}
			}
			if err := e.needDurable("put", boolFlag(fs, "mem")); err != nil {
				return e.fail("put", err)
			}
			if rawKey {
				if ttl == 0 {
					ttl = ds.info.Expiration
				}
				if code := e.withRaw(ctx, "put", func(rs *rawStore) int {
					if err := rs.put(ctx, key, text, ttl); err != nil {
						return e.fail("put", err)
					}
					return exitOK
				}); code != exitOK {
					return code
				}
				if e.json {
					_ = printJSON(e.stdout, map[string]any{"key": key, "codec": "none", "bytes": len(text)}, true)
				}
				return exitOK
			}
			if err := ds.put(ctx, key, id, p, flags, opts...); err != nil {
				return e.fail("put", err)
			}
			if e.json {
				out := map[string]any{"key": key, "codec": codec.NameOf(id), "bytes": len(p)}
				if pythonFormat(ds.info) {
					out["codec"], out["flags"] = "python", flags
				}
				_ = printJSON(e.stdout, out, true)
			}
			return exitOK
		})
	},
}

// ttlFlag defines --ttl, a time to live read by tool.ParseTTL (seconds or
// a duration), as the configuration file's expirations are; "" is 0.
func ttlFlag(fs *flag.FlagSet, usage string) { fs.String("ttl", "", usage) }

// ttlOf returns the --ttl of fs; a value tool.ParseTTL cannot read is a
// usage error naming the flag.
func ttlOf(fs *flag.FlagSet) (time.Duration, error) {
	s := fs.Lookup("ttl").Value.String()
	if s == "" {
		return 0, nil
	}
	d, err := tool.ParseTTL(s)
	if err != nil {
		return 0, usagef("--ttl: %v", err)
	}
	return d, nil
}

// boolFlag returns the value of fs's boolean flag name.
func boolFlag(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// typedTextFactor is how many times the plugin's value limit put reads of
// a --typed VALUE from standard input: JSON text (indented, say) may be
// longer than the value it encodes to.
const typedTextFactor = 4

// readValue reads put's VALUE from r, at most the plugin info's
// max_value_length (typedTextFactor times it for JSON text, typed): a
// longer value is an error naming the limit, found without reading it
// whole.
func readValue(r io.Reader, info tool.PluginInfo, typed bool) ([]byte, error) {
	limit := valueLimit(info)
	if typed {
		limit *= typedTextFactor
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading the value from standard input: %w", err)
	}
	if len(b) <= limit {
		return b, nil
	}
	what, of := "value", valueLimitText(info)
	if typed {
		what, of = "JSON text", fmt.Sprintf("%d times the value limit, %s", typedTextFactor, of)
	}
	how := "; raise the plugin's max_value_length in its configuration file (--config or $" + tool.EnvConfig + ") to store larger values"
	if info.MaxValueLen <= 0 {
		how = "" // no limit to raise
	}
	return nil, fmt.Errorf("%w: the %s on standard input is longer than %d bytes (%s)%s",
		memdict.ErrValueTooLarge, what, limit, of, how)
}

// encodeValue turns put's VALUE into a codec ID and payload; on a plugin
// of a Python format (erp5, python), into a value of Python's memcached
// clients and its client flags: text a str (bytes if it is not UTF-8),
// typed JSON the Python value (an object a dict, an array a list, ...).
func encodeValue(ds *dictSet, text []byte, asString bool, codecName string) (byte, []byte, uint32, error) {
	if pythonFormat(ds.info) {
		p, flags, err := encodePython(ds.info, text, asString, codecName)
		return 0, p, flags, err
	}
	id, p, err := encodeCodec(ds, text, asString, codecName)
	return id, p, 0, err
}

// encodePython is encodeValue on a plugin of a Python format.
func encodePython(info tool.PluginInfo, text []byte, asString bool, codecName string) ([]byte, uint32, error) {
	if codecName != "" {
		return nil, 0, usagef("plugin %s has format %s, whose values are Python's (str, int, bytes, pickles): --codec does not apply; use --typed", info.Name, info.Format)
	}
	var v any = text
	if asString {
		if utf8.Valid(text) {
			v = string(text)
		}
	} else {
		var err error
		if v, err = jsonvalue.ParsePython(text); err != nil {
			return nil, 0, usagef("VALUE is not JSON (%v); leave out --typed to store text as it is", err)
		}
	}
	p, flags, err := python.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", memdict.ErrEncode, err)
	}
	return p, flags, nil
}

// encodeCodec is encodeValue on a plugin of memdict's own format.
func encodeCodec(ds *dictSet, text []byte, asString bool, codecName string) (byte, []byte, error) {
	if asString {
		return codec.RawID, text, nil
	}
	if codecName == "" {
		codecName = ds.info.Codec
	}
	c := codec.Default()
	if codecName != "" {
		var ok bool
		if c, ok = codec.ByName(codecName); !ok {
			return 0, nil, usagef("unknown codec %q (known: %s)", codecName, strings.Join(codec.Names(), ", "))
		}
	}
	v, err := parseJSONValue(text)
	if err != nil {
		return 0, nil, usagef("VALUE is not JSON (%v); leave out --typed and --codec to store text as it is", err)
	}
	if c.ID() == codec.RawID {
		s, ok := v.(string)
		if !ok {
			return 0, nil, usagef("the raw codec stores strings only; VALUE is a JSON %T", v)
		}
		return codec.RawID, []byte(s), nil
	}
	p, err := c.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %w", memdict.ErrEncode, c.Name(), err)
	}
	return c.ID(), p, nil
}

var delCmd = &command{
	name: "del", args: "KEY", nargs: 1,
	summary: "remove the value stored under KEY",
	help: `
Exits with status 1 if the key held no value. --raw-key removes KEY as a
backend key, as it is.

Examples:
  memdict del --prefix shop cart:42
  memdict del --raw-key legacy:motd`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("raw-key", false, "KEY is a backend key, as it is")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		return e.withDicts(ctx, "del", func(ds *dictSet) int {
			var err error
			if boolFlag(fs, "raw-key") {
				if code := e.withRaw(ctx, "del", func(rs *rawStore) int {
					err = rs.del(ctx, args[0])
					return exitOK
				}); code != exitOK {
					return code
				}
			} else {
				err = ds.remove(ctx, args[0])
			}
			switch {
			case errors.Is(err, memdict.ErrNotFound):
				fmt.Fprintf(e.stderr, "memdict del: %s: not found\n", quoteKey(args[0]))
				return exitMiss
			case err != nil:
				return e.fail("del", err)
			}
			return exitOK
		})
	},
}

// quoteKey returns key as it is if it prints plainly, else Go-quoted
// (controls.QuoteKey, as the admin page shows keys).
func quoteKey(key string) string { return controls.QuoteKey(key) }

// keyJSON is a key as keys --json prints it: a JSON string, or, for a
// key that is not UTF-8, which a JSON string cannot hold (its bad bytes
// would all read as U+FFFD), {"key": ..., "key_base64": ...}, as dump
// writes such a key.
func keyJSON(k string) any {
	if utf8.ValidString(k) {
		return k
	}
	m := map[string]string{"key": k}
	addBase64(m, "key", k)
	return m
}

// addBase64 adds to m, for a text s of field name that is not UTF-8, the
// field name+"_base64" holding its very bytes.
func addBase64(m map[string]string, name, s string) {
	if !utf8.ValidString(s) {
		m[name+"_base64"] = base64.StdEncoding.EncodeToString([]byte(s))
	}
}

var keysCmd = &command{
	name: "keys", nargs: 0,
	summary: "list the keys of the Dict (--prefix), or of every prefix",
	help: `
With --prefix, lists the Dict's live keys, one a line, in no particular
order. Without --prefix, lists the live keys of every prefix of the site,
one "PREFIX<tab>KEY" a line (prefixes found in the backend's key space). A
prefix or key that holds spaces at its ends, quotes, tabs or characters
that do not print is shown Go-quoted. --json prints one JSON value a line:
a string with --prefix, else {"prefix": ..., "key": ...}. A key that is
not UTF-8, which a JSON string cannot hold, prints as dump writes it:
{"key": ..., "key_base64": ...}, "key" showing it with U+FFFD for its bad
bytes and "key_base64" holding its very bytes ("prefix_base64" for such a
prefix).

--raw-key lists the backend keys as they are, every one that starts with
--prefix's text (all of them without it), memdict's and other programs'.

A listing that fails half-way (a server gone) prints the keys listed
before the failure, then the error, and exits 3.

Listing needs a backend that can enumerate keys: the in-memory store,
Redis (SCAN), or memcached 1.6 and later (lru_crawler metadump).

Examples:
  memdict keys --prefix shop
  memdict keys --prefix shop --limit 10
  memdict keys --prefix shop --json | wc -l
  memdict keys
  memdict keys --raw-key --prefix legacy:`,
	flags: func(fs *flag.FlagSet) {
		fs.Int("limit", 0, "list at most `n` keys (0: all)")
		fs.Bool("raw-key", false, "list backend keys as they are")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		limit, _ := strconv.Atoi(fs.Lookup("limit").Value.String())
		rawKey := boolFlag(fs, "raw-key")
		allPrefixes := !e.prefixSet && !flagSet(fs, "prefix")
		return e.withDicts(ctx, "keys", func(ds *dictSet) int {
			n := 0
			more := func() bool { n++; return (limit <= 0 || n < limit) && !e.outputFailed() }
			var err error
			switch {
			case rawKey:
				err = listRaw(ctx, ds.be, e.prefix, func(k string) bool {
					if e.json {
						_ = printJSON(e.stdout, keyJSON(k), true)
					} else {
						fmt.Fprintln(e.stdout, quoteKey(k))
					}
					return more()
				})
			case allPrefixes:
				err = ds.allKeys(ctx, func(prefix, k string) bool {
					if e.json {
						m := map[string]string{"prefix": prefix, "key": k}
						addBase64(m, "prefix", prefix)
						addBase64(m, "key", k)
						_ = printJSON(e.stdout, m, true)
					} else {
						fmt.Fprintf(e.stdout, "%s\t%s\n", quoteKey(prefix), quoteKey(k))
					}
					return more()
				})
			default:
				for k, lerr := range ds.d.Keys(ctx) {
					if lerr != nil {
						err = lerr
						break
					}
					if e.json {
						_ = printJSON(e.stdout, keyJSON(k), true)
					} else {
						fmt.Fprintln(e.stdout, quoteKey(k))
					}
					if !more() {
						break
					}
				}
			}
			if err != nil {
				return e.fail("keys", err)
			}
			return exitOK
		})
	},
}

var clearCmd = &command{
	name: "clear", nargs: 0,
	summary: "remove every key of the Dict (--prefix) at once",
	help: `
Moves the Dict's namespace to a new generation (memdict's Dict.Clear):
every key of the prefix becomes unreachable at once, other prefixes and
other applications on the server are untouched, and the old entries are
left to expire or be evicted. Applications see the clear within about a
second. --yes is required, so that a clear is never an accident.

Examples:
  memdict clear --prefix shop --yes`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("yes", false, "really clear")
		fs.Bool("mem", false, "clear even in the in-memory backend, whose data is gone when the command ends")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if fs.Lookup("yes").Value.String() != "true" {
			return e.fail("clear", usagef("clear removes every key of prefix %q: add --yes to confirm", e.prefix))
		}
		return e.withDicts(ctx, "clear", func(ds *dictSet) int {
			if err := e.needDurable("clear", boolFlag(fs, "mem")); err != nil {
				return e.fail("clear", err)
			}
			if err := ds.d.Clear(ctx); err != nil {
				return e.fail("clear", err)
			}
			if e.json {
				gen, _ := ds.d.Generation(ctx)
				_ = printJSON(e.stdout, map[string]any{"prefix": e.prefix, "generation": gen}, true)
			}
			return exitOK
		})
	},
}

var statsCmd = &command{
	name: "stats", nargs: 0,
	summary: "show the plugin's server statistics",
	help: `
Shows, for each server of the plugin (each memcached node, each Redis
node), its items, memory, hit ratio, evictions and uptime; --all shows
every statistic the server reports (memcached's "stats", Redis's INFO).

Examples:
  memdict stats
  memdict stats --plugin sessions --all
  memdict stats --json | jq '.[].hit_ratio'`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("all", false, "show every statistic")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		all := fs.Lookup("all").Value.String() == "true"
		return e.withDicts(ctx, "stats", func(ds *dictSet) int {
			nodes, err := backend.ServerStats(ctx, ds.be)
			if err != nil {
				return e.fail("stats", err)
			}
			code := exitOK
			switch {
			case e.json && all:
				type node struct {
					Addr  string            `json:"addr"`
					Stats map[string]string `json:"stats,omitempty"`
					Error string            `json:"error,omitempty"`
				}
				out := []node{}
				for _, n := range nodes {
					x := node{Addr: n.Addr, Stats: n.Stats}
					if n.Err != nil {
						x.Error = e.scrub(n.Err.Error())
						code = exitError
					}
					out = append(out, x)
				}
				_ = printJSON(e.stdout, out, false)
			case e.json:
				out := []summary{}
				for _, n := range nodes {
					s := summarize(n)
					if s.Error != "" {
						s.Error = e.scrub(s.Error)
						code = exitError
					}
					out = append(out, s)
				}
				_ = printJSON(e.stdout, out, false)
			default:
				fmt.Fprintf(e.stdout, "plugin %s (%s)\n", ds.info.Name, displayURL(ds.info))
				for _, n := range nodes {
					s := summarize(n)
					// A cluster's node addresses are its servers' words
					// (CLUSTER SLOTS): quoted, as its statistics are.
					fmt.Fprintf(e.stdout, "\nserver %s\n", printable(n.Addr))
					if n.Err != nil {
						fmt.Fprintf(e.stdout, "  error:     %s\n", e.scrub(n.Err.Error()))
						code = exitError
						continue
					}
					fmt.Fprintf(e.stdout, "  items:     %s\n  memory:    %s\n  hit ratio: %s\n  evictions: %s\n  uptime:    %s\n",
						s.ItemsText(), s.MemoryText(), s.HitRatioText(), s.EvictionsText(), s.UptimeText())
					if all {
						names := make([]string, 0, len(n.Stats))
						for k := range n.Stats {
							names = append(names, k)
						}
						sort.Strings(names)
						fmt.Fprintln(e.stdout)
						for _, k := range names {
							fmt.Fprintf(e.stdout, "  %-28s %s\n", printable(k), printable(n.Stats[k]))
						}
					}
				}
			}
			return code
		})
	},
}

// displayURL returns a plugin's URL for display: already redacted by the
// Tool; a backend supplied in code has none.
func displayURL(info tool.PluginInfo) string {
	if info.URL == "" {
		return "(backend supplied by the program)"
	}
	return backend.Redact(info.URL)
}

// pingResult is the outcome of one ping.
type pingResult struct {
	Plugin  string  `json:"plugin"`
	URL     string  `json:"url"`
	OK      bool    `json:"ok"`
	Latency float64 `json:"latency_ms"`
	Error   string  `json:"error,omitempty"`
}

// ping checks that a plugin's servers answer.
func ping(ctx context.Context, t *tool.Tool, info tool.PluginInfo, timeout time.Duration, secrets ...string) pingResult {
	r := pingResult{Plugin: info.Name, URL: displayURL(info)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	be, err := t.Backend(ctx, info.Path)
	if err == nil {
		err = backend.Ping(ctx, be)
	}
	r.Latency = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		r.Error = scrubSecrets(err.Error(), secrets...)
	} else {
		r.OK = true
	}
	return r
}

var pingCmd = &command{
	name: "ping", nargs: 0,
	summary: "check that the plugin's servers answer",
	help: `
Pings the chosen plugin (--plugin), or every plugin with --all, and prints
the round-trip time. Exits with status 3 if a server does not answer.
--timeout bounds the command: with --all, the plugins are pinged at once.

Examples:
  memdict ping
  memdict ping --all --timeout 500ms`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("all", false, "ping every plugin")
		fs.Duration("timeout", 2*time.Second, "give up after this `duration`")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		all := fs.Lookup("all").Value.String() == "true"
		timeout := fs.Lookup("timeout").Value.(flag.Getter).Get().(time.Duration)
		t, err := e.openTool()
		if err != nil {
			return e.fail("ping", err)
		}
		defer t.Close()
		var infos []tool.PluginInfo
		if all {
			infos = t.Plugins()
		} else {
			info, err := t.Plugin(e.plugin)
			if err != nil {
				return e.fail("ping", err)
			}
			infos = []tool.PluginInfo{info}
		}
		// Every plugin at once, so that the command ends within the
		// timeout however many plugins do not answer.
		results := make([]pingResult, len(infos))
		var wg sync.WaitGroup
		for i, info := range infos {
			wg.Go(func() { results[i] = ping(ctx, t, info, timeout, append([]string{e.url}, e.secrets...)...) })
		}
		wg.Wait()
		code := exitOK
		for _, r := range results {
			if !r.OK {
				code = exitError
			}
			switch {
			case e.json:
				_ = printJSON(e.stdout, r, true)
			case r.OK:
				fmt.Fprintf(e.stdout, "%s (%s): ok, %.2f ms\n", r.Plugin, r.URL, r.Latency)
			default:
				fmt.Fprintf(e.stdout, "%s (%s): FAILED after %.2f ms: %s\n", r.Plugin, r.URL, r.Latency, r.Error)
			}
		}
		return code
	},
}

var pluginsCmd = &command{
	name: "plugins", nargs: 0,
	summary: "list the configured plugins",
	help: `
Lists the plugins the configuration defines, with their URL (passwords
replaced by xxxxx) and the defaults of their Dicts.

Examples:
  memdict plugins --config app.yaml
  memdict plugins --json`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		t, err := e.openTool()
		if err != nil {
			return e.fail("plugins", err)
		}
		defer t.Close()
		type pluginJSON struct {
			Name        string  `json:"name"`
			Path        string  `json:"path"`
			URL         string  `json:"url"`
			Expiration  float64 `json:"expiration_seconds"`
			MaxKeyLen   int     `json:"max_key_length"`
			MaxValueLen int     `json:"max_value_length"`
			Codec       string  `json:"codec"`
			Format      string  `json:"format"`
			Order       int     `json:"order"`
			SiteID      string  `json:"site_id,omitempty"`
			Warm        float64 `json:"warm_seconds,omitempty"`
			NearCache   *struct {
				MaxEntries int     `json:"max_entries"`
				MaxBytes   int64   `json:"max_bytes"`
				MaxStale   float64 `json:"max_stale_seconds"`
			} `json:"near_cache,omitempty"`
		}
		for _, p := range t.Plugins() {
			c := p.Codec
			if c == "" {
				c = codec.Default().Name()
			}
			if e.json {
				pj := pluginJSON{Name: p.Name, Path: p.Path, URL: displayURL(p), Expiration: p.Expiration.Seconds(), MaxKeyLen: p.MaxKeyLen,
					MaxValueLen: p.MaxValueLen, Codec: c, Format: string(p.Format), Order: p.Order, SiteID: p.SiteID, Warm: p.Warm.Seconds()}
				if nc := p.NearCache; nc != nil {
					pj.NearCache = &struct {
						MaxEntries int     `json:"max_entries"`
						MaxBytes   int64   `json:"max_bytes"`
						MaxStale   float64 `json:"max_stale_seconds"`
					}{nc.MaxEntries, nc.MaxBytes, nc.MaxStale.Seconds()}
				}
				_ = printJSON(e.stdout, pj, true)
				continue
			}
			fmt.Fprintf(e.stdout, "%s\n  url:           %s\n  expiration:    %s\n  max key len:   %s\n  max value len: %s\n  codec:         %s\n  format:        %s\n  near cache:    %s\n",
				p.Path, displayURL(p), expirationText(p.Expiration), limitText(p.MaxKeyLen), limitText(p.MaxValueLen), c, p.Format, p.NearCache)
			if p.SiteID != "" {
				fmt.Fprintf(e.stdout, "  site id:       %s\n", p.SiteID)
			}
			if p.Warm > 0 {
				fmt.Fprintf(e.stdout, "  warm:          %v (warm-up after a change of URL)\n", p.Warm)
			}
		}
		return exitOK
	},
}

func expirationText(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

func limitText(n int) string {
	if n == 0 {
		return "no limit"
	}
	return strconv.Itoa(n)
}

var versionCmd = &command{
	name: "version", nargs: 0, noTool: true,
	summary: "print the command's version",
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		fmt.Fprintln(e.stdout, versionString())
		return exitOK
	},
}

// versionString returns the module version and VCS revision the binary was
// built from.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "memdict (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var extra []string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			extra = append(extra, "rev "+s.Value)
		case "vcs.modified":
			if s.Value == "true" {
				extra = append(extra, "modified")
			}
		}
	}
	extra = append(extra, bi.GoVersion)
	return fmt.Sprintf("memdict %s (%s)", v, strings.Join(slices.Clip(extra), ", "))
}

// hintPrefixes prints, after a miss of key without --prefix, the prefixes
// under which it holds a value (dictSet.prefixHints), or that none was
// found.
func (e *env) hintPrefixes(ctx context.Context, ds *dictSet, key string) {
	hints, looked, complete := ds.prefixHints(ctx, key)
	for _, h := range hints {
		fmt.Fprintf(e.stderr, "memdict get: hint: under --prefix %s: memdict get --prefix %s %s\n",
			shellQuote(h.prefix), shellQuote(h.prefix), shellQuote(h.key))
	}
	switch {
	case len(hints) > 0:
	case complete:
		fmt.Fprintf(e.stderr, "memdict get: hint: no prefix holds it either (%d looked at); memdict keys lists the keys of every prefix\n", looked)
	default:
		fmt.Fprintf(e.stderr, "memdict get: hint: --prefix names the Dict's prefix; no other prefix tried holds it (%d looked at); memdict keys --prefix P lists a prefix's keys\n", looked)
	}
}

// shellQuote returns s as a shell word: as it is when it has only
// characters a shell leaves alone, in single quotes when it prints
// plainly, else in bash's $'...' with every byte that does not print
// (controls, invalid UTF-8, characters such as U+202E that reorder or
// hide text) escaped: a word from the server's key space must not reach
// the terminal as escape sequences, and the shell reads the escapes back
// into the very bytes.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_./:@%+=,-", r)))
	}) < 0 {
		return s
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r):
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('\'')
	return b.String()
}
