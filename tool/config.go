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
)

// Plugin names and paths.
const (
	// DefaultPlugin is the name of the plugin used when a plugin path is
	// empty, as ERP5's portal_memcached/default_memcached_plugin. It always
	// exists: if the configuration does not define it, it is DefaultURL
	// with the default limits.
	DefaultPlugin = "default_memcached_plugin"
	// PersistentPlugin is the name ERP5 sites give a second plugin that
	// points at a persistent store. The Tool gives it no special meaning.
	PersistentPlugin = "persistent_memcached_plugin"
	// PathPrefix is the prefix of a plugin's full path: a plugin named n is
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
	// option; 0 means they never expire. It must not be negative.
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
	// negative value never.
	GenerationRefresh time.Duration
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
)

var (
	topFields    = []string{fieldSiteID, fieldPlugins}
	pluginFields = []string{fieldURL, fieldExpiration, fieldMaxKeyLen, fieldMaxValueLen, fieldCodec, fieldOrder, fieldGenRefresh}
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
	if _, err := codecByName(pc.Codec); err != nil {
		bad(fieldCodec, err)
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
		GenerationRefresh: pc.GenerationRefresh}, nil
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
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the URL, password included
		}
		return "", fmt.Errorf("%q: %w", backend.Redact(raw), err)
	}
	if !slices.Contains(backend.Schemes(), strings.ToLower(u.Scheme)) {
		return "", fmt.Errorf("%q: %w %q; registered: %s (forgotten import of its driver package?)",
			backend.Redact(raw), backend.ErrUnknownScheme, u.Scheme, strings.Join(backend.Schemes(), ", "))
	}
	// Every parameter and its value, as the driver will read them, so
	// that a typo is reported here and not as an outage at the first call.
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

// LoadConfig reads and checks the configuration file path. Its format is
// given by its extension: .yaml or .yml for YAML, .json for JSON. Unknown
// fields are errors. Every problem is a *ConfigError naming the file, the
// plugin and the field (several are joined with errors.Join).
func LoadConfig(path string) (Config, error) {
	format, err := formatOf(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Err: err}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Err: err}
	}
	return parseConfig(data, format, path)
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
	return pc
}

func parseConfig(data []byte, format, file string) (Config, error) {
	var (
		cfg Config
		err error
	)
	if format == "json" {
		cfg, err = parseJSON(data, file)
	} else {
		cfg, err = parseYAML(data, file)
	}
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseYAML walks the YAML tree itself, to name the plugin and line of
// every problem (yaml.v3's KnownFields cannot say which plugin).
func parseYAML(data []byte, file string) (Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return Config{}, nil // an empty file
		}
		return Config{}, &ConfigError{File: file, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return Config{}, &ConfigError{File: file, Line: extra.Line, Err: errors.New("more than one YAML document")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return Config{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, &ConfigError{File: file, Line: root.Line, Err: errors.New("want a mapping with site_id and plugins")}
	}
	var cfg Config
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case fieldSiteID:
			if err := v.Decode(&cfg.SiteID); err != nil || v.Kind != yaml.ScalarNode {
				errs = append(errs, &ConfigError{File: file, Line: v.Line, Field: fieldSiteID, Err: errors.New("want a string")})
			}
		case fieldPlugins:
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.MappingNode {
				errs = append(errs, &ConfigError{File: file, Line: v.Line, Field: fieldPlugins, Err: errors.New("want a mapping from plugin names to plugins")})
				continue
			}
			cfg.Plugins = map[string]PluginConfig{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, body := v.Content[j].Value, v.Content[j+1]
				if _, dup := cfg.Plugins[name]; dup {
					errs = append(errs, &ConfigError{File: file, Line: v.Content[j].Line, Plugin: name, Err: errors.New("defined twice")})
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

func yamlPlugin(file, name string, line int, body *yaml.Node) (PluginConfig, []error) {
	if err := checkName(name); err != nil {
		return PluginConfig{}, []error{&ConfigError{File: file, Line: line, Plugin: name, Err: err}}
	}
	if body.Kind == yaml.ScalarNode && body.Tag == "!!null" {
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
		switch k.Value {
		case fieldURL, fieldCodec:
			var s string
			if v.Kind != yaml.ScalarNode || v.Decode(&s) != nil {
				bad(v, k.Value, errors.New("want a string"))
				continue
			}
			if k.Value == fieldURL {
				fp.URL = &s
			} else {
				fp.Codec = &s
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
		case fieldGenRefresh:
			d, err := parseRefresh(v.Value, v.Kind == yaml.ScalarNode && v.Tag != "!!str")
			if err != nil || v.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("want seconds, a duration such as 5s, or never")
				}
				bad(v, k.Value, err)
				continue
			}
			fp.GenRefresh = &d
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

// parseDuration reads a number of seconds (number is true: the value was
// not quoted) or a Go duration string such as "1h30m"; a quoted number is
// seconds too.
func parseDuration(s string, number bool) (time.Duration, error) {
	if !number {
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q: want seconds or a duration such as \"1h30m\"", s)
	}
	if math.Abs(f*float64(time.Second)) > math.MaxInt64 {
		return 0, fmt.Errorf("%v seconds is too large", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseExpiration reads an expiration, which must not be negative.
func parseExpiration(s string, number bool) (time.Duration, error) {
	d, err := parseDuration(s, number)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative (0 means never)", s)
	}
	return d, err
}

// parseRefresh reads a generation refresh interval: a duration that is not
// negative, or "never".
func parseRefresh(s string, number bool) (time.Duration, error) {
	if s == "never" && !number {
		return -1, nil
	}
	d, err := parseDuration(s, number)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative (write never for no refresh)", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%w, or never", err)
	}
	return d, nil
}

// jsonPlugin mirrors filePlugin for encoding/json.
type jsonPlugin struct {
	URL         *string         `json:"url"`
	Expiration  json.RawMessage `json:"expiration"`
	MaxKeyLen   *int            `json:"max_key_length"`
	MaxValueLen *int            `json:"max_value_length"`
	Codec       *string         `json:"codec"`
	Order       *int            `json:"order"`
	GenRefresh  json.RawMessage `json:"generation_refresh"`
}

func parseJSON(data []byte, file string) (Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Config{}, nil
	}
	var top struct {
		SiteID  *string                    `json:"site_id"`
		Plugins map[string]json.RawMessage `json:"plugins"`
	}
	if err := decodeJSON(data, &top); err != nil {
		return Config{}, jsonError(data, file, "", err)
	}
	var cfg Config
	if top.SiteID != nil {
		cfg.SiteID = *top.SiteID
	}
	var errs []error
	if top.Plugins != nil {
		cfg.Plugins = map[string]PluginConfig{}
	}
	for _, name := range sortedNames(top.Plugins) {
		if err := checkName(name); err != nil {
			errs = append(errs, &ConfigError{File: file, Plugin: name, Err: err})
			continue
		}
		var jp jsonPlugin
		if err := decodeJSON(top.Plugins[name], &jp); err != nil {
			errs = append(errs, jsonError(top.Plugins[name], file, name, err))
			continue
		}
		fp := filePlugin{URL: jp.URL, MaxKeyLen: jp.MaxKeyLen, MaxValueLen: jp.MaxValueLen, Codec: jp.Codec, Order: jp.Order}
		if len(jp.Expiration) > 0 && string(jp.Expiration) != "null" {
			var (
				d   time.Duration
				err error
				s   string
			)
			if json.Unmarshal(jp.Expiration, &s) == nil {
				d, err = parseExpiration(s, false)
			} else {
				d, err = parseExpiration(string(jp.Expiration), true)
			}
			if err != nil {
				errs = append(errs, &ConfigError{File: file, Plugin: name, Field: fieldExpiration, Err: err})
				continue
			}
			fp.Expiration = &d
		}
		if len(jp.GenRefresh) > 0 && string(jp.GenRefresh) != "null" {
			var (
				d   time.Duration
				err error
				s   string
			)
			if json.Unmarshal(jp.GenRefresh, &s) == nil {
				d, err = parseRefresh(s, false)
			} else {
				d, err = parseRefresh(string(jp.GenRefresh), true)
			}
			if err != nil {
				errs = append(errs, &ConfigError{File: file, Plugin: name, Field: fieldGenRefresh, Err: err})
				continue
			}
			fp.GenRefresh = &d
		}
		if fp.URL == nil && name != DefaultPlugin {
			errs = append(errs, &ConfigError{File: file, Plugin: name, Field: fieldURL, Err: errors.New("missing")})
			continue
		}
		pc := fp.config(name)
		errs = append(errs, pc.check(file, name, nil)...)
		cfg.Plugins[name] = pc
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error into a *ConfigError with the
// field and, where the error gives an offset, the line.
func jsonError(data []byte, file, plugin string, err error) error {
	ce := &ConfigError{File: file, Plugin: plugin, Err: err}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		if plugin == "" {
			ce.Line = 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		}
	case errors.As(err, &te):
		ce.Field = te.Field
		ce.Err = fmt.Errorf("want a %v, not a JSON %s", te.Type, te.Value)
	default:
		// DisallowUnknownFields gives `json: unknown field "x"`.
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if uq, qerr := strconv.Unquote(f); qerr == nil {
				f = uq
			}
			known := topFields
			if plugin != "" {
				known = pluginFields
			}
			ce.Field = f
			ce.Err = fmt.Errorf("unknown field (known: %s)", strings.Join(known, ", "))
		}
	}
	return ce
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
