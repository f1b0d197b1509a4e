package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/internal/envelope"
	"github.com/memdict/memdict/internal/keyspace"
	"github.com/memdict/memdict/internal/rawvalue"
	"github.com/memdict/memdict/tool"
)

// payload and stored are the raw value forms shared with tool/admin.
type (
	payload = rawvalue.Payload
	stored  = rawvalue.Stored
)

// codecName returns the name of the codec that wrote s for output: "raw",
// "msgpack", ..., or "none" for a value memdict did not frame.
func codecName(s stored) string {
	if s.Codec == 0 {
		return "none"
	}
	return codec.NameOf(s.Codec)
}

// parseJSONValue parses a JSON value as put and load take it.
var parseJSONValue = rawvalue.ParseJSON

// dictSet opens Dicts of one plugin and prefix: one Dict (of any value)
// to list, clear and find backend keys, and writers for the codecs used.
type dictSet struct {
	t      *tool.Tool
	plugin string
	prefix string
	info   tool.PluginInfo
	be     backend.Backend
	d      *memdict.Dict[any]

	mu      sync.Mutex // guards writers
	writers map[byte]*memdict.Dict[payload]
}

// openDicts returns the Dicts of prefix in plugin, opening its backend.
func openDicts(ctx context.Context, t *tool.Tool, plugin, prefix string) (*dictSet, error) {
	info, err := t.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	d, err := tool.Dict[any](t, prefix, plugin)
	if err != nil {
		return nil, err
	}
	be, err := t.Backend(ctx, plugin)
	if err != nil {
		return nil, err
	}
	return &dictSet{t: t, plugin: plugin, prefix: prefix, info: info, be: be, d: d, writers: map[byte]*memdict.Dict[payload]{}}, nil
}

// writer returns a Dict that stores payloads under codec id, with the
// plugin's settings (site id, expiration, limits).
func (ds *dictSet) writer(id byte) (*memdict.Dict[payload], error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if w, ok := ds.writers[id]; ok {
		return w, nil
	}
	w, err := memdict.New[payload](ds.be, ds.prefix,
		memdict.WithSiteID(ds.t.SiteID()),
		memdict.WithCodec(rawvalue.Passthrough(id)),
		memdict.WithDefaultTTL(ds.info.Expiration),
		memdict.WithMaxKeyLen(ds.info.MaxKeyLen),
		memdict.WithMaxValueLen(ds.info.MaxValueLen),
	)
	if err != nil {
		return nil, err
	}
	ds.writers[id] = w
	return w, nil
}

// put stores p, encoded by codec id, under key.
func (ds *dictSet) put(ctx context.Context, key string, id byte, p []byte, opts ...memdict.ItemOption) error {
	w, err := ds.writer(id)
	if err != nil {
		return err
	}
	return w.Store(ctx, key, payload(p), opts...)
}

// backendKeys returns the backend keys of keys in the Dict's current
// namespace generation.
func (ds *dictSet) backendKeys(ctx context.Context, keys []string) ([]string, error) {
	if _, err := ds.d.Generation(ctx); err != nil {
		return nil, err
	}
	bk := make([]string, len(keys))
	for i, k := range keys {
		bk[i] = ds.d.BackendKey(k)
	}
	return bk, nil
}

// dictKeyErrors turns the error of a backend GetMulti of bkeys, the
// backend keys of keys, into a *memdict.MultiError that names the Dict
// keys: those the backend names in its *backend.MultiError, or all of them
// if the lookup failed as a whole.
func dictKeyErrors(err error, keys, bkeys []string) error {
	me := &memdict.MultiError{Op: "getmulti", Total: len(keys)}
	kes, partial := backend.KeyErrors(err)
	if !partial {
		for _, k := range keys {
			me.Failed = append(me.Failed, &memdict.OpError{Op: "get", Key: k, Err: err})
		}
		return me
	}
	byBackend := make(map[string]string, len(keys))
	for i, bk := range bkeys {
		byBackend[bk] = keys[i]
	}
	for _, ke := range kes {
		k, ok := byBackend[ke.Key]
		if !ok {
			k = ke.Key
		}
		me.Failed = append(me.Failed, &memdict.OpError{Op: "get", Key: k, Err: ke.Err})
	}
	slices.SortFunc(me.Failed, func(a, b *memdict.OpError) int { return strings.Compare(a.Key, b.Key) })
	return me
}

// get reads key's stored value; ok is false on a miss. Once the raw
// read has told the codec, the value is read again through a Dict of that
// codec, so that the read is checked and counted as an application's is.
func (ds *dictSet) get(ctx context.Context, key string) (stored, bool, error) {
	m, err := ds.getMulti(ctx, []string{key})
	var me *memdict.MultiError
	if errors.As(err, &me) && len(me.Failed) == 1 {
		return stored{}, false, me.Failed[0] // memdict: get "key": cause
	}
	if err != nil {
		return stored{}, false, err
	}
	s, ok := m[key]
	if !ok {
		// Count the miss in the Dict's metrics, as an application's
		// read would be counted (the admin page shows them).
		_, _, _ = ds.d.Lookup(ctx, key)
		return s, false, nil
	}
	if s.Codec == 0 {
		return s, true, nil
	}
	w, err := ds.writer(s.Codec)
	if err != nil {
		return stored{}, false, err
	}
	p, ok, err := w.Lookup(ctx, key)
	if err != nil || !ok {
		return stored{}, ok, err
	}
	return stored{Codec: s.Codec, Payload: p}, true, nil
}

// getMulti reads the stored values of keys; missing keys are absent from
// the map.
func (ds *dictSet) getMulti(ctx context.Context, keys []string) (map[string]stored, error) {
	bk, err := ds.backendKeys(ctx, keys)
	if err != nil {
		// The keys' read failed, not the generation: name the keys.
		var oe *memdict.OpError
		if errors.As(err, &oe) && oe.Op == "generation" {
			err = oe.Err
		}
		return nil, dictKeyErrors(err, keys, nil)
	}
	items, err := ds.be.GetMulti(ctx, bk)
	if err != nil {
		return nil, dictKeyErrors(err, keys, bk)
	}
	out := make(map[string]stored, len(items))
	for i, k := range keys {
		it, ok := items[bk[i]]
		if !ok {
			continue
		}
		h, p, err := envelope.Parse(it.Value)
		if err != nil {
			out[k] = stored{Payload: it.Value}
			continue
		}
		if h.HasKey && string(h.Key) != k {
			continue // another key under the same hash: a miss
		}
		out[k] = stored{Codec: h.Codec, Payload: p}
	}
	return out, nil
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
// the server, as the driver's errors do: a server that cannot be reached
// wraps backend.ErrUnavailable.
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

// get reads bkey; ok is false on a miss. A value memdict framed is shown
// with its codec, any other value (memccat's, redis-cli's) as codec "none".
func (rs *rawStore) get(ctx context.Context, bkey string) (stored, bool, error) {
	it, err := rs.be.Get(ctx, bkey)
	v := it.Value
	if rs.rc != nil && errors.Is(err, redis.ErrForeignValue) {
		// Not framed by the driver: another program's string.
		v, err = rs.rc.Get(ctx, bkey).Bytes()
		if errors.Is(err, goredis.Nil) {
			err = backend.ErrNotFound
		} else if err != nil {
			err = rs.redisErr(ctx, "get", bkey, err)
		}
	}
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return stored{}, false, nil
	case err != nil:
		return stored{}, false, &memdict.OpError{Op: "get", Key: bkey, Err: err}
	}
	h, p, perr := envelope.Parse(v)
	if perr != nil {
		return stored{Payload: v}, true, nil
	}
	return stored{Codec: h.Codec, Payload: p}, true, nil
}

// put stores value under bkey, as they are, with ttl (0: none).
func (rs *rawStore) put(ctx context.Context, bkey string, value []byte, ttl time.Duration) error {
	var err error
	if rs.rc != nil {
		if err = rs.rc.Set(ctx, bkey, value, ttl).Err(); err != nil {
			err = rs.redisErr(ctx, "set", bkey, err)
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
	var err error
	if rs.rc != nil {
		var n int64
		if n, err = rs.rc.Del(ctx, bkey).Result(); err == nil && n == 0 {
			err = backend.ErrNotFound
		} else if err != nil {
			err = rs.redisErr(ctx, "del", bkey, err)
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
// site, prefix by prefix, until yield returns false. The prefixes are
// those the backend's key space holds ("<site>:<prefix>:<gen>:<key>");
// each is then listed as its Dict lists it, so that only its current
// generation shows and shortened keys show as they were written.
func (ds *dictSet) allKeys(ctx context.Context, yield func(prefix, key string) bool) error {
	site := ds.t.SiteID()
	parts := 3
	head := ""
	if site != "" {
		parts, head = 4, keyspace.Escape(site)+":"
	}
	seen := map[string]bool{}
	var prefixes []string
	err := listRaw(ctx, ds.be, head, func(bk string) bool {
		if strings.HasPrefix(bk, "#") {
			return true // memdict's metadata, or a hashed namespace
		}
		f := strings.Split(bk, ":")
		if len(f) != parts || (site != "" && f[0] != keyspace.Escape(site)) {
			return true // another site, or not memdict's
		}
		if _, err := strconv.ParseUint(f[parts-2], 10, 64); err != nil {
			return true
		}
		p, err := keyspace.Unescape(f[parts-3])
		if err != nil || seen[p] {
			return true
		}
		seen[p] = true
		prefixes = append(prefixes, p)
		return true
	})
	if err != nil {
		return err
	}
	slices.Sort(prefixes)
	for _, p := range prefixes {
		d, err := tool.Dict[any](ds.t, p, ds.plugin)
		if err != nil {
			return err
		}
		for k, err := range d.Keys(ctx) {
			if err != nil {
				return err
			}
			if !yield(p, k) {
				return nil
			}
		}
	}
	return nil
}
