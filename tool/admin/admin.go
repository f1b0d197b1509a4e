package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

//go:embed assets/style.css
var assets embed.FS

// MinTokenLen is the length, in bytes, below which New refuses a token.
const MinTokenLen = 8

const (
	sessionCookie  = "memdict_admin_session"
	sessionTTL     = 12 * time.Hour
	maxSessions    = 1000
	maxDicts       = 50      // Dicts the key tester keeps, with their metrics
	maxFormSecrets = 64      // URLs typed in the plugin form kept to scrub, beyond those in use
	maxLoginBytes  = 4 << 10 // of a sign-in form, which holds a token
	maxLogoutBytes = 4 << 10 // of a sign-out form, which holds the anti-forgery token
	// of a plugin form: a URL (a server list of a few hundred servers) and
	// a few settings. Every URL typed there is kept to scrub messages of
	// (addFormSecret), maxFormSecrets of them.
	maxPluginBytes = 16 << 10
	// of a key tester form: a key and a value typed in the page, which
	// shows 64 KiB of a value read; a value of a megabyte and more is
	// written with the memdict command. The session keeps the form.
	maxKeyBytes    = 1 << 20
	maxFailWaiting = 16 // failed sign-ins waiting their turn (checkToken); more are refused at once
	logBurst       = 5  // lines a logLimit logs per logWindow
	logWindow      = time.Minute
	maxShown       = 64 << 10 // bytes of a value's text the key tester shows
	maxKeyShown    = 256      // bytes of a key the key tester's messages show
	pingTimeout    = 2 * time.Second
	changeTimeout  = 10 * time.Second
	failDelay      = 300 * time.Millisecond // of a failed sign-in
	statusTTL      = 10 * time.Second       // of the servers' status shown to visitors not signed in
)

// Options configure a Handler. The zero value is valid: a generated
// token, logged once on slog.Default(), and the handler mounted with
// http.StripPrefix (or at the root).
type Options struct {
	// Token is the admin token an operator types (or passes as ?token= in
	// the page's URL) to sign in; it must be at least MinTokenLen bytes.
	// "" means a random token, which New logs once on Logger and Token
	// returns.
	Token string

	// Logger receives the handler's log lines: sign-ins, refused requests,
	// plugin changes. nil means slog.Default(). Passwords and the token
	// never appear in them, except the generated token's one line. The
	// refusals anyone who reaches the handler can cause (wrong tokens,
	// cross-origin posts, oversized forms) log at most 5 lines a
	// minute each; the next line says how many were not logged.
	Logger *slog.Logger

	// Prefix is the path the handler is mounted at when the mux passes
	// requests on unchanged, as mux.Handle("/admin/", h) does: the handler
	// then removes "/admin" itself. Leave it empty when the handler is
	// mounted with http.StripPrefix, or at the root. Links, form actions,
	// redirects and the session cookie's Path follow the mount point in
	// both cases.
	Prefix string

	// Secrets are URLs (with passwords) or passwords that must never show
	// on the page or in the log, in addition to the URLs entered in the
	// page's forms. Give the configuration's URLs: the Tool only ever
	// shows redacted ones, but a driver's error could quote one. A server
	// list without a scheme ("host:port,host:port", a memcached URL as the
	// Tool reads it) hides nothing.
	Secrets []string

	// Hosts are host names, besides localhost and loopback addresses, that
	// the page answers to on a connection that arrived on a loopback
	// address: a reverse proxy's public name, say. Without them such a
	// request is refused, which defeats DNS rebinding (a web page that
	// gets a browser to send its requests to 127.0.0.1).
	Hosts []string

	// SecureCookie marks the session cookie Secure on every request, not
	// only on those that arrive over TLS: set it when a TLS-terminating
	// proxy serves the page over HTTPS and passes it on in plain HTTP,
	// where the handler cannot tell. A browser then never sends the
	// cookie over plain HTTP (it is not sent to the page opened as
	// http://, which the proxy should redirect).
	SecureCookie bool
}

// Handler is the admin page of a live *tool.Tool: it shows the plugins,
// whether their servers answer and their statistics, and the metrics of
// the Dicts the Tool handed out; signed in with the admin token, an
// operator changes a plugin's URL and defaults (Tool.SetPlugin: the
// program's Dicts follow at once) and reads, writes and deletes a key.
// A signed-in page shows the servers' status read after it was asked
// for; pages of visitors not signed in share the status read last while
// it is less than 10 seconds old. Pages read it one at a time, and pages
// asked for while it is read share it, so that requests from anyone who
// reaches the handler, or a signed-in operator's many at once, do not
// each reach the cache servers.
//
// A service mounts it on its own mux, under any path:
//
//	h, err := admin.New(t, admin.Options{Token: os.Getenv("ADMIN_TOKEN")})
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//
// The page needs no JavaScript. It defends itself as a page that changes a
// production cache must: every change needs a signed-in session (an
// HttpOnly, SameSite=Strict cookie obtained with the token) and the
// session's anti-forgery token, cross-origin posts are refused (the
// browser's Sec-Fetch-Site and Origin headers), requests that reach a
// loopback address under a foreign host name are refused (DNS rebinding),
// passwords show as xxxxx everywhere, and responses carry a strict
// Content-Security-Policy and frame-ancestors 'none'. Wrong tokens are
// refused slowly, one at a time (beyond 16 waiting their turn, at once
// with 429 Too Many Requests), and a form larger than it needs is refused
// at once, unread: 4 KiB for the sign-in (a token is short) and sign-out
// forms, 16 KiB for a plugin's, 1 MiB for the key tester's. It speaks
// whatever the service's server speaks: serve it over TLS, or on loopback
// only.
//
// A Handler is safe for concurrent use.
type Handler struct {
	t       *tool.Tool
	token   string
	log     *slog.Logger
	hosts   []string
	secure  bool // Options.SecureCookie
	root    http.Handler
	cop     *http.CrossOriginProtection
	started time.Time

	// failing is held by a failed sign-in for its delay (checkToken), so
	// that guesses sent in parallel wait in turn; failWaiting counts the
	// failed sign-ins waiting for it or holding it, at most
	// maxFailWaiting.
	failing     chan struct{}
	failWaiting atomic.Int32
	failDelay   time.Duration

	// statusTurn is held by a page while it reads the servers' status
	// (status), so that pages read it one at a time, and the others
	// reuse it while it is recent.
	statusTurn chan struct{}
	now        func() time.Time
	// pingTimeout bounds the reading of a plugin's servers' status, the
	// ping and the statistics together (serverStatus).
	pingTimeout time.Duration

	mu       sync.Mutex
	sessions map[string]*session
	secrets  []string            // URLs with passwords, to scrub from errors
	fixed    int                 // secrets[:fixed] are Options.Secrets, kept for good
	dicts    map[string]*dictSet // the key tester's, by plugin name + "\x00" + prefix
	dictKeys []string            // dicts' keys, in the order opened
	// lastStatus is the servers' status read last, which pages of
	// visitors not signed in show while it is recent (status).
	lastStatus *statusSet
	// The log lines of refusals that anyone who reaches the handler can
	// cause, at will: failed sign-ins, cross-origin posts, oversized
	// forms (logLimit).
	failLog, originLog, sizeLog logLimit
}

// logLimit bounds the log lines of one kind of refusal that anyone who
// reaches the handler can cause: without it, a guesser filled the
// service's log with a line per wrong token (or per cross-origin post),
// as fast as it sent them. It lets logBurst lines through per logWindow;
// the first line after a window in which some were not logged says how
// many ("not_logged"). Its fields are guarded by Handler.mu.
type logLimit struct {
	start   time.Time // of the window
	logged  int       // lines logged in the window
	dropped int       // refusals not logged since the last line
}

// warnLimited logs msg and args at Warn level within the bound of l.
func (h *Handler) warnLimited(l *logLimit, msg string, args ...any) {
	now := h.now()
	h.mu.Lock()
	if d := now.Sub(l.start); d >= logWindow || d < 0 {
		l.start, l.logged = now, 0
	}
	if l.logged >= logBurst {
		l.dropped++
		h.mu.Unlock()
		return
	}
	l.logged++
	dropped := l.dropped
	l.dropped = 0
	h.mu.Unlock()
	if dropped > 0 {
		args = append(args, "not_logged", dropped)
	}
	h.log.Warn(msg, args...)
}

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

// New returns the admin page of t. It returns an error for a nil Tool, a
// token shorter than MinTokenLen, or a Prefix that does not start with
// "/".
func New(t *tool.Tool, opts Options) (*Handler, error) {
	if t == nil {
		return nil, errors.New("admin: New: nil *tool.Tool")
	}
	if opts.Token != "" && len(opts.Token) < MinTokenLen {
		return nil, fmt.Errorf("admin: New: the admin token must be at least %d characters", MinTokenLen)
	}
	prefix := strings.TrimSuffix(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		return nil, fmt.Errorf("admin: New: Prefix %q does not start with /", opts.Prefix)
	}
	h := &Handler{
		t: t, token: opts.Token, log: opts.Logger, hosts: opts.Hosts, secure: opts.SecureCookie,
		cop:         http.NewCrossOriginProtection(),
		failing:     make(chan struct{}, 1),
		failDelay:   failDelay,
		statusTurn:  make(chan struct{}, 1),
		pingTimeout: pingTimeout,
		now:         time.Now,
		started:     time.Now(),
		sessions:    map[string]*session{},
		dicts:       map[string]*dictSet{},
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.addSecrets(opts.Secrets...)
	h.fixed = len(h.secrets)
	if h.token == "" {
		h.token = randomToken(18)
		h.log.Warn("memdict admin: generated admin token (set Options.Token to choose it)", "token", h.token)
	}
	static, _ := fs.Sub(assets, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", h.handleIndex)
	mux.HandleFunc("POST /login", h.handleLogin)
	mux.HandleFunc("POST /logout", h.handleLogout)
	mux.HandleFunc("POST /plugin", h.handlePlugin)
	mux.HandleFunc("POST /key", h.handleKey)
	h.root = mux
	if prefix != "" {
		h.root = http.StripPrefix(prefix, mux)
	}
	return h, nil
}

// Token returns the admin token: Options.Token, or the generated one.
func (h *Handler) Token() string { return h.token }

// ServeHTTP serves the page, its stylesheet and its forms. It sets the
// security headers on every response, and refuses a request for a foreign
// host name on a loopback connection before routing.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	hd.Set("Cache-Control", "no-store")
	if !h.hostAllowed(r) {
		http.Error(w, "memdict admin: on a loopback address this page answers to localhost and loopback names only (see admin.Options.Hosts)", http.StatusMisdirectedRequest)
		return
	}
	if r.URL.Path == "" || !strings.HasPrefix(r.URL.Path, "/") {
		// Mounted with http.StripPrefix("/admin/", h): make the path
		// rooted again.
		r2 := *r
		u := *r.URL
		u.Path = "/" + u.Path
		u.RawPath = ""
		r2.URL = &u
		r = &r2
	}
	h.root.ServeHTTP(w, r)
}

// postValue returns the form field name of a POST's url-encoded body
// (the page's forms send no other), as r.PostFormValue does without its
// multipart parsing: r.PostFormValue would link mime/multipart's form
// reader into every service that mounts the page (50 KB; .ci/binary).
func postValue(r *http.Request, name string) string {
	if r.PostForm == nil {
		_ = r.ParseForm() // on a bad body the fields are empty, as with PostFormValue
	}
	return r.PostForm.Get(name)
}

// base returns the path the page is served under, with a final slash:
// "/admin/" when the mux stripped "/admin", "/" at the root. It compares
// the request's original path (RequestURI, which http.StripPrefix leaves
// alone) with the path the handler sees.
func base(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || u.Path == "" {
		return "/"
	}
	b, ok := strings.CutSuffix(u.Path, strings.TrimPrefix(r.URL.Path, "/"))
	if !ok || !strings.HasPrefix(b, "/") {
		return "/"
	}
	if !strings.HasSuffix(b, "/") {
		b += "/"
	}
	return b
}

// hostAllowed reports whether r may be served: any host on a connection
// to a non-loopback address, only loopback names and Options.Hosts on a
// connection to a loopback address.
func (h *Handler) hostAllowed(r *http.Request) bool {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if ta, ok := la.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range h.hosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// addSecrets records URLs (or bare passwords) that must never be shown.
// A server list (serverList), which the Tool reads as a memcached URL,
// hides nothing: messages that name its servers keep naming them.
func (h *Handler) addSecrets(secrets ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range secrets {
		if s == "" || serverList(s) {
			continue
		}
		if strings.Contains(s, "://") && backend.URLPassword(s) == "" {
			continue
		}
		if !slices.Contains(h.secrets, s) {
			h.secrets = append(h.secrets, s)
		}
	}
}

// addFormSecret records the URL typed in the plugin form, as addSecrets
// does. Beyond maxFormSecrets such URLs, the oldest that is neither a
// plugin's URL nor the one a plugin warms up from is forgotten: a
// signed-in operator who posts the form again and again does not grow
// the list, which every message shown is scrubbed of, without bound. Of
// typed URLs that differ in their password only, only the newest counts
// as a plugin's.
func (h *Handler) addFormSecret(s string) {
	h.addSecrets(s)
	h.mu.Lock()
	n := len(h.secrets) - h.fixed
	h.mu.Unlock()
	if n <= maxFormSecrets {
		return
	}
	inUse := map[string]bool{}
	for _, info := range h.t.Plugins() {
		inUse[backend.Redact(info.URL)] = true
		inUse[backend.Redact(info.WarmFrom)] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Plugins' URLs are known redacted only: of the typed URLs that
	// redact alike (the same server, other passwords), only the newest is
	// taken for the one in use, or posting other passwords for a plugin's
	// server would grow the list without bound.
	newest := map[string]int{}
	for i := h.fixed; i < len(h.secrets); i++ {
		newest[backend.Redact(h.secrets[i])] = i
	}
	kept := h.secrets[:h.fixed]
	over := len(h.secrets) - h.fixed - maxFormSecrets
	for i := h.fixed; i < len(h.secrets); i++ {
		x := h.secrets[i]
		r := backend.Redact(x)
		if over > 0 && x != s && (!inUse[r] || newest[r] != i) {
			over--
			continue
		}
		kept = append(kept, x)
	}
	clear(h.secrets[len(kept):])
	h.secrets = kept
}

// serverList reports whether s is a list of servers without user
// information, "host:port" or "host:port,host:port", as a configuration or
// the plugin form gives a memcached URL without its scheme.
func serverList(s string) bool {
	for a := range strings.SplitSeq(s, ",") {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil || host == "" || strings.ContainsAny(host, "@/") {
			return false
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
	}
	return true
}

// scrub removes every known password from a message.
func (h *Handler) scrub(msg string) string {
	h.mu.Lock()
	secrets := append([]string(nil), h.secrets...)
	h.mu.Unlock()
	for _, s := range secrets {
		switch {
		case strings.Contains(s, "://"):
			msg = backend.Scrub(msg, s)
		case len(s) >= 3:
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if len(h.token) >= MinTokenLen {
		msg = strings.ReplaceAll(msg, h.token, "xxxxx")
	}
	return msg
}

// currentSession returns the request's live session, or nil.
func (h *Handler) currentSession(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := h.sessions[c.Value]
	if ss == nil {
		return "", nil
	}
	if time.Now().After(ss.expires) {
		delete(h.sessions, c.Value)
		return "", nil
	}
	return c.Value, ss
}

// maxOriginShown bounds what a refusal's log line shows of an Origin:
// a scheme, a DNS name (253 bytes) and a port.
const maxOriginShown = 280

// checkOrigin refuses a cross-site POST: a browser's Sec-Fetch-Site or
// Origin from elsewhere (net/http's CrossOriginProtection), and an Origin
// or Referer naming another host.
func (h *Handler) checkOrigin(r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		return err
	}
	sameHost := func(raw string) bool {
		u, err := url.Parse(raw)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		if !sameHost(o) {
			// Logged: an origin of any client's choosing is shown
			// shortened, or each request could log as much as its
			// headers hold (1 MiB).
			if len(o) > maxOriginShown {
				return fmt.Errorf("request from origin %q... (%d bytes)", o[:maxOriginShown], len(o))
			}
			return fmt.Errorf("request from origin %q", o)
		}
		return nil
	}
	if ref := r.Header.Get("Referer"); ref != "" && !sameHost(ref) {
		return errors.New("request from another page")
	}
	return nil
}

// readForm parses the form of a POST (postValue), refusing one larger
// than limit bytes with 413 as soon as it has read that much: each form
// is bounded to what it holds, so that none is read into memory, kept in
// a session or scrubbed from messages at megabytes. what names the form
// ("plugin form"), hint what it holds. It writes the refusal and returns
// false if the form is refused. A body that is not a form leaves the
// fields empty.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request, limit int64, what, hint string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.warnLimited(&h.sizeLog, "memdict admin: refused an oversized form", "form", what, "remote", r.RemoteAddr, "limit", limit)
			h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("Refused: the %s is larger than %d bytes; %s.", what, limit, hint))
			return false
		}
	}
	return true
}

// authorize checks a state-changing request: same origin, a live session,
// a form of at most limit bytes (readForm; what and hint name it) and
// the session's anti-forgery token. It writes the refusal and returns nil
// if the request is refused.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, limit int64, what, hint string) *session {
	if err := h.checkOrigin(r); err != nil {
		h.warnLimited(&h.originLog, "memdict admin: refused a cross-origin request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "error", err)
		h.refuse(w, r, http.StatusForbidden, "Refused: the request did not come from this page.")
		return nil
	}
	_, ss := h.currentSession(r)
	if ss == nil {
		h.refuse(w, r, http.StatusForbidden, "Refused: sign in with the admin token first.")
		return nil
	}
	if !h.readForm(w, r, limit, what, hint) {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(postValue(r, "csrf")), []byte(ss.csrf)) != 1 {
		h.log.Warn("memdict admin: refused a request with a bad anti-forgery token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		h.refuse(w, r, http.StatusForbidden, "Refused: the form's anti-forgery token is missing or stale; reload the page.")
		return nil
	}
	return ss
}

// refuse renders the page with an error, with status code.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.render(w, r, code, &flash{Error: true, Text: msg})
}

// setFlash stores f for the session's next page and redirects to it.
func (h *Handler) setFlash(w http.ResponseWriter, r *http.Request, ss *session, f *flash) {
	h.mu.Lock()
	ss.flash = f
	h.mu.Unlock()
	http.Redirect(w, r, base(r), http.StatusSeeOther)
}

// tokenCheck is the outcome of checkToken.
type tokenCheck int

const (
	tokenRight tokenCheck = iota
	tokenWrong            // refused after its delay
	tokenBusy             // wrong, refused at once: maxFailWaiting others wait
)

// checkToken compares a token typed or passed by a client, slowing down
// guesses: a wrong token is refused after failDelay, and failed sign-ins
// take that delay in turn, so that a guesser gains nothing by sending
// guesses in parallel. Beyond maxFailWaiting failed sign-ins waiting
// their turn, one is refused at once (tokenBusy), or a guesser's
// connections, each held with its request for its turn, would pile up
// without bound. The right token is never held up.
func (h *Handler) checkToken(r *http.Request, token string) tokenCheck {
	if subtle.ConstantTimeCompare([]byte(token), []byte(h.token)) == 1 {
		return tokenRight
	}
	if h.failWaiting.Add(1) > maxFailWaiting {
		h.failWaiting.Add(-1)
		h.warnLimited(&h.failLog, "memdict admin: failed sign-in, refused at once: too many wait their turn", "remote", r.RemoteAddr, "waiting", maxFailWaiting)
		return tokenBusy
	}
	defer h.failWaiting.Add(-1)
	h.warnLimited(&h.failLog, "memdict admin: failed sign-in", "remote", r.RemoteAddr)
	select {
	case h.failing <- struct{}{}:
	case <-r.Context().Done():
		return tokenWrong
	}
	defer func() { <-h.failing }()
	t := time.NewTimer(h.failDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	return tokenWrong
}

// signInWith signs in with token (signIn), or refuses it: a wrong token
// with 403 after its delay, or with 429 at once when too many failed
// sign-ins wait their turn (checkToken).
func (h *Handler) signInWith(w http.ResponseWriter, r *http.Request, token string) {
	switch h.checkToken(r, token) {
	case tokenRight:
		h.signIn(w, r)
	case tokenBusy:
		w.Header().Set("Retry-After", "1")
		h.refuse(w, r, http.StatusTooManyRequests, "Refused: too many failed sign-ins are waiting their turn; try again in a moment.")
	default:
		h.refuse(w, r, http.StatusForbidden, "Wrong admin token.")
	}
}

// secureCookie reports whether the session cookie of r is Secure: on a
// TLS connection, and on every request with Options.SecureCookie.
func (h *Handler) secureCookie(r *http.Request) bool { return h.secure || r.TLS != nil }

// signIn starts a session and redirects to the page.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	id := randomToken(32)
	ss := &session{csrf: randomToken(32), expires: time.Now().Add(sessionTTL), flash: &flash{Text: "Signed in."}}
	h.mu.Lock()
	now := time.Now()
	for k, v := range h.sessions {
		if now.After(v.expires) || len(h.sessions) >= maxSessions {
			delete(h.sessions, k)
		}
	}
	h.sessions[id] = ss
	h.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: base(r), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.secureCookie(r),
		MaxAge: int(sessionTTL / time.Second),
	})
	h.log.Info("memdict admin: signed in", "remote", r.RemoteAddr)
	http.Redirect(w, r, base(r), http.StatusSeeOther)
}

func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := h.checkOrigin(r); err != nil {
		h.warnLimited(&h.originLog, "memdict admin: refused a cross-origin sign-in", "remote", r.RemoteAddr, "error", err)
		h.refuse(w, r, http.StatusForbidden, "Refused: the request did not come from this page.")
		return
	}
	// A token is short: a larger form is refused before it is parsed,
	// and before it waits its turn among the failed sign-ins, holding its
	// connection and its form (checkToken).
	if !h.readForm(w, r, maxLoginBytes, "sign-in form", "it holds the admin token only") {
		return
	}
	h.signInWith(w, r, postValue(r, "token"))
}

func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	if h.authorize(w, r, maxLogoutBytes, "sign-out form", "it holds the anti-forgery token only") == nil {
		return
	}
	if id, _ := h.currentSession(r); id != "" {
		h.mu.Lock()
		delete(h.sessions, id)
		h.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: base(r), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secureCookie(r)})
	http.Redirect(w, r, base(r), http.StatusSeeOther)
}

// handleIndex shows the page. With ?token=, as in the link a service
// prints at start-up, it signs in first and redirects to the page without
// the token.
func (h *Handler) handleIndex(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has("token") {
		h.signInWith(w, r, q.Get("token"))
		return
	}
	var f *flash
	if _, ss := h.currentSession(r); ss != nil {
		h.mu.Lock()
		f, ss.flash = ss.flash, nil
		h.mu.Unlock()
	}
	h.render(w, r, http.StatusOK, f)
}

// handlePlugin applies the plugin form with the Tool's SetPlugin.
func (h *Handler) handlePlugin(w http.ResponseWriter, r *http.Request) {
	ss := h.authorize(w, r, maxPluginBytes, "plugin form", "it holds a URL and a few settings")
	if ss == nil {
		return
	}
	name := postValue(r, "plugin")
	old, err := h.t.Plugin(name)
	if err != nil {
		h.setFlash(w, r, ss, &flash{Error: true, Text: h.scrub(err.Error())})
		return
	}
	pc, err := pluginForm(r, old.PluginConfig)
	if err != nil {
		h.setFlash(w, r, ss, &flash{Error: true, Text: fmt.Sprintf("Plugin %s not changed: %s", old.Name, h.scrub(err.Error()))})
		return
	}
	h.addFormSecret(pc.URL)
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	if err := h.t.SetPlugin(ctx, old.Path, pc); err != nil {
		msg := h.scrub(err.Error())
		h.log.Warn("memdict admin: plugin not changed", "plugin", old.Name, "remote", r.RemoteAddr, "error", msg)
		h.setFlash(w, r, ss, &flash{Error: true, Text: fmt.Sprintf("Plugin %s not changed: %s", old.Name, msg)})
		return
	}
	h.forgetDicts(old.Name)
	now, _ := h.t.Plugin(old.Path)
	h.log.Info("memdict admin: plugin changed", "plugin", old.Name, "from", displayURL(old), "to", displayURL(now),
		"expiration", now.Expiration, "max_key_length", now.MaxKeyLen, "max_value_length", now.MaxValueLen, "codec", now.Codec,
		"warm", now.Warm, "remote", r.RemoteAddr)
	text := fmt.Sprintf("Plugin %s now uses %s.", old.Name, displayURL(now))
	if !now.WarmUntil.IsZero() && displayURL(now) != displayURL(old) {
		text += fmt.Sprintf(" It warms up from %s for %v: misses read the old servers.", now.WarmFrom, now.Warm)
	}
	h.setFlash(w, r, ss, &flash{Text: text})
}

// pluginForm reads the plugin form into a PluginConfig, starting from cur.
func pluginForm(r *http.Request, cur tool.PluginConfig) (tool.PluginConfig, error) {
	pc := cur
	pc.URL = strings.TrimSpace(postValue(r, "url")) // "" or unchanged redacted URL keeps it
	if v := strings.TrimSpace(postValue(r, "expiration")); v != "" {
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
		if v := strings.TrimSpace(postValue(r, f.name)); v != "" {
			n, err := strconv.Atoi(strings.ReplaceAll(v, ",", ""))
			if err != nil {
				return pc, fmt.Errorf("%s: %q is not a number", f.name, v)
			}
			*f.dst = n
		}
	}
	if c := postValue(r, "codec"); c != "" {
		pc.Codec = c
	}
	if v := strings.TrimSpace(postValue(r, "warm")); v != "" {
		d, err := tool.ParseTTL(v)
		if err != nil {
			return pc, fmt.Errorf("warm: %w", err)
		}
		pc.Warm = d
	}
	// An empty URL keeps the plugin's backend (SetPlugin), the only value
	// a plugin supplied by the program (WithBackend) has: validate the
	// rest with a stand-in, and leave the URL to SetPlugin.
	v := pc
	if v.URL == "" {
		v.URL = tool.DefaultURL
	}
	return pc, v.Validate()
}

// parseExpiration reads seconds ("3600") or a duration ("1h"), as
// configuration files give them (tool.ParseTTL).
func parseExpiration(v string) (time.Duration, error) {
	d, err := tool.ParseTTL(v)
	if err != nil {
		return 0, fmt.Errorf("expiration: %w", err)
	}
	return d, nil
}

// displayURL is a plugin's URL as the page shows it.
func displayURL(info tool.PluginInfo) string {
	if info.URL == "" {
		return "(backend supplied by the program)"
	}
	return backend.Redact(info.URL)
}

// dictsFor returns the key tester's (cached) Dicts of a plugin and prefix.
// A cached one serves while its plugin's settings and backend are the
// ones it was made with: the program may change them (SetPlugin,
// Configure, RemovePlugin and a new plugin of the same name) without the
// page knowing, and a Dict made before would then read another site's
// keys, or a closed backend.
func (h *Handler) dictsFor(ctx context.Context, plugin, prefix string) (*dictSet, error) {
	info, err := h.t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	be, err := h.t.Backend(ctx, info.Path)
	if err != nil {
		return nil, err
	}
	k := info.Name + "\x00" + prefix
	h.mu.Lock()
	ds := h.dicts[k]
	h.mu.Unlock()
	if ds.follows(info, be) {
		return ds, nil
	}
	ds, err = openDicts(info, be, prefix)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.dicts[k]; d.follows(info, be) {
		return d, nil
	}
	if i := slices.Index(h.dictKeys, k); i >= 0 { // replaced: it moves to the end
		h.dictKeys = slices.Delete(h.dictKeys, i, i+1)
	}
	if len(h.dictKeys) >= maxDicts { // forget the oldest
		delete(h.dicts, h.dictKeys[0])
		h.dictKeys = h.dictKeys[1:]
	}
	h.dicts[k] = ds
	h.dictKeys = append(h.dictKeys, k)
	return ds, nil
}

// forgetDicts drops the key tester's Dicts of a reconfigured plugin, so
// that the next ones take its new settings. Their metrics go with them.
// (The program's Dicts follow the change by themselves.)
func (h *Handler) forgetDicts(plugin string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := h.dictKeys[:0]
	for _, k := range h.dictKeys {
		if strings.HasPrefix(k, plugin+"\x00") {
			delete(h.dicts, k)
			continue
		}
		keys = append(keys, k)
	}
	h.dictKeys = keys
}

// handleKey reads, writes or deletes a key, as the key tester form asks.
func (h *Handler) handleKey(w http.ResponseWriter, r *http.Request) {
	ss := h.authorize(w, r, maxKeyBytes, "key tester form", "write a larger value with the memdict command (memdict put)")
	if ss == nil {
		return
	}
	f := keyForm{
		Plugin: postValue(r, "plugin"), Prefix: postValue(r, "prefix"), Key: postValue(r, "key"),
		Value: postValue(r, "value"), Codec: postValue(r, "codec"), TTL: strings.TrimSpace(postValue(r, "ttl")),
	}
	h.mu.Lock()
	ss.form = f
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	res := h.doKey(ctx, postValue(r, "action"), f)
	if res.Error {
		// Scrubbed whole, then cut: errors quote the key whole (memdict:
		// get "..."), which the page and the session need not hold at
		// the form's size.
		res.Text = cutText(h.scrub(res.Text), maxKeyShown*4)
	}
	h.setFlash(w, r, ss, res)
}

func (h *Handler) doKey(ctx context.Context, action string, f keyForm) *flash {
	fail := func(err error) *flash {
		return &flash{Error: true, Text: fmt.Sprintf("%s %s: %v", action, quoteKey(f.Key), err)}
	}
	ds, err := h.dictsFor(ctx, f.Plugin, f.Prefix)
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
		text := fmt.Sprintf("Key %s holds a %s value of %s bytes:", quoteKey(f.Key), codecName(st), groupDigits(int64(len(st.Payload))))
		var pre string
		if decoded {
			pre = prettyJSON(v)
		} else {
			text += " (in base64)"
			pre = base64.StdEncoding.EncodeToString(st.Payload)
		}
		if len(pre) > maxShown {
			// A page, and the session that holds it, of the value's size.
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(pre[cut]) {
				cut--
			}
			text += fmt.Sprintf(" (the first %s bytes of its text of %s bytes)", groupDigits(int64(cut)), groupDigits(int64(len(pre))))
			pre = pre[:cut] + "…"
		}
		return &flash{Text: text, Pre: pre}
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
		id, p, flags, err := encodeValue(ds.info, []byte(f.Value), asString, c)
		if err != nil {
			return fail(err)
		}
		if err := ds.put(ctx, f.Key, id, p, flags, opts...); err != nil {
			return fail(err)
		}
		return &flash{Text: fmt.Sprintf("Stored key %s (%s, %s bytes).", quoteKey(f.Key), codecName(stored{Codec: id, Flags: flags}), groupDigits(int64(len(p))))}
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
