package prometheus_test

import (
	"fmt"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
	memprom "github.com/memdict/memdict/metrics/prometheus"
)

// Register a Collector once and add each Dict to it.
func Example() {
	users, _ := memdict.New[string](memory.New(), "users")
	_ = users.Put("ada", "Ada Lovelace")
	users.Get("ada")
	users.Get("bob")

	c := memprom.NewCollector()
	c.Add(users)
	reg := promclient.NewRegistry()
	reg.MustRegister(c)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "memdict_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel() // sorted: op, plugin, prefix, result
			if l[0].GetValue() == "get" {
				fmt.Println(mf.GetName(), l[0].GetValue(), l[3].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// memdict_operations_total get error 0
	// memdict_operations_total get hit 1
	// memdict_operations_total get miss 1
}
