package tool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/pyvalues"
)

// Plugin names and paths.
const (
	// DefaultPlugin is the name of the plugin used when a plugin path is
	// empty. It always exists: if the configuration does not define it, it
	// is DefaultURL with the default limits.
	DefaultPlugin = "default"
	// ERP5DefaultPlugin is ERP5's name of the default plugin
	// (portal_memcached/default_memcached_plugin), and memdict's before
	// version 0.x: configuration files, Config, plugin paths and
	// WithBackend take it as DefaultPlugin, which the Tool then reports.
	// A configuration that defines both is an error.
	ERP5DefaultPlugin = "default_memcached_plugin"
	// PersistentPlugin is the name ERP5 sites give a second plugin that
	// points at a persistent store. The Tool gives it no special meaning;
	// a service names such a plugin for what it holds ("sessions").
	PersistentPlugin = "persistent_memcached_plugin"
	// PathPrefix is the prefix of ERP5's plugin paths: a plugin named n is
	// found under n and under PathPrefix+n.
	PathPrefix = "portal_memcached/"
	// DefaultURL is the default plugin's URL when nothing configures it:
	// the embedded in-memory backend, so that programs run with no set-up.
	DefaultURL = "mem://"
)

// Environment variables read by ConfigFromEnv and FromEnv.
const (
	// EnvConfig names a configuration file (.yaml, .yml or .json).
	EnvConfig = "MEMDICT_CONFIG"
	// EnvURL replaces the default plugin's URL.
	EnvURL = "MEMDICT_URL"
	// EnvSiteID replaces the site id.
	EnvSiteID = "MEMDICT_SITE_ID"
)

// Config is a Tool's configuration: an optional site id and named plugins.
// The zero value is valid: it gives the default plugin on DefaultURL.
type Config struct {
	// SiteID, if not empty, is put in front of the prefix of every Dict of
	// every plugin, so that several applications can share one server
	// without meeting (ERP5's site-wide id).
	SiteID string
	// Plugins maps plugin names (the short form, without PathPrefix) to
	// their configuration. A missing DefaultPlugin is added with
	// DefaultPluginConfig(DefaultURL).
	Plugins map[string]PluginConfig
}

// PluginConfig is one plugin's configuration: where its backend is and the
// defaults its Dicts take (ERP5's Memcached Plugin). Its zero value means
// no expiry and no limits; start from DefaultPluginConfig for memcached's
// limits.
type PluginConfig struct {
	// URL names the backend, as backend.Open takes it: "mem://",
	// "memcached://h1:11211,h2:11211", "redis://:password@host:6379/0", ...
	// A URL without "://" (ERP5's host:port url_string) means memcached://.
	// It may hold a password: print backend.Redact(URL), never URL.
	URL string
	// Expiration is the time to live of values written without a TTL
	// option (memdict.WithDefaultTTL; see backend.Item.TTL for the rule):
	// 0 means they never expire. It must not be negative. Files give it
	// in seconds or as a duration (ParseTTL).
	Expiration time.Duration
	// MaxKeyLen is the longest backend key Dicts produce: 0 means no limit,
	// otherwise at least 80. Longer keys are shortened to a hash.
	MaxKeyLen int
	// MaxValueLen is the largest encoded value Dicts send (0: no limit).
	MaxValueLen int
	// Codec names the codec that encodes values ("msgpack", "json",
	// "gob", or one added with codec.Register); "" means codec.Default().
	Codec string
	// Order sorts plugins in listings (ERP5's ordering index); ties are
	// sorted by name.
	Order int
	// GenerationRefresh is how often Dicts read their namespace generation
	// again, to see a Dict.Clear made by another process (see
	// memdict.Settings): 0 means memdict.DefaultGenerationRefresh (1s), a
	// negative value never (but each tenth of GenerationTTL, to renew the
	// generation key's TTL).
	GenerationRefresh time.Duration
	// GenerationTTL is the time to live of each namespace's generation
	// key, which the Dicts that use the namespace renew (see
	// memdict.Settings): 0 means memdict.DefaultGenerationTTL (30 days), a
	// negative value that the key does not expire. Files write it
	// generation_ttl, in seconds, as a duration ("720h") or never.
	GenerationTTL time.Duration
	// Warm, if positive, is how long the plugin warms up its new backend
	// when its URL changes (SetPlugin, Configure): for that long, a miss
	// on the new backend reads the previous one and copies the item over
	// with its remaining TTL (as mcrouter's warm-up route does), so that
	// a move to new servers does not make every key miss at once. The
	// previous backend stays open meanwhile; every write of a key deletes
	// it there first, so a value is never served older than one written
	// since the switch; leases keep one caller per key filling it (from
	// the previous backend). Each write costs one more round trip, to the
	// previous backend, during the window. 0 means no warm-up: the new
	// backend starts empty. Files write it warm, in seconds or as a
	// duration ("10m").
	Warm time.Duration
	// NearCache, if not nil, gives each Dict of the plugin a near cache:
	// an in-process tier in front of the backend (memdict.WithNearCache).
	// A Dict takes it when it is made, so a change applies to the Dicts
	// made afterwards; a Dict's own memdict.WithNearCache or
	// memdict.WithoutNearCache replaces it. nil means none. The formats
	// erp5 and python have none.
	NearCache *NearCacheConfig
	// Format is how the plugin's Dicts lay out their keys and values
	// (memdict.WithFormat): "" or memdict.FormatMemdict, memdict's own;
	// memdict.FormatERP5, the entries of ERP5's Memcached Tool on the same
	// memcached (the Tool's site id and the Dict's prefix make ERP5's
	// keys); memdict.FormatPython, the values of Python programs using
	// python-memcached or pymemcache, under the keys they use. Files
	// write it format: erp5.
	Format memdict.Format
}

// NearCacheConfig is a plugin's near cache: the bounds and the staleness
// of the in-process tier each of its Dicts puts in front of the backend.
// The fields mean what memdict.NearCache's of the same names mean; files
// write them max_entries, max_bytes and max_stale, under near_cache.
type NearCacheConfig struct {
	// MaxEntries bounds each Dict's near cache: 0 means
	// memdict.DefaultNearCacheEntries, unless MaxBytes is set.
	MaxEntries int
	// MaxBytes bounds the memory of each Dict's near cache (0: no byte
	// bound).
	MaxBytes int64
	// MaxStale is the longest a value read from the backend is served
	// from the near cache. 0 means no limit: the near cache then relies
	// on the server to report the changes other clients make, which only
	// Redis does (a Dict of a plugin on another backend fails to be made).
	// If SetPlugin moves the plugin to a backend that cannot report
	// changes, near caches with MaxStale 0 keep nothing (every read goes
	// to the backend) until it moves to one that can; set MaxStale to keep
	// serving from them, at most that stale.
	MaxStale time.Duration
}

// String describes nc for listings and admin pages: "none" for nil,
// else its bounds and staleness ("10000 entries, until the server reports
// a change", "1000 entries, 8388608 bytes, at most 30s stale").
func (nc *NearCacheConfig) String() string {
	if nc == nil {
		return "none"
	}
	var parts []string
	switch {
	case nc.MaxEntries > 0:
		parts = append(parts, fmt.Sprintf("%d entries", nc.MaxEntries))
	case nc.MaxBytes == 0:
		parts = append(parts, fmt.Sprintf("%d entries", memdict.DefaultNearCacheEntries))
	}
	if nc.MaxBytes > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", nc.MaxBytes))
	}
	if nc.MaxStale > 0 {
		parts = append(parts, fmt.Sprintf("at most %v stale", nc.MaxStale))
	} else {
		parts = append(parts, "until the server reports a change")
	}
	return strings.Join(parts, ", ")
}

// nearCache returns the memdict.NearCache nc describes (nil for none).
func (nc *NearCacheConfig) nearCache() *memdict.NearCache {
	if nc == nil {
		return nil
	}
	return &memdict.NearCache{MaxEntries: nc.MaxEntries, MaxBytes: nc.MaxBytes, MaxStale: nc.MaxStale}
}

// DefaultPluginConfig returns the configuration of a plugin on url with
// ERP5's and memcached's defaults: no expiry, 250-byte keys, 1 MiB values,
// the default codec, order 0.
func DefaultPluginConfig(url string) PluginConfig {
	return PluginConfig{URL: url, MaxKeyLen: memdict.DefaultMaxKeyLen, MaxValueLen: memdict.DefaultMaxValueLen}
}

// DefaultConfig returns the configuration used when there is none: the
// default plugin on DefaultURL.
func DefaultConfig() Config {
	return Config{Plugins: map[string]PluginConfig{DefaultPlugin: DefaultPluginConfig(DefaultURL)}}
}

// ErrConfig is wrapped by every *ConfigError.
var ErrConfig = errors.New("tool: invalid configuration")

// ConfigError is one problem in a configuration. The functions that load
// or check a configuration return one, or several joined with errors.Join.
type ConfigError struct {
	// File is the configuration file, "" if the configuration did not come
	// from a file.
	File string
	// Line is the line in File, 0 if unknown.
	Line int
	// Plugin names the plugin, "" for a problem outside any plugin.
	Plugin string
	// Field is the field's name as written in a file ("url",
	// "expiration", ...), "" if the problem is not in one field.
	Field string
	// Err is the problem.
	Err error
}

// Error returns "tool: config FILE:LINE: plugin "P": field "F": problem",
// leaving out the parts that are unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("tool: config")
	if e.File != "" {
		b.WriteString(" " + e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
	}
	if e.Plugin != "" {
		fmt.Fprintf(&b, ": plugin %q", e.Plugin)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns ErrConfig and the problem.
func (e *ConfigError) Unwrap() []error { return []error{ErrConfig, e.Err} }

// The field names of a configuration file.
const (
	fieldSiteID      = "site_id"
	fieldPlugins     = "plugins"
	fieldURL         = "url"
	fieldExpiration  = "expiration"
	fieldMaxKeyLen   = "max_key_length"
	fieldMaxValueLen = "max_value_length"
	fieldCodec       = "codec"
	fieldOrder       = "order"
	fieldGenRefresh  = "generation_refresh"
	fieldGenTTL      = "generation_ttl"
	fieldNearCache   = "near_cache"
	fieldFormat      = "format"
	fieldWarm        = "warm"

	// The fields of near_cache.
	fieldMaxEntries = "max_entries"
	fieldMaxBytes   = "max_bytes"
	fieldMaxStale   = "max_stale"
)

var (
	topFields    = []string{fieldSiteID, fieldPlugins}
	pluginFields = []string{fieldURL, fieldExpiration, fieldMaxKeyLen, fieldMaxValueLen, fieldCodec, fieldOrder, fieldGenRefresh, fieldGenTTL, fieldNearCache, fieldFormat, fieldWarm}
	nearFields   = []string{fieldMaxEntries, fieldMaxBytes, fieldMaxStale}
)

// Validate checks c: plugin names, URLs (fully, without connecting: a
// registered scheme, the driver's form, every query parameter and value),
// expirations, limits and codec names. It returns nil, or one
// *ConfigError per problem joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	for _, name := range sortedNames(c.Plugins) {
		if err := checkName(name); err != nil {
			errs = append(errs, &ConfigError{Plugin: name, Err: err})
			continue
		}
		errs = append(errs, c.Plugins[name].check("", name, nil)...)
	}
	return errors.Join(errs...)
}

// Validate checks one plugin's configuration as Config.Validate does.
func (pc PluginConfig) Validate() error {
	return errors.Join(pc.check("", "", nil)...)
}

// check returns the problems of pc; lines gives the line of each field in
// file, if known.
func (pc PluginConfig) check(file, name string, lines map[string]int) []error {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, &ConfigError{File: file, Line: lines[field], Plugin: name, Field: field, Err: err})
	}
	if _, err := normalizeURL(pc.URL); err != nil {
		bad(fieldURL, err)
	}
	if pc.Expiration < 0 {
		bad(fieldExpiration, fmt.Errorf("%v is negative (0 means never)", pc.Expiration))
	}
	if s := (memdict.Settings{MaxKeyLen: pc.MaxKeyLen}); s.Validate() != nil {
		bad(fieldMaxKeyLen, fmt.Errorf("%d: want 0 (no limit) or at least 80", pc.MaxKeyLen))
	}
	if pc.MaxValueLen < 0 {
		bad(fieldMaxValueLen, fmt.Errorf("%d is negative (0 means no limit)", pc.MaxValueLen))
	}
	if pc.GenerationTTL > 0 && pc.GenerationTTL < memdict.MinGenerationTTL {
		bad(fieldGenTTL, fmt.Errorf("%v: want at least %v (or 0 for the default, never for no TTL)", pc.GenerationTTL, memdict.MinGenerationTTL))
	}
	if pc.Warm < 0 {
		bad(fieldWarm, fmt.Errorf("%v is negative (0 means no warm-up)", pc.Warm))
	}
	if _, err := codecByName(pc.Codec); err != nil {
		bad(fieldCodec, err)
	}
	python := pc.Format == memdict.FormatERP5 || pc.Format == memdict.FormatPython
	if pc.Format != "" && !slices.Contains(memdict.Formats(), pc.Format) {
		bad(fieldFormat, fmt.Errorf("unknown format %q (known: memdict, erp5, python)", pc.Format))
	} else if python {
		if err := pyvalues.Missing(string(pc.Format)); err != nil {
			bad(fieldFormat, err)
		}
	}
	if scheme, _, _ := strings.Cut(strings.ToLower(pc.URL), "://"); python && (scheme == "redis" || scheme == "rediss") {
		bad(fieldFormat, fmt.Errorf("format: %s needs memcached (or mem://): Redis keeps no client flags, which say what a Python value is", pc.Format))
	}
	if python && pc.NearCache != nil {
		bad(fieldNearCache, fmt.Errorf("not available with format: %s (a near cache needs memdict's own value layout)", pc.Format))
	}
	if nc := pc.NearCache; nc != nil {
		sub := func(f string) string { return fieldNearCache + "." + f }
		if nc.MaxEntries < 0 {
			bad(sub(fieldMaxEntries), fmt.Errorf("%d is negative (0 means %d, or no bound with max_bytes)", nc.MaxEntries, memdict.DefaultNearCacheEntries))
		}
		if nc.MaxBytes < 0 {
			bad(sub(fieldMaxBytes), fmt.Errorf("%d is negative (0 means no byte bound)", nc.MaxBytes))
		}
		if nc.MaxStale < 0 {
			bad(sub(fieldMaxStale), fmt.Errorf("%v is negative (0 means as long as the server reports no change)", nc.MaxStale))
		}
	}
	return errs
}

// settings returns the memdict settings pc gives Dicts of a Tool with
// siteID. pc must be valid.
func (pc PluginConfig) settings(siteID string) (memdict.Settings, error) {
	c, err := codecByName(pc.Codec)
	if err != nil {
		return memdict.Settings{}, err
	}
	return memdict.Settings{SiteID: siteID, TTL: pc.Expiration, Codec: c, MaxKeyLen: pc.MaxKeyLen, MaxValueLen: pc.MaxValueLen,
		GenerationRefresh: pc.GenerationRefresh, GenerationTTL: pc.GenerationTTL, NearCache: pc.NearCache.nearCache(), Format: pc.Format}, nil
}

func codecByName(name string) (codec.Codec, error) {
	if name == "" {
		return codec.Default(), nil
	}
	c, ok := codec.ByName(name)
	if !ok {
		return nil, fmt.Errorf("unknown codec %q (known: %s)", name, strings.Join(codec.Names(), ", "))
	}
	return c, nil
}

// normalizeURL checks a plugin URL fully, without connecting (its scheme,
// form, every query parameter and value, with backend.Validate), and
// returns it in the form backend.Open takes: a URL without "://" is a
// memcached server list.
func normalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("missing (want a URL such as mem://, memcached://host:11211 or redis://host:6379/0)")
	}
	if !strings.Contains(raw, "://") {
		raw = "memcached://" + raw
	}
	_, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the URL, password included
		}
		return "", fmt.Errorf("%q: %w", backend.Redact(raw), err)
	}
	// The scheme's driver (an unknown scheme names the import that
	// registers it), then every parameter and its value, as the driver
	// will read them, so that a typo is reported here and not as an outage
	// at the first call.
	if err := backend.Validate(raw); err != nil {
		return "", err
	}
	return raw, nil
}

// checkName checks a plugin name (the short form).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty plugin name")
	case name == ERP5DefaultPlugin:
		return fmt.Errorf("%s is ERP5's name of the default plugin, which is also defined as %s: define one of them", ERP5DefaultPlugin, DefaultPlugin)
	case strings.ContainsAny(name, "/ \t\r\n"):
		return fmt.Errorf("plugin name %q: want a name without '/' or spaces (the path is %s<name>)", name, PathPrefix)
	}
	return nil
}

// withDefault returns a copy of c that has the default plugin.
func (c Config) withDefault() Config {
	plugins := make(map[string]PluginConfig, len(c.Plugins)+1)
	for k, v := range c.Plugins {
		plugins[k] = v
	}
	if pc, ok := plugins[ERP5DefaultPlugin]; ok {
		if _, both := plugins[DefaultPlugin]; !both {
			// ERP5's name: the default plugin. (With both, the ERP5 name
			// stays, and checkName reports it.)
			plugins[DefaultPlugin] = pc
			delete(plugins, ERP5DefaultPlugin)
		}
	}
	if _, ok := plugins[DefaultPlugin]; !ok {
		plugins[DefaultPlugin] = DefaultPluginConfig(DefaultURL)
	}
	c.Plugins = plugins
	return c
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// MaxConfigSize is the size of the largest configuration file LoadConfig
// reads. A configuration is a few KiB; a larger file (a wrong path, a log
// file renamed, a device) is refused by its size before it is parsed,
// rather than read whole into memory. It is 1 MiB, not more: parsing
// builds a node tree of some 100 bytes per byte of a file made of many
// small tokens (a 4 MiB one took 420 MB of heap and 1.6–3.7 s), and a
// configuration of hundreds of plugins with inline PEM certificates
// still fits.
const MaxConfigSize = 1 << 20

// LoadConfig reads and checks the configuration file path. Its format is
// given by its extension: .yaml or .yml for YAML, .json for JSON. Unknown
// fields are errors. Every problem is a *ConfigError naming the file, the
// plugin and the field (several are joined with errors.Join). A file larger
// than MaxConfigSize is an error, found before its contents are read.
func LoadConfig(path string) (Config, error) {
	format, err := formatOf(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Err: err}
	}
	data, err := readConfigFile(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Err: err}
	}
	return parseConfig(data, format, path)
}

// readConfigFile returns the contents of the file path, or an error if it
// holds more than MaxConfigSize bytes; it reads at most one byte more.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := func() error {
		return fmt.Errorf("larger than %d bytes (%d MiB), more than a configuration holds: is it the right file?", MaxConfigSize, MaxConfigSize>>20)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxConfigSize {
		return nil, tooBig()
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxConfigSize {
		return nil, tooBig()
	}
	return data, nil
}

// ParseConfig parses and checks a configuration in format "yaml" or "json",
// as LoadConfig does for a file.
func ParseConfig(data []byte, format string) (Config, error) {
	switch format {
	case "yaml", "yml", "json":
	default:
		return Config{}, &ConfigError{Err: fmt.Errorf("unknown format %q (want yaml or json)", format)}
	}
	return parseConfig(data, format, "")
}

func formatOf(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		return "yaml", nil
	case ".json":
		return "json", nil
	default:
		return "", fmt.Errorf("unknown file extension %q (want .yaml, .yml or .json)", ext)
	}
}

// filePlugin is a plugin as written in a file: nil means absent.
type filePlugin struct {
	URL         *string
	Expiration  *time.Duration
	MaxKeyLen   *int
	MaxValueLen *int
	Codec       *string
	Order       *int
	GenRefresh  *time.Duration
	GenTTL      *time.Duration
	NearCache   *NearCacheConfig
	Format      *string
	Warm        *time.Duration
}

func (fp filePlugin) config(name string) PluginConfig {
	url := ""
	if name == DefaultPlugin {
		url = DefaultURL
	}
	pc := DefaultPluginConfig(url)
	if fp.URL != nil {
		pc.URL = *fp.URL
	}
	if fp.Expiration != nil {
		pc.Expiration = *fp.Expiration
	}
	if fp.MaxKeyLen != nil {
		pc.MaxKeyLen = *fp.MaxKeyLen
	}
	if fp.MaxValueLen != nil {
		pc.MaxValueLen = *fp.MaxValueLen
	}
	if fp.Codec != nil {
		pc.Codec = *fp.Codec
	}
	if fp.Order != nil {
		pc.Order = *fp.Order
	}
	if fp.GenRefresh != nil {
		pc.GenerationRefresh = *fp.GenRefresh
	}
	if fp.GenTTL != nil {
		pc.GenerationTTL = *fp.GenTTL
	}
	if fp.Warm != nil {
		pc.Warm = *fp.Warm
	}
	pc.NearCache = fp.NearCache
	if fp.Format != nil {
		pc.Format = memdict.Format(*fp.Format)
	}
	return pc
}

// parseConfig is the one front-end of both formats: the text becomes a
// yaml.Node tree (yamlTree, jsonTree), whose nodes carry their lines, and
// walkConfig reads the configuration from the tree, so that a YAML and a
// JSON file mean the same and have the same problems, named alike. A nil
// tree is an empty file.
func parseConfig(data []byte, format, file string) (Config, error) {
	var (
		root *yaml.Node
		err  error
	)
	if format == "json" {
		root, err = jsonTree(data, file)
	} else {
		root, err = yamlTree(data, file)
	}
	if err != nil || root == nil {
		return Config{}, err
	}
	return walkConfig(root, file)
}

// yamlTree parses a YAML document into its tree.
func yamlTree(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil // an empty file
		}
		return nil, &ConfigError{File: file, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &ConfigError{File: file, Line: extra.Line, Err: errors.New("more than one YAML document")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	return root, nil
}

// maxJSONDepth bounds the nesting of a JSON configuration (which nests
// four levels: the file, plugins, a plugin, its near_cache), as yaml.v3
// bounds YAML's.
const maxJSONDepth = 100

// jsonTree parses one JSON value into the tree YAML would make of it:
// strings are !!str, integers !!int, other numbers !!float, true and
// false !!bool, null !!null; every node has the line it starts on. (JSON
// is YAML's flow syntax, but yaml.v3 refuses some JSON, such as the
// escape \/, so the JSON is read by encoding/json.)
func jsonTree(data []byte, file string) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// lineAt counts lines from where it last counted: tokens come in
	// order, and counting from the start for each made a 2 MiB file of
	// small tokens take a minute.
	var seen, lines int // data[:seen] holds lines newlines
	lineAt := func(off int64) int {
		o := min(max(int(off), 0), len(data))
		if o < seen {
			seen, lines = 0, 0
		}
		lines += bytes.Count(data[seen:o], []byte("\n"))
		seen = o
		return 1 + lines
	}
	syntax := func(err error) error {
		ce := &ConfigError{File: file, Err: err}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			ce.Line = lineAt(se.Offset)
		}
		return ce
	}
	// next reads a token and the line it starts on: past the white space,
	// commas and colons before it, which Token passes over.
	next := func() (json.Token, int, error) {
		off := int(dec.InputOffset())
		for off < len(data) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
		tok, err := dec.Token()
		return tok, lineAt(int64(off)), err
	}
	var value func(tok json.Token, line, depth int) (*yaml.Node, error)
	value = func(tok json.Token, line, depth int) (*yaml.Node, error) {
		n := &yaml.Node{Kind: yaml.ScalarNode, Line: line}
		switch t := tok.(type) {
		case json.Delim:
			if depth >= maxJSONDepth {
				// Each level is a call: 1 MiB of "[" took 256 MB of stack.
				return nil, &ConfigError{File: file, Line: line, Err: fmt.Errorf("nested deeper than %d levels, more than a configuration holds", maxJSONDepth)}
			}
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			if t == '[' {
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			}
			for dec.More() {
				tok, line, err := next()
				if err != nil {
					return nil, syntax(err)
				}
				if n.Kind == yaml.MappingNode {
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: tok.(string), Line: line})
					if tok, line, err = next(); err != nil {
						return nil, syntax(err)
					}
				}
				v, err := value(tok, line, depth+1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, syntax(err)
			}
		case string:
			n.Tag, n.Value = "!!str", t
		case json.Number:
			n.Tag, n.Value = "!!float", t.String()
			if !strings.ContainsAny(n.Value, ".eE") {
				n.Tag = "!!int"
			}
		case bool:
			n.Tag, n.Value = "!!bool", strconv.FormatBool(t)
		case nil:
			n.Tag, n.Value = "!!null", "null"
		}
		return n, nil
	}
	tok, line, err := next()
	if err != nil {
		return nil, syntax(err)
	}
	root, err := value(tok, line, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ConfigError{File: file, Line: lineAt(dec.InputOffset()), Err: errors.New("unexpected data after the JSON value")}
	}
	return root, nil
}

// walkConfig reads a configuration from its tree, naming the plugin, the
// field and the line of every problem (yaml.v3's KnownFields cannot say
// which plugin). A field set to null counts as absent.
func walkConfig(root *yaml.Node, file string) (Config, error) {
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return Config{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, &ConfigError{File: file, Line: root.Line, Err: errors.New("want a mapping with site_id and plugins")}
	}
	var cfg Config
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			// yaml.v3's trees and jsonTree keep both: the second would
			// drop the first silently.
			errs = append(errs, &ConfigError{File: file, Line: k.Line, Field: k.Value, Err: errors.New("given twice")})
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case fieldSiteID:
			if isNull(v) {
				continue
			}
			if err := v.Decode(&cfg.SiteID); err != nil || v.Kind != yaml.ScalarNode {
				errs = append(errs, &ConfigError{File: file, Line: v.Line, Field: fieldSiteID, Err: errors.New("want a string")})
			}
		case fieldPlugins:
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				errs = append(errs, &ConfigError{File: file, Line: v.Line, Field: fieldPlugins, Err: errors.New("want a mapping from plugin names to plugins")})
				continue
			}
			cfg.Plugins = map[string]PluginConfig{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, body := v.Content[j].Value, v.Content[j+1]
				if name == ERP5DefaultPlugin {
					name = DefaultPlugin // ERP5's name of the default plugin
				}
				if _, dup := cfg.Plugins[name]; dup {
					err := errors.New("defined twice")
					if name == DefaultPlugin {
						err = fmt.Errorf("defined twice (%s is ERP5's name of the default plugin, %s)", ERP5DefaultPlugin, DefaultPlugin)
					}
					errs = append(errs, &ConfigError{File: file, Line: v.Content[j].Line, Plugin: v.Content[j].Value, Err: err})
					continue
				}
				pc, perrs := yamlPlugin(file, name, v.Content[j].Line, body)
				errs = append(errs, perrs...)
				cfg.Plugins[name] = pc
			}
		default:
			errs = append(errs, &ConfigError{File: file, Line: k.Line, Field: k.Value,
				Err: fmt.Errorf("unknown field (known: %s)", strings.Join(topFields, ", "))})
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// isNull reports whether n is null (YAML's ~, null or nothing; JSON's
// null).
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// yamlPlugin reads the plugin name from its node body.
func yamlPlugin(file, name string, line int, body *yaml.Node) (PluginConfig, []error) {
	if err := checkName(name); err != nil {
		return PluginConfig{}, []error{&ConfigError{File: file, Line: line, Plugin: name, Err: err}}
	}
	if isNull(body) {
		body = &yaml.Node{Kind: yaml.MappingNode, Line: line}
	}
	if body.Kind != yaml.MappingNode {
		return PluginConfig{}, []error{&ConfigError{File: file, Line: body.Line, Plugin: name, Err: fmt.Errorf("want a mapping of %s", strings.Join(pluginFields, ", "))}}
	}
	var (
		fp    filePlugin
		errs  []error
		lines = map[string]int{}
	)
	bad := func(n *yaml.Node, field string, err error) {
		errs = append(errs, &ConfigError{File: file, Line: n.Line, Plugin: name, Field: field, Err: err})
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if _, dup := lines[k.Value]; dup {
			bad(k, k.Value, errors.New("given twice"))
			continue
		}
		lines[k.Value] = v.Line
		if isNull(v) {
			continue // as if absent
		}
		switch k.Value {
		case fieldURL, fieldCodec, fieldFormat:
			var s string
			if v.Kind != yaml.ScalarNode || v.Decode(&s) != nil {
				bad(v, k.Value, errors.New("want a string"))
				continue
			}
			switch k.Value {
			case fieldURL:
				fp.URL = &s
			case fieldCodec:
				fp.Codec = &s
			default:
				fp.Format = &s
			}
		case fieldExpiration:
			d, err := parseExpiration(v.Value, v.Kind == yaml.ScalarNode && v.Tag != "!!str")
			if err != nil || v.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("want seconds or a duration such as 1h30m")
				}
				bad(v, k.Value, err)
				continue
			}
			fp.Expiration = &d
		case fieldWarm:
			d, err := parseDuration(v.Value, v.Kind == yaml.ScalarNode && v.Tag != "!!str")
			if err == nil && d < 0 {
				err = fmt.Errorf("%s is negative (0 means no warm-up)", v.Value)
			}
			if err != nil || v.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("want seconds or a duration such as 10m")
				}
				bad(v, k.Value, err)
				continue
			}
			fp.Warm = &d
		case fieldGenRefresh, fieldGenTTL:
			d, err := parseRefresh(v.Value, v.Kind == yaml.ScalarNode && v.Tag != "!!str")
			if err != nil || v.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("want seconds, a duration such as 5s, or never")
				}
				bad(v, k.Value, err)
				continue
			}
			if k.Value == fieldGenTTL {
				fp.GenTTL = &d
			} else {
				fp.GenRefresh = &d
			}
		case fieldMaxKeyLen, fieldMaxValueLen, fieldOrder:
			var n int
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
				bad(v, k.Value, fmt.Errorf("%q: want an integer", v.Value))
				continue
			}
			switch k.Value {
			case fieldMaxKeyLen:
				fp.MaxKeyLen = &n
			case fieldMaxValueLen:
				fp.MaxValueLen = &n
			default:
				fp.Order = &n
			}
		case fieldNearCache:
			nc, nerrs := yamlNearCache(file, name, v, lines)
			errs = append(errs, nerrs...)
			fp.NearCache = nc
		default:
			bad(k, k.Value, fmt.Errorf("unknown field (known: %s)", strings.Join(pluginFields, ", ")))
		}
	}
	pc := fp.config(name)
	if fp.URL == nil && name != DefaultPlugin {
		errs = append(errs, &ConfigError{File: file, Line: line, Plugin: name, Field: fieldURL, Err: errors.New("missing")})
		return pc, errs
	}
	if len(errs) > 0 {
		return pc, errs
	}
	return pc, pc.check(file, name, lines)
}

// yamlNearCache reads the near_cache mapping of plugin name from its node
// body, noting the line of each field in lines ("near_cache.max_stale").
func yamlNearCache(file, name string, body *yaml.Node, lines map[string]int) (*NearCacheConfig, []error) {
	var errs []error
	bad := func(n *yaml.Node, field string, err error) {
		errs = append(errs, &ConfigError{File: file, Line: n.Line, Plugin: name, Field: fieldNearCache + "." + field, Err: err})
	}
	if body.Kind != yaml.MappingNode {
		return nil, []error{&ConfigError{File: file, Line: body.Line, Plugin: name, Field: fieldNearCache,
			Err: fmt.Errorf("want a mapping of %s (or {} for the defaults)", strings.Join(nearFields, ", "))}}
	}
	nc := &NearCacheConfig{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if seen[k.Value] {
			bad(k, k.Value, errors.New("given twice"))
			continue
		}
		seen[k.Value] = true
		lines[fieldNearCache+"."+k.Value] = v.Line
		if isNull(v) {
			continue
		}
		switch k.Value {
		case fieldMaxEntries, fieldMaxBytes:
			var n int64
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
				bad(v, k.Value, fmt.Errorf("%q: want an integer", v.Value))
				continue
			}
			if k.Value == fieldMaxEntries {
				if n != int64(int(n)) {
					bad(v, k.Value, fmt.Errorf("%d is too large", n))
					continue
				}
				nc.MaxEntries = int(n)
			} else {
				nc.MaxBytes = n
			}
		case fieldMaxStale:
			d, err := parseDuration(v.Value, v.Kind == yaml.ScalarNode && v.Tag != "!!str")
			if err != nil || v.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("want seconds or a duration such as 30s")
				}
				bad(v, k.Value, err)
				continue
			}
			nc.MaxStale = d
		default:
			bad(k, k.Value, fmt.Errorf("unknown field (known: %s)", strings.Join(nearFields, ", ")))
		}
	}
	return nc, errs
}

// ParseTTL reads a time to live (an expiration) as people write one, in a
// configuration file, the admin page or the memdict command: a number of
// seconds ("3600", "1.5") or a Go duration ("1h30m", "90s"). What a TTL
// means (0, negative values, rounding) is said once, on backend.Item.TTL;
// whether 0 or a negative value is allowed is the caller's to check.
func ParseTTL(s string) (time.Duration, error) { return parseDuration(s, false) }

// parseDuration reads a number of seconds (number is true: the value was
// not quoted) or a Go duration string such as "1h30m"; a quoted number is
// seconds too.
func parseDuration(s string, number bool) (time.Duration, error) {
	if !number {
		if d, err := time.ParseDuration(s); err == nil {
			if d == 0 && strings.ContainsAny(s, "123456789") {
				return 0, fmt.Errorf("%q is shorter than a nanosecond (0 would mean never)", s)
			}
			return d, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q: want seconds or a duration such as \"1h30m\"", s)
	}
	// float64(math.MaxInt64) is 2^63, one past the largest Duration: a
	// value that rounds to it overflows too.
	if math.Abs(f*float64(time.Second)) >= math.MaxInt64 {
		return 0, fmt.Errorf("%v seconds is too large", f)
	}
	d := time.Duration(f * float64(time.Second))
	if d == 0 && f != 0 {
		// A TTL of 0 means never: a tiny one must not turn into it.
		return 0, fmt.Errorf("%q seconds is shorter than a nanosecond (0 would mean never)", s)
	}
	return d, nil
}

// parseExpiration reads an expiration, which must not be negative.
func parseExpiration(s string, number bool) (time.Duration, error) {
	d, err := parseDuration(s, number)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative (0 means never)", s)
	}
	return d, err
}

// parseRefresh reads a generation refresh interval, or a generation key's
// TTL: a duration that is not negative, or "never".
func parseRefresh(s string, number bool) (time.Duration, error) {
	if s == "never" && !number {
		return -1, nil
	}
	d, err := parseDuration(s, number)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative (0 means the default, never none)", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%w, or never", err)
	}
	return d, nil
}

// ConfigFromEnv returns the configuration the environment gives:
// the file named by MEMDICT_CONFIG if set (else DefaultConfig), with the
// default plugin's URL replaced by MEMDICT_URL and the site id by
// MEMDICT_SITE_ID when they are set (an empty variable counts as unset).
// A problem is a *ConfigError that names the variable or the file.
func ConfigFromEnv() (Config, error) { return ConfigFromGetenv(os.Getenv) }

// ConfigFromGetenv is ConfigFromEnv reading variables with getenv instead
// of os.Getenv, for tests and programs that keep their own environment.
func ConfigFromGetenv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path := getenv(EnvConfig); path != "" {
		c, err := LoadConfig(path)
		if err != nil {
			return Config{}, err
		}
		cfg = c.withDefault()
	}
	if u := getenv(EnvURL); u != "" {
		pc := cfg.Plugins[DefaultPlugin]
		pc.URL = u
		if errs := pc.check("$"+EnvURL, DefaultPlugin, nil); len(errs) > 0 {
			return Config{}, errors.Join(errs...)
		}
		cfg.Plugins[DefaultPlugin] = pc
	}
	if id := getenv(EnvSiteID); id != "" {
		cfg.SiteID = id
	}
	return cfg, nil
}
