package memory

import (
	"context"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/memdict/memdict/backend"
)

// Keys yields the live keys that start with prefix, each once, in no
// particular order. It takes a snapshot of one shard at a time, so keys
// written while it runs may or may not be seen. A done ctx or a closed
// Store ends the sequence with a final ("", err) pair.
func (s *Store) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var keys []string
		for i := range s.shards {
			if err := s.enter(ctx, "keys"); err != nil {
				yield("", err)
				return
			}
			sh := &s.shards[i]
			keys = keys[:0]
			sh.mu.Lock()
			if sh.items == nil {
				sh.mu.Unlock()
				yield("", opErr("keys", backend.ErrClosed))
				return
			}
			now := s.now()
			for k, e := range sh.items {
				if strings.HasPrefix(k, prefix) && (e.expires == never || now < e.expires) {
					keys = append(keys, k)
				}
			}
			sh.mu.Unlock()
			for _, k := range keys {
				if !yield(k, nil) {
					return
				}
			}
		}
	}
}

// Len returns the number of live (unexpired) items in the Store, or 0 once
// it is closed. It scans every item, so it is meant for tests.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		for _, e := range sh.items {
			if e.expires == never || now < e.expires {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Bytes returns the number of bytes the Store accounts for the items it
// holds (see ItemOverhead), including expired items not yet removed.
func (s *Store) Bytes() int64 { return s.used.Load() }

// Flush removes every item. It returns backend.ErrClosed after Close.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.enter(ctx, "flush"); err != nil {
		return err
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.items == nil {
			sh.mu.Unlock()
			return opErr("flush", backend.ErrClosed)
		}
		for _, e := range sh.items {
			s.remove(sh, e)
		}
		sh.mu.Unlock()
	}
	return nil
}

// Ping returns nil while the Store is open, backend.ErrClosed after Close,
// or an error wrapping ctx.Err() if ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	return s.enter(ctx, "ping")
}

// ServerStats returns one NodeStats, with Addr "memory", holding counters
// named as memcached's "stats" command names them: curr_items and bytes
// (including expired items not yet removed), limit_maxbytes (0 when
// unbounded), item_size_max, total_items, cmd_get, cmd_set, cmd_touch,
// get_hits, get_misses, get_expired, touch_hits, touch_misses, delete_hits,
// delete_misses, incr_hits, incr_misses, decr_hits, decr_misses, cas_hits,
// cas_misses, cas_badval, evictions, reclaimed, time and uptime (by the
// Store's clock). It returns backend.ErrClosed after Close.
func (s *Store) ServerStats(ctx context.Context) ([]backend.NodeStats, error) {
	if err := s.enter(ctx, "server stats"); err != nil {
		return nil, err
	}
	var t shardStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st := sh.stats
		sh.mu.Unlock()
		t.getHits += st.getHits
		t.getMisses += st.getMisses
		t.getExpired += st.getExpired
		t.cmdSet += st.cmdSet
		t.cmdTouch += st.cmdTouch
		t.totalItems += st.totalItems
		t.touchHits += st.touchHits
		t.touchMisses += st.touchMisses
		t.deleteHits += st.deleteHits
		t.deleteMisses += st.deleteMisses
		t.incrHits += st.incrHits
		t.incrMisses += st.incrMisses
		t.decrHits += st.decrHits
		t.decrMisses += st.decrMisses
		t.casHits += st.casHits
		t.casMisses += st.casMisses
		t.casBadval += st.casBadval
		t.evictions += st.evictions
		t.reclaimed += st.reclaimed
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	now := s.clock.Now()
	itemMax := int64(s.maxValueLen)
	if itemMax < 0 {
		itemMax = 0
	}
	stats := map[string]string{
		"curr_items":     i(s.count.Load()),
		"bytes":          i(s.used.Load()),
		"limit_maxbytes": i(s.maxBytes),
		"item_size_max":  i(itemMax),
		"total_items":    u(t.totalItems),
		"cmd_get":        u(t.getHits + t.getMisses),
		"cmd_set":        u(t.cmdSet),
		"cmd_touch":      u(t.cmdTouch),
		"get_hits":       u(t.getHits),
		"get_misses":     u(t.getMisses),
		"get_expired":    u(t.getExpired),
		"touch_hits":     u(t.touchHits),
		"touch_misses":   u(t.touchMisses),
		"delete_hits":    u(t.deleteHits),
		"delete_misses":  u(t.deleteMisses),
		"incr_hits":      u(t.incrHits),
		"incr_misses":    u(t.incrMisses),
		"decr_hits":      u(t.decrHits),
		"decr_misses":    u(t.decrMisses),
		"cas_hits":       u(t.casHits),
		"cas_misses":     u(t.casMisses),
		"cas_badval":     u(t.casBadval),
		"evictions":      u(t.evictions),
		"reclaimed":      u(t.reclaimed),
		"time":           i(now.Unix()),
		"uptime":         i(int64(now.Sub(s.epoch) / time.Second)),
	}
	return []backend.NodeStats{{Addr: "memory", Stats: stats}}, nil
}

// Describe implements backend.Describer: the system "memory", without
// servers.
func (s *Store) Describe() backend.Description {
	return backend.Description{System: "memory"}
}
