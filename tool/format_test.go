package tool_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/internal/pyinterop"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// TestFormatERP5Plugin: a Dict of a format: erp5 plugin reads an entry
// that ERP5's Memcached Tool wrote on the same memcached (the Tool's
// site_id, the Dict's prefix as key_prefix), updates it, and the Tool's
// code reads the update; Clear says it is not available on the plugin.
func TestFormatERP5Plugin(t *testing.T) {
	ctx := context.Background()
	mc := testserver.Memcached(t)
	py := pyinterop.Find(t, pyinterop.PythonMemcached)
	cfg, err := tool.ParseConfig([]byte(`
site_id: erp5_site
plugins:
  erp5:
    url: `+mc.Addr+`
    format: erp5
`), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	if info, _ := tl.Plugin("erp5"); info.Format != memdict.FormatERP5 {
		t.Errorf("PluginInfo.Format = %q", info.Format)
	}
	if info, _ := tl.Plugin(""); info.Format != memdict.FormatMemdict {
		t.Errorf("the default plugin's format = %q, want memdict", info.Format)
	}

	const key = "user/é 1"
	set := pyinterop.Op{Op: "erp5set", Site: "erp5_site", Prefix: "my_app", Key: key,
		Expr: "{'name': 'Ada', 'visits': 3, 'roles': ['Assignor'], 'last': None}"}
	if r := py.Batch(t, mc.Addr, set)[0]; r.Error != "" {
		t.Fatal(r.Error)
	}
	type entry struct {
		Name   string   `pickle:"name"`
		Visits int      `pickle:"visits"`
		Roles  []string `pickle:"roles"`
		Last   *string  `pickle:"last"`
	}
	d, err := tool.Dict[entry](tl, "my_app", "portal_memcached/erp5")
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := d.Lookup(ctx, key)
	if err != nil || !ok || e.Name != "Ada" || e.Visits != 3 || len(e.Roles) != 1 || e.Last != nil {
		t.Fatalf("Lookup of the Tool's entry = %+v, %v, %v", e, ok, err)
	}
	if _, err := d.Update(ctx, key, func(e entry, _ bool) (entry, error) {
		e.Visits++
		e.Roles = append(e.Roles, "Auditor")
		return e, nil
	}); err != nil {
		t.Fatal(err)
	}
	res := py.Batch(t, mc.Addr, pyinterop.Op{Op: "erp5get", Site: "erp5_site", Prefix: "my_app", Key: key},
		pyinterop.Op{Op: "canon", Expr: "{'name': 'Ada', 'visits': 4, 'roles': ['Assignor', 'Auditor'], 'last': None}"})
	if res[0].Error != "" || res[0].Repr != res[1].Repr || res[0].Type != "dict" {
		t.Fatalf("the Tool read back %s %s (%s); want dict %s", res[0].Type, res[0].Repr, res[0].Error, res[1].Repr)
	}
	err = d.Clear(ctx)
	if !errors.Is(err, memdict.ErrNotSupported) || !strings.Contains(err.Error(), "not available on a format: erp5 plugin") {
		t.Fatalf("Clear on a format: erp5 plugin: %v", err)
	}
}
