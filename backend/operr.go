package backend

import (
	"context"
	"errors"
	"net"
)

// Which server failed. A caller above a backend (memdict's Dict) words an
// error by the server that failed and, when keys are spread over several
// servers, by whether the server of the key it was asked about is that
// one. Drivers say which server an error comes from with ServerError (or
// any error with a ServerAddr method), and where a key lives with Locator.

// Locator is implemented by backends that spread keys over several servers
// and can tell, without I/O, which one holds a key: the memcached driver's
// ketama ring (memcached.Client.ServerFor).
type Locator interface {
	// ServerFor returns the address of the server that holds key, in the
	// form the backend's errors name it ("host:port").
	ServerFor(key string) string
}

// ServerFor returns the address of the server of be that holds key, or ""
// if be cannot tell: it is not a Locator, nor a wrapper of one (a Handler,
// or a backend with an Unwrap() Backend method, as testing/memdicttest's
// Faulty has).
func ServerFor(be Backend, key string) string {
	return Do(context.Background(), be, Call{Op: OpServerFor, Key: key}).Addr
}

// ServerError marks Err as the failure of one server, at Addr. Its
// message is Err's own, so a driver can wrap the errors it returns without
// changing their wording; errors.Is and errors.As see Err.
type ServerError struct {
	// Addr is the server's address ("host:port").
	Addr string
	// Err is the error, as the driver words it.
	Err error
}

// Error returns Err's message.
func (e *ServerError) Error() string {
	if e.Err == nil {
		return "server " + e.Addr + " failed"
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *ServerError) Unwrap() error { return e.Err }

// ServerAddr returns Addr.
func (e *ServerError) ServerAddr() string { return e.Addr }

// ServerOf returns the address of the server that err says failed: the
// ServerAddr of the first error in err's tree that has a ServerAddr()
// string method (a *ServerError, or a driver's own error type), else the
// remote address of a *net.OpError in it (a refused, reset or timed-out
// connection), else "".
func ServerOf(err error) string {
	var sa interface{ ServerAddr() string }
	if errors.As(err, &sa) {
		if a := sa.ServerAddr(); a != "" {
			return a
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Addr != nil {
		return oe.Addr.String()
	}
	return ""
}
