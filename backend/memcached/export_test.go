package memcached

// SetKeyListMem sets how many bytes of listed keys Keys holds in memory
// before it spills them to a temporary file, and returns a function that
// restores the default. Tests that use it must not run in parallel.
func SetKeyListMem(n int) (restore func()) {
	old := keyListMem
	keyListMem = n
	return func() { keyListMem = old }
}

// SetDumpBounds sets the memory Keys assumes for a server that does not
// say its limit_maxbytes, and the slack for the slab pages memcached grants
// past it (see dumpBudget), and returns a function that restores the
// defaults. Tests that use it must not run in parallel.
func SetDumpBounds(defaultMax, slack uint64) (restore func()) {
	oldMax, oldSlack := defaultMaxBytes, slabPagesSlack
	defaultMaxBytes, slabPagesSlack = defaultMax, slack
	return func() { defaultMaxBytes, slabPagesSlack = oldMax, oldSlack }
}

// WithTestHook makes the Client call hook at its test points (see
// Client.testPoint): "read", "write", "watchdog", "dial", "dialed" (a
// dial succeeded, its connection not stored yet), "enqueue" (a
// multi-key call queues a request on a connected slot), "text".
func WithTestHook(hook func(where string)) Option {
	return func(c *config) { c.hook = hook }
}
