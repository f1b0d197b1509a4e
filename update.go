package memdict

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/memdict/memdict/backend"
)

// Update changes the value stored under key atomically: it reads the value,
// calls fn with it (V's zero value and false if there is none) and writes
// fn's result back with compare-and-swap — or, if there was no value, with
// Add — so that no write made meanwhile by another caller or process is
// lost. If someone else wrote first, Update waits a short, random, growing
// time and tries again with the new value, up to WithUpdateRetries times
// (DefaultUpdateRetries by default); it then gives up with an error
// wrapping ErrCASConflict. fn may therefore be called several times and
// must not have side effects; it must not call methods of the Dict on key.
//
// If fn returns an error, Update stops, writes nothing and returns that
// error as it is. Otherwise Update returns the value it stored. The value
// is written with the Dict's default TTL unless a TTL option says
// otherwise. A stored value that cannot be decoded gives an error wrapping
// ErrDecode and is left alone. Other failures are *OpError values.
func (d *Dict[V]) Update(ctx context.Context, key string, fn func(old V, ok bool) (V, error), opts ...ItemOption) (V, error) {
	t0 := d.m.start(opUpdate)
	defer d.m.end(opUpdate, t0)
	var zero V
	retries := d.updateRetries
	if retries == 0 {
		retries = DefaultUpdateRetries
	}
	backoff := 50 * time.Microsecond
	for attempt := 0; ; attempt++ {
		vw, err := d.current(ctx)
		if err != nil {
			return zero, d.m.fail(ctx, opUpdate, key, err)
		}
		bkey, hashed := vw.key(key)
		it, err := d.be.Get(ctx, bkey)
		exists := err == nil
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			return zero, d.m.fail(ctx, opUpdate, key, err)
		}
		var old V
		var ok bool
		if exists {
			old, ok, err = d.decode(vw, key, hashed, it.Value)
			if err != nil {
				return zero, d.m.fail(ctx, opUpdate, key, err)
			}
		}
		nv, err := fn(old, ok)
		if err != nil {
			return zero, err
		}
		item, err := d.itemIn(vw, key, nv, opts)
		if err != nil {
			return zero, d.m.fail(ctx, opUpdate, key, err)
		}
		if exists {
			item.CAS = it.CAS
			err = d.be.CompareAndSwap(ctx, item)
		} else {
			err = d.be.Add(ctx, item)
		}
		switch {
		case err == nil:
			return nv, nil
		case errors.Is(err, backend.ErrCASConflict), errors.Is(err, backend.ErrNotStored),
			exists && errors.Is(err, backend.ErrNotFound):
			// Lost a race: the value was written, added or deleted.
		default:
			return zero, d.m.fail(ctx, opUpdate, key, err)
		}
		if attempt >= retries {
			d.m.miss(opUpdate)
			return zero, &OpError{Op: "update", Key: key,
				Err: fmt.Errorf("%w: gave up after %d retries", ErrCASConflict, retries)}
		}
		d.m.retries.Add(1)
		// Sleep a random time up to backoff, which doubles up to 5ms, so
		// that contenders spread out.
		t := time.NewTimer(rand.N(backoff) + time.Microsecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, d.m.fail(ctx, opUpdate, key, context.Cause(ctx))
		}
		backoff = min(2*backoff, 5*time.Millisecond)
	}
}
