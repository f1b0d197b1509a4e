// Command tool is the ERP5 Memcached Tool how-to's counter written against
// a Tool (package tool), as ERP5 code calls
// portal_memcached.getMemcachedDict("my_first_test", plugin_path): it reads
// the counter "some_key", treats a miss as 0, stores the value plus one and
// prints it.
//
// With no configuration it runs on the embedded in-memory backend:
//
//	go run ./examples/tool
//
// The environment configures it: MEMDICT_CONFIG names a configuration file,
// MEMDICT_URL replaces the default plugin's URL, MEMDICT_SITE_ID the site
// id. With a local memcached, the count survives from one run to the next:
//
//	MEMDICT_URL=memcached://127.0.0.1:11211 go run ./examples/tool
//	MEMDICT_CONFIG=examples/memdict.yaml go run ./examples/tool -plugin persistent
//
// The -list flag prints the configured plugins (passwords hidden).
package main

import (
	"flag"
	"fmt"
	"log"

	_ "github.com/memdict/memdict/backend/memcached" // memcached:// URLs (mem:// is built into the tool package)
	_ "github.com/memdict/memdict/backend/redis"     // redis:// URLs
	"github.com/memdict/memdict/tool"
)

func main() {
	log.SetFlags(0)
	plugin := flag.String("plugin", tool.DefaultPlugin, "plugin path (ERP5's portal_memcached/<name> too)")
	list := flag.Bool("list", false, "list the configured plugins")
	flag.Parse()

	t, err := tool.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	if *list {
		for _, p := range t.Plugins() {
			fmt.Printf("%s\turl=%s expiration=%v max_key_length=%d max_value_length=%d codec=%q order=%d\n",
				p.Path, p.URL, p.Expiration, p.MaxKeyLen, p.MaxValueLen, p.Codec, p.Order)
		}
		return
	}

	counts, err := tool.Dict[int](t, "my_first_test", *plugin)
	if err != nil {
		log.Fatal(err)
	}
	value, ok := counts.Get("some_key")
	if !ok {
		value = 0 // a miss: never set, or lost by the cache
	}
	if err := counts.Put("some_key", value+1); err != nil {
		log.Fatal(err)
	}
	fmt.Println(value + 1)
}
