//go:build race

package redis

// raceOn says the tests run under the race detector, where sync.Pool
// drops a quarter of what it is given (the pooled calls with it): counts
// of allocations are then not the program's.
const raceOn = true
