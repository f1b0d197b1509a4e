package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis's own log.
//
// go-redis logs through one logger for the whole process, which by
// default writes to the standard error, outside log/slog: two lines per
// request while a server is down ("redis: connection pool: failed to dial
// ..."), repeating failures that the calls return anyway. Importing this
// package routes those lines to log/slog instead, at level Debug (Error
// for a recovered panic), with the attribute component=go-redis: to
// slog.Default(), or to the logger given to SetLogger. With slog's default
// handler, which drops Debug lines, nothing is printed. A program that
// calls go-redis's own redis.SetLogger after this package's
// initialisation (in main, say) replaces the routing.

func init() { goredis.SetLogger(slogAdapter{}) }

// clientLogger is the logger SetLogger set; nil means slog.Default().
var clientLogger atomic.Pointer[slog.Logger]

// SetLogger sets the logger of go-redis's own log lines, which this
// package routes to log/slog (at level Debug; Error for a recovered
// panic): l, or slog.Default() if l is nil. It is global to the process,
// as go-redis's logger is. To silence go-redis entirely, give it a logger
// that discards: SetLogger(slog.New(slog.DiscardHandler)).
func SetLogger(l *slog.Logger) { clientLogger.Store(l) }

// slogAdapter is go-redis's logger, writing to log/slog.
type slogAdapter struct{}

// Printf implements go-redis's internal.Logging.
func (slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	l := clientLogger.Load()
	if l == nil {
		l = slog.Default()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	level := slog.LevelDebug
	if strings.Contains(format, "panic") {
		level = slog.LevelError
	}
	if !l.Enabled(ctx, level) {
		return
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.LogAttrs(ctx, level, "go-redis: "+msg, slog.String("component", "go-redis"))
}
