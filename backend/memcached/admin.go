package memcached

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/memdict/memdict/backend"
)

// protoErr describes a reply to an admin command that is not memcached's.
type protoErr string

func (e protoErr) Error() string { return string(e) }

// adminConn is a short-lived connection for one admin command, closed when
// ctx ends so that a blocked read returns.
type adminConn struct {
	nc      net.Conn
	r       *bufio.Reader
	stop    func() bool
	pending string // a line read ahead, returned by the next readLine
}

func (c *Client) dialAdmin(ctx context.Context, addr string) (*adminConn, error) {
	nc, err := c.dialer.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { resetConn(nc) })
	return &adminConn{nc: nc, r: bufio.NewReader(nc), stop: stop}, nil
}

// close resets the connection (resetConn): an admin command given up on
// (a flush_all that timed out) is not delivered afterwards, and a dump
// left early stops at once.
func (a *adminConn) close() {
	a.stop()
	resetConn(a.nc)
}

// command sends cmd and returns a reader positioned at the reply. Each read
// then has one timeout (re-armed by readLine).
func (a *adminConn) command(cmd string, timeout time.Duration) error {
	_ = a.nc.SetDeadline(time.Now().Add(timeout))
	_, err := a.nc.Write([]byte(cmd + "\r\n"))
	return err
}

func (a *adminConn) readLine(timeout time.Duration) (string, error) {
	if a.pending != "" {
		line := a.pending
		a.pending = ""
		return line, nil
	}
	_ = a.nc.SetReadDeadline(time.Now().Add(timeout))
	line, err := a.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", protoErr(fmt.Sprintf("reply line longer than %d bytes", a.r.Size()))
	}
	if err != nil {
		return "", err
	}
	// Replies end lines with CRLF, except metadump which uses LF alone.
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return string(line), nil
}

// simple sends cmd to addr and checks that the one-line reply starts with
// want.
func (c *Client) simple(ctx context.Context, op, addr, cmd, want string) (string, error) {
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	defer a.close()
	if err := a.command(cmd, c.cfg.timeout); err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	line, err := a.readLine(c.cfg.timeout)
	if err != nil {
		return "", c.adminErr(ctx, op, addr, err)
	}
	if !strings.HasPrefix(line, want) {
		return "", c.adminErr(ctx, op, addr, protoErr(fmt.Sprintf("unexpected reply to %s: %q", cmd, line)))
	}
	return line, nil
}

func (c *Client) adminErr(ctx context.Context, op, addr string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("memcached: %s on %s: %w", op, addr, ctx.Err())
	}
	kind := error(backend.ErrUnavailable)
	var pe protoErr
	if errors.As(err, &pe) {
		kind = ErrProtocol
	}
	return &opError{Op: op, Addr: addr, Kind: kind, Err: err}
}

// eachNode runs fn for every server in parallel and joins the errors.
func (c *Client) eachNode(fn func(n *node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Ping sends "version" to every server over a new connection and returns
// nil if all answer, or an error naming each one that does not. It does not
// change whether a server is marked down.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.enter("ping", ""); err != nil {
		return err
	}
	defer c.leave()
	return c.eachNode(func(n *node) error {
		_, err := c.simple(ctx, "ping", n.addr, "version", "VERSION ")
		return err
	})
}

// Flush sends "flush_all" to every server: every item of every user of
// these servers is dropped. The error names the servers that failed.
func (c *Client) Flush(ctx context.Context) error {
	if err := c.enter("flush", ""); err != nil {
		return err
	}
	defer c.leave()
	return c.eachNode(func(n *node) error {
		_, err := c.simple(ctx, "flush_all", n.addr, "flush_all", "OK")
		return err
	})
}

// FlushNode sends "flush_all" to the one server addr (as listed by
// Servers). It returns an error for an address that is not one of the
// Client's servers.
func (c *Client) FlushNode(ctx context.Context, addr string) error {
	if err := c.enter("flush", ""); err != nil {
		return err
	}
	defer c.leave()
	if c.byAddr[addr] == nil {
		return fmt.Errorf("memcached: flush_all: %s is not one of the servers %v", addr, c.Servers())
	}
	_, err := c.simple(ctx, "flush_all", addr, "flush_all", "OK")
	return err
}

// ServerStats returns the "stats" of every server, in the order of
// Servers, plus "memdict_marked_down" (true or false) saying whether the
// Client currently marks it down. A server that cannot be asked has Err
// set; the error returned is non-nil only if ctx ended or the Client is
// closed.
func (c *Client) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	if err := c.enter("stats", ""); err != nil {
		return nil, err
	}
	defer c.leave()
	out := make([]backend.NodeStats, len(c.nodes))
	_ = c.eachNode(func(n *node) error {
		i := 0
		for c.nodes[i] != n {
			i++
		}
		stats, err := c.stats(ctx, n.addr)
		if stats == nil {
			stats = map[string]string{}
		}
		stats["memdict_marked_down"] = strconv.FormatBool(n.down())
		out[i] = backend.NodeStats{Addr: n.addr, Stats: stats, Err: err}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("memcached: stats: %w", err)
	}
	return out, nil
}

func (c *Client) stats(ctx context.Context, addr string) (map[string]string, error) {
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return nil, c.adminErr(ctx, "stats", addr, err)
	}
	defer a.close()
	if err := a.command("stats", c.cfg.timeout); err != nil {
		return nil, c.adminErr(ctx, "stats", addr, err)
	}
	m := make(map[string]string)
	for {
		line, err := a.readLine(c.cfg.timeout)
		if err != nil {
			return nil, c.adminErr(ctx, "stats", addr, err)
		}
		if line == "END" {
			return m, nil
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return nil, c.adminErr(ctx, "stats", addr, protoErr(fmt.Sprintf("unexpected line in stats reply: %q", line)))
		}
		name, value, _ := strings.Cut(rest, " ")
		m[name] = value
	}
}

// Keys yields the keys starting with prefix held by every server, read
// with "lru_crawler metadump hash" (memcached 1.6.10 and later), or
// "lru_crawler metadump all" on older servers, which may miss items the
// server moves between its LRU lists during the crawl. Keys arrive
// URL-encoded and are decoded; expired items are left out by memcached.
// Each server is read in turn while it keeps serving, so keys written or
// deleted meanwhile may or may not appear. A failure (a server down, the
// crawler disabled or busy, ctx ended) is yielded as a final ("", err)
// after the keys of the servers that answered.
func (c *Client) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := c.enter("keys", ""); err != nil {
			yield("", err)
			return
		}
		defer c.leave()
		var errs []error
		for _, n := range c.nodes {
			if ctx.Err() != nil {
				break
			}
			stop, err := c.metadump(ctx, n.addr, prefix, yield)
			if stop {
				return
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		if err := ctx.Err(); err != nil {
			errs = []error{fmt.Errorf("memcached: keys: %w", err)}
		}
		if err := errors.Join(errs...); err != nil {
			yield("", err)
		}
	}
}

// metadump lists one server's keys; stop reports that yield asked to stop.
func (c *Client) metadump(ctx context.Context, addr, prefix string, yield func(string, error) bool) (stop bool, err error) {
	a, err := c.dialAdmin(ctx, addr)
	if err != nil {
		return false, c.adminErr(ctx, "keys", addr, err)
	}
	defer a.close()
	// The crawler runs one dump at a time per server: another client's
	// (or a dump abandoned a moment ago) makes it answer BUSY. Retry for
	// up to the timeout.
	//
	// "metadump hash" walks the hash table, where an item stays put;
	// "metadump all" walks the LRU lists, and misses the items that the LRU
	// maintainer moves between lists during the walk (as it does with items
	// written a moment ago). memcached before 1.6.10 knows only "all".
	busyUntil := time.Now().Add(c.cfg.timeout)
	cmd := "lru_crawler metadump hash"
	for {
		if err := a.command(cmd, c.cfg.timeout); err != nil {
			return false, c.adminErr(ctx, "keys", addr, err)
		}
		line, err := a.readLine(c.cfg.timeout)
		if err != nil {
			return false, c.adminErr(ctx, "keys", addr, err)
		}
		if cmd != "lru_crawler metadump all" && (strings.HasPrefix(line, "CLIENT_ERROR") || line == "ERROR") {
			cmd = "lru_crawler metadump all"
			continue
		}
		if !strings.HasPrefix(line, "BUSY") || time.Now().After(busyUntil) {
			a.pending = line
			break
		}
		select {
		case <-ctx.Done():
			return false, c.adminErr(ctx, "keys", addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for {
		line, err := a.readLine(c.cfg.timeout)
		if err != nil {
			return false, c.adminErr(ctx, "keys", addr, err)
		}
		switch {
		case line == "END":
			return false, nil
		case strings.HasPrefix(line, "BUSY"), strings.HasPrefix(line, "ERROR"),
			strings.HasPrefix(line, "CLIENT_ERROR"), strings.HasPrefix(line, "SERVER_ERROR"):
			return false, &opError{Op: "keys", Addr: addr, Kind: backend.ErrNotSupported,
				Err: fmt.Errorf("lru_crawler metadump refused: %q (is the LRU crawler enabled?)", line)}
		}
		enc, ok := strings.CutPrefix(line, "key=")
		if !ok {
			return false, c.adminErr(ctx, "keys", addr, protoErr(fmt.Sprintf("unexpected line in metadump: %q", line)))
		}
		if i := strings.IndexByte(enc, ' '); i >= 0 {
			enc = enc[:i]
		}
		key, err := url.PathUnescape(enc)
		if err != nil {
			return false, c.adminErr(ctx, "keys", addr, protoErr(fmt.Sprintf("bad key encoding in metadump: %q", line)))
		}
		if strings.HasPrefix(key, prefix) && !yield(key, nil) {
			return true, nil
		}
	}
}
