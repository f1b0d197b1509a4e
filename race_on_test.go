//go:build race

package memdict_test

// raceOn says the tests run under the race detector, where sync.Pool
// drops a quarter of what it is given (and the pools of the codecs with
// it): counts of allocations are then not the program's.
const raceOn = true
