//go:build unix

package memcached

import (
	"net"
	"syscall"
)

// pendingBytes reports whether the server has sent bytes on nc that
// nobody read yet, without reading them (recv with MSG_PEEK|MSG_DONTWAIT).
// Only plain TCP connections are looked at: on a TLS connection such
// bytes may be a record of the TLS layer itself.
func pendingBytes(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	pending := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
		return true
	})
	return pending
}
