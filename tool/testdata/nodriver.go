// Command nodriver is run by TestDriversLinkedOnlyWhenImported: a
// program that imports the tool package but no driver package, nor
// codec/python. It prints what a Tool does with a URL of each scheme, and
// with a plugin or a Dict of format erp5.
package main

import (
	"errors"
	"fmt"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/tool"
)

func main() {
	t, err := tool.New(tool.DefaultConfig())
	if err == nil {
		if _, err = tool.Dict[int](t, "p", ""); err == nil {
			fmt.Println("mem:// works")
		}
		t.Close()
	}
	if err != nil {
		fmt.Println("mem://:", err)
	}
	for _, u := range []string{"memcached://127.0.0.1:11211", "redis://127.0.0.1:6379/0"} {
		_, err := tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: tool.DefaultPluginConfig(u)}})
		fmt.Printf("%s: ErrUnknownScheme: %v: %v\n", u, errors.Is(err, backend.ErrUnknownScheme), err)
	}
	pc := tool.DefaultPluginConfig("mem://")
	pc.Format = memdict.FormatERP5
	_, err = tool.New(tool.Config{Plugins: map[string]tool.PluginConfig{tool.DefaultPlugin: pc}})
	fmt.Printf("plugin format erp5: %v\n", err)
	_, err = memdict.New[string](memory.New(), "p", memdict.WithFormat(memdict.FormatPython))
	fmt.Printf("Dict format python: %v\n", err)
}
