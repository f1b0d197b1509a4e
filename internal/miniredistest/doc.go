// Package miniredistest holds the tests of memdict against miniredis
// (github.com/alicebob/miniredis/v2), the in-process Redis fake that
// programs test with: the backend conformance suite with miniredis's
// clock moved instead of slept (so that millisecond TTLs are checked),
// tracking on a server that cannot track, and the Redis driver's examples
// run with their output checked.
//
// It is a module of its own, used only for development through the
// repository's go.work, so that miniredis is not in the module graph of
// programs that import memdict. It has no API.
package miniredistest
