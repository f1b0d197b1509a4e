package tool

// The drivers a Tool's URLs may name: importing the tool package is
// enough to use any of them.
import (
	_ "github.com/memdict/memdict/backend/memcached" // memcached://, memcacheds://
	_ "github.com/memdict/memdict/backend/memory"    // mem://
	_ "github.com/memdict/memdict/backend/redis"     // redis://, rediss://
)
