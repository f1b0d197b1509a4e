// Package admin is memdict's configure screen as an http.Handler that a
// service mounts on its own mux: the operator sees the plugins of the
// service's live *tool.Tool, whether their servers answer and their
// statistics (items, memory, hit ratio, evictions, uptime; per node for
// memcached clusters), and the metrics of the Dicts the Tool handed out;
// signed in with the admin token, the operator changes a plugin's URL or
// defaults, and the service's Dicts follow at once (tool.Tool.SetPlugin),
// as ERP5's portal_memcached configure screen does for its instance.
//
// Mount it under any path:
//
//	t, err := tool.FromEnv()
//	...
//	h, err := admin.New(t, admin.Options{Token: os.Getenv("MYAPP_ADMIN_TOKEN")})
//	...
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//	log.Printf("admin page: http://%s/admin/?token=%s", addr, h.Token())
//
// or pass Options.Prefix and mount it as it is:
//
//	h, err := admin.New(t, admin.Options{Prefix: "/admin"})
//	mux.Handle("/admin/", h)
//
// With no Options.Token a random token is generated, logged once, and
// returned by Handler.Token. Opening the page with ?token=<token> signs in
// (and redirects to the page without it), so a service can print a link
// to follow, as Jupyter does; mind that such a link lands in the
// browser's history and in any access log of the service. The page also
// has a sign-in form, which does not.
//
// The command "memdict serve" is this handler over a Tool of its own, and
// examples/adminpage a small service that mounts it at /admin/.
package admin
