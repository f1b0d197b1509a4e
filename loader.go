package memdict

import (
	"context"
	"sync"
)

// flightGroup runs one load per key at a time and hands its result to
// every caller that asked for the key meanwhile (a minimal singleflight).
type flightGroup[V any] struct {
	mu sync.Mutex
	m  map[string]*flight[V]
}

// flight is one load in progress.
type flight[V any] struct {
	done    chan struct{} // closed when v and err are set
	v       V
	err     error
	waiters int // callers waiting for it, guarded by the group's mu
}

// GetOrLoad returns the value stored under key; on a miss it calls load,
// stores its result with the Dict's default TTL (or the TTL option's) and
// returns it.
//
// Within this process, one caller per key runs load at a time: the others
// that miss meanwhile wait for its result instead of calling load too, so a
// popular key that expires causes one load, not a stampede. A waiter whose
// ctx is done stops waiting with ctx's error. load receives the context of
// the caller that runs it; it must not call GetOrLoad for the same key,
// which would wait for itself.
//
// If load fails, its error is returned to that caller and to every waiter,
// as an *OpError of op "load", and nothing is stored. A backend failure on
// the read is treated as a miss, and a failure to store the loaded value
// does not fail the call: GetOrLoad then returns the loaded value and a nil
// error, so that an outage of the cache degrades to calling load. Such
// failures are counted in Stats and logged (WithLogger) and passed to the
// WithErrorHandler function.
func (d *Dict[V]) GetOrLoad(ctx context.Context, key string, load func(ctx context.Context, key string) (V, error), opts ...ItemOption) (V, error) {
	t0 := d.m.start(opGet)
	v, ok, err := d.lookup(ctx, key)
	if t0 != 0 {
		d.m.end(opGet, t0)
	}
	if ok {
		return v, nil
	}
	if err != nil && d.onError != nil {
		d.onError(err)
	}
	return d.load(ctx, key, load, opts)
}

// load is GetOrLoad's miss path.
func (d *Dict[V]) load(ctx context.Context, key string, load func(context.Context, string) (V, error), opts []ItemOption) (V, error) {
	g := &d.flights
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		f.waiters++
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.v, f.err
		case <-ctx.Done():
			var zero V
			return zero, &OpError{Op: "load", Key: key, Err: context.Cause(ctx)}
		}
	}
	f := &flight[V]{done: make(chan struct{})}
	if g.m == nil {
		g.m = make(map[string]*flight[V])
	}
	g.m[key] = f
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished {
			f.err = &OpError{Op: "load", Key: key, Err: ErrLoaderPanicked}
		}
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}()

	// A flight for key may have ended, and stored its value, between our
	// miss and the start of ours: look again before loading.
	if v, ok, _ := d.lookup(ctx, key); ok {
		f.v, finished = v, true
		return v, nil
	}
	t0 := d.m.start(opLoad)
	v, err := load(ctx, key)
	d.m.end(opLoad, t0)
	finished = true
	if err != nil {
		f.err = d.m.fail(ctx, opLoad, key, err)
		return f.v, f.err
	}
	f.v = v
	if err := d.Store(ctx, key, v, opts...); err != nil && d.onError != nil {
		d.onError(err)
	}
	return v, nil
}
