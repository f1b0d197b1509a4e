package memcached

// SetKeyListMem sets how many bytes of listed keys Keys holds in memory
// before it spills them to a temporary file, and returns a function that
// restores the default. Tests that use it must not run in parallel.
func SetKeyListMem(n int) (restore func()) {
	old := keyListMem
	keyListMem = n
	return func() { keyListMem = old }
}

// WithTestHook makes the Client call hook at its test points (see
// Client.testPoint): "read", "write", "watchdog", "dial", "text".
func WithTestHook(hook func(where string)) Option {
	return func(c *config) { c.hook = hook }
}
