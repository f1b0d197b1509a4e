package backend

import "context"

// Describing a backend.
//
// Metrics and traces want to know what a backend talks to: the kind of
// server (OpenTelemetry's db.system.name), its servers, and the
// connections held to each. A driver says so, without I/O, as a Describer;
// Describe asks for it through any wrapper, as an OpDescribe call, which
// is a property (Op.Property): a wrapper answers it from the backend it
// wraps now, without opening one or injecting a fault, so that a metrics
// scrape never opens a Tool's plugin.

// Describer is implemented by backends that can say, without I/O, what
// they talk to: the memcached and Redis drivers and the memory backend.
type Describer interface {
	// Describe returns the backend's Description now. It must be quick
	// and safe for concurrent use.
	Describe() Description
}

// Description is what a Describer says of itself.
type Description struct {
	// System names the kind of server, as OpenTelemetry's db.system.name
	// attribute does: "memcached" or "redis"; "memory" for the in-memory
	// backend.
	System string
	// Servers lists the servers the backend talks to, in a fixed order,
	// with the backend's connections to each; none for the memory
	// backend.
	Servers []ServerConns
}

// ServerConns is a backend's connections to one server.
type ServerConns struct {
	// Addr is the server's address, as the backend's errors name it
	// ("host:port").
	Addr string
	// Open is the number of connections open to the server.
	Open int
	// Idle is how many of them wait unused in a pool, or -1 if the
	// driver does not pool connections (the memcached driver's
	// connections are pipelined: every call shares them).
	Idle int
}

// Describe returns be's Description, through any wrappers, or the zero
// Description if be cannot tell (it is not a Describer, or a Tool's
// plugin whose backend is not open yet).
func Describe(be Backend) Description {
	return Do(context.Background(), be, Call{Op: OpDescribe}).Description
}
