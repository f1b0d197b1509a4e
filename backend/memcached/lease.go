package memcached

import (
	"bufio"
	"context"
	"errors"
	"time"

	"github.com/memdict/memdict/backend"
)

// Fill leases (backend.Leaser) on memcached's meta protocol
// (doc/protocol.txt, "Meta Get" flags N, R, W, X, Z and "Meta Delete" flag
// I). The commands, one round trip each on the engine's connections:
//
//	GetLease      mg <key> v c N<ttl> [R<within>]
//	ReleaseLease  md <key> C<cas>
//	MarkStale     md <key> I [T<ttl>]
//
// On a miss, "mg ... N<ttl>" makes memcached create an empty placeholder
// item that lives ttl seconds and answer the first caller with W (won);
// every later mg of the item, with or without N, carries Z (a win was
// handed out already) until the item is written. "R<within>" hands W to
// one caller when the item's remaining TTL is below within. "md ... I"
// keeps the item but marks it stale and gives it a new CAS: the next mg
// gets X and W, later ones X and Z. A fill is a CompareAndSwap with the
// CAS the lease came with (ms ... C<cas>), which a write or a MarkStale
// made meanwhile refuses.
//
// Plain reads (Get, GetMulti) take an empty item carrying W or Z for a
// placeholder and report it missing. An empty value that somebody stored
// reads the same way while a lease is out on it (an early refresh, or a
// refresh after MarkStale) — the Dict never stores empty values. The
// other commands see a placeholder as the empty item it is: Add fails
// with ErrNotStored, Touch extends it, Delete removes it.
//
// memcached hands W for a stale item to the first mg of it, whatever its
// flags: a plain Get (or GetMulti, whose closing mg is on its first key, or
// Touch) of an item marked stale takes the refresh lease, and GetLease then
// reports Stale and Busy until the item is written or expires (MarkStale's
// ttl bounds that). The server has no way to read a stale item without
// doing so, nor to hand the lease back unchanged before 1.6.27: "md <key>
// I C<cas>" clears it but gives the item a new CAS, with which every
// compare-and-swap of the value just read would fail (a Dict's Update or
// Touch would read and hand back forever); md's E flag, which keeps the
// CAS, came in 1.6.27, and a server before it refuses the flag. memdict's
// Dict therefore refreshes an item marked stale under the key's lock, not
// with this lease. Get reports the mark (backend.Item.Stale).
//
// Leases need CAS: on a server without meta commands (memcached before
// 1.6, nutcracker), served with the text protocol, and on one running with
// -C (no CAS), the methods fail with an error wrapping
// backend.ErrNotSupported, and callers fall back to backend.TryLock.

var _ backend.Leaser = (*Client)(nil)

// encodeLease writes "mg <key> v c f k N<exp>[ R<within>]" (encode adds
// the opaque and the line end).
func encodeLease(w *bufio.Writer, r *request) {
	_, _ = w.WriteString("mg ")
	_, _ = w.WriteString(r.key)
	_, _ = w.WriteString(" v c f k N")
	writeInt(w, int64(r.exp))
	if r.delta != 0 {
		_, _ = w.WriteString(" R")
		writeUint(w, r.delta)
	}
}

// leaseTTL converts a lease's duration to memcached's exptime as
// expiration converts a TTL, after checking that it is positive.
func leaseTTL(op, key, what string, d time.Duration) (int32, error) {
	if d <= 0 {
		return 0, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL,
			Err: errors.New(what + " " + d.String() + " must be positive")}
	}
	return expiration(op, key, d)
}

// leaseSupported returns an error wrapping backend.ErrNotSupported if n
// cannot hand out leases: it has no meta commands, or no CAS. It connects
// first if no connection to n has told yet.
func (c *Client) leaseSupported(ctx context.Context, n *node, op, key string, dl due) error {
	if n.text.Load() == nil && n.itemSizeMax.Load() == 0 {
		if _, err := n.pool.conn(ctx, dl.at, dl.byCtx); err != nil && err != errTextProtocol {
			return c.result(n, op, key, err)
		}
	}
	switch {
	case n.text.Load() != nil:
		return errNoLeases(n, op, key, errTextOnly)
	case n.noCAS.Load():
		return errNoLeases(n, op, key, errNoCAS)
	}
	return nil
}

var (
	errTextOnly = errors.New("the server has no meta commands (text protocol only)")
	errNoCAS    = errors.New("the server runs without CAS (-C)")
)

func errNoLeases(n *node, op, key string, why error) error {
	return &opError{Op: op, Key: key, Addr: n.addr, Kind: backend.ErrNotSupported, Err: why}
}

// leaseRun runs r, a lease command for key, on n. On nil error r holds the
// reply and the caller must release it; on error r is gone.
func (c *Client) leaseRun(ctx context.Context, n *node, dl due, op, key string, r *request) error {
	if err := c.leaseSupported(ctx, n, op, key, dl); err != nil {
		r.release()
		return err
	}
	r.key = key
	if err := c.exec(ctx, n, r, dl); err != nil {
		if err == errTextProtocol {
			return errNoLeases(n, op, key, errTextOnly)
		}
		return c.result(n, op, key, err)
	}
	return nil
}

// GetLease reads key as Get does, with "mg <key> v c f N<ttl> [R<within>]"
// (o.TTL and o.RefreshWithin in whole seconds, rounded up): one round
// trip. On a miss memcached creates a placeholder that lasts o.TTL and
// hands this caller the lease (Won); a caller that finds another's
// placeholder gets Busy and Found false. A value marked stale (MarkStale)
// comes with Stale, and Won for the first caller, Busy for the others; a
// value whose remaining TTL is below o.RefreshWithin comes with Won for
// one caller (memcached never hands that out for an item without expiry).
// Lease.Item.CAS is the item's CAS: the winner fills the key with
// CompareAndSwap and that CAS. A lease with neither Won nor Busy and Found
// false means that memcached could not create the placeholder (it is out
// of memory): the caller loads without a lease. On a server without meta
// commands or without CAS it fails with an error wrapping
// backend.ErrNotSupported.
func (c *Client) GetLease(ctx context.Context, key string, o backend.LeaseOptions) (backend.Lease, error) {
	const op = "get_lease"
	exp, err := leaseTTL(op, key, "lease TTL", o.TTL)
	if err != nil {
		return backend.Lease{}, err
	}
	var within int32
	if o.RefreshWithin < 0 {
		return backend.Lease{}, &opError{Op: op, Key: key, Kind: backend.ErrInvalidTTL,
			Err: errors.New("RefreshWithin " + o.RefreshWithin.String() + " is negative")}
	}
	if o.RefreshWithin > 0 {
		if within, err = leaseTTL(op, key, "RefreshWithin", o.RefreshWithin); err != nil {
			return backend.Lease{}, err
		}
	}
	n, dl, tk, err := c.prepare(ctx, op, key)
	if err != nil {
		return backend.Lease{}, err
	}
	defer c.leave(tk)
	r := newRequest(kindLease)
	r.exp, r.delta = exp, uint64(within)
	if err := c.leaseRun(ctx, n, dl, op, key, r); err != nil {
		return backend.Lease{}, err
	}
	status, value, cas, flags, client, rerr := r.status, r.rvalue, r.rcas, r.rflags, r.rcflag, r.err
	r.release()
	switch status {
	case replyOK:
		n.success()
		l := backend.Lease{
			Item: backend.Item{Key: key, CAS: cas},
			Won:  flags&flagWin != 0,
			Busy: flags&flagBusy != 0,
		}
		if !placeholder(len(value), flags) {
			l.Found, l.Stale, l.Item.Value, l.Item.Flags = true, flags&flagStale != 0, value, client
		}
		return l, nil
	case replyMiss:
		// With N, only when memcached could not allocate the placeholder.
		n.success()
		return backend.Lease{Item: backend.Item{Key: key}}, nil
	}
	return backend.Lease{}, c.result(n, op, key, rerr)
}

// ReleaseLease gives up a lease won on a missing key with "md <key>
// C<cas>": memcached deletes the placeholder only if its CAS is still the
// lease's, so a value written meanwhile (or a placeholder marked stale) is
// left alone. It does nothing for a lease not won or on an existing value.
func (c *Client) ReleaseLease(ctx context.Context, l backend.Lease) error {
	const op = "release_lease"
	if !l.Won || l.Found || l.Item.CAS == 0 {
		return nil
	}
	key := l.Item.Key
	n, dl, tk, err := c.prepare(ctx, op, key)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	r := newRequest(kindDelete)
	r.mode, r.cas = 'C', l.Item.CAS
	if err := c.leaseRun(ctx, n, dl, op, key, r); err != nil {
		return err
	}
	status, rerr := r.status, r.err
	r.release()
	switch status {
	case replyOK, replyMiss, replyExists:
		// Deleted; gone already; no longer the placeholder handed out.
		n.success()
		return nil
	}
	return c.result(n, op, key, rerr)
}

// MarkStale marks the item under key stale with "md <key> I [T<ttl>]"
// (ttl in whole seconds, rounded up; 0 keeps the item's expiry): memcached
// keeps its value, gives it a new CAS and clears the lease handed out on
// it, so that the next GetLease wins. It returns an error wrapping
// backend.ErrNotFound if the key is absent (a placeholder counts as
// present), and one wrapping backend.ErrNotSupported on a server without
// meta commands or without CAS.
func (c *Client) MarkStale(ctx context.Context, key string, ttl time.Duration) error {
	const op = "mark_stale"
	if _, err := expiration(op, key, ttl); err != nil {
		return err
	}
	n, dl, tk, err := c.prepare(ctx, op, key)
	if err != nil {
		return err
	}
	defer c.leave(tk)
	// The TTL on the server the command goes to: n may stand in for
	// key's ejected server (0 keeps the item's expiry).
	if ttl > 0 {
		ttl = c.standInTTL(n, key, ttl)
	}
	exp, err := expiration(op, key, ttl)
	if err != nil {
		return err
	}
	r := newRequest(kindDelete)
	r.mode, r.exp = 'I', exp
	if err := c.leaseRun(ctx, n, dl, op, key, r); err != nil {
		return err
	}
	status, rerr := r.status, r.err
	r.release()
	switch status {
	case replyOK:
		n.success()
		return nil
	case replyMiss:
		n.success()
		return &opError{Op: op, Key: key, Addr: n.addr, Kind: backend.ErrNotFound}
	}
	return c.result(n, op, key, rerr)
}
