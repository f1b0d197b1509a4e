package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

// stored is a value as memdict stores it: its codec ID and payload.
type stored = memdict.Raw

// codecName returns the name of the codec that wrote s for output: "raw",
// "msgpack", ..., "python" for a value of Python's memcached clients
// (client flags), or "none" for another value memdict did not frame.
func codecName(s stored) string {
	switch {
	case s.Codec == 0 && s.Flags != 0:
		return "python"
	case s.Codec == 0:
		return "none"
	}
	return codec.NameOf(s.Codec)
}

// pythonFormat reports whether the plugin's Dicts are Python's (format
// erp5 or python), whose values are codec/python's.
func pythonFormat(info tool.PluginInfo) bool {
	return info.Format == memdict.FormatERP5 || info.Format == memdict.FormatPython
}

// parseJSONValue parses a JSON value as put and load take it.
var parseJSONValue = tool.ParseJSON

// dictSet is the Dict of one plugin and prefix that the commands read,
// write, list and clear: a Dict of memdict.Raw values, which reads and
// writes values of every codec as they are stored.
type dictSet struct {
	t      *tool.Tool
	plugin string
	prefix string
	info   tool.PluginInfo
	be     backend.Backend
	d      *memdict.Dict[memdict.Raw]
}

// openDicts returns the Dict of prefix in plugin, opening its backend.
func openDicts(ctx context.Context, t *tool.Tool, plugin, prefix string) (*dictSet, error) {
	info, err := t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	d, err := tool.Dict[memdict.Raw](t, prefix, plugin)
	if err != nil {
		return nil, err
	}
	be, err := t.Backend(ctx, plugin)
	if err != nil {
		return nil, err
	}
	return &dictSet{t: t, plugin: plugin, prefix: prefix, info: info, be: be, d: d}, nil
}

// put stores p, encoded by codec id (0 in a Python format), with client
// flags (Python formats only), under key.
func (ds *dictSet) put(ctx context.Context, key string, id byte, p []byte, flags uint32, opts ...memdict.ItemOption) error {
	return ds.d.Store(ctx, key, stored{Codec: id, Payload: p, Flags: flags}, opts...)
}

// get reads key's stored value; ok is false on a miss.
func (ds *dictSet) get(ctx context.Context, key string) (stored, bool, error) {
	return ds.d.Lookup(ctx, key)
}

// getMulti reads the stored values of keys; missing keys are absent from
// the map.
func (ds *dictSet) getMulti(ctx context.Context, keys []string) (map[string]stored, error) {
	return ds.d.GetMulti(ctx, keys)
}

// remove deletes key; the error wraps ErrNotFound if it was absent.
func (ds *dictSet) remove(ctx context.Context, key string) error {
	return ds.d.Remove(ctx, key)
}

// rawStore reads and writes backend keys as they are (--raw-key), on a
// backend opened from the plugin's URL beside the Tool's. On Redis, whose
// driver frames every value it writes and refuses values it did not frame,
// it reads such values and writes every value through the server's own
// GET, SET and DEL: what redis-cli wrote reads as it is, and what put
// writes, redis-cli reads as it is.
type rawStore struct {
	be   backend.Backend
	rc   goredis.UniversalClient // nil but on Redis
	addr string                  // the URL's server list, for rc's errors
}

// openRaw opens the rawStore of the backend rawURL names.
func openRaw(ctx context.Context, rawURL string) (*rawStore, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "memcached://" + rawURL // a server list, as the Tool takes it
	}
	be, err := backend.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	rs := &rawStore{be: be}
	if c, ok := be.(interface {
		Client() goredis.UniversalClient
	}); ok {
		rs.rc = c.Client()
		if u, err := url.Parse(rawURL); err == nil {
			rs.addr = u.Host // no user information: u.Host leaves it out
		}
	}
	return rs, nil
}

// redisErr turns the error of the server command op (GET, SET, DEL) on
// key, sent with rs.rc, into one that names the operation, the key and
// the server, as the driver's errors do: a server that cannot be reached,
// or does not answer within the backend's timeout, wraps
// backend.ErrUnavailable. ctx is the caller's, without that timeout: its
// own end is the caller's error, not the server's.
func (rs *rawStore) redisErr(ctx context.Context, op, key string, err error) error {
	where := fmt.Sprintf("redis: %s %q on %s", op, key, rs.addr)
	var re goredis.Error
	var ne net.Error
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("%s: %w", where, err)
	case errors.As(err, &re) && strings.Contains(re.Error(), "WRONGTYPE"):
		return fmt.Errorf("%s: the key holds a Redis value of another type, not a string: %w", where, err)
	case errors.As(err, &re):
		return fmt.Errorf("%s: %w", where, err)
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, goredis.ErrPoolTimeout):
		return fmt.Errorf("%s: %w: %w", where, backend.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Close closes the backend.
func (rs *rawStore) Close() error { return rs.be.Close() }

// bound returns ctx bounded by the backend's timeout (backend.Timeout), for
// one rawStore call: the commands it sends through rs.rc, go-redis's own
// client, are not bounded by the driver, and a get may send two (the
// driver's GET, then the server's own for a value it did not frame), which
// share the one deadline, as a Dict call's backend calls do.
func (rs *rawStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d := backend.Timeout(rs.be); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

// get reads bkey; ok is false on a miss. A value memdict framed is shown
// with its codec, a value with client flags (python-memcached's,
// pymemcache's) as Python's by its flags (codec "python"), any other
// value (memccat's, redis-cli's) as codec "none".
func (rs *rawStore) get(ctx context.Context, bkey string) (stored, bool, error) {
	parent := ctx
	ctx, cancel := rs.bound(ctx)
	defer cancel()
	it, err := rs.be.Get(ctx, bkey)
	v := it.Value
	if rs.rc != nil && errors.Is(err, redis.ErrForeignValue) {
		// Not framed by the driver: another program's string.
		v, err = rs.rc.Get(ctx, bkey).Bytes()
		if errors.Is(err, goredis.Nil) {
			err = backend.ErrNotFound
		} else if err != nil {
			err = rs.redisErr(parent, "get", bkey, err)
		}
	}
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return stored{}, false, nil
	case err != nil:
		return stored{}, false, &memdict.OpError{Op: "get", Key: bkey, Err: err}
	}
	if it.Flags != 0 {
		// memdict frames no value with flags: a Python client's.
		return stored{Payload: v, Flags: it.Flags}, true, nil
	}
	return memdict.ParseRaw(v), true, nil
}

// put stores value under bkey, as they are, with ttl (0: none).
func (rs *rawStore) put(ctx context.Context, bkey string, value []byte, ttl time.Duration) error {
	parent := ctx
	ctx, cancel := rs.bound(ctx)
	defer cancel()
	var err error
	if rs.rc != nil {
		if err = rs.rc.Set(ctx, bkey, value, ttl).Err(); err != nil {
			err = rs.redisErr(parent, "set", bkey, err)
		}
	} else {
		err = rs.be.Set(ctx, backend.Item{Key: bkey, Value: value, TTL: ttl})
	}
	if err != nil {
		return &memdict.OpError{Op: "put", Key: bkey, Err: err}
	}
	return nil
}

// del removes bkey; the error wraps ErrNotFound if it was absent.
func (rs *rawStore) del(ctx context.Context, bkey string) error {
	parent := ctx
	ctx, cancel := rs.bound(ctx)
	defer cancel()
	var err error
	if rs.rc != nil {
		var n int64
		if n, err = rs.rc.Del(ctx, bkey).Result(); err == nil && n == 0 {
			err = backend.ErrNotFound
		} else if err != nil {
			err = rs.redisErr(parent, "del", bkey, err)
		}
	} else {
		err = rs.be.Delete(ctx, bkey)
	}
	if err != nil {
		return &memdict.OpError{Op: "delete", Key: bkey, Err: err}
	}
	return nil
}

// listRaw calls yield with every key of be that starts with prefix, as it
// is, until yield returns false.
func listRaw(ctx context.Context, be backend.Backend, prefix string, yield func(string) bool) error {
	for k, err := range backend.Keys(ctx, be, prefix) {
		if err != nil {
			return err
		}
		if !yield(k) {
			return nil
		}
	}
	return nil
}

// allKeys calls yield with the prefix and key of every live key of the
// site until yield returns false, prefixes interleaved. It lists the
// backend once (a memcached listing is a dump of every key the server
// holds, a Redis one a SCAN of the whole key space), sorts the site's keys
// by prefix (memdict.ParseBackendKey), and hands each prefix's keys, in
// batches, to that prefix's Dict (Dict.KeysOf), so that only its current
// generation shows and shortened keys show as they were written. If the
// listing fails, the keys listed before it are yielded, then its error
// returned.
func (ds *dictSet) allKeys(ctx context.Context, yield func(prefix, key string) bool) error {
	site := ds.t.SiteID()
	dicts := map[string]*memdict.Dict[memdict.Raw]{}
	batches := map[string][]string{}
	pending := 0
	stopped := false
	var ferr error
	// flush hands prefix's batch to its Dict; it returns false when the
	// listing must stop (yield said so, or an error).
	flush := func(prefix string) bool {
		batch := batches[prefix]
		if len(batch) == 0 {
			return true
		}
		delete(batches, prefix)
		pending -= len(batch)
		d := dicts[prefix]
		if d == nil {
			if len(dicts) == allKeysDicts {
				clear(dicts) // made again when needed: a generation read each
			}
			var err error
			if d, err = tool.Dict[memdict.Raw](ds.t, prefix, ds.plugin); err != nil {
				ferr = err
				return false
			}
			dicts[prefix] = d
		}
		for k, err := range d.KeysOf(ctx, batch) {
			if err != nil {
				ferr = err
				return false
			}
			if !yield(prefix, k) {
				stopped = true
				return false
			}
		}
		return true
	}
	err := listRaw(ctx, ds.be, siteHead(ds), func(bk string) bool {
		pk, err := memdict.ParseBackendKey(bk)
		if err != nil || pk.SiteID != site {
			return true // another site, memdict's metadata, or not memdict's
		}
		batches[pk.Prefix] = append(batches[pk.Prefix], bk)
		pending++
		if len(batches[pk.Prefix]) == allKeysBatch {
			return flush(pk.Prefix)
		}
		if pending >= allKeysPending {
			// Many prefixes with a few keys each: hand them all over
			// rather than hold the listing in memory.
			for p := range batches {
				if !flush(p) {
					return false
				}
			}
		}
		return true
	})
	if ferr != nil || stopped {
		return ferr
	}
	// The keys listed before a failure of the listing are handed over
	// too: the caller prints them, then the error.
	for p := range batches {
		if !flush(p) {
			break
		}
	}
	if stopped {
		return nil // the caller had what it wanted
	}
	return cmp.Or(ferr, err)
}

// The bounds of allKeys: keys handed to a Dict at a time, keys held before
// every prefix's batch is handed over, and Dicts kept.
const (
	allKeysBatch   = 100
	allKeysPending = 10_000
	allKeysDicts   = 1024
)

// siteHead returns the start of the backend keys of ds's site, for the
// backend's listing: "" when keys do not start with the site's id.
func siteHead(ds *dictSet) string {
	if ds.t.SiteID() != "" {
		if ns, _, ok := strings.Cut(ds.d.BackendKey(""), ":"); ok && !strings.HasPrefix(ns, "#") {
			return ns + ":"
		}
	}
	return ""
}

// sitePrefixes returns, sorted, the prefixes of the site's keys that the
// backend's listing shows (memdict.ParseBackendKey of every key of the
// site), reading at most limit backend keys (0: all of them), and none if
// the backend's servers say they hold more than limit items (holdsMore: a
// memcached listing is a dump of every key). complete reports whether the
// listing was read to its end.
func (ds *dictSet) sitePrefixes(ctx context.Context, limit int) (prefixes []string, complete bool, err error) {
	site := ds.t.SiteID()
	head := siteHead(ds)
	if limit > 0 && holdsMore(ctx, ds.be, limit) {
		// memcached's listing dumps every key the server holds before
		// its first is read: a bounded look must not ask for it.
		return nil, false, nil
	}
	seen := map[string]bool{}
	complete = true
	n := 0
	err = listRaw(ctx, ds.be, head, func(bk string) bool {
		if n++; limit > 0 && n > limit {
			complete = false
			return false
		}
		pk, err := memdict.ParseBackendKey(bk)
		if err != nil || pk.SiteID != site || seen[pk.Prefix] {
			return true // another site, memdict's metadata, or not memdict's
		}
		seen[pk.Prefix] = true
		prefixes = append(prefixes, pk.Prefix)
		return true
	})
	slices.Sort(prefixes)
	return prefixes, complete, err
}

// holdsMore reports whether be's servers say (their statistics'
// curr_items, as memcached and the memory store report it) that they hold
// more than limit items in all. A backend that does not say holds no more.
func holdsMore(ctx context.Context, be backend.Backend, limit int) bool {
	stats, err := backend.ServerStats(ctx, be)
	if err != nil {
		return false
	}
	total := uint64(0)
	for _, n := range stats {
		if c, err := strconv.ParseUint(n.Stats["curr_items"], 10, 64); err == nil {
			total += c
		}
	}
	return total > uint64(limit)
}

// The bounds of the hints of a miss without --prefix: a get on a big
// server must not list all its keys, nor read under every prefix.
const (
	hintScanKeys    = 10_000          // backend keys read to find the site's prefixes
	hintMaxPrefixes = 32              // prefixes tried
	hintMaxShown    = 5               // hints printed
	hintTimeout     = 2 * time.Second // for the whole search
)

// prefixHint is a prefix under which a key holds a value.
type prefixHint struct{ prefix, key string }

// prefixHints looks for the prefixes under which key holds a value, for a
// get that missed without --prefix: key "shop:greeting" read as key
// "greeting" under prefix "shop" (at every colon), and key under each
// prefix that the first hintScanKeys keys of the site show. It reads at
// most hintMaxPrefixes values, within hintTimeout, and returns at most
// hintMaxShown hints; looked is how many (prefix, key) pairs it read, and
// complete whether the site's listing was read to its end (false too for
// a backend that cannot list keys).
func (ds *dictSet) prefixHints(ctx context.Context, key string) (hints []prefixHint, looked int, complete bool) {
	ctx, cancel := context.WithTimeout(ctx, hintTimeout)
	defer cancel()
	var cands []prefixHint
	seen := map[prefixHint]bool{}
	add := func(c prefixHint) {
		if c.prefix != ds.prefix && !seen[c] {
			seen[c] = true
			cands = append(cands, c)
		}
	}
	for i := range len(key) {
		if key[i] == ':' && i > 0 && i < len(key)-1 {
			add(prefixHint{key[:i], key[i+1:]})
		}
	}
	prefixes, complete, err := ds.sitePrefixes(ctx, hintScanKeys)
	if err != nil {
		complete = false
	}
	for _, p := range prefixes {
		add(prefixHint{p, key})
	}
	for _, c := range cands {
		if looked == hintMaxPrefixes || len(hints) == hintMaxShown || ctx.Err() != nil {
			complete = false
			break
		}
		looked++
		d, err := tool.Dict[memdict.Raw](ds.t, c.prefix, ds.plugin)
		if err != nil {
			continue // a prefix the Tool refuses (too long): no hint
		}
		if _, ok, err := d.Lookup(ctx, c.key); err == nil && ok {
			hints = append(hints, c)
		}
	}
	return hints, looked, complete
}
