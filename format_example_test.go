package memdict_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
)

// A Dict of format erp5 shares the entries of ERP5's Memcached Tool
// (portal_memcached.getMemcachedDict("my_app")) on the site erp5_site:
// ERP5's quoted-printable keys, python-memcached's values, which ERP5
// reads as Python dicts, strs and ints. On a real site be is the
// memcached of the ERP5 instance ("memcached://127.0.0.1:11211").
func ExampleWithFormat() {
	ctx := context.Background()
	be := memory.New()
	defer be.Close()

	type User struct {
		Name   string   `pickle:"name"`
		Visits int      `pickle:"visits"`
		Roles  []string `pickle:"roles"`
	}
	users, err := memdict.New[User](be, "my_app",
		memdict.WithFormat(memdict.FormatERP5), memdict.WithSiteID("erp5_site"))
	if err != nil {
		panic(err)
	}
	if err := users.Put("user/é 1", User{Name: "Ada", Visits: 3, Roles: []string{"Assignor"}}); err != nil {
		panic(err)
	}
	bkey := users.BackendKey("user/é 1")
	it, _ := be.Get(ctx, bkey)
	fmt.Printf("ERP5's key %s, client flags %d (a pickle)\n", bkey, it.Flags)

	u, _ := users.Get("user/é 1")
	fmt.Println(u.Name, u.Visits, u.Roles)

	// What needs memdict's own layout is not available.
	err = users.Clear(ctx)
	fmt.Println(errors.Is(err, memdict.ErrNotSupported))
	// Output:
	// ERP5's key erp5_site_my_app_user/=C3=A9=201, client flags 1 (a pickle)
	// Ada 3 [Assignor]
	// true
}
