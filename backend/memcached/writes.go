package memcached

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memdict/memdict/backend"
)

const (
	// relativeTTLMax is the largest expiration memcached reads as relative
	// seconds; larger numbers are absolute Unix times.
	relativeTTLMax = 60 * 60 * 24 * 30
	// itemHeader is sizeof(item) in a 64-bit memcached (items.c
	// item_make_header); casSize is the CAS field it adds unless -C.
	itemHeader = 48
	casSize    = 8
	// flagsSize is the client flags' field, which items.c adds when they
	// are not 0.
	flagsSize = 4
)

// expiration converts a TTL to memcached's exptime: whole seconds, rounded
// up, and one more; 30 days or more as an absolute Unix time.
//
// The one more second is for memcached's clock, which ticks once a second
// (current_time): an item written with exptime n expires at the n-th tick
// after the write, and the first tick may come at once, so exptime n keeps
// an item between n-1 and n seconds (exptime 1: 0.35 s measured). With
// n+1 an item lives at least its TTL, as backend.Item.TTL promises, and at
// most a second more; a Dict's values carry their exact expiry in their
// envelope and read as absent from then on anyway.
func expiration(op, key string, ttl time.Duration) (int32, error) {
	if ttl < 0 {
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL, Err: fmt.Errorf("TTL %v", ttl)}
	}
	if ttl == 0 {
		return 0, nil
	}
	// Rounded up without adding to ttl, which may be the largest Duration.
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	return exptime(op, key, secs+1, ttl)
}

// exptime is memcached's exptime for secs seconds from now (secs > 0):
// secs itself if memcached reads it as relative, else a Unix time. ttl is
// the TTL the caller asked for, which an error names.
func exptime(op, key string, secs int64, ttl time.Duration) (int32, error) {
	if secs < relativeTTLMax {
		return int32(secs), nil
	}
	abs := time.Now().Unix() + secs
	if abs > 1<<31-1 {
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL,
			Err: fmt.Errorf("TTL %v ends after 2038, beyond memcached's 32-bit expiration", ttl)}
	}
	return int32(abs), nil
}

// itemSize is the size memcached gives an item (items.c: item_make_header,
// plus the CAS field): header, key and its NUL, value and its CRLF, and
// the 4 bytes of client flags that are not 0.
func itemSize(keyLen, valueLen int, flags uint32, cas bool) int64 {
	s := int64(itemHeader + keyLen + 1 + valueLen + 2)
	if flags != 0 {
		s += flagsSize
	}
	if cas {
		s += casSize
	}
	return s
}

// checkWrite checks what every write checks before anything is sent: the
// value's size against max_value_length and, as memcached counts it, against
// the server's item_size_max; and the TTL. It returns the expiration to
// send.
func (c *Client) checkWrite(n *node, op string, item backend.Item) (int32, error) {
	if int64(len(item.Value)) > c.cfg.maxValueSize {
		return 0, &opError{Op: op, Key: item.Key, Kind: backend.ErrValueTooLarge,
			Err: fmt.Errorf("value of %d bytes, the limit is %d (max_value_length)", len(item.Value), c.cfg.maxValueSize)}
	}
	limit := n.itemSizeMax.Load()
	if limit == 0 {
		limit = c.cfg.itemSizeMax
	}
	if size := itemSize(len(item.Key), len(item.Value), item.Flags, !n.noCAS.Load()); size > limit {
		return 0, &opError{Op: op, Key: item.Key, Addr: n.addr, Kind: backend.ErrValueTooLarge,
			Err: fmt.Errorf("value of %d bytes makes an item of %d bytes (with its %d-byte key and memcached's item header), over the server's item_size_max of %d",
				len(item.Value), size, len(item.Key), limit)}
	}
	return expiration(op, item.Key, c.standInTTL(n, item.Key, item.TTL))
}

// store runs one of the writes (set, add, cas); mode is 0, 'E' or 'C'.
func (c *Client) store(ctx context.Context, op string, mode byte, item backend.Item) error {
	n, dl, tk, err := c.prepare(ctx, op, item.Key)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	if t := n.text.Load(); t == nil && n.itemSizeMax.Load() == 0 {
		// Learn the server's item_size_max before checking the size.
		if _, err := n.pool.conn(ctx, dl.at, dl.byCtx); err != nil && err != errTextProtocol {
			return c.result(n, op, item.Key, err)
		}
	}
	exp, err := c.checkWrite(n, op, item)
	if err != nil {
		return err
	}
	if t := n.text.Load(); t != nil {
		return c.textStore(ctx, n, t, dl, op, mode, item, exp)
	}
	r := newRequest(kindStore)
	r.mode, r.key, r.value, r.flags, r.exp, r.cas = mode, item.Key, item.Value, item.Flags, exp, item.CAS
	if err := c.exec(ctx, n, r, dl); err != nil {
		if err == errTextProtocol {
			return c.textStore(ctx, n, n.text.Load(), dl, op, mode, item, exp)
		}
		return c.result(n, op, item.Key, err)
	}
	status, rerr := r.status, r.err
	r.release()
	var kind error
	switch status {
	case replyOK:
		n.success()
		return nil
	case replyNotStored:
		kind = backend.ErrNotStored
	case replyExists:
		kind = backend.ErrCASConflict
	case replyMiss:
		kind = backend.ErrNotFound
	case replyTooLarge:
		kind = backend.ErrValueTooLarge
	default:
		return c.result(n, op, item.Key, rerr)
	}
	n.success()
	return &opError{Op: op, Key: item.Key, Addr: n.addr, Kind: kind}
}

// Set stores item unconditionally. A value that is over max_value_length, or
// that would make an item larger than the server's item_size_max, fails
// with backend.ErrValueTooLarge before anything is sent, leaving the
// stored value in place.
func (c *Client) Set(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "set", 0, item)
}

// Add stores item only if its key is absent; otherwise it returns an error
// wrapping backend.ErrNotStored.
func (c *Client) Add(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "add", 'E', item)
}

// CompareAndSwap stores item if the key still holds the version item.CAS
// was read from: backend.ErrCASConflict if it changed, backend.ErrNotFound
// if it is gone.
func (c *Client) CompareAndSwap(ctx context.Context, item backend.Item) error {
	return c.store(ctx, "cas", 'C', item)
}

// keyed runs a keyed command without a value (delete, touch, incr). If
// the server answers that the value is not a number, notNumeric (when not
// nil) has the last word (see incrementByCAS).
func (c *Client) keyed(ctx context.Context, op, key string, r *request,
	text func(*memcache.Client) (uint64, error), notNumeric func(n *node, dl due) (uint64, error)) (uint64, error) {
	n, dl, tk, err := c.prepare(ctx, op, key)
	if err != nil {
		r.release()
		return 0, err
	}
	defer c.leave(tk)
	return c.keyedOn(ctx, n, dl, op, key, r, text, notNumeric)
}

// keyedOn is keyed on n, the server prepare returned for key, by dl.
func (c *Client) keyedOn(ctx context.Context, n *node, dl due, op, key string, r *request,
	text func(*memcache.Client) (uint64, error), notNumeric func(n *node, dl due) (uint64, error)) (uint64, error) {
	if t := n.text.Load(); t != nil {
		r.release()
		return c.textRun(ctx, n, t, dl, op, key, text)
	}
	r.key = key
	if err := c.exec(ctx, n, r, dl); err != nil {
		if err == errTextProtocol {
			return c.textRun(ctx, n, n.text.Load(), dl, op, key, text)
		}
		return 0, c.result(n, op, key, err)
	}
	status, num, rerr := r.status, r.num, r.err
	r.release()
	var kind error
	switch status {
	case replyOK:
		n.success()
		return num, nil
	case replyMiss:
		kind = backend.ErrNotFound
	case replyNotNumeric:
		if notNumeric != nil {
			return notNumeric(n, dl)
		}
		kind = backend.ErrNotNumeric
	default:
		return 0, c.result(n, op, key, rerr)
	}
	n.success()
	return 0, &opError{Op: op, Key: key, Addr: n.addr, Kind: kind}
}

// Delete removes key; backend.ErrNotFound if it was absent.
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.keyed(ctx, "delete", key, newRequest(kindDelete), func(mc *memcache.Client) (uint64, error) {
		return 0, mc.Delete(key)
	}, nil)
	return err
}

// Touch gives key a new TTL; backend.ErrNotFound if it is absent.
func (c *Client) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if _, err := expiration("touch", key, ttl); err != nil {
		return err
	}
	n, dl, tk, err := c.prepare(ctx, "touch", key)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	// The TTL on the server the touch goes to: n may stand in for key's
	// ejected server.
	exp, err := expiration("touch", key, c.standInTTL(n, key, ttl))
	if err != nil {
		return err
	}
	r := newRequest(kindTouch)
	r.exp = exp
	_, err = c.keyedOn(ctx, n, dl, "touch", key, r, func(mc *memcache.Client) (uint64, error) {
		return 0, mc.Touch(key, exp)
	}, nil)
	return err
}

// Increment adds delta (decrements for a negative delta, stopping at 0) to
// the decimal number stored under key and returns the new value; an
// increment past 2^64-1 wraps around, as memcached does. backend.ErrNotFound
// if key is absent, backend.ErrNotNumeric if its value is not a number.
// A number of 2^63 or more that the server refuses (memcached before
// 1.6.22, see incrementByCAS) is counted with a compare-and-swap instead.
func (c *Client) Increment(ctx context.Context, key string, delta int64) (uint64, error) {
	r := newRequest(kindArith)
	var d uint64
	if delta >= 0 {
		r.mode, d = 'I', uint64(delta)
	} else {
		r.mode, d = 'D', uint64(-(delta+1))+1
	}
	r.delta = d
	return c.keyed(ctx, "incr", key, r, func(mc *memcache.Client) (uint64, error) {
		if delta >= 0 {
			return mc.Increment(key, d)
		}
		return mc.Decrement(key, d)
	}, func(n *node, dl due) (uint64, error) {
		return c.incrementByCAS(ctx, n, dl, key, delta < 0, d)
	})
}

// casRounds bounds the compare-and-swap rounds of incrementByCAS.
const casRounds = 16

// incrementByCAS does the arithmetic of an ma that the server refused as
// non-numeric, if its value is a number after all. memcached before
// 1.6.22 (fixed by its commit ea92c6c01) looks for a minus sign in a
// number of 2^63 or more with strchr, past the end of the item's data
// (which is not NUL-terminated) into whatever the slab chunk held before:
// if it meets a '-' before a NUL byte, it says CLIENT_ERROR non-numeric.
// Whether it does depends on earlier items, so the same counter may fail
// or not (TestIncrementWideNumber). incrementByCAS reads the value with
// its CAS, client flags and remaining TTL; a value memcached would take
// as a number of 2^63 or more (the only ones the bug refuses) gets the
// result written with that CAS, the same flags and TTL (within the
// second memcached counts in), in up to casRounds rounds; any other value
// is not numeric, as the server said.
func (c *Client) incrementByCAS(ctx context.Context, n *node, dl due, key string, decr bool, d uint64) (uint64, error) {
	notNumeric := &opError{Op: "incr", Key: key, Addr: n.addr, Kind: backend.ErrNotNumeric}
	if n.noCAS.Load() {
		return 0, notNumeric // no compare-and-swap on a server run with -C
	}
	for range casRounds {
		r := newRequest(kindGet)
		r.key, r.mode = key, 't'
		if err := c.exec(ctx, n, r, dl); err != nil {
			if err == errTextProtocol {
				return 0, notNumeric
			}
			return 0, c.result(n, "incr", key, err)
		}
		status, value, cas, flags, ttl, rerr := r.status, r.rvalue, r.rcas, r.rcflag, r.rttl, r.err
		r.release()
		switch status {
		case replyOK:
		case replyMiss:
			n.success()
			return 0, &opError{Op: "incr", Key: key, Addr: n.addr, Kind: backend.ErrNotFound}
		default:
			return 0, c.result(n, "incr", key, rerr)
		}
		cur, ok := wideNumber(value)
		if !ok {
			n.success()
			return 0, notNumeric
		}
		next := cur + d // wraps, as memcached's incr
		if decr {
			next = 0
			if cur > d {
				next = cur - d
			}
		}
		exp := int32(0)
		if ttl >= 0 {
			var err error
			// The remaining seconds as they are: exptime ttl is the tick
			// the item expired at.
			if exp, err = exptime("incr", key, max(ttl, 1), time.Duration(ttl)*time.Second); err != nil {
				return 0, err
			}
		}
		s := newRequest(kindStore)
		s.mode, s.key, s.value, s.flags, s.exp, s.cas = 'C', key, strconv.AppendUint(nil, next, 10), flags, exp, cas
		if err := c.exec(ctx, n, s, dl); err != nil {
			if err == errTextProtocol {
				return 0, notNumeric
			}
			return 0, c.result(n, "incr", key, err)
		}
		status, rerr = s.status, s.err
		s.release()
		switch status {
		case replyOK:
			n.success()
			return next, nil
		case replyExists:
			continue // changed meanwhile: read it again
		case replyMiss:
			n.success()
			return 0, &opError{Op: "incr", Key: key, Addr: n.addr, Kind: backend.ErrNotFound}
		default:
			return 0, c.result(n, "incr", key, rerr)
		}
	}
	n.success()
	return 0, &opError{Op: "incr", Key: key, Addr: n.addr, Kind: backend.ErrCASConflict,
		Err: fmt.Errorf("the value changed in each of %d compare-and-swap rounds", casRounds)}
}

// wideNumber reports whether memcached's incr would read v as a number
// (safe_strtoull: leading white space, an optional '+', decimal digits,
// then white space or the end) of 2^63 or more, and returns it.
func wideNumber(v []byte) (uint64, bool) {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	if i < len(v) && v[i] == '+' {
		i++
	}
	j := i
	for j < len(v) && v[j] >= '0' && v[j] <= '9' {
		j++
	}
	if j == i || j < len(v) && !isSpace(v[j]) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v[i:j]), 10, 64)
	if err != nil || n < 1<<63 {
		return 0, false
	}
	return n, true
}

// isSpace is C's isspace in the C locale.
func isSpace(b byte) bool { return b == ' ' || b >= '\t' && b <= '\r' }
