// Package all registers every memdict backend driver for backend.Open:
//
//	import _ "github.com/memdict/memdict/backend/all"
//
// registers mem://, memcached:// and redis:// (with rediss://). Import a
// single driver package instead to link only that driver.
package all

import (
	_ "github.com/memdict/memdict/backend/memcached" // memcached://
	_ "github.com/memdict/memdict/backend/memory"    // mem://
	_ "github.com/memdict/memdict/backend/redis"     // redis://, rediss://
)
