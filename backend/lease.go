package backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Fleet-wide fills. memdict's GetOrLoad lets one caller in a whole fleet of
// processes load a missing or stale value while the others wait for it or
// keep serving the stale one. A backend takes part through one of two
// optional abilities, or through the helpers TryLock and Unlock, which work
// on every Backend.
//
//   - Leaser: the server itself hands out fill leases on the item
//     (memcached's meta protocol: mg with N, R and the W/Z/X flags, md with
//     I). One round trip both reads the item and says who fills it.
//   - Locker: a lease is a separate lock key taken atomically with a token,
//     so that only its holder releases it (Redis: SET NX PX, and a
//     compare-and-delete script).
//   - Neither: TryLock takes the lock key with Add and a random token, and
//     Unlock deletes it after checking the token; the check and the delete
//     are two calls, so a lock that expired in between may be deleted while
//     another caller holds it, which costs at most one extra load.

// LeaseOptions say what GetLease may hand out.
type LeaseOptions struct {
	// TTL is how long a lease on a missing key lasts: the server keeps a
	// placeholder item that long, and if its winner neither fills nor
	// releases it (it crashed or timed out) another caller wins once it
	// expires. It must be positive; memcached rounds it up to a second.
	TTL time.Duration
	// RefreshWithin, if positive, hands one caller the lease to refresh an
	// item that exists and is not stale when its remaining TTL is below
	// RefreshWithin (memcached's R flag): early refresh before expiry.
	RefreshWithin time.Duration
}

// Lease is the outcome of GetLease.
type Lease struct {
	// Item is the item read: Key always, and Value when Found. Item.CAS is
	// the token that fills the key: the winner stores its value with
	// CompareAndSwap and that CAS, which fails with ErrCASConflict if the
	// key was written (or marked stale) after the lease was handed out.
	Item Item
	// Found says a value exists (possibly Stale). When false the key is
	// missing or holds only another caller's placeholder.
	Found bool
	// Stale says the value was marked stale by MarkStale.
	Stale bool
	// Won says this caller holds the lease and should load and fill the
	// key: it was missing, stale, or within RefreshWithin of its expiry,
	// and no other caller was handed the lease.
	Won bool
	// Busy says another caller holds the lease: a fill is in progress.
	Busy bool
}

// Leaser is implemented by backends whose server hands out fill leases on
// items (memcached's meta protocol). A backend that implements Leaser but
// finds at run time that its server cannot (a memcached without meta
// commands) returns errors wrapping ErrNotSupported from its methods, and
// callers then fall back to TryLock.
//
// Plain reads (Get, GetMulti) of a key whose only content is a lease
// placeholder report it missing.
type Leaser interface {
	// GetLease reads key as Get does and, when the key is missing, marked
	// stale, or within o.RefreshWithin of its expiry, hands the fill lease
	// to exactly one caller (Won) and tells the others a fill is in
	// progress (Busy). A missing key gets a placeholder that lasts o.TTL.
	GetLease(ctx context.Context, key string, o LeaseOptions) (Lease, error)

	// ReleaseLease gives up a lease won on a missing key (l.Found false)
	// without filling it, so that the next caller wins at once instead of
	// after the lease's TTL. It removes the placeholder only if it is
	// still the one handed out with l; otherwise it does nothing and
	// returns nil. For a lease on an existing value it does nothing.
	ReleaseLease(ctx context.Context, l Lease) error

	// MarkStale marks the value under key stale instead of deleting it,
	// and makes it expire after ttl (0: keep its expiry): the next
	// GetLease wins the lease and reports Stale, later ones report Stale
	// and Busy until the key is written. It returns ErrNotFound if the key
	// is absent.
	MarkStale(ctx context.Context, key string, ttl time.Duration) error
}

// Locker is implemented by backends that take a lock key atomically with a
// token and delete it only for the token's holder (Redis: SET NX PX and a
// compare-and-delete script). TryLock and Unlock use it when a backend has
// it and fall back to Add, Get and Delete otherwise.
type Locker interface {
	// TryLock stores token under key for ttl if key is absent, and reports
	// whether it did. A held lock is not an error: it returns false, nil.
	TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error)

	// Unlock deletes key if it still holds token, and reports whether it
	// did. A lock that expired or was taken by another token is left
	// alone: it returns false, nil.
	Unlock(ctx context.Context, key, token string) (bool, error)
}

// GetLease hands out a fill lease on key through be's Leaser, as
// Leaser.GetLease does, or returns an error wrapping ErrNotSupported if be
// has none (or its server cannot lease): the caller then coordinates
// fills with TryLock.
func GetLease(ctx context.Context, be Backend, key string, o LeaseOptions) (Lease, error) {
	r := Do(ctx, be, Call{Op: OpGetLease, Key: key, LeaseOptions: o})
	return r.Lease, r.Err
}

// ReleaseLease gives up the lease l through be's Leaser, as
// Leaser.ReleaseLease does, or returns an error wrapping ErrNotSupported.
func ReleaseLease(ctx context.Context, be Backend, l Lease) error {
	return Do(ctx, be, Call{Op: OpReleaseLease, Key: l.Item.Key, Lease: l}).Err
}

// MarkStale marks key stale through be's Leaser, as Leaser.MarkStale
// does, or returns an error wrapping ErrNotSupported.
func MarkStale(ctx context.Context, be Backend, key string, ttl time.Duration) error {
	return Do(ctx, be, Call{Op: OpMarkStale, Key: key, TTL: ttl}).Err
}

// NewLockToken returns a random token for TryLock: 32 hexadecimal digits.
func NewLockToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// TryLock takes the lock called key with token for ttl on be, through its
// Locker when it has one and with Add otherwise, and reports whether it
// got it. ttl must be positive.
func TryLock(ctx context.Context, be Backend, key, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("%w: lock TTL %v must be positive", ErrInvalidTTL, ttl)
	}
	if token == "" {
		return false, errors.New("backend: TryLock: empty token")
	}
	if r := Do(ctx, be, Call{Op: OpTryLock, Key: key, Token: token, TTL: ttl}); !NotSupported(r.Err) {
		return r.OK, r.Err
	}
	err := be.Add(ctx, Item{Key: key, Value: []byte(token), TTL: ttl})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotStored):
		return false, nil
	}
	return false, err
}

// Unlock releases the lock called key if it still holds token, through
// be's Locker when it has one, and otherwise by reading the lock and
// deleting it when the token matches (two calls: see the package's notes
// on fleet-wide fills). It reports whether it released the lock; a lock
// that expired or belongs to another token is not an error.
func Unlock(ctx context.Context, be Backend, key, token string) (bool, error) {
	if r := Do(ctx, be, Call{Op: OpUnlock, Key: key, Token: token}); !NotSupported(r.Err) {
		return r.OK, r.Err
	}
	it, err := be.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(it.Value, []byte(token)) {
		return false, nil
	}
	err = be.Delete(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
