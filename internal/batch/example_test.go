package batch_test

import (
	"context"
	"fmt"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/batch"
)

func Example() {
	// fetch stands for a driver's multi-get to the server named by group.
	fetch := func(ctx context.Context, group string, keys []string) (map[string]backend.Item, error) {
		m := make(map[string]backend.Item)
		for _, k := range keys {
			if k != "absent" {
				m[k] = backend.Item{Key: k, Value: []byte(group + ":" + k)}
			}
		}
		return m, nil
	}
	b := batch.New(fetch, batch.Options{
		Group:       func(key string) string { return "server-" + key[:1] },
		MaxInFlight: 2,
	})
	defer b.Close()

	it, err := b.Get(context.Background(), "apple")
	fmt.Println(string(it.Value), err)
	_, err = b.Get(context.Background(), "absent")
	fmt.Println(err)
	// Output:
	// server-a:apple <nil>
	// backend: not found
}
