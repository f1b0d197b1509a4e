package tool

// The in-memory driver is built in: it is the default plugin's backend
// when nothing is configured (DefaultURL), and it costs no dependency.
// The other drivers are linked only into programs that import them, as
// database/sql's are:
//
//	import _ "github.com/memdict/memdict/backend/memcached" // memcached://, memcacheds://
//	import _ "github.com/memdict/memdict/backend/redis"     // redis://, rediss://
//
// (or github.com/memdict/memdict/backend/all for every driver). A URL
// whose driver is not imported fails with an error wrapping
// backend.ErrUnknownScheme that lists the registered schemes and hints at
// the forgotten import.
import (
	_ "github.com/memdict/memdict/backend/memory" // mem://
)
