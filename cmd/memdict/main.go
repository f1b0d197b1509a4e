package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	// The command opens any URL: it links every driver.
	_ "github.com/memdict/memdict/backend/all"
)

func main() {
	// The command reports every failure itself, with passwords redacted;
	// go-redis's own log lines would repeat them, unformatted, on stderr.
	goredis.SetLogger(quietLog{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// quietLog discards go-redis's log.
type quietLog struct{}

func (quietLog) Printf(context.Context, string, ...any) {}
