package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

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
// initialisation (in main, say) replaces the routing. What servers sent
// that go-redis formats into a line is escaped and bounded (logMessage).

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
	panicked := strings.Contains(format, "panic")
	if panicked {
		level = slog.LevelError
	}
	if !l.Enabled(ctx, level) {
		return
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.LogAttrs(ctx, level, "go-redis: "+logMessage(msg, panicked), slog.String("component", "go-redis"))
}

// maxLogMessage bounds the message of a go-redis line: far more than a
// line needs, and room for a panic's stack.
const maxLogMessage = 8 << 10

// logMessage returns msg, a go-redis line, fit for a log: go-redis
// formats into it what servers sent (the error a sentinel answered, the
// address a maintenance notice names), which handlers that write the
// message as it is (slog's default handler, console handlers) would print
// raw. Its control characters and invalid bytes are escaped (\n, \x1b),
// but for the line breaks and tabs of a panic's stack (multiline), and it
// is cut to maxLogMessage bytes, with its length.
func logMessage(msg string, multiline bool) string {
	msg = strings.TrimRight(msg, "\n")
	clean := func(r rune) bool { return !unicode.IsControl(r) || multiline && (r == '\n' || r == '\t') }
	if len(msg) <= maxLogMessage && utf8.ValidString(msg) && strings.IndexFunc(msg, func(r rune) bool { return !clean(r) }) < 0 {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		if b.Len() >= maxLogMessage {
			b.WriteString("... (" + strconv.Itoa(len(msg)) + " bytes)")
			break
		}
		r, size := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", msg[i])
		case clean(r):
			b.WriteString(msg[i : i+size])
		default:
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		}
		i += size
	}
	return b.String()
}
