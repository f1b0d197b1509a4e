package containers_test

import (
	"context"
	"fmt"
	"log"

	"github.com/memdict/memdict/testing/containers"
)

// Outside a test, StartRedis returns the container and an error; terminate
// the container whatever the error says.
func ExampleStartRedis() {
	ctx := context.Background()
	c, err := containers.StartRedis(ctx)
	defer func() {
		if err := c.Terminate(ctx); err != nil {
			log.Print(err)
		}
	}()
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Println("open the backend with", c.URL())
}
