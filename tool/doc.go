// Package tool is the Go form of ERP5's Memcached Tool (portal_memcached):
// named plugins, each a backend URL with the defaults of the Dicts made
// from it, configured from a file or the environment and changeable while
// the program runs.
//
// ERP5's one entry point, portal_memcached.getMemcachedDict(key_prefix,
// plugin_path), is the generic function Dict:
//
//	t, err := tool.FromEnv() // MEMDICT_CONFIG, MEMDICT_URL, MEMDICT_SITE_ID
//	if err != nil { ... }
//	defer t.Close()
//	counts, err := tool.Dict[int](t, "my_first_test", "") // "": the default plugin
//	n, _ := counts.Get("some_key") // a miss gives 0
//	counts.Put("some_key", n+1)
//
// A plugin path is the plugin's name; "" is the default plugin,
// "default". ERP5's names work too: "portal_memcached/<name>" is <name>,
// and default_memcached_plugin, in paths and configurations alike, is
// "default" (see docs/erp5.md). With no configuration at all,
// the default plugin is the embedded in-memory backend (mem://), so that
// programs run anywhere with no set-up.
//
// # Plugins
//
// A plugin has a URL (mem://, memcached://host:11211,host2:11211,
// redis://host:6379/0, rediss://...), an expiration (the default time to
// live; 0 means never), a maximum key length (default 250; 0: no limit), a
// maximum value length (default 1 MiB; 0: no limit), a codec name, an
// ordering index for listings, how often Dicts re-read their namespace
// generation (see memdict.Dict.Clear), an optional near cache for its
// Dicts (NearCacheConfig), and a format: memdict's own, or erp5 to share
// the entries of ERP5's Memcached Tool on the same memcached (ERP5's keys
// and python-memcached's values, see memdict.WithFormat), or python for
// those of Python programs (the Python formats need the program to
// import package codec/python, as a URL needs its driver). The Tool's
// optional site id is put in front
// of every Dict's prefix, so that several applications can share one
// server without meeting. Dicts of one plugin share one backend (one
// connection pool), opened by the first call that needs it.
//
// A Dict's own options, given to Dict, override the plugin's defaults for
// that Dict ("the Dict's options, then the plugin's, then memdict's"):
//
//	users, err := tool.Dict[User](t, "users", "users_redis",
//		memdict.WithDefaultTTL(10*time.Minute),
//		memdict.WithNearCache(memdict.NearCache{MaxEntries: 10_000}))
//
// # Abilities and middleware
//
// The backend of a plugin (Backend, and what its Dicts use) is a
// *backend.Wrapped: every call, optional abilities included (memcached's
// leases, Redis's locks and server-assisted invalidation, batched writes,
// private reads, the server of a key), goes to the plugin's current
// backend, which says at the call whether it has the ability. So a Tool's
// Dict runs the code a Dict on the driver runs, and follows its plugin to
// another backend: leases or lock keys are chosen again, and a near
// cache's tracking moves to the new server. WithMiddleware adds middleware
// (backend.Middleware) around every plugin's backend, for metrics, logs,
// traces or value transforms.
//
// # Configuration
//
// A configuration file is YAML (.yaml, .yml) or JSON (.json):
//
//	site_id: shop
//	plugins:
//	  default:
//	    url: memcached://127.0.0.1:11211
//	    expiration: 1h          # seconds (3600) or a duration
//	  sessions:
//	    url: redis://127.0.0.1:6379/0
//	    max_key_length: 0       # no limit
//	    max_value_length: 0
//	    order: 1
//	    near_cache:             # each Dict keeps hot values in the process
//	      max_entries: 10000
//	      max_stale: 0          # 0: as long as Redis reports no change
//	    warm: 10m               # after a change of URL, warm the new servers up
//	  erp5_plugin:
//	    url: 127.0.0.1:11211    # the memcached of an ERP5 site
//	    format: erp5            # its Dicts are ERP5's (site_id: ERP5's site id)
//
// The two formats are read alike: the same fields, the same values (an
// expiration in seconds or as a duration, see ParseTTL; a field set to
// null is as if absent) and the same problems. Unknown fields, bad URLs,
// negative expirations and the like are errors (*ConfigError) that name
// the file, the line, the plugin and the field.
// The environment variables MEMDICT_CONFIG (a file), MEMDICT_URL (the
// default plugin's URL) and MEMDICT_SITE_ID (the site id) are read by
// FromEnv and ConfigFromEnv.
//
// # Run-time reconfiguration
//
// SetPlugin and Configure change a live Tool, as ERP5's configure screen
// does: Dicts handed out earlier use the new settings from their next call
// on (a plugin's near cache applies to the Dicts made afterwards). When a
// plugin's URL changes, calls in flight finish on the old backend, which
// is then closed; no call fails because of the switch. The near caches of
// the plugin's Dicts are emptied and track the new server; on a server
// that cannot report changes, those with MaxStale 0 keep nothing until
// the plugin moves to one that can (see NearCacheConfig.MaxStale).
// Close closes every backend the Tool opened; later calls fail with an
// error wrapping backend.ErrClosed.
//
// A new URL starts empty, so that every key misses at once: the stampede
// leases exist to prevent. With PluginConfig.Warm (warm: 10m) the plugin
// warms its new backend up for that long instead, as mcrouter's warm-up
// route does: a miss on the new backend reads the previous one (kept open
// until the window ends) and copies the item over with its remaining TTL,
// and each write of a key deletes it from the previous backend first, so
// that nothing older than a value written since the switch comes back.
// Leases keep one caller per key filling it (from the previous backend),
// and near caches track the copies on the new server.
//
// # Drivers
//
// The package links only the in-memory driver (mem://, the default
// plugin's backend when nothing is configured). A program links the other
// drivers by importing them, as database/sql's drivers are, so that a
// Redis-only service does not link the memcached client:
//
//	import (
//		_ "github.com/memdict/memdict/backend/memcached" // memcached://, memcacheds://
//		_ "github.com/memdict/memdict/backend/redis"     // redis://, rediss://
//	)
//
// or github.com/memdict/memdict/backend/all for every driver. A plugin
// URL whose driver is not imported is a *ConfigError wrapping
// backend.ErrUnknownScheme that names the import to add.
package tool
