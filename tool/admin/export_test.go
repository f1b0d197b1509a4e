package admin

import "time"

// SetClock makes h read the time from now (the servers' status of
// visitors not signed in is kept statusTTL).
func SetClock(h *Handler, now func() time.Time) { h.now = now }

// StatusTTL is how long the servers' status of visitors not signed in is
// kept.
const StatusTTL = statusTTL

// SecretCount is the number of secrets h scrubs messages of.
func SecretCount(h *Handler) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.secrets)
}

// Scrub is h's scrub of a message.
func Scrub(h *Handler, msg string) string { return h.scrub(msg) }

// MaxFormSecrets is how many URLs typed in the plugin form h keeps
// beyond those in use.
const MaxFormSecrets = maxFormSecrets

// SetFailDelay sets the delay of h's failed sign-ins.
func SetFailDelay(h *Handler, d time.Duration) { h.failDelay = d }

// FailWaiting is the number of failed sign-ins of h waiting their turn
// or taking their delay.
func FailWaiting(h *Handler) int { return int(h.failWaiting.Load()) }

// Bounds of the log lines of refusals and of the failed sign-ins waiting.
const (
	LogBurst       = logBurst
	LogWindow      = logWindow
	MaxFailWaiting = maxFailWaiting
)

// SetPingTimeout sets the bound of h's reading of a plugin's servers'
// status.
func SetPingTimeout(h *Handler, d time.Duration) { h.pingTimeout = d }
