// Memdict looks inside and moves the caches of memdict applications
// (memcached, Redis or the in-memory store), and serves their admin page:
// memccat, memcstat and redis-cli for memdict's typed Dicts, and the Go
// form of ERP5's portal_memcached/memcached_tool_configure screen.
//
// Install it with
//
//	go install github.com/memdict/memdict/cmd/memdict@latest
//
// Usage:
//
//	memdict [global flags] <command> [flags] [arguments]
//
// The commands are:
//
//	get KEY            print the value stored under KEY (exit status 1 if absent)
//	put KEY [VALUE]    store VALUE as text, or a typed JSON value with --typed (msgpack by default)
//	del KEY            remove KEY (exit status 1 if absent)
//	keys               list the Dict's keys (--prefix), or every prefix's keys
//	clear --yes        remove every key of the Dict at once (a new namespace generation)
//	stats              server statistics: items, memory, hit ratio, evictions, uptime
//	ping               check that the plugin's servers answer, with the round-trip time
//	dump               write the Dict's keys and values as JSON Lines
//	load [FILE]        store the keys and values of a dump
//	plugins            list the configured plugins
//	serve              serve the admin page on 127.0.0.1:8080
//	version            print the version
//
// "memdict --help" and "memdict <command> --help" show every flag, with
// examples.
//
// # Configuration
//
// The command reads the configuration the application reads (see package
// github.com/memdict/memdict/tool), so it sees the same plugins: the file
// that --config names, else the one in $MEMDICT_CONFIG, with $MEMDICT_URL
// replacing the default plugin's URL and $MEMDICT_SITE_ID the site id.
// With none of them, the default plugin is an in-memory store that lives
// only as long as the command: the command says so on stderr, and put, load
// and clear refuse to write there unless given --mem. --plugin chooses the plugin (default: the
// default plugin), --prefix the Dict's key prefix, and --url replaces the
// chosen plugin's URL for this run. Global flags may be given before or
// after the command; --json makes every command print JSON for scripts.
//
// # Values
//
// memdict stores a three-byte header in front of each value naming its
// codec, so the command decodes any value with the codec it was written
// with and prints it as JSON. Strings print as JSON strings; a value that
// cannot be shown as JSON (binary bytes, gob, an unknown codec) prints in
// base64; get --raw prints the stored bytes. JSON is printed as written,
// without HTML escaping. put stores VALUE as text, as a Dict[string] does
// and as memccat and redis-cli store it; put --typed takes JSON and encodes
// it with the plugin's codec (msgpack unless configured) or --codec,
// keeping integers integers, so that a Go program reads it back into its
// type.
//
// --raw-key (get, put, del, keys) reads and writes backend keys as they
// are, without memdict's key layout or value header: for values other
// programs wrote, and for values they are to read. get --raw-key decodes a
// value of python-memcached or pymemcache by its memcached client flags.
//
// # ERP5 and Python
//
// On a plugin of format erp5 (see tool.PluginConfig.Format), --prefix
// names the Dict of ERP5's Memcached Tool (its key_prefix; the site id is
// the configuration's site_id) and the values are python-memcached's: get
// prints a str, an int or an unpickled dict as JSON, and put --typed
// stores a JSON object as a pickled dict that ERP5 reads as a Python dict:
//
//	memdict --config erp5.yaml get --prefix my_app 'user/1'
//	memdict --config erp5.yaml put --prefix my_app --typed 'user/2' '{"name": "Ada"}'
//
// Format python does the same under the keys Python programs use.
// keys, dump and clear need memdict's own layout and say so.
//
// # Moving a namespace
//
// dump writes one JSON object a line:
//
//	{"key":"cart:42","codec":"msgpack","value":{"items":[1,2,3]}}
//	{"key":"logo","codec":"raw","base64":"iVBORw0KGgo..."}
//
// and load writes each value back with its codec, so that a namespace moves
// between backends, for example from memcached to a persistent Redis:
//
//	memdict dump --prefix shop --url memcached://10.0.0.5:11211 |
//	  memdict load --prefix shop --url redis://10.0.0.6:6379/0
//
// dump --exact writes every value in base64 so that load restores the very
// bytes; a key that is not UTF-8 is also written in base64, as
// "key_base64", from which load reads it. A failed batch is tried again with backoff (--retries,
// --retry-wait); if it still fails, the command stops with an error that
// says how many records were done, the output holding only whole records,
// and "dump -o FILE --resume" or "load --skip N" continues where it
// stopped. Both show progress on stderr (a line redrawn on a terminal, a
// line every 10 seconds otherwise) and end with a summary line. Listing
// keys needs the in-memory store, Redis, or memcached 1.6 or later.
//
// # Exit status
//
//	0  success
//	1  miss: get or del of an absent key
//	2  bad usage: unknown command or flag, wrong arguments
//	3  error: bad configuration, server unreachable, value too large, ...
//
// # Admin page
//
// "memdict serve" serves, on 127.0.0.1:8080 (--addr), a page that shows
// every plugin with its URL (passwords shown as xxxxx), whether its servers
// answer and how fast, their statistics (per node for memcached clusters)
// and the metrics of the Dicts the page used. Signed in with the admin
// token (--token, else $MEMDICT_ADMIN_TOKEN, else a random one printed on
// stderr), an operator changes a plugin's URL and defaults — applied at
// once with the Tool's SetPlugin, to this process — and reads, writes and
// deletes a key. The session cookie is HttpOnly and SameSite=Strict, every
// form carries an anti-forgery token, cross-origin posts and foreign Host
// names are refused, and the page sets a strict Content-Security-Policy.
// It is plain HTML and CSS, with no JavaScript. Behind a reverse proxy on
// the same machine, --host names the proxy's public host name, which the
// page otherwise refuses on a loopback address, and --secure-cookie marks
// the session cookie Secure when the proxy serves HTTPS. SIGINT or
// SIGTERM stop it gracefully.
package main
