package memdict

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/memdict/memdict/backend"
)

// Counters is a dictionary of unsigned 64-bit counters kept in a Backend
// under a key prefix, changed atomically on the server with its native
// increment (memcached's incr/decr, Redis's INCRBY), so that any number of
// processes can count together without losing an update.
//
// Counter values are stored as decimal text, not through a codec or
// memdict's value header, so that the server can do the arithmetic; other
// programs can read them too. As in memcached, a decrement stops at 0 and
// an increment wraps around at 2^64. A missing counter reads as 0 and is
// created by the first Add; it gets the default TTL (WithDefaultTTL) when
// it is created, and increments keep its TTL.
//
// Counters share a Dict's key layout, settings, Clear and Stats (under the
// operation "incr"), but counters under hashed long names cannot be
// listed. In a Python format (WithFormat) counters are the ints of
// Python's memcached clients (client flags python.FlagInt), which ERP5
// and Python programs read as int and increment with incr; Clear is not
// available there. A Counters is safe for concurrent use.
type Counters struct {
	d *Dict[string]
}

// NewCounters returns the counters stored in be under prefix. It takes the
// options of New (the codec is not used) and returns an error if be is nil
// or an option is invalid.
func NewCounters(be backend.Backend, prefix string, opts ...Option) (*Counters, error) {
	d, err := New[string](be, prefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("memdict: NewCounters: %w", err)
	}
	return &Counters{d: d}, nil
}

// Prefix returns the counters' key prefix.
func (c *Counters) Prefix() string { return c.d.prefix }

// Stats returns a snapshot of the counters' operation counts (see
// Dict.Stats); counter reads count as "get", changes as "incr".
func (c *Counters) Stats() Stats { return c.d.Stats() }

// Clear resets every counter under the prefix at once, as Dict.Clear does.
func (c *Counters) Clear(ctx context.Context) error { return c.d.Clear(ctx) }

// Get returns the value of the counter name and true, or 0 and false if it
// does not exist. A value that is not a decimal number gives an *OpError
// wrapping ErrDecode.
func (c *Counters) Get(ctx context.Context, name string) (_ uint64, found bool, err error) {
	d := c.d
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "get", name, 1)
		defer func() { ob.done(hitOr(found), err) }()
	}
	t0 := d.m.start(opGet)
	defer d.m.end(opGet, t0)
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.current(&b)
	if err != nil {
		return 0, false, d.m.fail(ctx, opGet, name, err)
	}
	bkey, _, err := vw.bkey(name)
	if err != nil {
		return 0, false, d.m.fail(ctx, opGet, name, err)
	}
	it, err := d.be.Get(b.next(), bkey)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			d.m.miss(opGet)
			return 0, false, nil
		}
		return 0, false, d.m.fail(ctx, opGet, name, b.check(err))
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(it.Value)), 10, 64)
	if err != nil {
		return 0, false, d.m.fail(ctx, opGet, name, fmt.Errorf("%w: counter value %q is not a decimal number", ErrDecode, truncKey(string(it.Value))))
	}
	return n, true, nil
}

// Add adds delta (negative to subtract) to the counter name, creating it
// at 0 first if it does not exist, and returns the new value. Subtracting
// stops at 0. A value that is not a decimal number gives an *OpError
// wrapping backend.ErrNotNumeric.
func (c *Counters) Add(ctx context.Context, name string, delta int64) (_ uint64, err error) {
	d := c.d
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "incr", name, 1)
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opIncr)
	defer d.m.end(opIncr, t0)
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		return 0, d.m.fail(ctx, opIncr, name, err)
	}
	b.begin() // a missing counter takes more calls
	bkey, _, err := vw.bkey(name)
	if err != nil {
		return 0, d.m.fail(ctx, opIncr, name, err)
	}
	for range 10 {
		n, err := d.be.Increment(b.next(), bkey, delta)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, backend.ErrNotFound) {
			return 0, d.m.fail(ctx, opIncr, name, b.check(err))
		}
		// Create it with the result of the first change; if someone else
		// created it meanwhile, increment theirs.
		init := uint64(max(delta, 0))
		err = d.be.Add(b.next(), backend.Item{Key: bkey, Value: strconv.AppendUint(nil, init, 10), Flags: vw.counterFlags(), TTL: vw.s.TTL})
		if err == nil {
			return init, nil
		}
		if !errors.Is(err, backend.ErrNotStored) {
			return 0, d.m.fail(ctx, opIncr, name, b.check(err))
		}
	}
	return 0, d.m.fail(ctx, opIncr, name, fmt.Errorf("%w: the counter kept appearing and disappearing", ErrCASConflict))
}

// Inc adds 1 to the counter name and returns the new value.
func (c *Counters) Inc(ctx context.Context, name string) (uint64, error) { return c.Add(ctx, name, 1) }

// Dec subtracts 1 from the counter name, stopping at 0, and returns the new
// value.
func (c *Counters) Dec(ctx context.Context, name string) (uint64, error) { return c.Add(ctx, name, -1) }

// Set sets the counter name to n, with the default TTL.
func (c *Counters) Set(ctx context.Context, name string, n uint64) (err error) {
	d := c.d
	if d.obs != nil {
		var ob *observation
		ctx, ob = d.observe(ctx, "put", name, 1)
		defer func() { ob.done(okOr(err), err) }()
	}
	t0 := d.m.start(opPut)
	defer d.m.end(opPut, t0)
	b := bound{parent: ctx}
	defer b.end()
	vw, err := d.currentWrite(&b)
	if err != nil {
		return d.m.fail(ctx, opPut, name, err)
	}
	bkey, _, err := vw.bkey(name)
	if err != nil {
		return d.m.fail(ctx, opPut, name, err)
	}
	if err := d.be.Set(b.next(), backend.Item{Key: bkey, Value: strconv.AppendUint(nil, n, 10), Flags: vw.counterFlags(), TTL: vw.s.TTL}); err != nil {
		return d.m.fail(ctx, opPut, name, b.check(err))
	}
	return nil
}

// Reset sets the counter name to 0.
func (c *Counters) Reset(ctx context.Context, name string) error { return c.Set(ctx, name, 0) }

// Delete removes the counter name; it then reads as 0. Removing an absent
// counter is not an error.
func (c *Counters) Delete(ctx context.Context, name string) error {
	err := c.d.Remove(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
