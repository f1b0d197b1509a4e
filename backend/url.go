package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Opener opens a backend from a parsed URL. It is called by Open with the
// URL whose scheme it was registered for.
type Opener func(ctx context.Context, u *url.URL) (Backend, error)

// Validator checks a URL as its driver's Opener would, without connecting
// to a server: the scheme's form (host,
// path, user information), every query parameter and its value. It returns
// nil if the Opener would accept the URL, else an error naming the
// problem (the parameter, the value).
type Validator func(u *url.URL) error

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
	validators = map[string]Validator{}
)

// Register makes a driver available under a URL scheme (for example "mem"
// or "memcached"). Drivers call it from their init function. Register panics
// if scheme is empty, opener is nil, or the scheme is already registered, as
// database/sql.Register does: these are programming errors.
func Register(scheme string, opener Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if scheme == "" || opener == nil {
		panic("backend: Register with an empty scheme or a nil opener")
	}
	scheme = strings.ToLower(scheme)
	if _, dup := registry[scheme]; dup {
		panic("backend: Register called twice for scheme " + scheme)
	}
	registry[scheme] = opener
}

// RegisterValidator registers the Validator that Validate uses for URLs of
// scheme, beside the scheme's Opener. Drivers call it from their init
// function, after Register. A scheme without a Validator is checked only
// for being registered. RegisterValidator panics if scheme is empty, v is
// nil, or scheme already has a Validator.
func RegisterValidator(scheme string, v Validator) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if scheme == "" || v == nil {
		panic("backend: RegisterValidator with an empty scheme or a nil validator")
	}
	scheme = strings.ToLower(scheme)
	if _, dup := validators[scheme]; dup {
		panic("backend: RegisterValidator called twice for scheme " + scheme)
	}
	validators[scheme] = v
}

// ValidateByOpening returns a Validator that opens the URL with opener and
// closes the backend at once. It is for drivers whose Opener does no I/O
// (it parses the URL and builds a client that connects on first use), so
// that the check and the open can never disagree.
func ValidateByOpening(opener Opener) Validator {
	return func(u *url.URL) error {
		be, err := opener(context.Background(), u)
		if err != nil {
			return err
		}
		return be.Close()
	}
}

// Validate checks rawURL fully without connecting: that it parses, that
// its scheme is registered, and, with the scheme's Validator, its form and
// every query parameter and value. It returns nil, or an error that names
// the problem as Open would report it (passwords redacted), wrapping
// ErrUnknownScheme for an unknown scheme.
func Validate(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("backend: URL %q: %w", Redact(rawURL), redactURLError(err))
	}
	if u.Scheme == "" {
		return fmt.Errorf("backend: URL %q: missing scheme (want one of %s)", Redact(rawURL), strings.Join(Schemes(), ", "))
	}
	scheme := strings.ToLower(u.Scheme)
	registryMu.RLock()
	_, known := registry[scheme]
	v := validators[scheme]
	registryMu.RUnlock()
	if !known {
		return fmt.Errorf("backend: URL %q: %w", Redact(rawURL), unknownScheme(u.Scheme))
	}
	if v == nil {
		return nil
	}
	if err := v(u); err != nil {
		return fmt.Errorf("backend: URL %q: %w", Redact(rawURL), err)
	}
	return nil
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// ErrUnknownScheme is wrapped by the error Open returns for a URL whose
// scheme no driver registered.
var ErrUnknownScheme = errors.New("backend: unknown URL scheme")

// driverPackages are the packages of memdict's drivers, by the schemes
// they register: a program links a driver only if it imports its package
// (as database/sql's drivers), so the error for one of these schemes
// names the import to add.
var driverPackages = map[string]string{
	"mem":        "github.com/memdict/memdict/backend/memory",
	"memcached":  "github.com/memdict/memdict/backend/memcached",
	"memcacheds": "github.com/memdict/memdict/backend/memcached",
	"redis":      "github.com/memdict/memdict/backend/redis",
	"rediss":     "github.com/memdict/memdict/backend/redis",
}

// unknownScheme is the error for a scheme no driver registered: it wraps
// ErrUnknownScheme, lists the registered schemes and names the import
// that registers the scheme, for memdict's own drivers.
func unknownScheme(scheme string) error {
	hint := "forgotten import of its driver package?"
	if pkg, ok := driverPackages[strings.ToLower(scheme)]; ok {
		hint = fmt.Sprintf("forgotten import? its driver registers with: import _ %q", pkg)
	}
	return fmt.Errorf("%w %q; registered: %s (%s)", ErrUnknownScheme, scheme, strings.Join(Schemes(), ", "), hint)
}

// Open opens the backend that rawURL names, with the driver registered for
// its scheme: "mem://", "memcached://host:11211", "redis://host:6379/0", ...
// A driver is registered by importing its package. Open returns an error
// that names the problem for a malformed URL, an unknown scheme (listing the
// registered ones), or an option the driver rejects.
func Open(ctx context.Context, rawURL string) (Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("backend: open %q: %w", Redact(rawURL), redactURLError(err))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("backend: open %q: missing scheme (want one of %s)", Redact(rawURL), strings.Join(Schemes(), ", "))
	}
	registryMu.RLock()
	opener := registry[strings.ToLower(u.Scheme)]
	registryMu.RUnlock()
	if opener == nil {
		return nil, fmt.Errorf("backend: open %q: %w", Redact(rawURL), unknownScheme(u.Scheme))
	}
	be, err := opener(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("backend: open %q: %w", Redact(rawURL), err)
	}
	return be, nil
}

// redactURLError strips the URL (which may hold a password) from a
// *url.Error, keeping the reason.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact returns rawURL with any password replaced by "xxxxx", for use in
// errors and logs: the password of its user information, and the value
// of each query parameter whose name ends in "password" (such as Redis
// Sentinel's sentinel_password). A string that does not parse is returned
// with everything between "://" and the last "@" replaced, and the values
// of its password parameters too: the string failed to parse for a typo
// elsewhere (a space in the host, a bad port) as often as in its user
// information. So is one that parses with an "@" after its host, in its
// path, query or fragment: a password holding an unescaped "/", "?" or
// "#" after digits ("redis://u:123/456@h:6379/0") parses as host "u",
// port 123 and the rest of the password in the path ("/456@h:6379/0"),
// the query or the fragment, and one holding "@" too ("u:p@ss#w@h")
// parses with user information that ends within it (password "p", host
// "ss", fragment "w@h"). An "@" meant in a query value is written %40.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err == nil && !atAfterHost(u) {
		_, has := u.User.Password()
		q, hidden := redactQuery(u.RawQuery)
		if !has && !hidden {
			return rawURL // nothing to hide; keep the text as the user wrote it
		}
		u.RawQuery = q
		if !has {
			return u.String()
		}
		return u.Redacted()
	}
	i := strings.Index(rawURL, "://")
	j := strings.LastIndex(rawURL, "@")
	if i >= 0 && j > i {
		rawURL = rawURL[:i+3] + "xxxxx" + rawURL[j:]
	}
	if k := strings.IndexByte(rawURL, '?'); k >= 0 {
		q, _ := redactQuery(rawURL[k+1:])
		rawURL = rawURL[:k+1] + q
	}
	return rawURL
}

// atAfterHost reports whether u holds an "@" after its host, in its
// path, query or fragment, as a URL whose password holds an unescaped
// "/", "?" or "#" does (see Redact).
func atAfterHost(u *url.URL) bool {
	return strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@")
}

// SpilledPassword returns an error, quoting nothing of u, if u's path or
// fragment holds an "@": the rest of a password that holds an unescaped
// "/" or "#" after digits ("redis://u:123/s3cret@h:6379/0" parses as host
// "u", port 123, path "/s3cret@h:6379/0"; with a "#", the rest is a
// fragment that nothing reads, and the URL would open on host "u"). A
// driver calls it before it reads the path, which its errors would quote.
// An "@" in the query is Params.Err's to report (a value may hold one).
func SpilledPassword(u *url.URL) error {
	switch {
	case strings.Contains(u.Path, "@"):
		return errors.New(`its path holds "@", as when a password holds a "/" (write it %2F)`)
	case strings.Contains(u.Fragment, "@"):
		return errors.New(`its fragment holds "@", as when a password holds a "#" (write it %23)`)
	}
	return nil
}

// Params reads a URL's query parameters for a driver, collecting every
// problem: a malformed value and, in Err, any parameter the driver did not
// ask for. A driver reads each parameter it knows with the typed methods and
// then calls Err, so that unknown options are rejected, not ignored:
//
//	p := backend.NewParams(u)
//	timeout := p.Duration("timeout", 100*time.Millisecond)
//	conns := p.Int("max_idle_conns", 2)
//	if err := p.Err(); err != nil {
//		return nil, err
//	}
//
// A parameter that was renamed keeps its old name for a while as a
// deprecated alias (see Alias).
type Params struct {
	values url.Values
	known  []string
	errs   []error
	// given maps a parameter to the deprecated alias the URL gave it
	// under, for errors about its value.
	given map[string]string
}

// NewParams returns a Params over u's query. A malformed query (a bad
// %-escape, say) is reported by Err.
func NewParams(u *url.URL) *Params {
	values, err := url.ParseQuery(u.RawQuery)
	p := &Params{values: values}
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("malformed query: %w", err))
	}
	return p
}

// Alias makes old a deprecated alias of the parameter name, for a
// parameter that was renamed: a URL that gives old is read as if it gave
// name (errors about the value name old, as the URL wrote it), and one that
// gives both is an error that names both. A driver calls Alias before it
// reads name. The alias is accepted but not listed among the known
// parameters in Err, so that error messages teach the new name.
func (p *Params) Alias(name, old string) {
	vs, ok := p.values[old]
	if !ok {
		return
	}
	delete(p.values, old)
	if _, both := p.values[name]; both {
		p.errs = append(p.errs, fmt.Errorf("parameters %s and %s both given: %s is the deprecated name of %s; give only %s", name, old, old, name, name))
		return
	}
	p.values[name] = vs
	if p.given == nil {
		p.given = make(map[string]string)
	}
	p.given[name] = old
}

// Name returns the name the URL gave the parameter name under: name
// itself, or the deprecated alias it was given as (see Alias). Drivers use
// it in their errors about a parameter's value.
func (p *Params) Name(name string) string {
	if old, ok := p.given[name]; ok {
		return old
	}
	return name
}

// String returns the parameter name's value, or def if absent.
func (p *Params) String(name, def string) string {
	p.known = append(p.known, name)
	vs, ok := p.values[name]
	if !ok || len(vs) == 0 {
		return def
	}
	if len(vs) > 1 {
		p.errs = append(p.errs, fmt.Errorf("parameter %q given %d times", p.Name(name), len(vs)))
	}
	return vs[0]
}

// Has reports whether the parameter name is present; it also marks name as
// known.
func (p *Params) Has(name string) bool {
	p.known = append(p.known, name)
	_, ok := p.values[name]
	return ok
}

// Int returns the parameter name as a non-negative integer, or def if absent.
func (p *Params) Int(name string, def int) int {
	s := p.String(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		p.errs = append(p.errs, fmt.Errorf("parameter %s=%q: want a non-negative integer", p.Name(name), s))
		return def
	}
	return n
}

// Int64 returns the parameter name as a non-negative 64-bit integer, or def.
func (p *Params) Int64(name string, def int64) int64 {
	s := p.String(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		p.errs = append(p.errs, fmt.Errorf("parameter %s=%q: want a non-negative integer", p.Name(name), s))
		return def
	}
	return n
}

// Bool returns the parameter name as a boolean (true/false/1/0), or def.
func (p *Params) Bool(name string, def bool) bool {
	s := p.String(name, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("parameter %s=%q: want true or false", p.Name(name), s))
		return def
	}
	return b
}

// Duration returns the parameter name as a non-negative time.Duration
// ("200ms", "1.5s"), or def if absent.
func (p *Params) Duration(name string, def time.Duration) time.Duration {
	s := p.String(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.errs = append(p.errs, fmt.Errorf("parameter %s=%q: want a non-negative duration such as 200ms", p.Name(name), s))
		return def
	}
	return d
}

// Err returns nil if every parameter was known and well-formed; otherwise an
// error that names each problem and lists the known parameters.
func (p *Params) Err() error {
	errs := p.errs
	var unknown []string
	for name := range p.values {
		if !slices.Contains(p.known, name) {
			unknown = append(unknown, name)
		}
	}
	if n := len(unknown); n > 0 {
		// The rest of a password holding an unescaped "?" after digits
		// ("redis://u:123?s3cret@h:6379/0": query "s3cret@h:6379/0"):
		// not to be shown.
		if unknown = slices.DeleteFunc(unknown, func(name string) bool { return strings.Contains(name, "@") }); len(unknown) < n {
			errs = append(errs, errors.New(`a query parameter's name holds "@", as when a password holds a "?" (write it %3F)`))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := slices.Clone(p.known)
		slices.Sort(known)
		known = slices.Compact(known)
		list := "none"
		if len(known) > 0 {
			list = strings.Join(known, ", ")
		}
		errs = append(errs, fmt.Errorf("unknown parameter(s) %s (known: %s)", strings.Join(unknown, ", "), list))
	}
	return errors.Join(errs...)
}

// queryPasswords returns the values of the parameters of the raw query q
// whose name ends in "password".
func queryPasswords(q string) []string {
	var pws []string
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if name, err := url.QueryUnescape(k); err == nil && isPasswordParam(name) && v != "" {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
			pws = append(pws, v)
		}
	}
	return pws
}

// redactQuery returns the raw query q with the values of its password
// parameters replaced by "xxxxx", and whether it replaced any; the rest is
// kept as written.
func redactQuery(q string) (string, bool) {
	if !strings.Contains(strings.ToLower(q), "password") {
		return q, false
	}
	parts := strings.Split(q, "&")
	hidden := false
	for i, kv := range parts {
		k, v, _ := strings.Cut(kv, "=")
		if name, err := url.QueryUnescape(k); err == nil && isPasswordParam(name) && v != "" {
			parts[i] = k + "=xxxxx"
			hidden = true
		}
	}
	return strings.Join(parts, "&"), hidden
}

// isPasswordParam reports whether a query parameter holds a password.
func isPasswordParam(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), "password")
}
