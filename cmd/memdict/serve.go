package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

//go:embed assets
var assets embed.FS

// EnvAdminToken is the environment variable serve reads the admin token
// from when --token is not given.
const EnvAdminToken = "MEMDICT_ADMIN_TOKEN"

var serveCmd = &command{
	name: "serve", nargs: 0,
	summary: "serve the admin page (the configure screen)",
	help: `
Serves a web page, on 127.0.0.1:8080 unless --addr says otherwise, that
shows every plugin: its URL (passwords replaced by xxxxx), whether its
servers answer (and how fast), their statistics (items, memory, hit ratio,
evictions, uptime; per node for memcached clusters) and the metrics of the
Dicts the page used. Signed in with the admin token, an operator changes a
plugin's URL and defaults (applied at once to the running Tool, as ERP5's
configure screen did) and reads, writes and deletes a key.

The token is --token, else $MEMDICT_ADMIN_TOKEN, else a random one printed
on stderr at start-up. Forms carry a per-session anti-forgery token, the
session cookie is HttpOnly and SameSite=Strict, and cross-origin posts are
refused. Changes apply to this process's Tool only: applications that
read the same configuration keep theirs until they are reconfigured.

The page is for operators on the machine or behind an authenticating
proxy: it speaks plain HTTP, so bind it to a public address only behind
TLS.

Examples:
  memdict serve --config app.yaml
  MEMDICT_ADMIN_TOKEN=s3cret memdict serve --addr 127.0.0.1:9090`,
	flags: func(fs *flag.FlagSet) {
		fs.String("addr", "127.0.0.1:8080", "listen on this `host:port` (port 0: any free port)")
		fs.String("token", "", "admin `token` needed to change anything (default $"+EnvAdminToken+", else generated)")
	},
	run: runServe,
}

func runServe(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	addr := fs.Lookup("addr").Value.String()
	token := fs.Lookup("token").Value.String()
	if token == "" {
		token = e.getenv(EnvAdminToken)
	}
	generated := false
	if token == "" {
		token = randomToken(18)
		generated = true
	} else if len(token) < 8 {
		return e.fail("serve", usagef("the admin token must be at least 8 characters"))
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("serve", err)
	}
	t, err := tool.New(cfg)
	if err != nil {
		return e.fail("serve", err)
	}
	defer t.Close()
	log := &lockedWriter{w: e.stderr}
	s, err := newServer(t, token, log)
	if err != nil {
		return e.fail("serve", err)
	}
	s.addSecrets(e.url)
	for _, pc := range cfg.Plugins {
		s.addSecrets(pc.URL)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return e.fail("serve", err)
	}
	s.loopback = isLoopback(ln.Addr())
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if generated {
		log.printf("memdict serve: admin token (generated; set --token or $%s to choose it): %s\n", EnvAdminToken, token)
	}
	log.printf("memdict serve: admin page on http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return e.fail("serve", err)
	case <-ctx.Done():
	}
	log.printf("memdict serve: shutting down\n")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return exitOK
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// lockedWriter serializes writes to the log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

const (
	sessionCookie = "memdict_session"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 1000
	maxDicts      = 50 // Dicts the key tester keeps, with their metrics
	maxFormBytes  = 2 << 20
	pingTimeout   = 2 * time.Second
)

// session is a signed-in browser.
type session struct {
	csrf    string
	expires time.Time
	flash   *flash // shown once by the next page
	form    keyForm
}

// flash is the outcome of a form, shown at the top of the next page.
type flash struct {
	Error bool
	Text  string
	Pre   string // a value, shown preformatted
}

// keyForm is what the key tester form last held.
type keyForm struct {
	Plugin, Prefix, Key, Value, Codec, TTL string
}

// server is the admin page's handler.
type server struct {
	t        *tool.Tool
	token    string
	log      *lockedWriter
	loopback bool
	mux      *http.ServeMux
	page     *template.Template
	cop      *http.CrossOriginProtection

	mu       sync.Mutex
	sessions map[string]*session
	secrets  []string            // URLs with passwords, to scrub from errors
	dicts    map[string]*dictSet // by plugin name + "\x00" + prefix
	dictKeys []string            // dicts' keys, in the order opened
}

func newServer(t *tool.Tool, token string, log *lockedWriter) (*server, error) {
	page, err := template.New("page.html").Funcs(template.FuncMap{
		"latency": func(ms float64) string { return strconv.FormatFloat(ms, 'f', 2, 64) + " ms" },
	}).ParseFS(assets, "assets/page.html")
	if err != nil {
		return nil, err
	}
	s := &server{
		t: t, token: token, log: log, page: page,
		cop:      http.NewCrossOriginProtection(),
		sessions: map[string]*session{},
		dicts:    map[string]*dictSet{},
	}
	static, _ := fs.Sub(assets, "assets")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.handleIndex)
	s.mux.HandleFunc("POST /login", s.handleLogin)
	s.mux.HandleFunc("POST /logout", s.handleLogout)
	s.mux.HandleFunc("POST /plugin", s.handlePlugin)
	s.mux.HandleFunc("POST /key", s.handleKey)
	return s, nil
}

// ServeHTTP adds security headers and refuses requests for another host
// name (DNS rebinding) before routing.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	h.Set("Cache-Control", "no-store")
	if s.loopback && !loopbackHost(r.Host) {
		http.Error(w, "memdict serve: this page answers to localhost and loopback addresses only", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addSecrets records URLs whose passwords must never be shown.
func (s *server) addSecrets(urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range urls {
		if u != "" && urlPassword(u) != "" {
			s.secrets = append(s.secrets, u)
		}
	}
}

// scrub removes every known password from a message.
func (s *server) scrub(msg string) string {
	s.mu.Lock()
	secrets := append([]string(nil), s.secrets...)
	s.mu.Unlock()
	return scrubSecrets(msg, secrets...)
}

// urlPassword returns the password in a URL, or "".
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		// An unparsable URL: take what is between "://" and the last "@".
		i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@")
		if i >= 0 && j > i {
			if _, pw, ok := strings.Cut(raw[i+3:j], ":"); ok {
				return pw
			}
		}
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// currentSession returns the request's live session, or nil.
func (s *server) currentSession(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[c.Value]
	if ss == nil {
		return "", nil
	}
	if time.Now().After(ss.expires) {
		delete(s.sessions, c.Value)
		return "", nil
	}
	return c.Value, ss
}

// checkOrigin refuses a cross-site POST: a browser's Sec-Fetch-Site or
// Origin from elsewhere (net/http's CrossOriginProtection), and an Origin
// or Referer naming another origin.
func (s *server) checkOrigin(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return err
	}
	self := "http://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		if o != self {
			return fmt.Errorf("request from origin %q", o)
		}
		return nil
	}
	if ref := r.Header.Get("Referer"); ref != "" && ref != self && !strings.HasPrefix(ref, self+"/") {
		return errors.New("request from another page")
	}
	return nil
}

// authorize checks a state-changing request: same origin, a live session
// and its anti-forgery token. It writes the refusal and returns nil if
// the request is refused.
func (s *server) authorize(w http.ResponseWriter, r *http.Request) *session {
	if err := s.checkOrigin(r); err != nil {
		s.log.printf("memdict serve: refused cross-origin %s %s from %s: %v\n", r.Method, r.URL.Path, r.RemoteAddr, err)
		s.refuse(w, r, http.StatusForbidden, "Refused: the request did not come from this page.")
		return nil
	}
	_, ss := s.currentSession(r)
	if ss == nil {
		s.refuse(w, r, http.StatusForbidden, "Refused: sign in with the admin token first.")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
		s.log.printf("memdict serve: refused %s %s from %s: bad anti-forgery token\n", r.Method, r.URL.Path, r.RemoteAddr)
		s.refuse(w, r, http.StatusForbidden, "Refused: the form's anti-forgery token is missing or stale; reload the page.")
		return nil
	}
	return ss
}

// refuse renders the page with an error, with status code.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, &flash{Error: true, Text: msg})
}

// setFlash stores f for the session's next page and redirects to it.
func (s *server) setFlash(w http.ResponseWriter, r *http.Request, ss *session, f *flash) {
	s.mu.Lock()
	ss.flash = f
	s.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.checkOrigin(r); err != nil {
		s.log.printf("memdict serve: refused cross-origin sign-in from %s: %v\n", r.RemoteAddr, err)
		s.refuse(w, r, http.StatusForbidden, "Refused: the request did not come from this page.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(s.token)) != 1 {
		s.log.printf("memdict serve: failed sign-in from %s\n", r.RemoteAddr)
		select { // slow down guessing
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
		s.refuse(w, r, http.StatusForbidden, "Wrong admin token.")
		return
	}
	id := randomToken(32)
	ss := &session{csrf: randomToken(32), expires: time.Now().Add(sessionTTL), flash: &flash{Text: "Signed in."}}
	s.mu.Lock()
	now := time.Now()
	for k, v := range s.sessions {
		if now.After(v.expires) || len(s.sessions) >= maxSessions {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = ss
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int(sessionTTL / time.Second),
	})
	s.log.printf("memdict serve: signed in from %s\n", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s.authorize(w, r) == nil {
		return
	}
	if id, _ := s.currentSession(r); id != "" {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handlePlugin applies the plugin form with the Tool's SetPlugin.
func (s *server) handlePlugin(w http.ResponseWriter, r *http.Request) {
	ss := s.authorize(w, r)
	if ss == nil {
		return
	}
	name := r.PostFormValue("plugin")
	old, err := s.t.Plugin(name)
	if err != nil {
		s.setFlash(w, r, ss, &flash{Error: true, Text: s.scrub(err.Error())})
		return
	}
	pc, err := pluginForm(r, old.PluginConfig)
	if err != nil {
		s.setFlash(w, r, ss, &flash{Error: true, Text: fmt.Sprintf("Plugin %s not changed: %s", old.Name, s.scrub(err.Error()))})
		return
	}
	s.addSecrets(pc.URL)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.t.SetPlugin(ctx, old.Path, pc); err != nil {
		msg := s.scrub(err.Error())
		s.log.printf("memdict serve: plugin %s not changed: %s\n", old.Name, msg)
		s.setFlash(w, r, ss, &flash{Error: true, Text: fmt.Sprintf("Plugin %s not changed: %s", old.Name, msg)})
		return
	}
	s.forgetDicts(old.Name)
	now, _ := s.t.Plugin(old.Path)
	s.log.printf("memdict serve: plugin %s changed from %s to %s by %s\n", old.Name, displayURL(old), displayURL(now), r.RemoteAddr)
	s.setFlash(w, r, ss, &flash{Text: fmt.Sprintf("Plugin %s now uses %s.", old.Name, displayURL(now))})
}

// pluginForm reads the plugin form into a PluginConfig, starting from cur.
func pluginForm(r *http.Request, cur tool.PluginConfig) (tool.PluginConfig, error) {
	pc := cur
	pc.URL = strings.TrimSpace(r.PostFormValue("url")) // "" or unchanged redacted URL keeps it
	if v := strings.TrimSpace(r.PostFormValue("expiration")); v != "" {
		d, err := parseExpiration(v)
		if err != nil {
			return pc, err
		}
		pc.Expiration = d
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"max_key_length", &pc.MaxKeyLen}, {"max_value_length", &pc.MaxValueLen}, {"order", &pc.Order}} {
		if v := strings.TrimSpace(r.PostFormValue(f.name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return pc, fmt.Errorf("%s: %q is not a number", f.name, v)
			}
			*f.dst = n
		}
	}
	if c := r.PostFormValue("codec"); c != "" {
		pc.Codec = c
	}
	return pc, pc.Validate()
}

// parseExpiration reads seconds ("3600") or a duration ("1h").
func parseExpiration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("expiration: %q is neither seconds nor a duration such as 1h30m", v)
	}
	return d, nil
}

// dictsFor returns the (cached) Dicts of a plugin and prefix.
func (s *server) dictsFor(ctx context.Context, plugin, prefix string) (*dictSet, error) {
	info, err := s.t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	k := info.Name + "\x00" + prefix
	s.mu.Lock()
	ds := s.dicts[k]
	s.mu.Unlock()
	if ds != nil {
		return ds, nil
	}
	ds, err = openDicts(ctx, s.t, info.Path, prefix)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dicts[k]; d != nil {
		return d, nil
	}
	if len(s.dictKeys) >= maxDicts { // forget the oldest
		delete(s.dicts, s.dictKeys[0])
		s.dictKeys = s.dictKeys[1:]
	}
	s.dicts[k] = ds
	s.dictKeys = append(s.dictKeys, k)
	return ds, nil
}

// forgetDicts drops the cached Dicts of a reconfigured plugin, so that
// the next ones take its new settings. Their metrics go with them.
func (s *server) forgetDicts(plugin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.dictKeys[:0]
	for _, k := range s.dictKeys {
		if strings.HasPrefix(k, plugin+"\x00") {
			delete(s.dicts, k)
			continue
		}
		keys = append(keys, k)
	}
	s.dictKeys = keys
}

// handleKey reads, writes or deletes a key, as the key tester form asks.
func (s *server) handleKey(w http.ResponseWriter, r *http.Request) {
	ss := s.authorize(w, r)
	if ss == nil {
		return
	}
	f := keyForm{
		Plugin: r.PostFormValue("plugin"), Prefix: r.PostFormValue("prefix"), Key: r.PostFormValue("key"),
		Value: r.PostFormValue("value"), Codec: r.PostFormValue("codec"), TTL: strings.TrimSpace(r.PostFormValue("ttl")),
	}
	s.mu.Lock()
	ss.form = f
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res := s.doKey(ctx, r.PostFormValue("action"), f)
	if res.Error {
		res.Text = s.scrub(res.Text)
	}
	s.setFlash(w, r, ss, res)
}

func (s *server) doKey(ctx context.Context, action string, f keyForm) *flash {
	fail := func(err error) *flash {
		return &flash{Error: true, Text: fmt.Sprintf("%s %s: %v", action, quoteKey(f.Key), err)}
	}
	ds, err := s.dictsFor(ctx, f.Plugin, f.Prefix)
	if err != nil {
		return fail(err)
	}
	switch action {
	case "read":
		st, ok, err := ds.get(ctx, f.Key)
		switch {
		case err != nil:
			return fail(err)
		case !ok:
			return &flash{Text: fmt.Sprintf("Key %s is not in the cache (a miss).", quoteKey(f.Key))}
		}
		v, decoded := st.Decoded()
		text := fmt.Sprintf("Key %s holds a %s value of %d bytes:", quoteKey(f.Key), st.CodecName(), len(st.Payload))
		if !decoded {
			return &flash{Text: text + " (in base64)", Pre: base64.StdEncoding.EncodeToString(st.Payload)}
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return &flash{Text: text, Pre: string(b)}
	case "write":
		var opts []memdict.ItemOption
		if f.TTL != "" {
			d, err := parseExpiration(f.TTL)
			if err != nil || d < 0 {
				return fail(fmt.Errorf("bad TTL %q", f.TTL))
			}
			opts = append(opts, memdict.TTL(d))
		}
		asString, c := f.Codec == "string", f.Codec
		if asString {
			c = ""
		}
		id, p, err := encodeValue(ds, []byte(f.Value), asString, c)
		if err != nil {
			return fail(err)
		}
		if err := ds.put(ctx, f.Key, id, p, opts...); err != nil {
			return fail(err)
		}
		return &flash{Text: fmt.Sprintf("Stored key %s (%s, %d bytes).", quoteKey(f.Key), codec.NameOf(id), len(p))}
	case "delete":
		err := ds.remove(ctx, f.Key)
		switch {
		case errors.Is(err, memdict.ErrNotFound):
			return &flash{Text: fmt.Sprintf("Key %s was not in the cache.", quoteKey(f.Key))}
		case err != nil:
			return fail(err)
		}
		return &flash{Text: fmt.Sprintf("Deleted key %s.", quoteKey(f.Key))}
	}
	return &flash{Error: true, Text: fmt.Sprintf("unknown action %q", action)}
}

// pageData is what the page template shows.
type pageData struct {
	Flash    *flash
	SignedIn bool
	CSRF     string
	SiteID   string
	Plugins  []pluginView
	Dicts    []dictView
	Codecs   []string
	Form     keyForm
	Now      string
}

type pluginView struct {
	tool.PluginInfo
	URLText    string
	CodecName  string
	Expiration string
	ExpSeconds int64
	Ping       pingResult
	Nodes      []summary
	StatsError string
	MaxKeyText string
	MaxValText string
}

type dictView struct {
	Plugin, Prefix                      string
	Hits, Misses, Sets, Deletes, Errors uint64
	HitRatio                            string
}

func (s *server) handleIndex(w http.ResponseWriter, r *http.Request) {
	var f *flash
	if _, ss := s.currentSession(r); ss != nil {
		s.mu.Lock()
		f, ss.flash = ss.flash, nil
		s.mu.Unlock()
	}
	s.render(w, r, http.StatusOK, f)
}

// render writes the page with f at its top.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, f *flash) {
	d := pageData{Flash: f, SiteID: s.t.SiteID(), Codecs: codec.Names(), Now: time.Now().UTC().Format("2006-01-02 15:04:05 UTC")}
	if _, ss := s.currentSession(r); ss != nil {
		s.mu.Lock()
		d.SignedIn, d.CSRF, d.Form = true, ss.csrf, ss.form
		s.mu.Unlock()
	}
	infos := s.t.Plugins()
	d.Plugins = make([]pluginView, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() { d.Plugins[i] = s.pluginView(r.Context(), info) })
	}
	wg.Wait()
	if d.Form.Plugin == "" && len(infos) > 0 {
		d.Form.Plugin = tool.DefaultPlugin
	}
	s.mu.Lock()
	for _, k := range s.dictKeys {
		ds := s.dicts[k]
		st := ds.stats()
		dv := dictView{Plugin: ds.info.Name, Prefix: ds.prefix, Hits: st.Hits, Misses: st.Misses, Sets: st.Sets, Deletes: st.Deletes, Errors: st.Errors, HitRatio: "-"}
		if st.Hits+st.Misses > 0 {
			dv.HitRatio = fmt.Sprintf("%.1f%%", 100*float64(st.Hits)/float64(st.Hits+st.Misses))
		}
		d.Dicts = append(d.Dicts, dv)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := s.page.Execute(w, d); err != nil {
		s.log.printf("memdict serve: page: %s\n", s.scrub(err.Error()))
	}
}

// pluginView pings a plugin and reads its servers' statistics.
func (s *server) pluginView(ctx context.Context, info tool.PluginInfo) pluginView {
	v := pluginView{PluginInfo: info, URLText: displayURL(info), CodecName: info.Codec, Expiration: expirationText(info.Expiration),
		ExpSeconds: int64(info.Expiration / time.Second), MaxKeyText: limitText(info.MaxKeyLen), MaxValText: limitText(info.MaxValueLen)}
	if v.CodecName == "" {
		v.CodecName = codec.Default().Name()
	}
	v.Ping = ping(ctx, s.t, info, pingTimeout)
	v.Ping.Error = s.scrub(v.Ping.Error)
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	be, err := s.t.Backend(ctx, info.Path)
	if err != nil {
		v.StatsError = s.scrub(err.Error())
		return v
	}
	sr, ok := be.(backend.StatsReporter)
	if !ok {
		v.StatsError = "this backend reports no statistics"
		return v
	}
	nodes, err := sr.ServerStats(ctx)
	if err != nil {
		v.StatsError = s.scrub(err.Error())
		if errors.Is(err, backend.ErrNotSupported) {
			v.StatsError = "this backend reports no statistics"
		}
		return v
	}
	for _, n := range nodes {
		sm := summarize(n)
		sm.Error = s.scrub(sm.Error)
		v.Nodes = append(v.Nodes, sm)
	}
	return v
}
