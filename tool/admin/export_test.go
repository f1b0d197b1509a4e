package admin

import "time"

// SetClock makes h read the time from now (the servers' status of
// visitors not signed in is kept statusTTL).
func SetClock(h *Handler, now func() time.Time) { h.now = now }

// StatusTTL is how long the servers' status of visitors not signed in is
// kept.
const StatusTTL = statusTTL
