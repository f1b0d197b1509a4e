package memdict

// Test hooks: the state of in-flight work, so that tests wait for it
// instead of sleeping a while and hoping the goroutines got there.

// FlightWaiters returns how many GetOrLoad callers wait for the load of
// key in flight (0 if none is).
func FlightWaiters[V any](d *Dict[V], key string) int {
	d.flights.mu.Lock()
	defer d.flights.mu.Unlock()
	if f, ok := d.flights.m[key]; ok {
		return f.waiters
	}
	return 0
}

// InFlight reports whether a load of key is in flight.
func InFlight[V any](d *Dict[V], key string) bool {
	d.flights.mu.Lock()
	defer d.flights.mu.Unlock()
	_, ok := d.flights.m[key]
	return ok
}

// UpdatesQueued returns how many Update calls of key are queued behind the
// round in flight.
func UpdatesQueued[V any](d *Dict[V], key string) int {
	d.updates.mu.Lock()
	defer d.updates.mu.Unlock()
	if uq, ok := d.updates.m[key]; ok {
		return len(uq.pending)
	}
	return 0
}

// WaitGenerationRenewals waits for d's touches of its generation key
// under way, which run in goroutines of their own.
func WaitGenerationRenewals[V any](d *Dict[V]) { d.renewals.Wait() }

// MarkGenerationDue makes d read its namespace generation again at its
// next call, as the timer of WithGenerationRefresh does.
func MarkGenerationDue[V any](d *Dict[V]) {
	if v := d.view.Load(); v != nil {
		v.stale.Store(true)
	}
}
