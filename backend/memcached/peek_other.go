//go:build !unix

package memcached

import "net"

// pendingBytes reports false: on this system the text protocol does not
// look for bytes waiting before a request (see peek_unix.go).
func pendingBytes(net.Conn) bool { return false }
